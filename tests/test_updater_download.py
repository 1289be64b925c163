"""The door's downloader (edge/updater/download.py, issue 17) against the real hub on
uvicorn, over HTTP on loopback and over HTTPS with the hub's certificate from the network's
CA: a release arrives byte for byte and is fetched once; what does not match its manifest
(a tampered file at the hub, an answer longer than it says) is refused and leaves nothing;
every failure is one DownloadFailed with the reason."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from edge.updater.download import DownloadFailed, ReleaseSource
from hafen.protocol import release_file_path, release_manifest_path
from hafen.releases import ReleaseFile, open_manifest, verify_files
from hub import db
from sim.broker import free_port
from tests.support.hub import migrated_sqlite
from tests.support.releases import RELEASE_KEY, Door, ReleaseHub

VERSION = "1.5.0"


@pytest.fixture
def hub(tmp_path) -> Iterator[ReleaseHub]:
    engine = db.connect(migrated_sqlite(tmp_path / "hub.db"))
    yield ReleaseHub(tmp_path / "hub", engine)
    engine.dispose()


@pytest.fixture
def target(tmp_path):
    """The door's download directory."""
    directory = tmp_path / "download"
    directory.mkdir()
    return directory


def source(url: str, door: Door, ca_file=None, timeout: float = 10.0) -> ReleaseSource:
    return ReleaseSource(url, ca_file, door.key_file, door.cert_file, timeout)


def test_a_release_arrives_byte_for_byte_and_a_file_in_place_is_not_fetched_again(hub, target):
    door = hub.door("front-door")
    hub.add_release(VERSION)
    with hub.served() as at:
        releases = source(at.url + "/", door)
        manifest = open_manifest(releases.manifest(VERSION), [RELEASE_KEY.public_key()])
        for release_file in manifest.files:
            got = releases.fetch(VERSION, release_file, target)
            assert got == target / release_file.name
            assert got.read_bytes() == hub.kept(VERSION, release_file.name).read_bytes()
        verify_files(manifest, target)  # exactly the manifest's files, nothing beside them
        kept = {f.name: (target / f.name).stat() for f in manifest.files}
        for release_file in manifest.files:
            releases.fetch(VERSION, release_file, target)
        for release_file in manifest.files:
            assert at.requests.to(release_file_path(VERSION, release_file.name)) == 1
            again = (target / release_file.name).stat()
            assert (again.st_ino, again.st_mtime_ns) == (
                kept[release_file.name].st_ino,
                kept[release_file.name].st_mtime_ns,
            )
        # A file cut short by a power cut, and a .part left beside it, are replaced.
        first = manifest.files[0]
        (target / first.name).write_bytes(b"cut short")
        (target / f"{first.name}.part").write_bytes(b"half")
        releases.fetch(VERSION, first, target)
        assert at.requests.to(release_file_path(VERSION, first.name)) == 2
        verify_files(manifest, target)


def test_over_https_the_hub_is_trusted_only_by_the_ca_given(hub, target):
    door = hub.door("front-door")
    hub.add_release(VERSION)
    with hub.served(https=True) as at:
        assert at.url.startswith("https://localhost:")
        trusted = source(at.url, door, hub.ca.ca_cert)
        manifest = open_manifest(trusted.manifest(VERSION), [RELEASE_KEY.public_key()])
        trusted.fetch(VERSION, manifest.files[0], target)
        assert (target / manifest.files[0].name).read_bytes() == hub.kept(
            VERSION, manifest.files[0].name
        ).read_bytes()
        with pytest.raises(DownloadFailed, match="does not trust the hub's certificate"):
            source(at.url, door).manifest(VERSION)  # the system's CAs do not know it
        plain = at.url.replace("https://", "http://")
        with pytest.raises(DownloadFailed, match="cannot reach the hub"):
            source(plain, door).manifest(VERSION)  # plain HTTP to a TLS port
    assert at.requests.to(release_manifest_path(VERSION)) == 1


def test_a_tampered_or_oversized_file_is_refused_and_leaves_nothing(hub, target):
    door = hub.door("front-door")
    manifest = hub.add_release(VERSION)
    wheel, other = manifest.files
    with hub.served() as at:
        releases = source(at.url, door)
        kept = hub.kept(VERSION, wheel.name)
        data = bytearray(kept.read_bytes())
        data[len(data) // 2] ^= 0xFF  # the same size: only the hash can tell
        kept.write_bytes(bytes(data))
        with pytest.raises(DownloadFailed, match="SHA-256 is not the manifest's"):
            releases.fetch(VERSION, wheel, target)
        # The hub sends more than the door was told to expect: cut off before it is read.
        smaller = ReleaseFile(name=other.name, size=other.size - 1, sha256=other.sha256)
        with pytest.raises(DownloadFailed, match=r"over \d+"):
            releases.fetch(VERSION, smaller, target)
    assert list(target.iterdir()) == []


class _Endless(http.server.BaseHTTPRequestHandler):
    """A server that answers every GET with bytes that never end, and no length."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"\x00" * 65536)
        except OSError:
            return

    def log_message(self, *args) -> None:
        pass


def test_an_answer_without_a_length_is_read_no_further_than_the_size_and_a_byte(hub, target):
    door = hub.door("front-door")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        releases = source(f"http://127.0.0.1:{server.server_address[1]}", door)
        wanted = ReleaseFile(name="hafen-1.5.0-py3-none-any.whl", size=100_000, sha256="0" * 64)
        started = time.monotonic()
        with pytest.raises(DownloadFailed, match="more than the manifest's 100000 bytes"):
            releases.fetch(VERSION, wanted, target)
        with pytest.raises(DownloadFailed, match="over 262144"):
            releases.manifest(VERSION)
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()
        server.server_close()
    assert list(target.iterdir()) == []


def test_each_failure_is_a_download_failed_that_says_why(hub, target):
    door, lost = hub.door("front-door"), hub.door("lost-door")
    manifest = hub.add_release(VERSION)
    hub.revoke_device(lost)
    with pytest.raises(DownloadFailed, match="https:// only"):
        source("http://hub.example.org", door)
    with pytest.raises(DownloadFailed, match="cannot reach the hub"):
        source(f"http://127.0.0.1:{free_port()}", door).manifest(VERSION)
    with pytest.raises(DownloadFailed, match="no CA to trust the hub by"):
        source("https://hub.example.org", door, target / "missing.pem")
    with hub.served() as at:
        with pytest.raises(DownloadFailed, match=r"device is revoked.*\(HTTP 403\)"):
            source(at.url, lost).manifest(VERSION)
        with pytest.raises(DownloadFailed, match=r"no rollout ordered release '9\.9\.9'.*403"):
            source(at.url, door).manifest("9.9.9")
        with pytest.raises(DownloadFailed, match="not a release's version"):
            source(at.url, door).manifest("../1.5.0")
        # A renewal caught half-way: the key on disk is not the certificate's.
        os.replace(lost.key_file, door.key_file)
        with pytest.raises(DownloadFailed, match="is not the key of"):
            source(at.url, door).fetch(VERSION, manifest.files[0], target)
    assert not any(target.glob("*.whl*"))


def test_an_expired_certificate_is_refused_with_the_hubs_reason(hub, tmp_path):
    old = hub.door("old-door", now=datetime.now(UTC) - timedelta(days=100))
    hub.add_release(VERSION)
    with hub.served() as at, pytest.raises(DownloadFailed, match=r"not valid now.*HTTP 401"):
        source(at.url, old).manifest(VERSION)



_DRIP_STOP = threading.Event()


class _Drip(http.server.BaseHTTPRequestHandler):
    """A hub (or a proxy before it) that says 100,000 bytes and sends one every 0.2 s."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            while not _DRIP_STOP.wait(0.2):
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            return

    def log_message(self, *args) -> None:
        pass


def test_a_hub_that_drips_bytes_does_not_hold_the_download_for_ever(hub, target):
    """A byte every 0.2 s is never a receive timeout apart: the download's deadline (its
    timeout and 8 KiB/s) ends it, after every receive, not after a whole chunk."""
    door = hub.door("front-door")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    outcome: list[BaseException | None] = []
    releases = source(f"http://127.0.0.1:{server.server_address[1]}", door, timeout=1.0)
    wanted = ReleaseFile(name="hafen-1.5.0-py3-none-any.whl", size=100_000, sha256="0" * 64)

    def fetch() -> None:
        try:
            releases.fetch(VERSION, wanted, target)
            outcome.append(None)
        except BaseException as exc:  # the test reports what it was
            outcome.append(exc)

    fetching = threading.Thread(target=fetch, daemon=True)
    _DRIP_STOP.clear()
    try:
        fetching.start()
        fetching.join(25)  # the deadline: 1 s + 100,000 B / 8 KiB/s = 13.2 s
        assert outcome, "the download of a dripping file was still going after 25 s"
        assert isinstance(outcome[0], DownloadFailed) and "too slow" in str(outcome[0])
    finally:
        _DRIP_STOP.set()
        fetching.join(5)
        server.shutdown()
        server.server_close()
