"""A release of the edge software (issue 17): a wheelhouse and the signed manifest that says
what is in it.

A release is built off the Pi (``pip wheel`` of ``hafen`` and its locked dependencies) and
added at the hub, which signs its manifest with the **release key**, kept apart from the key
that signs access lists: a stolen list key opens doors for a day, a stolen release key would
run code on every door. A door installs a release only if

- the manifest is sealed (hafen.signing) by a trusted release key, its header says it is a
  release, and the header's version is the body's;
- its version is newer than the one the door runs: versions only go up, so an old manifest
  replayed cannot downgrade a door to a version with a known hole. The one exception is a
  rollback, which names the version it rolls back from (``rollback_from``) and is signed
  like any release: it applies only to a door running exactly that version;
- every file it downloaded is named in the manifest with that size and SHA-256, and nothing
  else lies beside them (pip would see any extra wheel).

Everything that crosses from the network is bounded: the manifest's size, its number of
files, each file's size and the total; file names are plain wheel names, never paths.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from packaging.version import InvalidVersion, Version
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from hafen.signing import BadSignedMessage, open_sealed, seal

#: The header's ``type`` of a release manifest (an access list's is ``acl``).
MANIFEST_TYPE = "release"
#: Bounds of what a manifest may name (a wheelhouse of hafen's dependencies has a few dozen).
MAX_FILES = 300
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_MANIFEST_BYTES = 256 * 1024
#: A wheel's file name: PEP 427's parts, no directory, no dot-dot.
WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+-]+-[A-Za-z0-9_.+!-]+(-[A-Za-z0-9_.]+){2,3}\.whl")
_CHUNK = 1024 * 1024


class ReleaseRefused(ValueError):
    """A release, its manifest or its files are not to be installed; the message says why."""


def _version(text: str) -> str:
    try:
        Version(text)
    except InvalidVersion:
        raise ValueError(f"{text!r} is not a version (PEP 440, such as 1.4.0)") from None
    return text


def _wheel_name(name: str) -> str:
    if not WHEEL_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"{name!r} is not a wheel's file name")
    return name


#: At most 40 characters: a door says the version it runs in its state, which takes no more.
VersionText = Annotated[str, Field(max_length=40), AfterValidator(_version)]


class ReleaseFile(BaseModel):
    """One wheel of the release, as the door must find it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(max_length=200), AfterValidator(_wheel_name)]
    size: Annotated[int, Field(ge=1, le=MAX_FILE_BYTES)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Manifest(BaseModel):
    """What a release holds and what it needs; sealed by the release key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: VersionText
    files: Annotated[list[ReleaseFile], Field(min_length=1, max_length=MAX_FILES)]
    #: The oldest door config schema this version reads (a door with an older one is skipped).
    min_config_version: Annotated[int, Field(ge=1, le=1000)] = 1
    created_at: datetime
    #: A rollback: the version it replaces, the only one it may be installed over.
    rollback_from: VersionText | None = None

    @model_validator(mode="after")
    def _whole(self) -> Manifest:
        names = [f.name for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError("a file is named twice")
        if sum(f.size for f in self.files) > MAX_TOTAL_BYTES:
            raise ValueError(f"the files add up to more than {MAX_TOTAL_BYTES} bytes")
        own = f"hafen-{self.version}-"
        if not any(name.startswith(own) for name in names):
            raise ValueError(f"no wheel of hafen {self.version} among the files")
        if self.rollback_from is not None and Version(self.rollback_from) <= Version(self.version):
            raise ValueError("a rollback goes to an older version than it rolls back from")
        return self


def file_digest(path: Path) -> tuple[int, str]:
    """The size and SHA-256 of a file, read in chunks (wheels can be large)."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def manifest_for(
    wheelhouse: Path,
    version: str,
    created_at: datetime,
    min_config_version: int = 1,
    rollback_from: str | None = None,
) -> Manifest:
    """The manifest of the wheels in ``wheelhouse`` (every file there must be a wheel: what
    lies there is what the door will install). Raises ReleaseRefused saying what is wrong."""
    if not wheelhouse.is_dir():
        raise ReleaseRefused(f"{wheelhouse}: not a directory")
    files = []
    for path in sorted(wheelhouse.iterdir()):
        if path.is_symlink() or not path.is_file():
            raise ReleaseRefused(f"{path.name}: only plain wheel files belong in a wheelhouse")
        size, sha256 = file_digest(path)
        files.append({"name": path.name, "size": size, "sha256": sha256})
    try:
        return Manifest.model_validate(
            {
                "version": version,
                "files": files,
                "min_config_version": min_config_version,
                "created_at": created_at,
                "rollback_from": rollback_from,
            }
        )
    except ValidationError as exc:
        raise ReleaseRefused(_first_error(exc)) from None


def seal_manifest(manifest: Manifest, release_key: Ed25519PrivateKey) -> bytes:
    """The signed manifest, as the hub serves it to doors."""
    header = {"type": MANIFEST_TYPE, "version": manifest.version}
    return seal(release_key, header, manifest.model_dump_json().encode())


def open_manifest(data: bytes, trusted: list[Ed25519PublicKey]) -> Manifest:
    """Check a signed manifest against the trusted release keys and return it; raises
    ReleaseRefused for anything else (another key, another message, a body that disagrees
    with its header, too large)."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ReleaseRefused(f"a manifest of {len(data)} bytes is over {MAX_MANIFEST_BYTES}")
    try:
        message = open_sealed(data, trusted)
    except BadSignedMessage as exc:
        raise ReleaseRefused(f"the manifest is not signed by a release key: {exc}") from None
    if message.header.get("type") != MANIFEST_TYPE:
        raise ReleaseRefused(f"not a release manifest: {message.header.get('type')!r}")
    try:
        manifest = Manifest.model_validate_json(message.body)
    except ValidationError as exc:
        raise ReleaseRefused(f"the manifest does not read: {_first_error(exc)}") from None
    if message.header.get("version") != manifest.version:
        raise ReleaseRefused("the manifest's header and body name different versions")
    return manifest


def require_upgrade(manifest: Manifest, running: str) -> None:
    """Refuse a release that is not newer than ``running``, unless it is the rollback from
    exactly that version (see the module)."""
    new, now = Version(manifest.version), Version(running)
    if manifest.rollback_from is not None:
        if Version(manifest.rollback_from) != now:
            raise ReleaseRefused(
                f"a rollback from {manifest.rollback_from} does not apply to {running}"
            )
        return
    if new <= now:
        raise ReleaseRefused(
            f"version {manifest.version} is not newer than {running}, which this door runs"
        )


def verify_files(manifest: Manifest, directory: Path) -> None:
    """Check that ``directory`` holds exactly the manifest's files with their sizes and
    hashes; raises ReleaseRefused naming the first that does not."""
    expected = {f.name: f for f in manifest.files}
    present = {path.name: path for path in directory.iterdir()}
    extra = sorted(set(present) - set(expected))
    if extra:
        raise ReleaseRefused(f"{extra[0]}: not in the manifest")
    for name, wanted in expected.items():
        path = present.get(name)
        if path is None or path.is_symlink() or not path.is_file():
            raise ReleaseRefused(f"{name}: missing")
        if path.stat().st_size != wanted.size:
            raise ReleaseRefused(f"{name}: {path.stat().st_size} bytes, not {wanted.size}")
        if file_digest(path)[1] != wanted.sha256:
            raise ReleaseRefused(f"{name}: its SHA-256 is not the manifest's")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
