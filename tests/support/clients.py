"""Ending a test's own MQTT clients (paho's, with their network thread) without waiting."""

from __future__ import annotations

import contextlib

import paho.mqtt.client as mqtt


def close_client(client: mqtt.Client) -> None:
    """Disconnect, then stop the network thread. In this order the thread ends at once; the
    other way round, loop_stop first waits out the thread's select (most of a second, in
    every test that closes a client). paho's race, as in hub.mqtt.HubClient.stop: the ending
    thread may clear itself between loop_stop's check and its join (AttributeError)."""
    client.disconnect()
    with contextlib.suppress(AttributeError):
        client.loop_stop()
