"""A network set up as the docs say, command by command: the CA (`hafen hub init-ca`), the
broker from the rendered TLS-only listener (`broker-config`), the hub's services' clients
(`broker-setup`), the hub (ingest, publisher and its HTTP API, with its settings file), and
devices brought in by `hafen provision device add` and `hafen provision enrol`."""

from __future__ import annotations

import dataclasses
import getpass
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import tomli_w
from gpiozero import Device as GpioDevice
from gpiozero.pins.mock import MockFactory
from typer.testing import CliRunner

from edge.agent.agent import EdgeAgent
from edge.agent.config import EdgeConfig, load_edge_config
from edge.agent.store import EdgeStore
from hafen.cli import app
from hafen.protocol import DeviceState
from hub import db
from hub.access_lists import AclPublisher
from hub.app import create_app
from hub.device_identity import DeviceAuthority
from hub.ingest.worker import IngestWorker
from hub.keys import generate_key
from hub.mqtt import HubClient
from hub.pki import CaFiles
from hub.server import hub_server
from hub.services.release_downloads import DeviceReleases
from hub.services.renewal_desk import RenewalDesk, RenewalLimits
from hub.settings import HubSettings, load_hub_settings
from sim.broker import SHIPPED_CONF_DIR, free_port
from sim.card_emulator import EmulatedCard
from sim.door import shut_door
from tests.support.edge import CARD_KEY, CARD_KEY_HEX, edge_config_dict, free_udp_port
from tests.support.hub import migrated_sqlite
from tests.support.waiting import wait_for

runner = CliRunner()


def hafen(*args: str) -> str:
    """Run a `hafen` command as a technician would; its output, or an AssertionError."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


class TlsBroker:
    """mosquitto with the shipped settings and the listener `hafen hub broker-config`
    rendered: TLS only, certificates required, the dynamic-security plugin."""

    def __init__(self, root: Path, files: CaFiles, plain: bool = False) -> None:
        """``plain``: a plain TCP listener too (``plain_port``), with the same sign-in by
        password and the same rights, for measuring what TLS costs beside it."""
        self.root = root
        self.files = files
        self.port = free_port()
        self.plain_port = free_port() if plain else None
        self.secrets = root / "broker-secrets"
        rendered = hafen(
            "hub", "broker-config", "--ca-dir", str(files.directory),
            "--rights-file", str(root / "dynamic-security.json"),
            "--secrets-dir", str(self.secrets), "--port", str(self.port), "--bind", "127.0.0.1",
        )  # fmt: skip
        listener = rendered[rendered.index("# hafen:") :]
        self.config = root / "mosquitto.conf"
        self.config.write_text(
            f"include_dir {SHIPPED_CONF_DIR}\npersistence_location {root}/\n"
            f"log_dest file {root / 'mosquitto.log'}\nuser {getpass.getuser()}\n"
            + listener
            + (f"listener {self.plain_port} 127.0.0.1\n" if plain else "")
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> TlsBroker:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: "listen socket on port" in self.log(), 10), self.log()
        return self

    def log(self) -> str:
        path = self.root / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def reload(self) -> None:
        """What `systemctl reload mosquitto` does: SIGHUP."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@dataclass
class Enrolled:
    """A device as enrolment left it: its config, agent and (simulated) card reader."""

    name: str
    config: EdgeConfig
    agent: EdgeAgent
    store: EdgeStore
    card: EmulatedCard
    #: This Pi's pins (each device its own, though they share a process).
    pins: MockFactory

    @property
    def connected(self) -> bool:
        return self.agent.link is not None and self.agent.link.connected

    def stop(self) -> None:
        self.agent.stop()
        self.store.close()


class ProvisionedNetwork:
    """The whole network over TLS, set up through the shipped commands.

    ``device_lifetime``: how long the hub's certificates for devices are valid (a short one
    makes a door renew at once); ``renewal_limits``: the hub's bounds on renewal. ``https``:
    the hub answers over HTTPS with a certificate from the network's own CA (for
    ``localhost``), as a hub behind no public CA would: a Pi trusts it only when told to."""

    def __init__(
        self,
        root: Path,
        url: str | None = None,
        device_lifetime: timedelta | None = None,
        renewal_limits: RenewalLimits | None = None,
        https: bool = False,
        releases: Path | None = None,
        release_keys: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.https = https
        #: Where the hub keeps releases; with it, doors may download them (issue 17).
        self.releases = releases
        self.device_lifetime = device_lifetime
        self.renewal_limits = renewal_limits
        self.files = CaFiles(root / "ca")
        hafen("hub", "init-ca", "--dir", str(self.files.directory), "--broker-host", "localhost")
        self.broker = TlsBroker(root, self.files).start()
        self.key = generate_key(root / "hub-signing.pem")
        (root / "card.key").write_text(CARD_KEY_HEX)
        self.config = root / "hub.toml"
        store = url or migrated_sqlite(root / "hub.db")
        self.config.write_text(
            f"[store]\nurl = '{store}'\n"
            f"[broker]\nhost = 'localhost'\nport = {self.broker.port}\n"
            f"[broker.tls]\nca_file = '{self.files.ca_cert}'\n"
            f"cert_file = '{self.files.hub_cert}'\nkey_file = '{self.files.hub_key}'\n"
            f"[ca]\ndirectory = '{self.files.directory}'\n"
            f"[signing]\nkey_file = '{root / 'hub-signing.pem'}'\n"
            f"[cards]\nhash_key_file = '{root / 'card.key'}'\n"
            f"[releases]\npublic_keys = {list(release_keys)!r}\n"
        )
        printed = hafen(
            "hub", "broker-setup", "-c", str(self.config), "--secrets-dir", str(self.broker.secrets)
        )
        self.config.write_text(self.config.read_text() + printed.split("\n", 1)[1])
        self.settings: HubSettings = load_hub_settings(self.config, {})
        self.engine = db.connect(self.settings.store.sqlalchemy_url())
        self.devices: list[Enrolled] = []
        self._start_hub()

    def _start_hub(self) -> None:
        broker = self.settings.broker
        authority = DeviceAuthority.from_settings(self.settings, self.key, CARD_KEY)
        assert authority is not None
        if self.device_lifetime is not None:
            authority = dataclasses.replace(authority, device_lifetime=self.device_lifetime)
        self.authority = authority
        # As `hafen hub serve` does: the publisher's connection takes the doors' renewals.
        self.renewals = RenewalDesk(
            self.engine,
            authority,
            self.key,
            lambda topic, payload: self.client.publish(topic, payload),
            self.renewal_limits,
        ).start()
        self.client = HubClient(
            broker.host,
            broker.port,
            "hafen-hub-api",
            login=broker.login("publisher"),
            subscriptions=self.renewals.subscriptions(),
            on_message=self.renewals.take_message,
        )
        self.client.start()
        self.publisher = AclPublisher(
            self.engine, self.key, self.client.publish, self.client.publish_many
        )
        self.worker = IngestWorker(
            self.engine, broker.host, broker.port, self.key, card_key=CARD_KEY,
            login=broker.login("ingest"),
            on_state=self._catch_up,
        )  # fmt: skip
        self.worker.start()
        device_releases = None
        if self.releases is not None:
            device_releases = DeviceReleases.load(self.files.ca_cert, self.releases)
        api = create_app(
            self.engine,
            CARD_KEY,
            self.publisher,
            authority=self.authority,
            device_releases=device_releases,
        )
        tls = {}
        if self.https:  # the broker's certificate names localhost, and is the CA's
            tls = {
                "ssl_certfile": str(self.files.broker_cert),
                "ssl_keyfile": str(self.files.broker_key),
            }
        self.server = hub_server(api, port=0, **tls)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert wait_for(lambda: self.server.started, 10)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"https://localhost:{port}" if self.https else f"http://127.0.0.1:{port}"

    def _catch_up(self, site: str, device: str, state: DeviceState) -> None:
        """As `hafen hub ingest` does: a device behind on its list gets a snapshot."""
        self.publisher.catch_up(site, device, state.acl_version)

    def add_site(self, site: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(db.sites.insert().values(id=site, timezone="Europe/Berlin"))

    def token_for(self, site: str, device: str) -> str:
        """`hafen provision device add`, as the technician runs it at the hub."""
        printed = hafen(
            "provision", "device", "add", site, device, "-c", str(self.config),
            "--hub-url", self.url, "--no-qr",
        )  # fmt: skip
        found = re.search(r"hafen provision enrol \S+ (\S+)", printed)
        assert found, printed
        return found.group(1)

    def enrol(self, site: str, device: str, token: str | None = None) -> Enrolled:
        """`hafen provision enrol` on the device, then its agent started from what it wrote."""
        token = token or self.token_for(site, device)
        pi = self.root / f"pi-{site}-{device}"
        pi.mkdir(exist_ok=True)
        hardware = pi / "wiring.toml"
        hardware.write_text(tomli_w.dumps(wiring(free_udp_port())))
        hafen(
            "provision", "enrol", self.url, token, "--etc", str(pi / "etc"),
            "--state-dir", str(pi / "state"), "--hardware", str(hardware),
        )  # fmt: skip
        config = load_edge_config(pi / "etc" / "edge.toml")
        pins = GpioDevice.pin_factory = MockFactory()  # each Pi its own pins
        store = EdgeStore(config.store.path, "normal")
        agent = EdgeAgent(config, store)
        agent.start()
        shut_door(config.door)
        card = EmulatedCard(config.reader.path)
        enrolled = Enrolled(f"{site}.{device}", config, agent, store, card, pins)
        self.devices.append(enrolled)
        return enrolled

    def close(self) -> None:
        for device in self.devices:
            device.stop()
        self.server.should_exit = True
        self.thread.join(10)
        self.worker.stop()
        self.renewals.stop()
        self.publisher.close()
        self.client.stop()
        self.engine.dispose()
        self.broker.stop()


def wiring(reader_port: int) -> dict:
    """A Pi's wiring on the simulated hardware: the test door's reader (nfcpy's UDP driver
    on ``reader_port``) and pins, as tests.support.edge has them."""
    door = edge_config_dict(Path("."), reader=f"udp:127.0.0.1:{reader_port}")
    return {"reader": door["reader"], "door": door["door"]}


@pytest.fixture
def provisioned(tmp_path: Path) -> Iterator[ProvisionedNetwork]:
    """The network over TLS, set up through the shipped commands, its hub on SQLite."""
    network = ProvisionedNetwork(tmp_path)
    try:
        yield network
    finally:
        network.close()


@pytest.fixture
def provisioned_on_each_store(tmp_path: Path, hub_url: str) -> Iterator[ProvisionedNetwork]:
    """The same with the hub's store on SQLite, then on PostgreSQL: where tokens and
    revocations race."""
    network = ProvisionedNetwork(tmp_path, url=hub_url)
    try:
        yield network
    finally:
        network.close()
