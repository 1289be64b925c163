"""Shared fixtures: real libraries at every boundary, only the physical world simulated."""

from __future__ import annotations

import os
import socket
from pathlib import Path

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

#: A fixed card-hash key for tests (16 bytes, hex).
CARD_KEY_HEX = "0123456789abcdef" * 2


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mock_pins():
    """Fresh gpiozero mock pins for each test."""
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.close()
    Device.pin_factory = MockFactory()


def edge_config_dict(tmp_path: Path, reader: str = "udp:127.0.0.1:54321", **door) -> dict:
    """A complete edge config as a dict, with the door section overridable."""
    door_section = {
        "unlock_seconds": 0.5,
        "held_open_seconds": 1.0,
        "strike": {"pin": 17},
        "contact": {"pin": 27},
        "exit_button": {"pin": 22},
        "led": {"pin": 23},
        "buzzer": {"pin": 24},
    }
    door_section.update(door)
    return {
        "site": {"id": "leipzig-ost", "timezone": "Europe/Berlin"},
        "device": {"id": "front-door"},
        "store": {"path": str(tmp_path / "edge.db"), "synchronous": "normal"},
        "cards": {"hash_key": CARD_KEY_HEX},
        "reader": {"path": reader, "targets": ["106A"], "poll_interval": 0.02},
        "door": door_section,
    }


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; returns its last value."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


#: Where the hub's PostgreSQL tests run: a throwaway database per test on this server.


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_url(request, tmp_path):
    """The hub's store on each database it supports: a SQLite file, a fresh PostgreSQL db."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    from support.postgres import throwaway_database

    with throwaway_database("hafen_test") as url:
        yield url
