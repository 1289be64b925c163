"""The edge software releases the hub holds (issue 17): adding one from a wheelhouse, and
listing them.

Adding a release records its row first, in the transaction that then copies the wheels into
``<directory>/.partial-<version>``, checks every copied file against the manifest (a
wheelhouse changed while it was copied is refused), and renames the copy to
``<directory>/<version>``; the commit comes last. Two adds of one version at once meet at
the row's primary key before either touches the directory, and a cut-off add leaves at most a
partial directory, which the next add of that version replaces. Releases are never changed:
a fixed build is a new version.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from hafen.releases import ReleaseRefused, manifest_for, seal_manifest, verify_files
from hub import db
from hub.services.errors import Conflict, Invalid

PARTIAL = ".partial-"


class Release(BaseModel):
    """A release as the hub lists it."""

    version: str
    files: int
    bytes: int
    rollback_from: str | None
    created_at: datetime


def add_release(
    engine: Engine,
    directory: Path,
    wheelhouse: Path,
    version: str,
    release_key: Ed25519PrivateKey,
    rollback_from: str | None = None,
    now: datetime | None = None,
) -> Release:
    """Sign the manifest of ``wheelhouse`` as ``version`` and keep its wheels under
    ``directory`` (see the module). Invalid: the wheelhouse cannot be a release; Conflict:
    the version exists."""
    now = now or datetime.now(UTC)
    try:
        manifest = manifest_for(wheelhouse, version, now, rollback_from=rollback_from)
    except ReleaseRefused as exc:
        raise Invalid(str(exc)) from None
    row = {
        "version": manifest.version,
        "manifest": seal_manifest(manifest, release_key),
        "files": len(manifest.files),
        "bytes": sum(f.size for f in manifest.files),
        "rollback_from": manifest.rollback_from,
        "created_at": now,
    }
    try:
        with engine.begin() as conn:
            conn.execute(insert(db.releases).values(row))
            partial = directory / f"{PARTIAL}{manifest.version}"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            for release_file in manifest.files:
                shutil.copyfile(wheelhouse / release_file.name, partial / release_file.name)
            try:
                verify_files(manifest, partial)
            except ReleaseRefused as exc:
                shutil.rmtree(partial, ignore_errors=True)
                raise Invalid(f"the wheelhouse changed while it was copied: {exc}") from None
            final = directory / manifest.version
            shutil.rmtree(final, ignore_errors=True)  # a cut-off add's, never a recorded one
            os.replace(partial, final)
    except IntegrityError:
        raise Conflict(
            f"release {manifest.version} exists; a fixed build is a new version"
        ) from None
    return _release(row)


def list_releases(engine: Engine) -> list[Release]:
    """Every release the hub holds, newest first by when it was added."""
    r = db.releases.c
    query = select(r.version, r.files, r.bytes, r.rollback_from, r.created_at).order_by(
        r.created_at.desc(), r.version.desc()
    )
    with engine.connect() as conn:
        return [_release(row._mapping) for row in conn.execute(query)]


def _release(row: Mapping[Any, Any]) -> Release:
    values = {name: row[name] for name in Release.model_fields}
    values["created_at"] = db.aware(values["created_at"])
    return Release.model_validate(values)
