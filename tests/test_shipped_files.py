"""The files hafen ships beside the code: the example config validates, the CLI imports lightly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import CARD_KEY_HEX

from edge.agent.config import EdgeConfig, load_edge_config

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
    unit = (ROOT / "systemd/hafen-edge.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit
    assert "ExecStart=/opt/hafen/venv/bin/hafen edge run --config /etc/hafen/edge.toml" in unit
