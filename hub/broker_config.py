"""The network broker's listener: TLS only, every client with an identity and rights of its own.

Rendered by ``hafen hub broker-config`` into mosquitto's ``conf.d`` beside the shipped
``hafen.conf`` (which is about losing nothing); Debian's ``mosquitto.conf`` includes both.
The dynamic-security plugin's path differs per architecture (``/usr/lib/<triplet>/``), so the
file is rendered on the broker's machine rather than shipped as it is.

Clients must show a certificate from the network's CA that is not on its revocation list,
and sign in with a user name and password of their own, which the plugin checks (holding each
device to its client id, hub.broker_rights); the plugin denies whatever a role does not allow.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from hub.pki import CaFiles

#: The MQTT-over-TLS port (IANA).
TLS_PORT = 8883


@dataclass(frozen=True)
class BrokerListener:
    """Where the broker listens and what it reads."""

    ca: CaFiles
    plugin: Path
    rights_file: Path
    port: int = TLS_PORT
    bind: str = ""  # every address

    def render(self) -> str:
        address = f" {self.bind}" if self.bind else ""
        return "\n".join(
            [
                "# hafen: the network's broker listener (rendered by `hafen hub broker-config`).",
                "# TLS only: no plain listener is opened.",
                "per_listener_settings false",
                "allow_anonymous false",
                f"plugin {self.plugin}",
                f"plugin_opt_config_file {self.rights_file}",
                f"listener {self.port}{address}",
                f"cafile {self.ca.ca_cert}",
                f"certfile {self.ca.broker_cert}",
                f"keyfile {self.ca.broker_key}",
                f"crlfile {self.ca.crl}",
                "tls_version tlsv1.2",
                "require_certificate true",
                # The certificate proves membership of the network; the user name and password,
                # checked by the plugin, tie the client to its id (mosquitto#2999).
                "use_identity_as_username false",
                "",
            ]
        )


def find_plugin(root: Path = Path("/usr/lib")) -> Path:
    """mosquitto's dynamic-security plugin as Debian installs it, on any architecture."""
    found = sorted(root.glob("*/mosquitto_dynamic_security.so"))
    if not found:
        raise FileNotFoundError(
            "mosquitto's dynamic-security plugin is not installed (Debian: apt install mosquitto)"
        )
    return found[0]


def init_dynamic_security(path: Path, admin: str, password: str) -> None:
    """The dynamic-security plugin's file with its admin client, made by mosquitto's own
    ``mosquitto_ctrl dynsec init`` (the password on its standard input, never in its
    arguments, which every user of the machine can read). Refuses to replace a file."""
    if path.exists():
        raise FileExistsError(path)
    subprocess.run(
        ["mosquitto_ctrl", "dynsec", "init", str(path), admin],
        input=f"{password}\n{password}\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=30,
    )
