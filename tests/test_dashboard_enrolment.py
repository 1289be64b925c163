"""The fleet page's enrolment the whole way (issue 14): on a network set up with the shipped
commands, over TLS, a technician adds a device on the dashboard, the Pi runs the command the
page shows and is enrolled once, and the technician revokes it there: its client at the
broker is gone and its certificate on the revocation list. The hub is served by uvicorn with
its access log on, and no log line names the token."""

from __future__ import annotations

import logging
import shlex

import httpx
import pytest
import tomli_w
from cryptography import x509
from sqlalchemy import select

from hafen.cli import app as cli
from hub import db
from hub.app import create_app
from hub.auth import Role
from tests.support.edge import CARD_KEY, free_udp_port
from tests.support.enrolling import fleet_row, served, shown_command
from tests.support.hub import PASSWORD, add_user
from tests.support.provisioned import hafen, runner, wiring

pytestmark = pytest.mark.slow


def test_a_device_added_on_the_dashboard_enrols_once_and_is_revoked_there(
    provisioned, tmp_path, caplog
):
    net = provisioned
    net.add_site("leipzig-ost")
    add_user(net.engine, Role.TECHNICIAN)
    caplog.set_level(logging.DEBUG)
    dashboard = create_app(net.engine, CARD_KEY, net.publisher, authority=net.authority)
    # As `hafen hub serve` logs: uvicorn's access log, handed to the root logger here.
    with served(dashboard, log_level="debug", access_log=True, log_config=None) as url:
        browser = httpx.Client(base_url=url, follow_redirects=True)
        signed_in = browser.post("/ui/sign-in", data={"username": "tim", "password": PASSWORD})
        assert signed_in.status_code == 200
        form = {"site": "leipzig-ost", "device": "front-door", "kind": "door"}
        shown = browser.post("/ui/fleet/devices", data={**form, "valid_minutes": "30"})
        assert shown.status_code == 200 and "<svg" in shown.text
        command = shown_command(shown.text)
        # No public URL configured: the address the technician's browser used.
        assert command.startswith(f"hafen provision enrol {url} ")
        token = command.rsplit(" ", 1)[1]

        # On the Pi: the command from the page, with the Pi's own places and wiring.
        pi = tmp_path / "pi"
        (pi / "wiring.toml").parent.mkdir()
        (pi / "wiring.toml").write_text(tomli_w.dumps(wiring(free_udp_port())))
        on_pi = ["--state-dir", str(pi / "state"), "--hardware", str(pi / "wiring.toml")]
        enrolled = hafen(*shlex.split(command)[1:], "--etc", str(pi / "etc"), *on_pi)
        assert "enrolled as leipzig-ost/front-door" in enrolled
        again = runner.invoke(cli, [*shlex.split(command)[1:], "--etc", str(pi / "2"), *on_pi])
        assert again.exit_code == 1 and "was used" in again.output
        row = fleet_row(browser.get("/ui/fleet").text, "leipzig-ost/front-door")
        assert "not yet" not in row and "<time" in row and "data-revoked" not in row

        confirm = browser.get("/ui/sites/leipzig-ost/devices/front-door/revoke")
        assert confirm.status_code == 200
        revoked = browser.post("/ui/sites/leipzig-ost/devices/front-door/revoke")
        assert revoked.status_code == 200 and 'data-broker="done"' in revoked.text
        assert "1 certificate put on the revocation list" in revoked.text
        assert "connection dropped" in revoked.text
        assert ">revoked</span>" in browser.get("/ui/fleet").text
        browser.close()

    with net.engine.connect() as conn:
        assert conn.scalar(select(db.devices.c.revoked_at)) is not None
    with net.authority.rights() as rights:
        answer = rights.ask({"command": "getClient", "username": "leipzig-ost.front-door"})
        assert "not found" in answer.get("error", "").lower(), answer
    crl = x509.load_pem_x509_crl(net.files.crl.read_bytes())
    cert = x509.load_pem_x509_certificate((pi / "etc" / "tls" / "device.crt").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert 'POST /ui/fleet/devices HTTP/1.1" 200' in caplog.text, "the access log was read"
    assert token not in caplog.text, "no log line names the token"
