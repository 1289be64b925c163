"""Who may do what at the broker: each device, and each of the hub's services, its own rights.

The broker trusts no one (issue 14): mosquitto's dynamic-security plugin holds a client and a
role per device, and the hub writes them through the plugin's control topic. Debian's
mosquitto is 2.0, whose roles have no ``%c``/``%u`` patterns, so each device's role spells its
own topics, all from the protocol module:

- publish only under ``hafen/v1/{site}/{device}/``;
- subscribe to (and receive) only its own commands, its own state and its site's list.

A device's client is named like its client id (``site.device``, the common name of its
certificate) and the plugin is told that client id. mosquitto 2.0 checks neither for a client
that signs in with its certificate alone, nor that such a client still exists
(mosquitto#2999). So a device signs in with its certificate (network membership, revocable on
the CA's revocation list, hub.pki) *and* a password of its own: the plugin then holds it to its
client id, so no one can take over its session, and refuses it the moment its client is
deleted.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hafen import protocol
from hub.mqtt import BrokerLogin
from hub.pki import device_client_id

#: How long one command to the plugin may take.
ANSWER_SECONDS = 5.0
#: The hub services' clients at the broker (``[broker.ingest]``, ``[broker.publisher]``,
#: ``[broker.admin]`` in the hub's settings name them).
INGEST, PUBLISHER, ADMIN = "hafen-ingest", "hafen-publisher", "hafen-admin"
#: What the plugin answers for a client or role that is not there (nothing to take away).
_NOT_THERE = ("not found",)


class BrokerRefused(RuntimeError):
    """The broker's plugin did not carry out a command."""


def device_client(site: str, device: str) -> str:
    """A device's client (user name, client id): its certificate's common name."""
    return device_client_id(site, device)


def device_role(site: str, device: str) -> str:
    return f"hafen-device-{site}.{device}"


def device_rights(site: str, device: str, password: str | None = None) -> list[dict[str, Any]]:
    """The plugin's commands that give a device its client and role (and nothing else); with
    a ``password``, the device signs in with it beside its certificate, and the plugin then
    holds it to its client id and refuses it once its client is deleted."""
    reads = [
        protocol.own_commands(site, device),
        protocol.state_topic(site, device),
        protocol.acl_topic(site),
    ]
    acls = [
        _acl("publishClientSend", protocol.device_topics(site, device)),
        # ... but not its own commands: only the hub sends those (they are signed, so a
        # door could not fool itself; still, nothing needs it, so nothing may).
        _acl("publishClientSend", protocol.own_commands(site, device), allow=False, priority=1),
    ]
    for topic in reads:
        acls += [_acl("subscribePattern", topic), _acl("publishClientReceive", topic)]
    client = device_client(site, device)
    role = device_role(site, device)
    return [
        {"command": "createRole", "rolename": role, "acls": acls},
        {
            "command": "createClient",
            "username": client,
            "clientid": client,
            "roles": [{"rolename": role}],
            **({"password": password} if password is not None else {}),
        },
    ]


def device_removal(site: str, device: str) -> list[dict[str, Any]]:
    """The commands that take a device's client and role away again."""
    return [
        {"command": "deleteClient", "username": device_client(site, device)},
        {"command": "deleteRole", "rolename": device_role(site, device)},
    ]


@dataclass(frozen=True)
class ServiceRights:
    """A hub service's client: what it may publish and subscribe to (topic filters)."""

    name: str
    password: str
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()

    def commands(self) -> list[dict[str, Any]]:
        role = f"hafen-service-{self.name}"
        acls = [_acl("publishClientSend", t) for t in self.publish]
        for topic in self.subscribe:
            acls += [_acl("subscribePattern", topic), _acl("publishClientReceive", topic)]
        return [
            {"command": "createRole", "rolename": role, "acls": acls},
            {
                "command": "createClient",
                "username": self.name,
                "password": self.password,
                "roles": [{"rolename": role}],
            },
        ]


def hub_services(passwords: dict[str, str]) -> list[ServiceRights]:
    """The hub's own clients, each with only what its service does (``passwords`` by name):

    - ``hafen-ingest`` reads every door's events and states and sends acks and catch-up lists
      (both commands to one door);
    - ``hafen-publisher`` (``hafen hub serve``) sends the sites' lists and commands, and
      reads the doors' certificate renewal requests (hub.services.renewal_desk), which it
      answers with a command.

    The third, the plugin's admin, is made by ``mosquitto_ctrl dynsec init``. Ingest's workers
    share their subscriptions (``$share/{group}/...``); mosquitto 2.0 checks a shared
    subscription against its whole filter, so the role names both spellings."""
    reads = (protocol.ALL_EVENTS, protocol.ALL_STATES)
    return [
        ServiceRights(
            INGEST,
            passwords[INGEST],
            publish=(protocol.all_commands("ack"), protocol.all_commands("acl_snapshot")),
            subscribe=(*reads, *(protocol.shared("+", topic) for topic in reads)),
        ),
        ServiceRights(
            PUBLISHER,
            passwords[PUBLISHER],
            publish=(protocol.ALL_LISTS, protocol.ALL_COMMANDS),
            subscribe=(protocol.ALL_RENEWALS,),
        ),
    ]


def narrowed_admin() -> list[dict[str, Any]]:
    """What ``mosquitto_ctrl dynsec init`` gives its admin beyond the plugin's own topics,
    taken away: subscribing to every topic (``#``) and the broker's ``$SYS``. The admin's
    password lives on the hub, which has no business reading what doors say through it.
    (Its ``publishClientReceive`` entries stay: the plugin's answers reach it by them.)"""
    return [
        {"command": "removeRoleACL", "rolename": "admin", "acltype": "subscribePattern",
         "topic": topic}
        for topic in ("#", "$SYS/#")
    ]  # fmt: skip


def _acl(kind: str, topic: str, allow: bool = True, priority: int = 0) -> dict[str, Any]:
    """One entry of a role; of the entries matching a topic, the highest priority decides."""
    return {"acltype": kind, "topic": topic, "priority": priority, "allow": allow}


class BrokerRights:
    """Sends commands to the broker's dynamic-security plugin as its admin, and waits for the
    answer to each; raises BrokerRefused naming the first command the plugin refused."""

    def __init__(
        self,
        host: str,
        port: int,
        login: BrokerLogin,
    ) -> None:
        """``login``: the plugin's admin client (and over TLS, the hub's certificate)."""
        self._answers: dict[str, dict[str, Any]] = {}
        #: The commands waited for: only their answers are kept (nothing else piles up).
        self._waiting: set[str] = set()
        self._answered = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"hafen-hub-rights-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        login.apply(self.client)
        self.client.on_message = self._on_answer
        #: The broker closed the connection (the plugin does when the admin's role changes).
        self._gone = False
        self.client.on_disconnect = self._on_gone
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe(protocol.BROKER_CONTROL_RESPONSE, qos=1)
        if not subscribed.wait(ANSWER_SECONDS):
            self.close()
            raise BrokerRefused("the broker did not let the hub read its control answers")

    @property
    def usable(self) -> bool:
        """Connected, and never dropped: paho reconnects on its own, but with a clean start
        that loses the subscription to the plugin's answers."""
        return self.client.is_connected() and not self._gone

    def close(self) -> None:
        # Disconnect first: the network thread then ends at once, where loop_stop alone waits
        # out its select (a second, on every enrolment and revocation).
        self.client.disconnect()
        with contextlib.suppress(AttributeError):  # paho's race, as in hub.mqtt.HubClient.stop
            self.client.loop_stop()

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        """Carry out one command and return the plugin's whole answer (``data``, ``error``)."""
        return self._carry_out([command])[0]

    def replace(self, commands: list[dict[str, Any]]) -> None:
        """Carry out ``commands`` (a client's and role's creation) after taking away any client
        or role of the same names: running it again gives the same rights, not an error. All
        in one message to the plugin, which carries them out in order."""
        removal = []
        for command in commands:
            if command["command"] == "createClient":
                removal.append({"command": "deleteClient", "username": command["username"]})
            elif command["command"] == "createRole":
                removal.append({"command": "deleteRole", "rolename": command["rolename"]})
        removal.sort(key=lambda c: c["command"] != "deleteClient")  # clients before roles
        self._check(removal + commands, [_NOT_THERE] * len(removal) + [()] * len(commands))

    def remove(self, commands: list[dict[str, Any]]) -> None:
        """Carry out deletions; one of something that is not there is not an error."""
        self.send(commands, tolerate=_NOT_THERE)

    def send(self, commands: list[dict[str, Any]], tolerate: tuple[str, ...] = ()) -> None:
        """Carry out ``commands`` in order, in one message to the plugin (one wait for its
        answer, ANSWER_SECONDS at most: enrolment holds a transaction meanwhile); an error
        whose text contains one of ``tolerate`` is passed over, any other raises."""
        self._check(commands, [tolerate] * len(commands))

    def _check(self, commands: list[dict[str, Any]], tolerated: list[tuple[str, ...]]) -> None:
        if not commands:
            return
        for command, answer, tolerate in zip(
            commands, self._carry_out(commands), tolerated, strict=True
        ):
            error = str(answer.get("error", ""))
            if error and not any(t in error.lower() for t in tolerate):
                raise BrokerRefused(f"{command['command']}: {error}")

    def _carry_out(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The plugin's answers to ``commands``, sent as one message, in their order."""
        tags = [uuid.uuid4().hex for _ in commands]
        with self._answered:
            self._waiting, self._answers = set(tags), {}
        payload = json.dumps(
            {"commands": [{**c, "correlationData": t} for c, t in zip(commands, tags, strict=True)]}
        )
        self.client.publish(protocol.BROKER_CONTROL, payload, qos=1)
        with self._answered:
            answered = self._answered.wait_for(
                lambda: len(self._answers) == len(tags) or self._gone, ANSWER_SECONDS
            )
            self._waiting = set()
            if not answered or len(self._answers) != len(tags):
                raise BrokerRefused(f"no answer to {commands[0]['command']}")
            return [self._answers.pop(t) for t in tags]

    def _on_gone(self, *_args: object) -> None:
        with self._answered:
            self._gone = True
            self._answered.notify_all()

    def _on_answer(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            answers = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        with self._answered:
            for answer in answers:
                if isinstance(answer, dict) and answer.get("correlationData") in self._waiting:
                    self._answers[answer["correlationData"]] = answer
            self._answered.notify_all()


class AdminSession:
    """The hub's admin connection to the plugin, opened when first needed and kept: every
    enrolment and revocation would otherwise pay for a connection (over TLS, a handshake),
    which made a revocation take twice as long as the command itself.

    ``rights()`` lends the connection to one sequence of commands at a time; one that failed
    (no answer, a dropped link) is closed, and the next sequence opens a new one."""

    def __init__(self, host: str, port: int, login: BrokerLogin) -> None:
        self.host, self.port, self.login = host, port, login
        self._lock = threading.Lock()
        self._rights: BrokerRights | None = None

    @contextlib.contextmanager
    def rights(self) -> Iterator[BrokerRights]:
        """The connection, for the ``with`` block alone; raises BrokerRefused or OSError when
        the broker cannot be reached."""
        with self._lock:
            if self._rights is not None and not self._rights.usable:
                self._drop()
            if self._rights is None:
                self._rights = BrokerRights(self.host, self.port, self.login)
            try:
                yield self._rights
            except BrokerRefused as refused:
                if str(refused).startswith("no answer"):
                    self._drop()
                raise

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._rights is not None:
            self._rights.close()
            self._rights = None
