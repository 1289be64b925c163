"""HubClient.publish's promise: it returns once the broker has the message, and says
TimeoutError for every way the broker did not take it, never paho's RuntimeError."""

from __future__ import annotations

import pytest

from hub.mqtt import HubClient
from tests.support.waiting import wait_for


def test_a_publish_on_a_connection_already_gone_says_timeout_not_runtime_error(broker):
    client = HubClient("127.0.0.1", broker.port, "hafen-hub-test")
    client.start()
    try:
        client.publish("hafen/test/first", b"one", timeout=2)
        # The broker dropped us and paho knows it, but our flag has not caught up yet (the
        # moment a refused publish makes the broker close the connection).
        client.client.disconnect()
        assert wait_for(lambda: not client.connected.is_set(), 5)
        client.connected.set()
        with pytest.raises(TimeoutError, match="connection dropped"):
            client.publish("hafen/test/second", b"two", timeout=1)
    finally:
        client.stop()
