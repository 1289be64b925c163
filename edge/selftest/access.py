"""The access list in force: is there one, for this site, and did a key the door trusts sign it?

The store keeps one list, the one applied, with its version, its site and the hub key that
vouched for it (edge.agent.access_list: the updater records the key whose signature it
verified; ``hafen edge load-acl`` records none). So the signature check asks whether that key
is still among ``[hub] public_keys``: a list signed by a key taken out of the config since
(a key retired after a leak) is no longer vouched for.
"""

from __future__ import annotations

from edge.agent.access_list import applied_signer, applied_version
from edge.agent.store import EdgeStore
from edge.selftest.results import CheckResult, failed, passed, skipped

#: The signature check of a door on its own.
NO_HUB = ("list_signature", "a door without [hub] loads its lists by hand, unsigned")


def check_access_list(store: EdgeStore, site: str) -> CheckResult:
    """A list is applied, and it is this site's."""
    version = applied_version(store)
    if version == 0:
        return failed(
            "access_list",
            "none applied: the hub sends it when the agent connects (or hafen edge load-acl)",
        )
    listed = store.get_meta("acl_site")
    if listed != site:
        return failed("access_list", f"version {version} is for site {listed}, not {site}")
    with store.read() as conn:
        cards = conn.execute("SELECT count(*) FROM cards").fetchone()[0]
    applied = store.get_meta("acl_applied_at") or "at an unknown time"
    counted = f"{cards} card{'s' if cards != 1 else ''}"
    return passed("access_list", f"version {version}, {counted}, applied {applied}")


def check_list_signature(store: EdgeStore, public_keys: list[str] | None) -> CheckResult:
    """The list in force was signed by a key in ``public_keys`` (None: a door on its own,
    whose lists are loaded by hand and never signed)."""
    name = "list_signature"
    if public_keys is None:
        return skipped(*NO_HUB)
    version = applied_version(store)
    if version == 0:
        return failed(name, "no list to verify")
    signer = applied_signer(store)
    if signer is None:
        return failed(
            name,
            f"version {version} was applied before doors kept who signed it; the agent"
            " verifies it again when it next connects",
        )
    if signer == "":
        return failed(name, f"version {version} was loaded from a file, not signed by the hub")
    if signer not in public_keys:
        return failed(name, f"version {version} was signed by {key_id(signer)}, not trusted now")
    return passed(name, f"version {version} signed by {key_id(signer)}")


def key_id(public_key: str) -> str:
    """A hub key in few characters: the start of its base64 (public, unlike a card)."""
    return f"hub key {public_key[:8]}…"
