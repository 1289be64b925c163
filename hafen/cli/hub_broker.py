"""`hafen hub broker-config` and `broker-setup`: the network's broker, shut to all but its own.

Two steps, because the broker must load its rights before anyone can change them:

1. ``broker-config`` (on the broker's machine, as root) prints the TLS-only listener for
   mosquitto's ``conf.d`` and, the first time, makes the dynamic-security plugin's file with
   its admin client, whose password it writes into ``--secrets-dir``;
2. with mosquitto (re)started, ``broker-setup`` signs in as that admin and gives the hub's
   services their own clients (``hafen-ingest``, ``hafen-publisher``), each with a password
   file beside the admin's, and narrows the admin to the plugin's own topics. Running it
   again keeps their passwords and resets their rights.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from hafen.cli.hub_settings import ConfigOption, fail, load_settings, read_secret

SecretsDir = Annotated[
    Path,
    typer.Option(help="Where the broker clients' password files are (created 0700)."),
]
RightsFile = Annotated[
    Path,
    typer.Option(help="The dynamic-security plugin's file (made if it is missing)."),
]
Owner = Annotated[
    str | None,
    typer.Option(help="The hub's user, who gets the password files (as root: `hafen`)."),
]


def broker_config_command(
    directory: Annotated[
        Path, typer.Option("--ca-dir", help="The CA's files, as init-ca wrote them.")
    ] = Path("/etc/hafen/ca"),
    rights_file: RightsFile = Path("/var/lib/mosquitto/dynamic-security.json"),
    secrets_dir: SecretsDir = Path("/etc/hafen/broker"),
    owner: Owner = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The TLS port.")] = 8883,
    bind: Annotated[str, typer.Option(help="The address to listen on; default: all.")] = "",
) -> None:
    """Print the broker's TLS-only listener for mosquitto's conf.d (beside hafen.conf), and
    make the plugin's rights file with its admin the first time."""
    from hub.broker_config import BrokerListener, find_plugin, init_dynamic_security
    from hub.broker_rights import ADMIN
    from hub.pki import CaFiles

    files = CaFiles(directory)
    missing = [str(p) for p in (files.ca_cert, files.broker_cert, files.broker_key, files.crl)
               if not p.exists()]  # fmt: skip
    if missing:
        raise fail(f"--ca-dir: missing {', '.join(missing)}; run `hafen hub init-ca`")
    try:
        plugin = find_plugin()
    except FileNotFoundError as exc:
        raise fail(str(exc), 1) from None
    if not rights_file.exists():
        password = _password(secrets_dir, ADMIN, owner)
        try:
            init_dynamic_security(rights_file, ADMIN, password)
        except (OSError, ValueError) as exc:
            raise fail(f"--rights-file: cannot make {rights_file}: {exc}", 1) from None
        _give_to_broker(rights_file)
        typer.echo(
            f"made {rights_file} with the admin client {ADMIN}"
            f" (its password: {secrets_dir / (ADMIN + '.password')})",
            err=True,
        )
    typer.echo(BrokerListener(files, plugin, rights_file, port, bind).render(), nl=False)


def broker_setup_command(
    config: ConfigOption = None,
    secrets_dir: SecretsDir = Path("/etc/hafen/broker"),
    owner: Owner = None,
) -> None:
    """Give the hub's services their own clients and rights at the running broker."""
    from hub.broker_rights import (
        ADMIN,
        INGEST,
        PUBLISHER,
        BrokerRefused,
        BrokerRights,
        hub_services,
        narrowed_admin,
    )
    from hub.mqtt import BrokerLogin

    settings = load_settings(config, {})
    broker = settings.broker
    if broker.admin is not None:
        admin = read_secret(lambda: broker.login("admin"))
    else:
        admin_file = secrets_dir / f"{ADMIN}.password"
        if not admin_file.is_file():
            raise fail(f"no [broker.admin] in the settings and no {admin_file}")
        tls = read_secret(lambda: broker.login(None))
        admin = BrokerLogin(
            ADMIN, admin_file.read_text().strip(), tls.ca_file, tls.cert_file, tls.key_file
        )
    services = (INGEST, PUBLISHER)
    passwords = {name: _password(secrets_dir, name, owner) for name in services}

    def as_admin() -> BrokerRights:
        try:
            return BrokerRights(broker.host, broker.port, admin)
        except (OSError, BrokerRefused) as exc:
            where = f"{broker.shown()} as {ADMIN}"
            raise fail(f"cannot reach the broker at {where}: {exc}", 1) from None

    rights = as_admin()
    try:
        for service in hub_services(passwords):
            rights.replace(service.commands())
    except BrokerRefused as exc:
        raise fail(f"the broker refused: {exc}", 1) from None
    finally:
        rights.close()
    for command in narrowed_admin():
        # The plugin disconnects a client whose role changed (without an answer): each
        # change on a connection of its own, and what the role holds is read back after.
        rights = as_admin()
        with contextlib.suppress(BrokerRefused):
            rights.remove([command])
        rights.close()
    rights = as_admin()
    try:
        role = rights.ask({"command": "getRole", "rolename": "admin"})
    finally:
        rights.close()
    acls = role.get("data", {}).get("role", {}).get("acls", [])
    if any(a.get("acltype") == "subscribePattern" and a.get("topic") == "#" for a in acls):
        raise fail("the broker's admin may still read every topic: run broker-setup again", 1)
    typer.echo("the hub's clients at the broker, for the hub's settings:")
    for section, name in (("ingest", services[0]), ("publisher", services[1]), ("admin", ADMIN)):
        typer.echo(f"\n[broker.{section}]\nusername = {name!r}")
        typer.echo(f"password_file = '{secrets_dir / (name + '.password')}'")


def _password(directory: Path, name: str, owner: str | None) -> str:
    """The password in ``directory/name.password``; a new one (written 0600, given to
    ``owner`` on the open file) if none."""
    from hafen.files import write_atomically

    path = directory / f"{name}.password"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    uid = gid = -1
    if owner:
        import pwd

        try:
            user = pwd.getpwnam(owner)
        except KeyError:
            raise fail(f"--owner: no user {owner!r}", 1) from None
        uid, gid = user.pw_uid, user.pw_gid
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        os.chown(directory, uid, gid)  # made just now, in a directory of root's
    password = secrets.token_urlsafe(32)
    write_atomically(path, password.encode() + b"\n", 0o600, uid, gid)
    return password


def _give_to_broker(path: Path) -> None:
    """The plugin's file holds the clients' password hashes: owner-only, and the broker's
    user's (the plugin writes it) when there is one."""
    import pwd

    os.chmod(path, 0o600)
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    if os.geteuid() == 0:
        os.chown(path, user.pw_uid, user.pw_gid)
