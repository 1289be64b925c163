"""The files hafen ships beside the code: the example config validates, the CLI imports lightly."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from edge.agent.config import EdgeConfig, load_edge_config
from edge.updater.settings import UpdatesSettings
from hafen.config import load_toml_config, validate_config
from hub.pki import CaFiles
from hub.settings import HubSettings
from tests.support.edge import CARD_KEY_HEX

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_is_valid(tmp_path):
    key = tmp_path / "card.key"
    key.write_text(CARD_KEY_HEX)
    text = (ROOT / "docs/edge.example.toml").read_text().replace("/etc/hafen/card.key", str(key))
    config = tmp_path / "edge.toml"
    config.write_text(text)
    cfg = load_edge_config(config)
    assert isinstance(cfg, EdgeConfig)
    assert cfg.door.strike.pin == 17 and cfg.reader.path == "tty:AMA0:pn532"


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key of ``model``'s config, dotted, descending into sections."""
    keys = set()
    for name, field in model.model_fields.items():
        section = _section_of(field.annotation)
        if section is not None:
            keys |= _keys(section, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def _section_of(annotation: object) -> type[BaseModel] | None:
    """The section a field holds: ``Section`` or ``Section | None`` (an optional table)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _flat(table: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def test_hub_example_config_is_valid_and_shows_every_key_with_its_default(tmp_path):
    text = (ROOT / "docs/hub.example.toml").read_text()
    settings = load_toml_config(ROOT / "docs/hub.example.toml", HubSettings)
    assert settings.store.url == "sqlite:////var/lib/hafen/hub.db"
    assert settings.signing.key_file == Path("/etc/hafen/hub-signing.pem")
    # Keys unset by default are there commented out ("# key = value"): set, they are valid too.
    uncommented = re.sub(r"(?m)^# (?=[a-z_]+ = )", "", text)
    complete = validate_config(tomllib.loads(uncommented), HubSettings, source="uncommented")
    shown = _flat(tomllib.loads(uncommented))
    assert set(shown) == _keys(HubSettings)
    assert complete.http.public_url == "https://hub.example.org"
    # A value marked "# default" is the model's default.
    defaults = _flat(HubSettings().model_dump(mode="json"))
    section = ""
    for line in text.splitlines():
        if header := re.fullmatch(r"\[([a-z_.]+)\]", line):
            section = header.group(1) + "."
        elif marked := re.match(r"([a-z_]+) = (.+?)\s+# default", line):
            key = section + marked.group(1)
            assert tomllib.loads(f"v = {marked.group(2)}")["v"] == defaults[key], key


def test_hub_example_config_passes_check_config(tmp_path):
    from hafen.cli import app

    signing = tmp_path / "hub-signing.pem"
    assert CliRunner().invoke(app, ["hub", "keygen", "--key", str(signing)]).exit_code == 0
    (tmp_path / "card.key").write_text(CARD_KEY_HEX)
    text = (ROOT / "docs/hub.example.toml").read_text()
    text = text.replace("/etc/hafen/", f"{tmp_path}/").replace("/var/lib/hafen/", f"{tmp_path}/")
    for name in ("ca/ca.crt", "ca/ca.key", "ca/ca.crl", "ca/hub.crt", "ca/hub.key",
                 *_broker_passwords()):  # fmt: skip
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("as init-ca and broker-setup write them\n")
    config = tmp_path / "hub.toml"
    config.write_text(text)
    result = CliRunner().invoke(app, ["hub", "check-config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{config}: ok (store sqlite:///{tmp_path}/hub.db,")


def _broker_passwords() -> list[str]:
    return [f"broker/hafen-{service}.password" for service in ("ingest", "publisher", "admin")]


def test_cli_help_imports_no_hardware_or_database_library():
    """An install without the edge extras can still run `hafen --help`."""
    code = (
        "import sys; from typer.testing import CliRunner; from hafen.cli import app;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "heavy = {'nfc', 'gpiozero', 'sqlite3', 'serial', 'paho'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_systemd_unit_runs_the_agent_as_a_notify_service_with_a_watchdog():
    service = _unit("hafen-edge.service")["Service"]
    assert service["Type"] == "notify" and service["WatchdogSec"]
    # A hand-over's new version is a child of the old one until it is made MAINPID: its
    # notifications (READY, the watchdog) must count.
    assert service["NotifyAccess"] == "all"


def test_systemd_unit_starts_the_agent_through_the_launcher_which_may_update_the_releases():
    """The unit runs the launcher (provisioning/launch.py, installed as /opt/hafen/launch),
    which finds the releases beside itself, in ``edge/``: where the updater writes them by
    default (``[updates] root``), and a path the unit lets the agent write."""
    service = _unit("hafen-edge.service")["Service"]
    launcher = "/opt/hafen/launch"
    assert service["ExecStart"] == f"{launcher} edge run --config /etc/hafen/edge.toml"
    assert service["ExecStartPre"] == f"{launcher} edge check-config /etc/hafen/edge.toml"
    releases = UpdatesSettings.model_fields["root"].default
    assert Path(launcher).parent / "edge" == releases
    assert f"-{releases}" in service["ReadWritePaths"].split()
    assert (ROOT / "provisioning/launch.py").read_text().startswith("#!/usr/bin/python3 -I\n")


def test_the_hub_units_run_serve_and_named_ingest_workers_hardened_like_the_door():
    """Issue 14: the hub's services under systemd. Each starts only with a config that
    checks out, and an ingest worker is never given up on (the broker keeps what it has not
    acknowledged, so a restart loses nothing)."""
    edge = _unit("hafen-edge.service")["Service"]
    for name, command in (
        ("hafen-hub.service", "hafen hub serve"),
        ("hafen-hub-ingest@.service", "hafen hub ingest --name %i"),
    ):
        unit = _unit(name)
        service = unit["Service"]
        assert service["ExecStart"] == f"/opt/hafen/venv/bin/{command}"
        assert service["ExecStartPre"] == "/opt/hafen/venv/bin/hafen hub check-config"
        assert (service["User"], service["KillSignal"]) == ("hafen", "SIGTERM")
        hardening = [k for k in edge if k.startswith(("Protect", "Restrict", "NoNew", "Lock"))]
        assert all(service[k] == edge[k] for k in hardening if k != "RestrictAddressFamilies")
        assert service["CapabilityBoundingSet"] == ""
    ingest = _unit("hafen-hub-ingest@.service")
    assert ingest["Service"]["Restart"] == "always"
    assert ingest["Unit"]["StartLimitIntervalSec"] == "0"


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    unit.read_string((ROOT / "systemd" / name).read_text())
    return unit


#: Run the CLI as on a core-only install: the extras' libraries cannot be imported.
CORE_ONLY = """
import sys

# None in sys.modules is how Python marks a module that cannot be imported.
for name in ("nfc", "gpiozero", "serial", "paho", "sdnotify", "fastapi", "uvicorn", "sqlalchemy",
             "alembic", "argon2", "jinja2", "matplotlib", "psycopg", "influxdb_client"):
    sys.modules[name] = None
from hafen.cli import app
app(sys.argv[1:], prog_name="hafen")
"""


def _core_only(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CORE_ONLY, *args], capture_output=True, text=True, timeout=60
    )


def test_a_core_only_install_runs_help_and_version():
    assert _core_only("--help").returncode == 0
    version = _core_only("version")
    assert version.returncode == 0 and version.stdout.strip()


def test_a_core_only_install_names_the_extra_a_command_needs():
    demo = _core_only("demo")
    assert demo.returncode == 3, demo.stderr
    assert "pip install 'hafen[demo]'" in demo.stderr and "Traceback" not in demo.stderr
    serve = _core_only("hub", "serve")
    assert serve.returncode == 3 and "pip install 'hafen[hub]'" in serve.stderr
    run = _core_only("edge", "run", "--simulate")
    assert run.returncode == 3 and "pip install 'hafen[edge]'" in run.stderr


def test_a_core_only_install_checks_configs_loads_lists_and_makes_keys(tmp_path):
    """What a technician does with only the core installed: no extra is asked for."""
    key = tmp_path / "card.key"
    key.write_text(CARD_KEY_HEX)
    text = (ROOT / "docs/edge.example.toml").read_text().replace("/etc/hafen/card.key", str(key))
    text = text.replace("/var/lib/hafen/edge.db", str(tmp_path / "edge.db"))
    config = tmp_path / "edge.toml"
    config.write_text(text)
    checked = _core_only("edge", "check-config", str(config))
    assert checked.returncode == 0 and ": ok" in checked.stdout, checked.stderr
    acl = tmp_path / "acl.json"
    acl.write_text(
        '{"site": "leipzig-ost", "version": 1, "plans": [{"id": "flex"}],'
        ' "members": [{"id": "anna", "grants": [{"plan": "flex"}]}],'
        ' "cards": [{"uid": "04A1B2C3D4E5F6", "member": "anna"}]}'
    )
    loaded = _core_only("edge", "load-acl", str(acl), "-c", str(config))
    assert loaded.returncode == 0 and "version 1: 1 cards" in loaded.stdout, loaded.stderr
    made = _core_only("hub", "keygen", "--key", str(tmp_path / "signing.pem"))
    assert made.returncode == 0 and "public key" in made.stdout, made.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not here")
def test_systemd_verifies_every_shipped_unit(tmp_path):
    """`systemd-analyze verify` in a root of our own: the system's units, ours, and the
    command they start (verify checks that it is executable)."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    shipped = sorted((ROOT / "systemd").iterdir())
    for unit in shipped:
        shutil.copy(unit, units / unit.name)
    for command in ("opt/hafen/launch", "opt/hafen/venv/bin/hafen", "bin/systemctl"):
        stand_in = root / command
        stand_in.parent.mkdir(parents=True, exist_ok=True)
        stand_in.write_text("#!/bin/sh\n")
        stand_in.chmod(0o755)
    verify = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *(unit.name for unit in shipped)],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stderr
    # The hub may rewrite the revocation list there, and the broker reloads it from there.
    assert "-/etc/hafen/ca" in (units / "hafen-hub.service").read_text().split("ReadWritePaths=")[1]
    crl_path = (units / "hafen-broker-crl.path").read_text()
    assert f"PathChanged={CaFiles(Path('/etc/hafen/ca')).crl}" in crl_path
    assert "${" not in (units / "hafen-hub-retention.service").read_text(), (
        "the retention job reads its settings from the config file, not from flags that an"
        " unset variable would leave empty"
    )


def test_the_shipped_broker_config_bounds_packets_as_the_clients_do():
    """One number bounds a packet everywhere: the broker refuses bigger publishes, and every
    client tells the broker the same limit when it connects."""
    from hafen.protocol import MAX_PACKET_BYTES
    from sim.broker import SHIPPED_CONF_DIR

    settings = dict(
        line.split(None, 1)
        for line in (SHIPPED_CONF_DIR / "hafen.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert int(settings["max_packet_size"]) == MAX_PACKET_BYTES
