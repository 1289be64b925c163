"""Downloading a release from the hub (issue 17; docs/protocol.md, "Releases over HTTPS").

The door asks the hub, never the internet, for a release's sealed manifest and then for each
wheel it names; each request is signed with the key of the door's certificate
(hafen.device_requests), read from its files at every request, since the agent renews them.
Nothing the hub answers is trusted for more than it is: the manifest is read up to
``MAX_MANIFEST_BYTES`` and checked by the caller against the release keys
(hafen.releases.open_manifest); a file is read up to its size in the manifest plus one byte
(a longer answer is refused there) and kept only with the manifest's size and SHA-256.

Fetching is idempotent and safe against a power cut: a file already in place with the right
size and hash is kept, without asking the hub; any other is streamed into ``NAME.part``
(hashed while written), synced, checked and renamed over ``NAME``, and the directory synced;
a ``.part`` that failed is removed. So after a cut the directory holds complete, checked
files and at most a ``.part``, which the next fetch replaces.

The updater does not import the door agent (edge.agent): the hub URL's rule (https, plain
http to this machine only) and whom to trust for the hub's certificate are those of
enrolment (edge.agent.enrolment), written again here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from http.client import HTTPException, HTTPResponse
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hafen.config import is_loopback
from hafen.device_requests import signed_request_headers
from hafen.files import sync_directory
from hafen.protocol import release_file_path, release_manifest_path
from hafen.releases import MAX_MANIFEST_BYTES, ReleaseFile, file_digest

#: A download slower than this (after the first ``timeout``) is given up: a hub that drips
#: bytes must not hold the updater for ever.
MIN_BYTES_PER_SECOND = 8 * 1024
#: A version as it may appear in a path: PEP 440's characters, no slash, no dot-dot.
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}")
_CHUNK = 64 * 1024
#: The most of a refusal's body read for its detail.
_DETAIL_BYTES = 4096


class DownloadFailed(Exception):
    """A release or one of its files could not be downloaded; the message says why."""


class NotTheRelease(DownloadFailed):
    """What arrived is not what the manifest signs (another hash, more bytes): trying again
    will not mend it, and the release is refused."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the refusal it is: the door asks the hub it was given."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class ReleaseSource:
    """The hub's releases, as this door may download them.

    ``base_url``: the hub (``https://``; plain ``http://`` only to this machine);
    ``ca_file``: the CA to trust the hub's certificate by (PEM), None for the system's;
    ``key_file``/``cert_file``: the door's P-256 key and its certificate from the network's
    CA (PEM), which sign each request; ``timeout``: seconds for connecting and for each
    read."""

    def __init__(
        self,
        base_url: str,
        ca_file: Path | None,
        key_file: Path,
        cert_file: Path,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = _hub_url(base_url)
        self.key_file, self.cert_file, self.timeout = key_file, cert_file, timeout
        self._opener = urllib.request.build_opener(
            _NoRedirects(), urllib.request.HTTPSHandler(context=_hub_context(ca_file))
        )

    def manifest(self, version: str) -> bytes:
        """The release's manifest as the hub holds it (sealed; not yet checked: see
        hafen.releases.open_manifest), at most MAX_MANIFEST_BYTES."""
        with self._get(release_manifest_path(_checked_version(version)), "the manifest") as answer:
            _refuse_longer(answer, MAX_MANIFEST_BYTES, "the manifest")
            deadline = time.monotonic() + self.timeout + MAX_MANIFEST_BYTES / MIN_BYTES_PER_SECOND
            body = b""
            while len(body) <= MAX_MANIFEST_BYTES:
                chunk = _read(answer, MAX_MANIFEST_BYTES + 1 - len(body), "the manifest")
                if not chunk:
                    break
                body += chunk
                if time.monotonic() > deadline:
                    raise DownloadFailed("the manifest: the download is too slow; try again")
        if len(body) > MAX_MANIFEST_BYTES:
            raise DownloadFailed(f"the manifest is over {MAX_MANIFEST_BYTES} bytes")
        return body

    def fetch(self, version: str, release_file: ReleaseFile, directory: Path) -> Path:
        """``directory/NAME`` with the manifest's size and SHA-256: kept if it is there so
        already, else downloaded (see the module). DownloadFailed says why not; no
        ``.part`` is left then."""
        name = release_file.name
        if Path(name).name != name or name in (".", ".."):  # ReleaseFile allows none of these
            raise DownloadFailed(f"{name!r} is not a file name")
        final, part = directory / name, directory / f"{name}.part"
        if _is_in_place(final, release_file):
            return final
        path = release_file_path(_checked_version(version), name)
        try:
            with self._get(path, name) as answer:
                _refuse_longer(answer, release_file.size, name)
                size, sha256 = self._stream(answer, part, release_file)
            if size != release_file.size:
                raise DownloadFailed(f"{name}: {size} bytes arrived, not {release_file.size}")
            if sha256 != release_file.sha256:
                raise NotTheRelease(f"{name}: its SHA-256 is not the manifest's")
            try:
                os.replace(part, final)
                sync_directory(directory)
            except OSError as exc:
                raise DownloadFailed(f"cannot put {name} in place: {exc}") from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return final

    def _stream(self, answer: HTTPResponse, part: Path, wanted: ReleaseFile) -> tuple[int, str]:
        """Write the answer into ``part``, at most the wanted size and one byte more (which
        refuses it), hashing it; synced. Returns the size and SHA-256 written."""
        digest, got = hashlib.sha256(), 0
        deadline = time.monotonic() + self.timeout + wanted.size / MIN_BYTES_PER_SECOND
        try:
            part.unlink(missing_ok=True)
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise DownloadFailed(f"cannot write {part}: {exc}") from None
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = _read(answer, min(_CHUNK, wanted.size + 1 - got), wanted.name)
                if not chunk:
                    break
                got += len(chunk)
                if got > wanted.size:
                    raise NotTheRelease(
                        f"{wanted.name}: the hub sends more than the manifest's {wanted.size} bytes"
                    )
                digest.update(chunk)
                _write(out, chunk, part)
                if time.monotonic() > deadline:
                    raise DownloadFailed(f"{wanted.name}: the download is too slow; try again")
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise DownloadFailed(f"cannot write {part}: {exc}") from None
        return got, digest.hexdigest()

    def _get(self, path: str, what: str) -> HTTPResponse:
        """The hub's 200 answer to a signed GET of ``path``; DownloadFailed otherwise."""
        key, certificate = self._identity()
        headers = signed_request_headers(key, certificate, "GET", path, datetime.now(UTC))
        request = urllib.request.Request(self.base_url + path, headers=headers, method="GET")
        try:
            answer: HTTPResponse = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                raise DownloadFailed(f"the hub refused {what}: {_detail(exc)}") from None
        except (urllib.error.URLError, OSError, HTTPException) as exc:
            raise DownloadFailed(_unreachable(self.base_url, exc)) from None
        if answer.status != 200:
            answer.close()
            raise DownloadFailed(f"the hub answered {what} with HTTP {answer.status}")
        return answer

    def _identity(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """The door's key and certificate, read now (the agent renews them), and checked
        to belong together: a renewal caught half-installed is a failure to try again."""
        try:
            key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
            certificate = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise DownloadFailed(f"cannot read the device's key and certificate: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise DownloadFailed(f"{self.key_file} is not an ECDSA P-256 key")
        if _public(key.public_key()) != _public(certificate.public_key()):
            raise DownloadFailed(
                f"{self.key_file} is not the key of {self.cert_file} (a renewal being"
                " installed?); try again"
            )
        return key, certificate


def _hub_url(text: str) -> str:
    """The hub's base URL: https, or http only to this machine (a test, a hub beside it)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadFailed(f"{text!r} is not the hub's URL (such as https://hub.example.org)")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise DownloadFailed(f"{text!r}: releases come from the hub over https:// only")
    if parts.query or parts.fragment:
        raise DownloadFailed(f"{text!r}: the hub's URL takes no query or fragment")
    return text.strip().rstrip("/")


def _hub_context(ca_file: Path | None) -> ssl.SSLContext:
    """Whom to trust for the hub's certificate: the CAs in ``ca_file``, else the system's."""
    try:
        if ca_file is None:
            return ssl.create_default_context()
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise DownloadFailed(f"{ca_file} is no CA to trust the hub by: {exc}") from None


def _checked_version(version: str) -> str:
    if not _VERSION.fullmatch(version) or ".." in version:
        raise DownloadFailed(f"{version!r} is not a release's version")
    return version


def _is_in_place(path: Path, wanted: ReleaseFile) -> bool:
    """Whether ``path`` is a plain file with the manifest's size and SHA-256 already."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise DownloadFailed(f"cannot look at {path}: {exc}") from None
    if not path.is_file() or path.is_symlink() or found.st_size != wanted.size:
        return False
    try:
        return file_digest(path)[1] == wanted.sha256
    except OSError as exc:
        raise DownloadFailed(f"cannot read {path}: {exc}") from None


def _refuse_longer(answer: HTTPResponse, most: int, what: str) -> None:
    """Refuse an answer that says before its body that it is longer than ``most``."""
    declared = answer.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > most:
        raise NotTheRelease(f"{what}: the hub sends {int(declared)} bytes, over {most}")


def _read(answer: HTTPResponse, size: int, what: str) -> bytes:
    """What has arrived, at most ``size`` bytes: ``read1`` returns as soon as some bytes are
    there, so a hub that drips bytes meets the download's deadline after each receive, not
    after a whole chunk (``read`` waits for all of it, a receive timeout apart each)."""
    try:
        return answer.read1(size)
    except (OSError, HTTPException) as exc:
        raise DownloadFailed(f"{what}: the download broke off: {exc}") from None


def _write(out: IO[bytes], chunk: bytes, part: Path) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        raise DownloadFailed(f"cannot write {part}: {exc}") from None


def _detail(error: urllib.error.HTTPError) -> str:
    """The hub's ``detail`` of a refusal, with its status."""
    try:
        detail = json.loads(error.read(_DETAIL_BYTES)).get("detail")
    except (ValueError, AttributeError, OSError, HTTPException):
        detail = None
    text = detail if isinstance(detail, str) else error.reason
    return f"{text} (HTTP {error.code})"


def _unreachable(url: str, error: BaseException) -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (
            f"this device does not trust the hub's certificate at {url} ({reason.verify_message})"
        )
    if isinstance(reason, ssl.SSLError):
        return f"TLS with the hub at {url} failed: {reason}"
    return f"cannot reach the hub at {url}: {reason}"


def _public(key: Any) -> bytes:
    data: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data
