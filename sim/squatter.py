"""A third party on the broker who squats a door's client id: for tests and benchmarks.

It is what an outsider did to the network before the broker gave each device an identity of
its own: whenever the door is connected, connect with the door's client id and a clean start
(which drops the door's connection and wipes its session), put an older, validly signed list
back as the site's retained list, and publish a forged retained state saying the door is
online on the newest list version. The door and the hub must notice and recover by
themselves (docs/protocol.md, "What the door and the hub trust").
"""

from __future__ import annotations

import contextlib
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hafen import protocol
from hafen.protocol import DeviceState

#: Absurdly high, so that no real birth seems newer.
FORGED_SESSION = 2**62


class Squatter:
    """Takes over ``site.device``'s client id every ``every`` seconds on 127.0.0.1:``port``.

    ``old_list`` is the sealed list it retains on the site's list topic each time; the forged
    state claims ``claimed_version``. ``takeovers`` counts its connections. ``reactive``: also
    take over at once whenever the door publishes a birth (it has just reconnected), the
    attacker's best timing: the door is then connected for moments only. ``guard_list``: put
    the old list back the moment anything else appears on the list topic (the hub's block, the
    hub's re-sends), so that a door connected for moments only ever finds the old one.
    """

    def __init__(
        self,
        port: int,
        site: str,
        device: str,
        old_list: bytes,
        claimed_version: int,
        every: float = 2.0,
        reactive: bool = False,
        guard_list: bool = False,
    ) -> None:
        self.port = port
        self.site = site
        self.device = device
        self.old_list = old_list
        self.claimed_version = claimed_version
        self.every = every
        self.takeovers = 0
        self._stop = threading.Event()
        self._door_back = threading.Event()
        self._thread = threading.Thread(target=self._run, name="squatter", daemon=True)
        self._watched = [
            *([protocol.state_topic(site, device)] if reactive else []),
            *([protocol.acl_topic(site)] if guard_list else []),
        ]
        self._watcher: mqtt.Client | None = None
        if self._watched:
            self._watcher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            self._watcher.on_message = self._on_message

    def start(self) -> Squatter:
        if self._watcher is not None:
            self._watcher.connect("127.0.0.1", self.port)
            self._watcher.subscribe([(topic, 1) for topic in self._watched])
            self._watcher.loop_start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._door_back.set()
        self._thread.join(10)
        if self._watcher is not None:
            self._watcher.loop_stop()
            self._watcher.disconnect()

    def _on_message(
        self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        if message.topic == protocol.acl_topic(self.site):
            if bytes(message.payload) != self.old_list:
                client.publish(message.topic, self.old_list, qos=1, retain=True)
            return
        with contextlib.suppress(ValueError):
            state = DeviceState.model_validate_json(message.payload)
            if state.online and state.session != FORGED_SESSION:
                self._door_back.set()  # the door's own birth: it has just reconnected

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError):  # the broker is away: next round
                self._take_over()
            self._door_back.wait(self.every)
            self._door_back.clear()

    def _take_over(self) -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{self.site}.{self.device}",  # the door's own client id
            protocol=mqtt.MQTTv5,
        )
        client.connect("127.0.0.1", self.port, clean_start=True)
        client.loop_start()
        try:
            forged = DeviceState(
                online=True,
                session=FORGED_SESSION,
                software="9.9.9",
                acl_version=self.claimed_version,
            )
            infos = [
                client.publish(protocol.acl_topic(self.site), self.old_list, qos=1, retain=True),
                client.publish(
                    protocol.state_topic(self.site, self.device),
                    protocol.encode_json(forged),
                    qos=1,
                    retain=True,
                ),
            ]
            deadline = time.monotonic() + 5
            for info in infos:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            self.takeovers += 1
        finally:
            client.disconnect()
            client.loop_stop()
