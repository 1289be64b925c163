"""The sweep releases a no-show only while ingest has been listening (hub.ingest_beats): with
ingest down, cut off from the broker or just back, the doors' taps may be waiting at the
broker, and a release would cost an honest member their desk. On SQLite and PostgreSQL, with
a real ingest worker on a real mosquitto for what the worker writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import func, select
from typer.testing import CliRunner

from hafen.cli import app
from hub import db
from hub.ingest_beats import KNOWN, SILENT, listening
from hub.services.no_shows import SETTLE, sweep
from sim.broker import LocalBroker
from tests.support.booking import add_door, ingest_listening, member_user, set_site, today
from tests.support.edge import CARD_KEY
from tests.support.intruder import Intruder, entry
from tests.support.network import TestHub
from tests.support.sites import add_sites
from tests.support.waiting import wait_for

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
SINCE = NOW - SETTLE  # the latest tap the sweep at NOW counts on


def _workers(engine) -> dict[str, tuple[datetime, datetime]]:
    with engine.connect() as conn:
        rows = conn.execute(select(db.ingest_workers)).all()
    return {r.name: (db.aware(r.up_since), db.aware(r.beat_at)) for r in rows}


def test_ingest_is_listening_only_when_every_worker_beat_lately_on_an_old_connection(engine):
    def hearing() -> tuple[bool, str]:
        with engine.connect() as conn:
            heard = listening(conn, SINCE, NOW)
        return heard.listening, heard.why_not

    assert hearing() == (False, "no ingest worker is running")
    old = SINCE - timedelta(hours=3)
    ingest_listening(engine, "1", up_since=old, beat_at=NOW - timedelta(seconds=5))
    assert hearing() == (True, "")
    # A second worker silent just past SILENT: it may have died holding taps.
    ingest_listening(engine, "2", up_since=old, beat_at=NOW - SILENT - timedelta(seconds=1))
    assert hearing() == (False, "ingest worker 2 silent since 09:58:59 UTC")
    # Back, but on a connection newer than the latest tap counted on: its backlog may lag.
    ingest_listening(engine, "2", up_since=SINCE + timedelta(seconds=1), beat_at=NOW)
    assert hearing() == (False, "ingest worker 2 (re)connected only at 09:58:01 UTC")
    ingest_listening(engine, "2", up_since=SINCE, beat_at=NOW)
    assert hearing() == (True, "")
    # A worker silent for longer than KNOWN is gone for good (scaled down, never stopped).
    ingest_listening(engine, "3", up_since=old, beat_at=NOW - KNOWN - timedelta(seconds=1))
    assert hearing() == (True, "")


def test_the_sweep_holds_every_release_while_ingest_is_not_listening(api):
    admin = add_sites(api)
    set_site(api.engine, "borna", desks=2)
    add_door(api.engine, "borna")  # and ingest listening throughout
    assert api.post("/plans", json={"id": "flex"}, headers=admin).status_code == 201
    mia = member_user(api, "mia", admin, plan="flex")
    day = {"site": "borna", "kind": "desk", "day": str(today() + timedelta(days=2)), "part": "day"}
    made = api.post("/me/bookings", json=day, headers=mia)
    assert made.status_code == 201, made.text
    due = datetime.fromisoformat(made.json()["starts_at"]) + timedelta(minutes=60) + SETTLE
    # Ingest went silent two minutes before the sweep: Mia's tap may be at the broker.
    ingest_listening(api.engine, "1", up_since=due - timedelta(days=1), beat_at=due - SETTLE)
    held = sweep(api.engine, None, now=due)
    assert (held.released, held.held, held.held_sites) == ([], 1, ["borna"])
    assert held.unheard.startswith("ingest worker 1 silent since")
    # Back a minute later on a new connection: still held while its backlog may come in.
    back = due + timedelta(minutes=1)
    ingest_listening(api.engine, "1", up_since=back, beat_at=back)
    assert sweep(api.engine, None, now=back).released == []
    # Listening for the settling time since: nothing came from Mia, and the desk goes.
    later = back + SETTLE
    ingest_listening(api.engine, "1", up_since=back, beat_at=later)
    done = sweep(api.engine, None, now=later)
    assert (done.released, done.unheard) == ([made.json()["id"]], "")


def test_a_worker_beats_on_its_connection_starts_afresh_after_a_broker_restart_and_leaves(
    tmp_path, hub_url
):
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker, url=hub_url).start()
        try:
            assert wait_for(lambda: "0" in _workers(hub.engine), 10)
            first_up, first_beat = _workers(hub.engine)["0"]
            assert first_up <= first_beat <= datetime.now(UTC)
            broker.stop()
            broker.start()
            assert wait_for(lambda: _workers(hub.engine)["0"][0] > first_up, 20)
        finally:
            hub.stop()
        assert "0" not in _workers(hub.engine)  # a clean stop holds no sweep


def test_a_worker_that_stopped_cleanly_leaves_no_tap_waiting_for_it(tmp_path, broker, hub_url):
    """A clean stop says the worker holds no sweep, so every tap after it must reach the
    workers still running: mosquitto queues a shared subscription's messages for a member
    that is away (its session persists), where a scaled-down worker would keep them."""
    hub = TestHub(tmp_path, broker, workers=2, url=hub_url).start()
    doors = Intruder(broker.port)
    try:
        hub.add_device("borna", "door-1")
        assert wait_for(lambda: set(_workers(hub.engine)) == {"0", "1"}, 10)
        hub.workers[0].stop()
        assert set(_workers(hub.engine)) == {"1"}  # the sweep counts on worker 1 alone
        for seq in range(1, 11):
            doors.event(
                "borna", "door-1", "door.decision", entry(None, False, "unknown_card"), seq=seq
            )

        def stored() -> int:
            with hub.engine.connect() as conn:
                return conn.scalar(select(func.count()).select_from(db.events)) or 0

        assert wait_for(lambda: stored() == 10, 10), f"{stored()} of 10 taps stored"
    finally:
        doors.close()
        hub.stop()


def test_a_worker_gone_for_good_is_retired_with_what_its_session_held(tmp_path, broker, hub_url):
    """A worker that died and will not come back holds the sweep (its session still gets a
    share of the taps); `hafen hub ingest --name N --retire` stores what it holds, leaves the
    group and removes its row."""
    hub = TestHub(tmp_path, broker, workers=2, url=hub_url).start()
    doors = Intruder(broker.port)
    try:
        hub.add_device("borna", "door-1")
        assert wait_for(lambda: set(_workers(hub.engine)) == {"0", "1"}, 10)
        dead = hub.workers.pop()
        dead._stop.set()  # it dies: no leave, no drain, its row stays
        dead._thread.join(10)
        dead.client.stop()  # its session and subscription stay at the broker
        for seq in range(1, 11):
            doors.event(
                "borna", "door-1", "door.decision", entry(None, False, "unknown_card"), seq=seq
            )
        assert wait_for(lambda: _stored(hub.engine) >= 1, 10)
        assert _stored(hub.engine) < 10  # the dead worker's share waits in its session
        key, card_key = tmp_path / "signing.pem", tmp_path / "card.key"
        key.write_bytes(hub.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        card_key.write_text(CARD_KEY.hex())
        retired = CliRunner().invoke(
            app,
            ["hub", "ingest", "--name", "1", "--retire", "--key", str(key), "--db",
             hub.engine.url.render_as_string(hide_password=False),
             "--broker", f"127.0.0.1:{broker.port}", "--card-key-file", str(card_key)],
        )  # fmt: skip
        assert retired.exit_code == 0, retired.output
        assert "retired" in retired.output
        assert _stored(hub.engine) == 10
        assert set(_workers(hub.engine)) == {"0"}
    finally:
        doors.close()
        hub.stop()


def _stored(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(db.events)) or 0
