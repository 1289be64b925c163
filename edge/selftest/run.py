"""A whole self-test: claim the door, build each part from the config, run its check, and keep
the result in the outbox for the hub.

Each part is built, checked and released on its own, so one that cannot be had (a pin that
will not open, a sensor's port gone) fails its own check and the others still run. The strike
is left de-energised at the end, in the door's fail state, as a stopped agent leaves it.
"""

from __future__ import annotations

import os
import pwd
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from edge.agent.config import DoorConfig, EdgeConfig
from edge.agent.decision import AccessPolicy
from edge.agent.door_claim import DoorClaim
from edge.agent.occupancy_config import OccupancyConfig
from edge.agent.recovery import marked_damaged
from edge.agent.store import EdgeStore
from edge.agent.store_check import check_store
from edge.drivers.co2 import Co2Sensor
from edge.drivers.co2_settings import Co2Settings
from edge.drivers.door import DoorContact, ExitButton, Signals, Strike
from edge.drivers.door_counter import DoorCounter
from edge.drivers.door_counter_settings import DoorCounterSettings
from edge.drivers.motion import Pir
from edge.drivers.motion_settings import RoomSettings
from edge.drivers.nfc_reader import NfcReader
from edge.selftest import results as report
from edge.selftest.access import NO_HUB, check_access_list, check_list_signature
from edge.selftest.broker import BROKER_TIMEOUT, check_broker, client_id
from edge.selftest.card import Tap, check_card, describe_decision
from edge.selftest.door import (
    STRIKE_PULSE_SECONDS,
    Say,
    check_buzzer,
    check_contact,
    check_exit_button,
    check_led,
    check_strike,
)
from edge.selftest.results import CheckResult, failed, skipped
from edge.selftest.sensors import check_co2, check_counter, check_pir
from hafen.cards import card_hash

#: Who a self-test says it is to an agent its claim on the door keeps from starting.
CLAIMANT = "a self-test (hafen edge selftest)"
#: Seconds a technician gets for each step that needs them (the exit button, a card).
WAIT_SECONDS = 10.0

Part = TypeVar("Part")


class NotTheAgentsUser(Exception):
    """The self-test runs as another user than the one owning the agent's store directory."""


@dataclass(frozen=True)
class SelfTestOptions:
    """What to test and how long to wait for the technician."""

    strike: bool = True
    card: bool = True
    wait: float = WAIT_SECONDS
    #: Someone at a terminal who can press the exit button when asked.
    interactive: bool = False
    broker_timeout: float = BROKER_TIMEOUT


@dataclass(frozen=True)
class SelfTestReport:
    results: list[CheckResult]
    #: Whether the result is in the outbox, on its way to the hub; ``note`` says what became of it.
    kept: bool
    note: str

    @property
    def passed(self) -> bool:
        return self.kept and not any(r.failed for r in self.results)


def run_selftest(cfg: EdgeConfig, options: SelfTestOptions, say: Say) -> SelfTestReport:
    """Run every check of the door of ``cfg`` and keep the result for the hub.

    Raises edge.agent.door_claim.DoorInUse, testing nothing, while the agent drives the door,
    and NotTheAgentsUser if run as another user than the agent's.
    """
    _as_the_agents_user(cfg.store.path)
    with DoorClaim(cfg.store.path, CLAIMANT):
        store, trouble = _open_store(cfg)
        try:
            results = [
                *_list_checks(cfg, store, trouble),
                *_door_checks(cfg.door, options, say),
                *_sensor_checks(cfg.occupancy),
                _card_check(cfg, store, options, say),
                _broker_check(cfg, options),
            ]
            kept, note = _keep(store, results)
        finally:
            if store is not None:
                store.close()
    return SelfTestReport(results, kept, note)


def _as_the_agents_user(store_path: Path) -> None:
    """Refuse to run as anyone but the owner of the store's directory (the agent's user).

    Whatever the self-test creates there (the claim's lock file, the store's log, a new store)
    belongs to whoever runs it: run as root (``sudo hafen edge selftest``), it would leave
    files the agent, running as its own user, cannot open, and the door would not start again.
    """
    try:
        owner = store_path.parent.stat().st_uid
    except FileNotFoundError:
        return  # nothing there yet to lock anyone out of
    if owner != os.geteuid():
        try:
            name = pwd.getpwuid(owner).pw_name
        except KeyError:
            name = str(owner)
        raise NotTheAgentsUser(
            f"{store_path.parent} belongs to {name}: run the self-test as {name}"
            f" (sudo -u {name} hafen edge selftest ...), or the files it writes there would"
            " keep the agent from starting"
        )


def _open_store(cfg: EdgeConfig) -> tuple[EdgeStore | None, str]:
    """The door's store, or None and why it cannot be used (damage is the agent's to recover:
    it moves the file aside when it starts)."""
    path = cfg.store.path
    try:
        damage = marked_damaged(path) or check_store(path)
        if damage:
            return None, f"the store is damaged ({damage}); starting the agent recovers it"
        return EdgeStore(path, cfg.store.synchronous), ""
    except (OSError, sqlite3.Error) as exc:
        return None, f"the store cannot be opened: {exc}"


def _list_checks(cfg: EdgeConfig, store: EdgeStore | None, trouble: str) -> list[CheckResult]:
    keys = cfg.hub.public_keys if cfg.hub else None
    if store is None:
        unread = failed("list_signature", "no list to verify: the store cannot be read")
        return [failed("access_list", trouble), unread if keys else skipped(*NO_HUB)]
    return [check_access_list(store, cfg.site.id), check_list_signature(store, keys)]


def _door_checks(door: DoorConfig, options: SelfTestOptions, say: Say) -> list[CheckResult]:
    checks = []
    if options.strike:
        say(f"The door will unlock for {STRIKE_PULSE_SECONDS:g} s.")
        checks.append(
            _with_part(
                "strike",
                lambda: Strike.from_settings(door.strike, door.fail_mode),
                check_strike,
                Strike.release,
            )
        )
    else:
        checks.append(skipped("strike", "not pulsed (--no-strike)"))
    led, buzzer = door.led, door.buzzer
    checks.append(
        _with_part("led", lambda: Signals.from_settings(led, None), check_led, Signals.close)
        if led
        else skipped("led", "no LED in [door]")
    )
    checks.append(
        _with_part(
            "buzzer", lambda: Signals.from_settings(None, buzzer), check_buzzer, Signals.close
        )
        if buzzer
        else skipped("buzzer", "no buzzer in [door]")
    )
    contact = door.contact
    checks.append(
        _with_part(
            "contact",
            lambda: DoorContact.from_settings(contact, _ignore, _ignore),
            check_contact,
            DoorContact.close,
        )
        if contact
        else skipped("contact", "no contact in [door]")
    )
    checks.append(_exit_button_check(door, options, say))
    return checks


def _exit_button_check(door: DoorConfig, options: SelfTestOptions, say: Say) -> CheckResult:
    button = door.exit_button
    if button is None:
        return skipped("exit_button", "no exit button in [door]")
    pressed = threading.Event()
    wait = options.wait if options.interactive else None
    return _with_part(
        "exit_button",
        lambda: ExitButton.from_settings(button, pressed.set),
        lambda part: check_exit_button(part, pressed, wait, say),
        ExitButton.close,
    )


def _sensor_checks(occupancy: OccupancyConfig | None) -> list[CheckResult]:
    if occupancy is None:
        return []
    counter = [] if occupancy.counter is None else [_counter_check(occupancy.counter)]
    return [*map(_pir_check, occupancy.rooms), *map(_co2_check, occupancy.co2), *counter]


def _pir_check(room: RoomSettings) -> CheckResult:
    return _with_part(
        f"pir.{room.name}",
        lambda: Pir(room.pin, _ignore, pull_up=room.pull_up),
        lambda pir: check_pir(room.name, pir),
        Pir.close,
    )


def _co2_check(settings: Co2Settings) -> CheckResult:
    return _with_part(
        f"co2.{settings.name}",
        lambda: Co2Sensor.from_settings(settings),
        lambda sensor: check_co2(settings.name, sensor),
        Co2Sensor.close,
    )


def _counter_check(settings: DoorCounterSettings) -> CheckResult:
    return _with_part(
        "counter",
        lambda: DoorCounter(settings, lambda _way: None),
        check_counter,
        DoorCounter.close,
    )


def _card_check(
    cfg: EdgeConfig, store: EdgeStore | None, options: SelfTestOptions, say: Say
) -> CheckResult:
    if not options.card:
        return skipped("card", "not asked for (--no-card)")
    key = cfg.cards.key()
    policy = AccessPolicy(cfg.site.id, ZoneInfo(cfg.site.timezone))
    taps: queue.SimpleQueue[Tap] = queue.SimpleQueue()
    reader = NfcReader.from_settings(
        cfg.reader, on_card=taps.put, on_fault=lambda fault: taps.put((fault,))
    )
    return check_card(
        reader,
        taps,
        lambda uid: describe_decision(store, policy, card_hash(key, uid)),
        options.wait,
        say,
    )


def _broker_check(cfg: EdgeConfig, options: SelfTestOptions) -> CheckResult:
    if cfg.mqtt is None:
        return skipped("broker", "a door without [mqtt] works on its own")
    return check_broker(cfg.mqtt, client_id(cfg.site.id, cfg.device.id), options.broker_timeout)


def _with_part(
    name: str,
    build: Callable[[], Part],
    check: Callable[[Part], CheckResult],
    close: Callable[[Part], None],
) -> CheckResult:
    """Build a part, check it, release it; a part that cannot be had fails its own check."""
    try:
        part = build()
    except Exception as exc:  # gpiozero's have no common base: pin in use, missing, forbidden
        return failed(name, f"cannot take its pin or port: {type(exc).__name__}: {exc}")
    try:
        return check(part)
    except Exception as exc:  # a part failing mid-check fails that check, not the self-test
        return failed(name, f"{type(exc).__name__}: {exc}")
    finally:
        close(part)


def _keep(store: EdgeStore | None, results: list[CheckResult]) -> tuple[bool, str]:
    """Record the result in the outbox: the agent sends it to the hub exactly once, as any
    event, when it runs again."""
    if store is None:
        return False, "not kept for the hub: the store cannot be used (see access_list)"
    try:
        event = store.record_event(report.event(results), datetime.now(UTC))
    except sqlite3.Error as exc:
        return False, f"not kept for the hub: the store refused it ({exc})"
    return True, f"kept for the hub as event {event.seq}: sent when the agent runs again"


def _ignore() -> None:
    """A callback for a part whose changes the self-test does not follow."""
