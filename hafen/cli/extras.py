"""Which optional extra each command group needs, and a clear word when it is missing.

A core-only install (``pip install hafen``) has the CLI but not the libraries of the door
agent or the hub; their commands then name the extra to install instead of failing with a
traceback deep inside an import.
"""

from __future__ import annotations

from importlib.util import find_spec

import typer

#: The extras of pyproject.toml and the import names that tell whether each is installed.
EXTRAS: dict[str, tuple[str, ...]] = {
    "edge": ("nfc", "gpiozero", "serial", "paho", "sdnotify", "tomli_w"),
    "hub": (
        "fastapi",
        "uvicorn",
        "sqlalchemy",
        "alembic",
        "argon2",
        "jinja2",
        "matplotlib",
        "segno",
    ),
    "demo": ("nfc", "gpiozero", "serial", "paho", "fastapi", "sqlalchemy", "matplotlib"),
}

EXIT_MISSING_EXTRA = 3


def missing_modules(extra: str) -> list[str]:
    """The libraries of ``extra`` that this install lacks."""
    return [name for name in EXTRAS[extra] if find_spec(name) is None]


def require_extra(command: str, extra: str) -> None:
    """Stop ``command`` with a hint to install ``extra`` if any of its libraries is missing."""
    missing = missing_modules(extra)
    if missing:
        typer.echo(
            f"{command} needs the '{extra}' extra ({', '.join(missing)} not installed):"
            f" pip install 'hafen[{extra}]'",
            err=True,
        )
        raise typer.Exit(EXIT_MISSING_EXTRA)
