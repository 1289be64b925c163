"""`hafen hub init-ca`: the network's certificate authority and the broker's certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def init_ca_command(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the CA's files go (created 0700).")
    ] = Path("/etc/hafen/ca"),
    network: Annotated[str, typer.Option(help="The network's name, in the CA's name.")] = "network",
    broker_host: Annotated[
        list[str] | None,
        typer.Option(help="A host name or address devices reach the broker by (repeatable)."),
    ] = None,
) -> None:
    """Make the network's CA and the broker's TLS certificate; keys are never printed."""
    from cryptography import x509

    from hub.pki import CaFiles, fingerprint, init_ca

    files = CaFiles(directory)
    try:
        ca, broker = init_ca(files, network, broker_host or [])
    except FileExistsError as exc:
        typer.echo(f"{exc.args[0]} exists already; refusing to replace the network's CA", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(f"--broker-host/--network: {exc}", err=True)
        raise typer.Exit(2) from None
    names = ", ".join(
        str(n.value)
        for n in broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    )
    typer.echo(
        f"wrote {files.ca_cert} and {files.ca_key} (the CA; keep the key offline if you can)"
    )
    typer.echo(f"wrote {files.broker_cert} and {files.broker_key} (for the broker: {names})")
    typer.echo(f"wrote {files.crl} (the revocation list the broker loads; empty)")
    typer.echo(f"CA fingerprint (SHA-256): {fingerprint(ca)}")
    typer.echo(f"broker certificate valid until {broker.not_valid_after_utc:%Y-%m-%d}")


def broker_config_command(
    directory: Annotated[
        Path, typer.Option("--ca-dir", help="The CA's files, as init-ca wrote them.")
    ] = Path("/etc/hafen/ca"),
    rights_file: Annotated[
        Path,
        typer.Option(help="The dynamic-security plugin's file (mosquitto_ctrl dynsec init)."),
    ] = Path("/var/lib/mosquitto/dynamic-security.json"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="The TLS port.")] = 8883,
    bind: Annotated[str, typer.Option(help="The address to listen on; default: all.")] = "",
) -> None:
    """Print the broker's TLS-only listener for mosquitto's conf.d (beside hafen.conf)."""
    from hub.broker_config import BrokerListener, find_plugin
    from hub.pki import CaFiles

    files = CaFiles(directory)
    missing = [str(p) for p in (files.ca_cert, files.broker_cert, files.broker_key, files.crl)
               if not p.exists()]  # fmt: skip
    if missing:
        typer.echo(f"--ca-dir: missing {', '.join(missing)}; run `hafen hub init-ca`", err=True)
        raise typer.Exit(2)
    try:
        plugin = find_plugin()
    except FileNotFoundError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(BrokerListener(files, plugin, rights_file, port, bind).render(), nl=False)
