"""A component's recovery as a door sends it: a ``device.fault`` without ``fault``."""

from __future__ import annotations

from datetime import UTC, datetime

from edge.agent.agent import _Record
from hafen import protocol
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


def test_a_fault_of_a_sensor_with_the_longest_name_still_leaves_a_state(tmp_path, mock_pins):
    """A CO2 sensor may be named with any id (63 characters); its fault is on the board as
    ``co2.<name>``. Before: the state's component pattern held 64 characters, so every state
    the door built failed validation: no state reached the hub, and on the next connection
    paho's thread died in on_connect (no subscriptions, no outbox) for as long as the fault
    lasted."""
    from sim.broker import LocalBroker
    from tests.support.network import TestHub, connected_edge
    from tests.support.refusals import Client
    from tests.support.waiting import wait_for

    component = "co2." + "s" * 63  # edge.agent.occupancy_service names a sensor's fault so
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker).start()
        hub.add_site("leipzig-ost")
        try:
            with connected_edge(tmp_path, hub) as (agent, _card):
                states = Client(broker.port).subscribe(
                    protocol.state_topic("leipzig-ost", "door-1")
                )
                agent._inbox.put(_Record(DeviceFault(component=component, fault="no reading")))
                assert wait_for(
                    lambda: any(component in s.faults for s in states.states() if s.online), 5
                )
        finally:
            hub.stop()
