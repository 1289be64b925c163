"""A component's recovery as a door sends it: a ``device.fault`` without ``fault``."""

from __future__ import annotations

from datetime import UTC, datetime

from hafen.protocol import DeviceFault, EventKind, EventMessage


def test_a_recovery_as_the_door_sends_it_is_a_valid_event():
    """Before: ``fault`` was required, and the hub dead-lettered every recovery."""
    body = DeviceFault(component="reader", fault=None).model_dump(mode="json", exclude_none=True)
    assert body == {"component": "reader"}  # what the outbox stores (edge.agent.store)
    message = EventMessage.model_validate(
        {
            "schema": 1,
            "event_id": "a" * 32,
            "epoch": "b" * 16,
            "seq": 1,
            "at": datetime.now(UTC),
            "data": body,
        }
    )
    assert message.payload(EventKind.DEVICE_FAULT) == DeviceFault(component="reader", fault=None)
