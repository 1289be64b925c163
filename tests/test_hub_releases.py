"""The releases the hub holds (hub.services.releases, `hafen hub release`, issue 17): a
wheelhouse is signed with the release key, kept under the releases directory and recorded
once; a version exists once; what cannot be a release changes nothing. On SQLite and
PostgreSQL; the CLI on the hub's real settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from typer.testing import CliRunner

from hafen.cli import app
from hafen.releases import open_manifest, verify_files
from hafen.signing import public_key_text
from hub import db
from hub.keys import generate_key, load_key
from hub.services.errors import Conflict, Invalid
from hub.services.releases import add_release, list_releases

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
    back = add_release(
        engine,
        kept,
        wheelhouse(tmp_path, "1.4.2"),
        "1.4.2",
        RELEASE_KEY,
        "1.5.0",
        NOW.replace(hour=21),
    )
    assert back.rollback_from == "1.5.0"
    assert [r.version for r in list_releases(engine)] == ["1.4.2", "1.5.0"]


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
