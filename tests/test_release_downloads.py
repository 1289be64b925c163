"""Doors download releases from the hub (hub/api/device_releases.py, issue 17): only a door
of the network's CA that the hub enrolled and did not revoke, with a fresh signature over
the path it asks for; only files the manifest names, byte for byte; within its rate and a
few files at once. The real application on uvicorn, certificates from a real CA made by
hub.pki; on SQLite and PostgreSQL."""

from __future__ import annotations

import http.client
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from hafen.device_requests import signed_request_headers
from hafen.protocol import UpdateReport, release_file_path, release_manifest_path
from hafen.releases import ReleaseRefused, open_manifest, require_upgrade
from hub import db
from hub.app import create_app
from hub.http.downloads import DownloadLimits
from tests.support.enrolling import served
from tests.support.releases import RELEASE_KEY, Door, ReleaseHub
from tests.support.tls import make_ca
from tests.support.waiting import wait_for

VERSION = "1.5.0"


@pytest.fixture
def hub(tmp_path, engine) -> ReleaseHub:
    return ReleaseHub(tmp_path, engine)


def signed(door: Door, path: str, at: datetime | None = None) -> dict[str, str]:
    return signed_request_headers(door.key, door.certificate, "GET", path, at or datetime.now(UTC))


def get(url: str, door: Door | None, path: str, **options) -> httpx.Response:
    headers = signed(door, path) if door is not None else {}
    return httpx.get(url + path, headers=headers, timeout=10, **options)


def test_an_enrolled_door_downloads_the_manifest_and_its_files_byte_for_byte(hub):
    door = hub.door("front-door")
    manifest = hub.add_release(VERSION)
    with hub.served() as at:
        answer = get(at.url, door, release_manifest_path(VERSION))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["cache-control"] == "no-store"
        with hub.engine.connect() as conn:
            sealed = conn.scalar(select(db.releases.c.manifest))
        assert answer.content == sealed
        for release_file in manifest.files:
            answer = get(at.url, door, release_file_path(VERSION, release_file.name))
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-length"] == str(release_file.size)
            assert answer.content == hub.kept(VERSION, release_file.name).read_bytes()
        assert wait_for(lambda: at.downloads.streaming() == 0, 5)


def test_who_is_not_an_enrolled_door_of_the_network_gets_no_bytes(hub, tmp_path):
    manifest = hub.add_release(VERSION)
    wheel = manifest.files[0].name
    file_path = release_file_path(VERSION, wheel)
    content = hub.kept(VERSION, wheel).read_bytes()
    good = hub.door("front-door")
    strangers = hub.door("stranger", ca=make_ca(tmp_path, "other-ca"))
    expired = hub.door("old-door", now=datetime.now(UTC) - timedelta(days=100))
    unrecorded = hub.door("unrecorded", recorded=False)
    revoked_cert, revoked_device = hub.door("lost-cert"), hub.door("lost-door")
    hub.revoke_certificate(revoked_cert)
    hub.revoke_device(revoked_device)
    hub.order(VERSION)  # for all of them: who they are is what is refused
    stale = signed(good, file_path, datetime.now(UTC) - timedelta(minutes=6))
    for_another_version = signed(good, release_file_path("1.4.0", wheel))
    cases = [
        ("unsigned", {}, 401, "not signed by a device"),
        ("another CA's", signed(strangers, file_path), 401, "not from this network's CA"),
        ("expired", signed(expired, file_path), 401, "not valid now"),
        ("stale", stale, 401, "too far from the hub's clock"),
        ("for another path", for_another_version, 401, "does not verify"),
        ("unrecorded", signed(unrecorded, file_path), 403, "not one this hub gave"),
        ("revoked certificate", signed(revoked_cert, file_path), 403, "certificate is revoked"),
        ("revoked device", signed(revoked_device, file_path), 403, "device is revoked"),
    ]
    with hub.served() as at:
        for case, headers, status, why in cases:
            answer = httpx.get(at.url + file_path, headers=headers, timeout=10)
            assert (answer.status_code, case) == (status, case), answer.text
            assert why in answer.json()["detail"], (case, answer.text)
            assert content[:64] not in answer.content
        # The good door's own request goes through, and still does once the others failed.
        assert get(at.url, good, file_path).content == content


def test_a_door_taken_back_gets_the_signed_rollback_from_the_version_it_ran(hub):
    on_new, on_newer, on_old = hub.door("front-door"), hub.door("back-door"), hub.door("side")
    unordered = hub.door("garage")
    plain = hub.add_release("1.4.0", ordered=False)
    hub.add_release(VERSION, ordered=False)
    back = hub.add_rollback("1.4.0", VERSION)
    # A rollback rollout made when front-door ran 1.5.0 and back-door 1.5.1, which no
    # rollback is held from; side-door goes up to 1.4.0 from 1.3.0.
    hub.order("1.4.0", [on_new], from_version=VERSION)
    hub.order("1.4.0", [on_newer], from_version="1.5.1")
    hub.order("1.4.0", [on_old], from_version="1.3.0")
    path = release_manifest_path("1.4.0")
    keys = [RELEASE_KEY.public_key()]
    with hub.served() as at:
        got = open_manifest(get(at.url, on_new, path).content, keys)
        assert got == back and got.rollback_from == VERSION and got.files == plain.files
        require_upgrade(got, VERSION)  # what the door on 1.5.0 installs ...
        with pytest.raises(ReleaseRefused, match=r"1\.4\.0 is not newer than 1\.5\.0"):
            require_upgrade(plain, VERSION)  # ... where the release itself is refused
        for release_file in got.files:  # the release's own files, as kept
            answer = get(at.url, on_new, release_file_path("1.4.0", release_file.name))
            assert answer.content == hub.kept("1.4.0", release_file.name).read_bytes()
        # A door on another version gets the release's own manifest, and refuses it; the
        # rollback would not apply to it either.
        theirs = open_manifest(get(at.url, on_newer, path).content, keys)
        assert theirs == plain
        with pytest.raises(ReleaseRefused, match=r"not newer than 1\.5\.1"):
            require_upgrade(theirs, "1.5.1")
        with pytest.raises(ReleaseRefused, match=r"does not apply to 1\.5\.1"):
            require_upgrade(back, "1.5.1")
        # A door going up gets the release as it is; one not ordered gets nothing.
        upwards = open_manifest(get(at.url, on_old, path).content, keys)
        assert upwards == plain
        require_upgrade(upwards, "1.3.0")
        refused = get(at.url, unordered, path)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"].startswith("no rollout ordered release '1.4.0'")


def test_only_files_the_manifest_names_are_served_whatever_the_path_says(hub):
    door = hub.door("front-door")
    manifest = hub.add_release(VERSION)
    hub.add_release("1.4.0")
    (hub.directory / VERSION / "extra-1.0-py3-none-any.whl").write_bytes(b"not in the manifest")
    (hub.directory / "secret.txt").write_text("the hub's own")
    hub.add_release("1.3.0", ordered=False)
    with hub.served() as at:
        # A release no rollout ordered for the door, held or not: the same refusal.
        for version in ("9.9.9", "1.3.0"):
            answer = get(at.url, door, release_manifest_path(version))
            assert answer.status_code == 403, answer.text
            assert answer.json()["detail"].startswith("no rollout ordered release")
        assert get(at.url, None, release_manifest_path("9.9.9")).status_code == 401
        for name in (
            "extra-1.0-py3-none-any.whl",
            "manifest",
            "hafen-1.4.0-py3-none-any.whl",
        ):
            answer = get(at.url, door, release_file_path(VERSION, name))
            assert answer.status_code == 404, (name, answer.text)
            assert "has no file" in answer.json()["detail"]
        # Paths a client would normalise, sent as they are: none reaches beyond the route.
        host = urlsplit(at.url).netloc
        for path in (
            f"/device/releases/{VERSION}/files/..%2F..%2Fsecret.txt",
            f"/device/releases/{VERSION}/files/../../secret.txt",
            "/device/releases/../secret.txt/manifest",
            f"/device/releases/{VERSION}/files/%2E%2E",
            f"/device/releases/{VERSION}/files/..",  # signed as is: the name "..", not held
        ):
            connection = http.client.HTTPConnection(host, timeout=10)
            connection.request("GET", path, headers=signed(door, path))
            raw = connection.getresponse()
            body = raw.read()
            connection.close()
            assert raw.status in (401, 404), (path, raw.status, body)
            assert b"the hub's own" not in body
        # A wheel of the manifest whose copy at the hub is damaged is not served.
        wheel = manifest.files[0].name
        hub.kept(VERSION, wheel).write_bytes(b"short")
        damaged = get(at.url, door, release_file_path(VERSION, wheel))
        assert damaged.status_code == 503 and "damaged at the hub" in damaged.text


def test_a_door_is_held_to_its_rate_and_to_a_few_files_at_once(hub):
    door, other = hub.door("front-door"), hub.door("back-door")
    big = f"hafen-{VERSION}-py3-none-any.whl"
    hub.add_release(VERSION, {big: b"\x00" * (48 * 1024 * 1024)})
    path = release_file_path(VERSION, big)
    limits = DownloadLimits(rate=0.05, burst=3, per_device=1, total=8)
    with hub.served(limits=limits) as at, httpx.Client(timeout=10) as client:
        with client.stream("GET", at.url + path, headers=signed(door, path)) as first:
            assert first.status_code == 200
            assert wait_for(lambda: at.downloads.streaming(door_key(door)) == 1, 5)
            second = get(at.url, door, path)
            assert second.status_code == 429 and "at once" in second.json()["detail"]
            # Another door has slots of its own.
            with client.stream("GET", at.url + path, headers=signed(other, path)) as theirs:
                assert theirs.status_code == 200
        # The door went away mid-file: its slot is given back.
        assert wait_for(lambda: at.downloads.streaming() == 0, 5)
        assert get(at.url, door, release_manifest_path(VERSION)).status_code == 200
        over = get(at.url, door, release_manifest_path(VERSION))
        assert over.status_code == 429 and over.headers["retry-after"] == "20"
        assert "too many requests" in over.json()["detail"]
        assert get(at.url, other, release_manifest_path(VERSION)).status_code == 200


def door_key(door: Door) -> tuple[str, str]:
    return (door.site, door.device)


def test_a_hub_without_a_ca_or_releases_directory_says_what_it_needs(engine, hub):
    door = hub.door("front-door")
    path = release_manifest_path(VERSION)
    with served(create_app(engine)) as url:
        answer = httpx.get(url + path, headers=signed(door, path), timeout=10)
        unsigned = httpx.get(url + path, timeout=10)
    assert answer.status_code == 503 and "[releases] directory" in answer.json()["detail"]
    assert unsigned.status_code == 401  # who asks comes first, as on every route


def test_a_door_whose_part_in_the_rollout_ended_downloads_no_more(hub):
    door = hub.door("front-door")
    hub.add_release(VERSION)
    path = release_manifest_path(VERSION)
    with hub.served() as at:
        assert get(at.url, door, path).status_code == 200
        with hub.engine.begin() as conn:  # failed past its deadline, say
            conn.execute(db.rollout_devices.update().values(step="failed"))
        answer = get(at.url, door, path)
    assert answer.status_code == 403, answer.text


def test_a_report_names_its_rollout_by_number_and_a_version_a_door_can_say():
    good = {"rollout": 7, "version": "1.5.0", "step": "healthy", "running": "1.5.0"}
    UpdateReport.model_validate(good)
    for bad in ({"rollout": "7"}, {"version": "1." + "0" * 40}):
        with pytest.raises(ValidationError):
            UpdateReport.model_validate(good | bad)
