"""``hafen edge ...`` as a technician runs it, for the tests of its config and list commands:
a config written as TOML, the command run, and its failure read off stderr."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from hafen.cli import app
from tests.support.edge import edge_config_dict, toml_text

# Click >= 8.2 always keeps stderr apart (result.stderr) and also mixes it into result.output.
runner = CliRunner()


def write_config(tmp_path: Path, config: dict | None = None, name: str = "edge.toml") -> Path:
    path = tmp_path / name
    path.write_text(toml_text(config or edge_config_dict(tmp_path)), encoding="utf-8")
    return path


def run(*args: str):
    """Invoke ``hafen edge ...``; the command must end through its own exit, never a crash."""
    result = runner.invoke(app, ["edge", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result


def check(path: Path):
    return run("check-config", str(path))


def failed(result, code: int = 2) -> str:
    """Assert a failure with ``code`` reported on stderr only; return the message."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert result.stderr == result.output
    return result.stderr
