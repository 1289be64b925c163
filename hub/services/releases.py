"""The edge software releases the hub holds (issue 17): adding one from a wheelhouse, making
a signed rollback from one, and listing them.

Adding a release records its row first, in the transaction that then copies the wheels into
``<directory>/.partial-<version>``, checks every copied file against the manifest (a
wheelhouse changed while it was copied is refused), and renames the copy to
``<directory>/<version>``; the commit comes last. Two adds of one version at once meet at
the row's primary key before either touches the directory, and a cut-off add leaves at most a
partial directory, which the next add of that version replaces. Releases are never changed:
a fixed build is a new version.

A door refuses a version older than the one it runs (hafen.releases.require_upgrade) unless
the manifest is a rollback from exactly that version, signed like any release. Such a
rollback is made from a release the hub holds: its manifest (same files, same hashes: the
wheels under ``<directory>/<version>`` serve both) signed again with ``rollback_from``, kept
beside the release, once per version rolled back from. Making it again changes nothing and
answers with the one held: whoever retries during an incident gets the same rollback, not
an error. A rollback rollout (hub.services.rollouts) needs one for every version its doors
run above the release; the hub serves it to those doors (hub.services.release_downloads).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from hafen.payloads import VersionName
from hafen.releases import (
    Manifest,
    ReleaseRefused,
    manifest_for,
    seal_manifest,
    verify_files,
)
from hafen.signing import BadSignedMessage, read_own_sealed
from hub import db
from hub.services.errors import Conflict, Invalid, NotFound, Unavailable

PARTIAL = ".partial-"


class Release(BaseModel):
    """A release as the hub lists it."""

    version: str
    files: int
    bytes: int
    created_at: datetime
    #: The versions a signed rollback to this one is held from, newest first.
    rollbacks: list[str] = []


class Rollback(BaseModel):
    """A signed rollback to ``version`` for the doors that run ``rollback_from``."""

    version: str
    rollback_from: str
    created_by: str
    created_at: datetime


def add_release(
    engine: Engine,
    directory: Path,
    wheelhouse: Path,
    version: str,
    release_key: Ed25519PrivateKey,
    now: datetime | None = None,
) -> Release:
    """Sign the manifest of ``wheelhouse`` as ``version`` and keep its wheels under
    ``directory`` (see the module). Invalid: the wheelhouse cannot be a release; Conflict:
    the version exists."""
    now = now or datetime.now(UTC)
    try:
        manifest = manifest_for(wheelhouse, version, now)
    except ReleaseRefused as exc:
        raise Invalid(str(exc)) from None
    row = {
        "version": manifest.version,
        "manifest": seal_manifest(manifest, release_key),
        "files": len(manifest.files),
        "bytes": sum(f.size for f in manifest.files),
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


def add_rollback(
    engine: Engine,
    directory: Path,
    version: str,
    rollback_from: str,
    release_key: Ed25519PrivateKey,
    created_by: str,
    now: datetime | None = None,
) -> tuple[Rollback, bool]:
    """Sign release ``version``'s manifest again as the rollback from ``rollback_from`` and
    keep it beside the release (see the module); the rollback, and whether it was made now
    (False: it was held already, and nothing changed). NotFound: no release ``version``;
    Invalid: ``rollback_from`` is not a newer version, or the release's wheels at the hub
    are not its manifest's (a rollback of a damaged copy would fail on every door)."""
    now = now or datetime.now(UTC)
    back = _older_than(version, rollback_from)
    with engine.connect() as conn:
        held = _held_rollback(conn, version, rollback_from)
        if held is not None:
            return held, False
        release = _manifest_of(conn, version)
    try:
        verify_files(release, directory / release.version)
    except (ReleaseRefused, OSError) as exc:
        raise Invalid(
            f"release {version}'s wheels in {directory / version} are not its manifest's"
            f" ({exc}); a rollback to it would fail on every door"
        ) from None
    values = release.model_dump() | {"rollback_from": back, "created_at": now}
    manifest = Manifest.model_validate(values)
    row = {
        "version": release.version,
        "rollback_from": back,
        "manifest": seal_manifest(manifest, release_key),
        "created_by": created_by[:64],
        "created_at": now,
    }
    try:
        with engine.begin() as conn:
            conn.execute(insert(db.release_rollbacks).values(row))
    except IntegrityError:
        # Made at the same moment by someone else: theirs is the one held.
        with engine.connect() as conn:
            held = _held_rollback(conn, version, back)
        if held is None:
            raise
        return held, False
    return Rollback.model_validate(row), True


def rollbacks_held(conn: Connection, version: str) -> set[str]:
    """The versions a rollback to ``version`` is held from."""
    b = db.release_rollbacks.c
    return set(conn.scalars(select(b.rollback_from).where(b.version == version)))


def list_releases(engine: Engine) -> list[Release]:
    """Every release the hub holds, newest first by when it was added, each with the
    rollbacks held to it."""
    r, b = db.releases.c, db.release_rollbacks.c
    query = select(r.version, r.files, r.bytes, r.created_at).order_by(
        r.created_at.desc(), r.version.desc()
    )
    with engine.connect() as conn:
        backs: dict[str, list[str]] = {}
        for version, rollback_from in conn.execute(select(b.version, b.rollback_from)):
            backs.setdefault(version, []).append(rollback_from)
        return [
            _release(row._mapping, sorted(backs.get(row.version, []), key=_order, reverse=True))
            for row in conn.execute(query)
        ]


def goes_back(running: str | None, version: str) -> bool:
    """Whether a door on ``running`` would go back to an older ``version``: a rollback. A
    door whose version is not known, or is no PEP 440 version, cannot be told: it is not."""
    if running is None:
        return False
    try:
        return Version(running) > Version(version)
    except InvalidVersion:
        return False


def _older_than(version: str, rollback_from: str) -> str:
    """``rollback_from`` as a door would report it, checked to be newer than ``version``;
    Invalid saying what would work otherwise."""
    try:
        TypeAdapter(VersionName).validate_python(rollback_from)
    except ValidationError:
        raise Invalid(f"from: {rollback_from[:80]!r} is not a version a door could run") from None
    try:
        newer = Version(rollback_from) > Version(version)
    except InvalidVersion:
        raise Invalid(
            f"from: {rollback_from[:80]!r} is not a version (PEP 440, such as 1.4.0)"
        ) from None
    if not newer:
        raise Invalid(
            f"from: a rollback goes back from a newer version, and {rollback_from} is not"
            f" newer than {version}; to move doors up to {version}, roll it out as it is"
        )
    return rollback_from


def _held_rollback(conn: Connection, version: str, rollback_from: str) -> Rollback | None:
    b = db.release_rollbacks.c
    row = conn.execute(
        select(b.version, b.rollback_from, b.created_by, b.created_at).where(
            b.version == version, b.rollback_from == rollback_from
        )
    ).one_or_none()
    if row is None:
        return None
    values = dict(row._mapping)
    values["created_at"] = db.aware(values["created_at"])
    return Rollback.model_validate(values)


def _manifest_of(conn: Connection, version: str) -> Manifest:
    """The manifest of a release the hub holds, as it signed it; NotFound otherwise."""
    r = db.releases.c
    sealed = conn.scalar(select(r.manifest).where(r.version == version))
    if sealed is None:
        raise NotFound(
            f"the hub holds no release {version[:64]!r}; a rollback is made from a release"
            " it holds (hafen hub release list)"
        )
    try:
        return Manifest.model_validate_json(read_own_sealed(sealed).body)
    except (BadSignedMessage, ValidationError):
        raise Unavailable(f"release {version}'s manifest in the store does not read") from None


def _order(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def _release(row: Mapping[Any, Any], rollbacks: list[str] | None = None) -> Release:
    values = {name: row[name] for name in Release.model_fields if name != "rollbacks"}
    values["created_at"] = db.aware(values["created_at"])
    values["rollbacks"] = rollbacks or []
    return Release.model_validate(values)
