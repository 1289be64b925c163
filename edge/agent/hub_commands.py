"""The hub's commands as the door's loop carries them out: verified, done, answered.

The MQTT link hands each command to the loop (edge.agent.remote routes lists to the list
updater first); here each is checked (hub's signature, this device, fresh, not seen) and
done in the loop's thread, where the door's state lives:

| command | what the door does | answer |
|---|---|---|
| ``ack`` | the outbox forgets what the hub stored (see ``hub_stored``) | none |
| ``unlock`` | opens for ``seconds`` (1 s to an hour; default the door's own), records it | ok |
| ``send_state`` | publishes its state again | ok |
| ``certificate`` | to the renewal, which checks and installs it off the loop | by the renewal |
| ``update`` | to the updater (edge.updater), to work on off the loop | taken, and where it is |
| a refused one | nothing | not ok, with why |
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from edge.agent.door_logic import DoorLogic
from edge.agent.faults import FaultBoard
from edge.agent.store import EdgeStore
from hafen.protocol import (
    CommandReply,
    DeviceFault,
    EventPayload,
    RemoteUnlock,
    UpdateOrder,
    encode_json,
)

if TYPE_CHECKING:
    from datetime import datetime

    from edge.agent.link import EdgeLink
    from edge.agent.remote import CommandVerifier
    from edge.agent.renewal import CertificateRenewal

log = logging.getLogger(__name__)

ACK_FAULT_COMPONENT = "outbox"
ACK_FAULT = "the hub acknowledged events this door never sent: forged under its name"


class Orders(Protocol):
    """Who takes update orders (edge.updater.updater.Updater)."""

    def order(self, order: UpdateOrder) -> tuple[bool, str]: ...


class HubCommands:
    """Carries out verified commands on the door's loop; ``record`` writes an event."""

    def __init__(
        self,
        verifier: CommandVerifier,
        link: EdgeLink,
        door: DoorLogic,
        store: EdgeStore,
        faults: FaultBoard,
        record: Callable[[EventPayload], None],
        unlock_seconds: float,
        wall_clock: Callable[[], datetime],
        renewal: CertificateRenewal | None = None,
        updates: Orders | None = None,
    ) -> None:
        self.verifier = verifier
        self.link = link
        self.door = door
        self.store = store
        self.faults = faults
        self._record = record
        self._unlock_seconds = unlock_seconds
        self._wall_clock = wall_clock
        self.renewal = renewal
        self.updates = updates

    def handle(self, name: str, payload: bytes, now: float) -> None:
        from edge.agent.remote import CommandRefused

        try:
            command = self.verifier.verify(name, payload, self._wall_clock())
        except CommandRefused as exc:
            log.warning("command %s refused: %s", name, exc)
            self._answer(name, CommandReply(command="", ok=False, detail=str(exc)))
            return
        if command.name == "ack":
            seq, epoch = command.args.get("seq"), command.args.get("epoch")
            if isinstance(seq, int) and isinstance(epoch, str):
                self.hub_stored(seq, epoch)
            return  # acknowledgements are not answered
        if command.name == "unlock":
            try:
                seconds = float(command.args.get("seconds", self._unlock_seconds))
            except (TypeError, ValueError):
                detail = "seconds is not a number"
                self._answer(name, CommandReply(command=command.id, ok=False, detail=detail))
                return
            seconds = min(max(seconds, 1.0), 3600.0)
            self._record(RemoteUnlock(command=command.id, seconds=seconds))
            self.door.remote_unlock(now, seconds)
        elif command.name == "send_state":
            self.link.publish_state()
        elif command.name == "update":
            self._answer(command.name, self._update(command.id, command.args))
            return
        elif command.name == "certificate":
            if self.renewal is not None:
                self.renewal.offer(command)  # checked and installed off the door's loop
                return  # answered once installed (or refused)
            detail = "no certificate to renew"
            self._answer(command.name, CommandReply(command=command.id, ok=False, detail=detail))
            return
        self._answer(command.name, CommandReply(command=command.id, ok=True))

    def _update(self, command_id: str, args: dict[str, object]) -> CommandReply:
        if self.updates is None:
            detail = "this door takes no updates: its config has no [updates]"
            return CommandReply(command=command_id, ok=False, detail=detail)
        try:
            order = UpdateOrder.model_validate(args)
        except ValidationError as exc:
            detail = f"not an update order: {exc.errors()[0]['msg']}"
            return CommandReply(command=command_id, ok=False, detail=detail)
        taken, standing = self.updates.order(order)
        return CommandReply(command=command_id, ok=taken, detail=standing)

    def hub_stored(self, seq: int, epoch: str) -> None:
        """The hub's signed ack. One beyond the last event this store numbered means the hub
        stored events under this door's name that it never sent (forged ones): the sender
        ignores it, forgetting nothing, and the door reports the fault until a sound ack."""
        self.link.sender.hub_stored(seq, epoch)
        if epoch != self.store.epoch:
            return  # another store's (a replaced SD card): harmless, the sender ignores it
        beyond = seq > self.store.last_seq()
        if beyond != (ACK_FAULT_COMPONENT in self.faults.current()):
            self._record(
                DeviceFault(component=ACK_FAULT_COMPONENT, fault=ACK_FAULT if beyond else None)
            )

    def _answer(self, name: str, reply: CommandReply) -> None:
        self.link.reply(name, encode_json(reply))
