"""The hub's keys in its settings: the files that hold them, read when a command needs them.

``[signing]``: the key that signs access lists and commands, and the **release key** that
signs the manifests of edge software releases (issue 17), kept in a file of its own: a
stolen list key opens doors for a day, a stolen release key would run code on every door,
so it may live offline, on the machine that adds releases only. ``[cards]``: the network's
card-hash key. A ConfigError names the key and the file that fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hafen.cards import parse_card_key
from hafen.config import ConfigError, Section

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def secret_text(key: str, path: Path) -> str:
    """The text of a secret file, stripped; a ConfigError names the key and the file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{key}: {path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{key}: {path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {path}: not a text file") from None
    if not text:
        raise ConfigError(f"{key}: {path}: is empty")
    return text


def _private_key(key: str, path: Path) -> Ed25519PrivateKey:
    from hub.keys import load_key

    try:
        return load_key(path)
    except FileNotFoundError:
        raise ConfigError(f"{key}: {path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{key}: {path}: cannot read: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise ConfigError(
            f"{key}: {path}: not an unencrypted Ed25519 private key in PEM"
            " (`hafen hub keygen` makes one)"
        ) from None


class SigningSettings(Section):
    """The hub's Ed25519 keys: the one that signs access lists and commands for the doors,
    and the one that signs software releases (see the module)."""

    #: The PEM file from ``hafen hub keygen``. ``ingest`` needs it; without it ``serve``
    #: stores access-list changes but does not send them.
    key_file: Path | None = None
    #: Another PEM file from ``hafen hub keygen``, for ``hafen hub release add`` only.
    release_key_file: Path | None = None

    def key(self) -> Ed25519PrivateKey | None:
        """The signing key, if one is configured; a ConfigError names a file that fails."""
        if self.key_file is None:
            return None
        return _private_key("signing.key_file", self.key_file)

    def release_key(self) -> Ed25519PrivateKey:
        """The release key; a ConfigError if none is configured, if its file fails, or if it
        is the list-signing key (one key would then do both jobs)."""
        if self.release_key_file is None:
            raise ConfigError(
                "signing.release_key_file: not set; make one with `hafen hub keygen FILE` and"
                " keep it apart from signing.key_file"
            )
        release = _private_key("signing.release_key_file", self.release_key_file)
        lists = self.key()
        if lists is not None and lists.public_key() == release.public_key():
            raise ConfigError(
                "signing.release_key_file: it is the same key as signing.key_file; a release"
                " needs a key of its own"
            )
        return release


class CardsSettings(Section):
    """The network's card-hash key, the same file as ``[cards] hash_key_file`` on the doors."""

    #: Hex, at least 32 digits. Without it the API cannot take a card's raw UID.
    hash_key_file: Path | None = None

    def key(self) -> bytes | None:
        """The key's bytes, if a file is configured; a ConfigError names a file that fails."""
        if self.hash_key_file is None:
            return None
        text = secret_text("cards.hash_key_file", self.hash_key_file)
        try:
            return parse_card_key(text)  # the doors' rule
        except ValueError as exc:
            raise ConfigError(f"cards.hash_key_file: {self.hash_key_file}: {exc}") from None
