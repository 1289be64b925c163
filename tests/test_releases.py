"""A release's signed manifest (hafen.releases, issue 17): what a door accepts, and every way a
release is refused with nothing changed: another key, a tampered, missing or extra file, an
older version replayed, a rollback for another version, names that are paths, sizes out of
bounds."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hafen.releases import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ReleaseRefused,
    manifest_for,
    open_manifest,
    require_upgrade,
    seal_manifest,
    verify_files,
)
from hafen.signing import seal

NOW = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
RELEASE_KEY = Ed25519PrivateKey.generate()
LIST_KEY = Ed25519PrivateKey.generate()  # the access lists' key: never a release's
TRUSTED = [RELEASE_KEY.public_key()]


def wheelhouse(tmp_path, version="1.5.0", name="wheels"):
    """A wheelhouse of hafen's wheel and one dependency's (their bytes stand for a wheel's)."""
    directory = tmp_path / name
    directory.mkdir()
    (directory / f"hafen-{version}-py3-none-any.whl").write_bytes(b"hafen " + version.encode())
    (directory / "paho_mqtt-2.1.0-py3-none-any.whl").write_bytes(b"paho" * 1000)
    return directory


def test_a_release_signed_by_the_release_key_opens_and_its_files_verify(tmp_path):
    wheels = wheelhouse(tmp_path)
    manifest = manifest_for(wheels, "1.5.0", NOW)
    sealed = seal_manifest(manifest, RELEASE_KEY)
    opened = open_manifest(sealed, TRUSTED)
    assert opened == manifest
    paho = next(f for f in opened.files if f.name.startswith("paho"))
    assert paho.size == 4000 and paho.sha256 == hashlib.sha256(b"paho" * 1000).hexdigest()
    verify_files(opened, wheels)
    require_upgrade(opened, "1.4.2")


def test_a_manifest_signed_by_another_key_or_not_a_release_is_refused(tmp_path):
    manifest = manifest_for(wheelhouse(tmp_path), "1.5.0", NOW)
    with pytest.raises(ReleaseRefused, match="not signed by a release key"):
        open_manifest(seal_manifest(manifest, LIST_KEY), TRUSTED)
    as_list = seal(
        RELEASE_KEY, {"type": "acl", "version": "1.5.0"}, manifest.model_dump_json().encode()
    )
    with pytest.raises(ReleaseRefused, match="not a release manifest: 'acl'"):
        open_manifest(as_list, TRUSTED)
    other = seal(
        RELEASE_KEY, {"type": "release", "version": "9.9.9"}, manifest.model_dump_json().encode()
    )
    with pytest.raises(ReleaseRefused, match="different versions"):
        open_manifest(other, TRUSTED)
    with pytest.raises(ReleaseRefused, match="bytes is over"):
        open_manifest(b"x" * (MAX_MANIFEST_BYTES + 1), TRUSTED)
    body = json.loads(manifest.model_dump_json()) | {
        "files": [{"name": "../../bin/sh", "size": 1, "sha256": "0" * 64}]
    }
    hostile = seal(RELEASE_KEY, {"type": "release", "version": "1.5.0"}, json.dumps(body).encode())
    with pytest.raises(ReleaseRefused, match="is not a wheel's file name"):
        open_manifest(hostile, TRUSTED)


def test_a_tampered_missing_or_extra_file_is_refused_by_name(tmp_path):
    wheels = wheelhouse(tmp_path)
    manifest = manifest_for(wheels, "1.5.0", NOW)
    paho = wheels / "paho_mqtt-2.1.0-py3-none-any.whl"
    paho.write_bytes(b"paha" + b"paho" * 999)  # one byte off, the same size
    with pytest.raises(
        ReleaseRefused, match=re.escape("paho_mqtt-2.1.0-py3-none-any.whl: its SHA-256")
    ):
        verify_files(manifest, wheels)
    paho.write_bytes(b"paho" * 1001)
    with pytest.raises(ReleaseRefused, match="4004 bytes, not 4000"):
        verify_files(manifest, wheels)
    paho.unlink()
    with pytest.raises(
        ReleaseRefused, match=re.escape("paho_mqtt-2.1.0-py3-none-any.whl: missing")
    ):
        verify_files(manifest, wheels)
    paho.write_bytes(b"paho" * 1000)
    (wheels / "evil-1.0-py3-none-any.whl").write_bytes(b"import os")
    with pytest.raises(
        ReleaseRefused, match=re.escape("evil-1.0-py3-none-any.whl: not in the manifest")
    ):
        verify_files(manifest, wheels)


def test_versions_only_go_up_unless_a_signed_rollback_names_the_version_it_replaces(tmp_path):
    manifest = manifest_for(wheelhouse(tmp_path), "1.5.0", NOW)
    for running in ("1.5.0", "1.5.1", "2.0.0"):
        with pytest.raises(ReleaseRefused, match="is not newer than"):
            require_upgrade(manifest, running)
    require_upgrade(manifest, "1.5.0rc1")  # PEP 440: a release candidate comes before
    back = manifest_for(wheelhouse(tmp_path, "1.4.2", "old"), "1.4.2", NOW, rollback_from="1.5.0")
    require_upgrade(back, "1.5.0")
    with pytest.raises(
        ReleaseRefused, match=re.escape("a rollback from 1.5.0 does not apply to 1.5.1")
    ):
        require_upgrade(back, "1.5.1")


def test_a_wheelhouse_that_cannot_be_a_release_is_refused_at_build(tmp_path):
    wheels = wheelhouse(tmp_path)
    with pytest.raises(ReleaseRefused, match=re.escape("no wheel of hafen 1.6.0")):
        manifest_for(wheels, "1.6.0", NOW)
    with pytest.raises(ReleaseRefused, match="is not a version"):
        manifest_for(wheels, "latest", NOW)
    with pytest.raises(ReleaseRefused, match="older version than it rolls back from"):
        manifest_for(wheels, "1.5.0", NOW, rollback_from="1.4.0")
    (wheels / "README.txt").write_text("notes")
    with pytest.raises(ReleaseRefused, match="is not a wheel's file name"):
        manifest_for(wheels, "1.5.0", NOW)
    (wheels / "README.txt").unlink()
    (wheels / "sub").mkdir()
    with pytest.raises(ReleaseRefused, match="sub: only plain wheel files"):
        manifest_for(wheels, "1.5.0", NOW)
    with pytest.raises(ReleaseRefused, match="not a directory"):
        manifest_for(tmp_path / "nowhere", "1.5.0", NOW)


def test_a_manifest_names_each_file_once_and_stays_within_its_bounds():
    one = {"name": "hafen-1.5.0-py3-none-any.whl", "size": 1, "sha256": "a" * 64}
    base = {"version": "1.5.0", "created_at": NOW}
    with pytest.raises(ValueError, match="named twice"):
        Manifest.model_validate(base | {"files": [one, one]})
    with pytest.raises(ValueError, match="less than or equal to 209715200"):
        Manifest.model_validate(base | {"files": [one | {"size": 200 * 1024 * 1024 + 1}]})
    many = [one | {"name": f"dep{i}-1.0-py3-none-any.whl"} for i in range(300)]
    with pytest.raises(ValueError, match="at most 300 items"):
        Manifest.model_validate(base | {"files": [one, *many]})
    big = [
        one | {"name": f"dep{i}-1.0-py3-none-any.whl", "size": 150 * 1024 * 1024} for i in range(7)
    ]
    with pytest.raises(ValueError, match="add up to more than"):
        Manifest.model_validate(base | {"files": [one, *big]})
