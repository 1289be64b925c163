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
    owner: Annotated[
        str | None,
        typer.Option(help="The hub's user, who gets the files (as root: `--owner hafen`)."),
    ] = None,
    broker_group: Annotated[
        str | None,
        typer.Option(help="The broker's group, which may read its key (`mosquitto`)."),
    ] = None,
) -> None:
    """Make the network's CA and the broker's TLS certificate; keys are never printed."""
    from cryptography import x509

    from hub.pki import CaFiles, fingerprint, hand_over, init_ca

    files = CaFiles(directory)
    try:
        ca, broker = init_ca(files, network, broker_host or [])
    except FileExistsError as exc:
        typer.echo(f"{exc.args[0]} exists already; refusing to replace the network's CA", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(f"--broker-host/--network: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        hand_over(files, owner, broker_group)
    except (LookupError, PermissionError) as exc:
        typer.echo(f"--owner/--broker-group: {exc}; the files stay yours", err=True)
        raise typer.Exit(1) from None
    names = ", ".join(
        str(n.value)
        for n in broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    )
    typer.echo(
        f"wrote {files.ca_cert} and {files.ca_key} (the CA; its key signs devices' certificates:"
        " keep it on the hub, for the hub's user only)"
    )
    typer.echo(f"wrote {files.broker_cert} and {files.broker_key} (for the broker: {names})")
    typer.echo(f"wrote {files.hub_cert} and {files.hub_key} (the hub services' client identity)")
    typer.echo(f"wrote {files.crl} (the revocation list the broker loads; empty)")
    typer.echo(f"CA fingerprint (SHA-256): {fingerprint(ca)}")
    typer.echo(f"broker certificate valid until {broker.not_valid_after_utc:%Y-%m-%d}")
