"""The releases the hub holds (hub.services.releases, `hafen hub release`, issue 17): a
wheelhouse is signed with the release key, kept under the releases directory and recorded
once; a version exists once; what cannot be a release changes nothing. A signed rollback is
made from a held release, once per version rolled back from, with the release's own files.
On SQLite and PostgreSQL; the CLI on the hub's real settings."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from typer.testing import CliRunner

from hafen.cli import app
from hafen.releases import ReleaseRefused, open_manifest, require_upgrade, verify_files
from hafen.signing import public_key_text
from hub import db
from hub.keys import generate_key, load_key
from hub.services.errors import Conflict, Invalid, NotFound
from hub.services.releases import add_release, add_rollback, list_releases

RELEASE_KEY = Ed25519PrivateKey.generate()
NOW = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)


def wheelhouse(tmp_path, version: str):
    directory = tmp_path / f"wheels-{version}"
    directory.mkdir(parents=True)
    (directory / f"hafen-{version}-py3-none-any.whl").write_bytes(b"hafen " + version.encode())
    (directory / "paho_mqtt-2.1.0-py3-none-any.whl").write_bytes(b"paho" * 1000)
    return directory


def recorded(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(db.releases)) or 0


def test_a_release_is_signed_kept_and_listed_once(engine, tmp_path):
    kept = tmp_path / "releases"
    added = add_release(engine, kept, wheelhouse(tmp_path, "1.5.0"), "1.5.0", RELEASE_KEY, now=NOW)
    assert (added.version, added.files, added.bytes) == ("1.5.0", 2, 4000 + len(b"hafen 1.5.0"))
    with engine.connect() as conn:
        sealed = conn.scalar(select(db.releases.c.manifest))
    manifest = open_manifest(sealed, [RELEASE_KEY.public_key()])
    verify_files(manifest, kept / "1.5.0")  # exactly the wheels, as the doors will find them
    with pytest.raises(Conflict, match=r"release 1\.5\.0 exists"):
        add_release(engine, kept, wheelhouse(tmp_path / "again", "1.5.0"), "1.5.0", RELEASE_KEY)
    verify_files(manifest, kept / "1.5.0")  # the first one's files, untouched
    add_release(
        engine, kept, wheelhouse(tmp_path, "1.4.2"), "1.4.2", RELEASE_KEY, NOW.replace(hour=21)
    )
    assert [r.version for r in list_releases(engine)] == ["1.4.2", "1.5.0"]


def rollbacks(engine) -> list[tuple[str, str]]:
    b = db.release_rollbacks.c
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(b.version, b.rollback_from))]


def test_a_rollback_signs_a_held_release_again_for_one_newer_version(engine, tmp_path):
    kept = tmp_path / "releases"
    for version in ("1.4.0", "1.5.0"):
        add_release(engine, kept, wheelhouse(tmp_path, version), version, RELEASE_KEY, NOW)
    made, new = add_rollback(engine, kept, "1.4.0", "1.5.0", RELEASE_KEY, "cli:nadia", NOW)
    assert new and (made.version, made.rollback_from, made.created_by) == (
        "1.4.0",
        "1.5.0",
        "cli:nadia",
    )
    b, r = db.release_rollbacks.c, db.releases.c
    with engine.connect() as conn:
        sealed = conn.scalar(select(b.manifest).where(b.version == "1.4.0"))
        plain_sealed = conn.scalar(select(r.manifest).where(r.version == "1.4.0"))
    back = open_manifest(sealed, [RELEASE_KEY.public_key()])
    plain = open_manifest(plain_sealed, [RELEASE_KEY.public_key()])
    # The release's own files, as kept; only the version it goes back from is new.
    assert (back.files, back.rollback_from, plain.rollback_from) == (plain.files, "1.5.0", None)
    verify_files(back, kept / "1.4.0")
    require_upgrade(back, "1.5.0")  # what a door on 1.5.0 lets through ...
    with pytest.raises(ReleaseRefused, match=r"not newer than 1\.5\.0"):
        require_upgrade(plain, "1.5.0")  # ... where the release itself is refused
    with pytest.raises(ReleaseRefused, match=r"does not apply to 1\.5\.1"):
        require_upgrade(back, "1.5.1")
    # Made again: the one held, unchanged (who retries in an incident gets no error).
    again, new = add_rollback(engine, kept, "1.4.0", "1.5.0", RELEASE_KEY, "cli:tom")
    assert not new and again == made
    with engine.connect() as conn:
        assert conn.scalar(select(b.manifest)) == sealed
    add_rollback(engine, kept, "1.4.0", "1.4.1", RELEASE_KEY, "cli:nadia", NOW)
    listed = {r.version: r.rollbacks for r in list_releases(engine)}
    assert listed == {"1.4.0": ["1.5.0", "1.4.1"], "1.5.0": []}


@pytest.mark.parametrize(
    ("version", "rollback_from", "error", "why"),
    [
        ("1.3.0", "1.5.0", NotFound, "the hub holds no release '1.3.0'"),
        ("1.4.0", "1.4.0", Invalid, "1.4.0 is not newer than 1.4.0"),
        ("1.5.0", "1.4.0", Invalid, "1.4.0 is not newer than 1.5.0"),
        ("1.4.0", "1.4.0rc1", Invalid, "1.4.0rc1 is not newer than 1.4.0"),  # PEP 440, not text
        ("1.4.0", "latest", Invalid, "'latest' is not a version (PEP 440"),
        ("1.4.0", "1.5.0/../x", Invalid, "is not a version a door could run"),
    ],
)
def test_what_cannot_be_a_rollback_is_refused_and_changes_nothing(
    engine, tmp_path, version, rollback_from, error, why
):
    kept = tmp_path / "releases"
    for held in ("1.4.0", "1.5.0"):
        add_release(engine, kept, wheelhouse(tmp_path, held), held, RELEASE_KEY, NOW)
    with pytest.raises(error, match=re.escape(why)):
        add_rollback(engine, kept, version, rollback_from, RELEASE_KEY, "cli:nadia")
    assert rollbacks(engine) == []


def test_a_rollback_of_a_release_damaged_at_the_hub_is_refused(engine, tmp_path):
    kept = tmp_path / "releases"
    add_release(engine, kept, wheelhouse(tmp_path, "1.4.0"), "1.4.0", RELEASE_KEY, NOW)
    (kept / "1.4.0" / "paho_mqtt-2.1.0-py3-none-any.whl").write_bytes(b"paho" * 999)
    with pytest.raises(Invalid, match=r"not its manifest.s \(.*\); a rollback to it would fail"):
        add_rollback(engine, kept, "1.4.0", "1.5.0", RELEASE_KEY, "cli:nadia")
    assert rollbacks(engine) == []


def test_what_cannot_be_a_release_changes_nothing(engine, tmp_path):
    kept = tmp_path / "releases"
    wheels = wheelhouse(tmp_path, "1.5.0")
    with pytest.raises(Invalid, match=r"no wheel of hafen 1\.6\.0"):
        add_release(engine, kept, wheels, "1.6.0", RELEASE_KEY)
    (wheels / "notes.txt").write_text("x")
    with pytest.raises(Invalid, match="is not a wheel's file name"):
        add_release(engine, kept, wheels, "1.5.0", RELEASE_KEY)
    assert recorded(engine) == 0 and not kept.exists()
    # What a cut-off add left is replaced by the next add of that version.
    (wheels / "notes.txt").unlink()
    (kept / ".partial-1.5.0").mkdir(parents=True)
    (kept / ".partial-1.5.0" / "stale.whl").write_text("x")
    add_release(engine, kept, wheels, "1.5.0", RELEASE_KEY)
    assert sorted(p.name for p in kept.iterdir()) == ["1.5.0"]


def test_the_cli_adds_with_the_release_key_and_refuses_the_list_key(tmp_path):
    lists, release = tmp_path / "hub-signing.pem", tmp_path / "hub-release.pem"
    generate_key(lists)
    generate_key(release)
    config = tmp_path / "hub.toml"
    settings = (
        f'[store]\nurl = "sqlite:///{tmp_path / "hub.db"}"\n\n'
        f'[releases]\ndirectory = "{tmp_path / "releases"}"\n\n'
        f'[signing]\nkey_file = "{lists}"\n'
    )
    wheels = str(wheelhouse(tmp_path, "1.5.0"))

    def release_cli(*args: str):
        return CliRunner().invoke(app, ["hub", "release", *args, "-c", str(config)])

    config.write_text(settings + f'release_key_file = "{lists}"\n')
    same = release_cli("add", wheels, "--version", "1.5.0")
    assert same.exit_code == 2 and "the same key as signing.key_file" in same.stderr
    config.write_text(settings)
    unset = release_cli("add", wheels, "--version", "1.5.0")
    assert unset.exit_code == 2 and "signing.release_key_file: not set" in unset.stderr
    config.write_text(settings + f'release_key_file = "{release}"\n')
    added = release_cli("add", wheels, "--version", "1.5.0")
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("release 1.5.0: 2 files, 4,011 bytes, signed and kept in ")
    again = release_cli("add", wheels, "--version", "1.5.0")
    assert again.exit_code == 2 and "release 1.5.0 exists" in again.stderr
    listed = release_cli("list")
    assert listed.exit_code == 0 and listed.stdout.startswith("1.5.0\t2 files\t4,011 bytes\tadded ")
    key = release_cli("key")
    assert key.exit_code == 0
    assert key.stdout.strip() == public_key_text(load_key(release))
    assert key.stdout.strip() != public_key_text(load_key(lists))


def test_the_cli_makes_a_rollback_once_and_lists_it(engine, hub_url, tmp_path, monkeypatch):
    monkeypatch.delenv("HAFEN_HUB_CONFIG", raising=False)
    release = tmp_path / "hub-release.pem"
    generate_key(release)
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[releases]\ndirectory = "{tmp_path / "releases"}"\n\n'
        f'[signing]\nkey_file = "{tmp_path / "hub-signing.pem"}"\n'
        f'release_key_file = "{release}"\n'
    )
    generate_key(tmp_path / "hub-signing.pem")

    def release_cli(*args: str):
        return CliRunner().invoke(
            app, ["hub", "release", *args, "-c", str(config), "--db", hub_url]
        )

    for version in ("1.4.0", "1.5.0"):
        added = release_cli("add", str(wheelhouse(tmp_path, version)), "--version", version)
        assert added.exit_code == 0, added.output
    made = release_cli("rollback", "1.4.0", "--from", "1.5.0")
    assert made.exit_code == 0, made.output
    assert made.stdout == (
        "rollback to 1.4.0 from 1.5.0: release 1.4.0's manifest signed again, for doors on"
        " 1.5.0 only; roll it out with `hafen hub rollout start 1.4.0 --rollback`\n"
    )
    again = release_cli("rollback", "1.4.0", "--from", "1.5.0")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("rollback to 1.4.0 from 1.5.0: held already (made ")
    assert rollbacks(engine) == [("1.4.0", "1.5.0")]
    upwards = release_cli("rollback", "1.5.0", "--from", "1.4.0")
    assert upwards.exit_code == 2
    assert "rollback to 1.5.0 not made: --from: a rollback goes back from a newer version" in (
        upwards.stderr
    )
    listed = release_cli("list").stdout.splitlines()
    assert listed[1].startswith("1.4.0\t2 files\t4,011 bytes\tadded ")
    assert listed[1].endswith(" UTC\trollbacks from 1.5.0")
    assert "rollbacks" not in listed[0]
    # A rollback is made from a held release only: a release cannot be added as one.
    old_way = release_cli(
        "add", str(tmp_path / "wheels-1.4.0"), "--version", "1.4.0", "--rollback-from", "1.5.0"
    )
    assert old_way.exit_code == 2 and "No such option: --rollback-from" in old_way.stderr
    config.write_text(config.read_text().replace(f'release_key_file = "{release}"\n', ""))
    unset = release_cli("rollback", "1.4.0", "--from", "1.4.1")
    assert unset.exit_code == 2 and "signing.release_key_file: not set" in unset.stderr
    assert rollbacks(engine) == [("1.4.0", "1.5.0")]
