"""A mosquitto broker run by hafen itself: for tests, benchmarks and the demo.

It uses the same settings a site ships (provisioning/mosquitto/conf.d/hafen.conf), on its own
port and state directory, so it can be killed and restarted at will.
"""

from __future__ import annotations

import functools
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from hub.broker_config import find_plugin, init_dynamic_security

#: The broker settings hafen ships (package data of ``provisioning``).
SHIPPED_CONF_DIR = Path(str(files("provisioning"))) / "mosquitto" / "conf.d"


@dataclass(frozen=True)
class BrokerTls:
    """The files of a TLS listener: the CA that devices' certificates chain to, and the
    broker's own certificate and key (hub.pki makes all three)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    #: Clients must show a certificate from ``cafile`` ...
    require_certificate: bool = False
    #: ... whose common name is their user name; or else they sign in with a user name and
    #: password as well (which the dynamic-security plugin then checks, client id included).
    identity_as_username: bool = True
    #: The CA's revocation list: certificates on it cannot connect.
    crlfile: Path | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@functools.cache
def _setpriv_with_pdeathsig() -> str | None:
    """util-linux's ``setpriv``, if it is new enough (2.33) to set the parent-death signal."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    usage = subprocess.run([setpriv, "--help"], capture_output=True, text=True, check=False)
    return setpriv if "--pdeathsig" in usage.stdout else None


class LocalBroker:
    """A mosquitto process on 127.0.0.1:``port`` with persistence in ``state_dir``.

    With ``die_with_parent`` the broker is sent SIGTERM when the thread that started it ends,
    even by ``kill -9`` (Linux's parent-death signal, set by util-linux's ``setpriv``): the
    demo leaves no broker behind. Start it from the main thread then.

    With ``packet_limit=False`` it runs the shipped settings without ``max_packet_size``, as a
    broker someone set up by hand might: for showing what the clients' own bound does.
    """

    def __init__(
        self,
        state_dir: Path,
        port: int | None = None,
        die_with_parent: bool = False,
        packet_limit: bool = True,
        tls: BrokerTls | None = None,
        admin: tuple[str, str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.port = port or free_port()
        self.tls = tls
        #: With (user, password): the dynamic-security plugin, with this admin; it decides
        #: who may do what (hub.broker_rights), denying by default.
        self.admin = admin
        #: The TLS listener's port (with ``tls``), beside the plain one.
        self.tls_port = free_port() if tls else None
        self.die_with_parent = die_with_parent
        self.packet_limit = packet_limit
        self.process: subprocess.Popen[bytes] | None = None
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "mosquitto.conf"

    def write_config(self) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            f"include_dir {self._conf_dir()}\n"
            f"persistence_location {self.state_dir}/\n"
            f"log_dest file {self.state_dir / 'mosquitto.log'}\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # Run as whoever started it: as root, mosquitto would switch to its own user,
            # which cannot write this state directory.
            f"user {getpass.getuser()}\n"
            + (self._tls_listener() if self.tls else "")
            + (self._dynamic_security() if self.admin else "")
        )
        return self.config_path

    def _dynamic_security(self) -> str:
        assert self.admin is not None
        config = self.state_dir / "dynamic-security.json"
        if not config.exists():
            init_dynamic_security(config, *self.admin)
        return f"plugin {find_plugin()}\nplugin_opt_config_file {config}\n"

    def _tls_listener(self) -> str:
        assert self.tls is not None
        return (
            f"listener {self.tls_port} 127.0.0.1\n"
            f"cafile {self.tls.cafile}\n"
            f"certfile {self.tls.certfile}\n"
            f"keyfile {self.tls.keyfile}\n"
            "tls_version tlsv1.2\n"
            + (
                "require_certificate true\n"
                f"use_identity_as_username {str(self.tls.identity_as_username).lower()}\n"
                if self.tls.require_certificate
                else ""
            )
            + (f"crlfile {self.tls.crlfile}\n" if self.tls.crlfile else "")
        )

    def _conf_dir(self) -> Path:
        """The shipped settings; without the packet limit, a copy of them without it."""
        if self.packet_limit:
            return SHIPPED_CONF_DIR
        unlimited = self.state_dir / "conf.d"
        unlimited.mkdir(exist_ok=True)
        for conf in SHIPPED_CONF_DIR.glob("*.conf"):
            lines = conf.read_text().splitlines(keepends=True)
            kept = [line for line in lines if not line.startswith("max_packet_size")]
            (unlimited / conf.name).write_text("".join(kept))
        return unlimited

    def start(self, timeout: float = 10.0) -> LocalBroker:
        self.write_config()
        command = [self.binary, "-c", str(self.config_path)]
        if self.die_with_parent and (setpriv := _setpriv_with_pdeathsig()):
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own process group: Ctrl-C in a terminal reaches whoever started it, which
            # stops its clients first and the broker last.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.state_dir / "mosquitto.log"
                raise RuntimeError(f"mosquitto exited: {log.read_text() if log.exists() else ''}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        """Stop gracefully: mosquitto saves its state on the way out."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Kill -9: whatever was not yet saved is gone, as after a power cut."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
