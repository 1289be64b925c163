"""The hub's mail: ``[mail]`` checked at load, the outbox written by services and sent by the
sender of ``hafen hub serve`` through a real SMTP server (aiosmtpd), tried again when the
server refuses or is away, and what failed kept for network admins."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from hafen.config import ConfigError, validate_config
from hub import db
from hub.mail import MAX_ATTEMPTS, MailSender
from hub.services.mail import Letter, queue_mail
from hub.settings import HubSettings
from sim.broker import free_port
from tests.support.hub import add_staff, api_client, as_user
from tests.support.smtp import LOGIN, SENDER, Inbox, SmtpServer, smtp_server
from tests.support.waiting import wait_for

ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hafen//test//\r\nEND:VCALENDAR\r\n"


def queue(engine, recipient: str = "anna@example.org", **letter) -> int:
    with engine.begin() as conn:
        return queue_mail(
            conn, Letter(recipient=recipient, subject="Hallo", body="Ein Text.", **letter)
        )


def outbox_row(engine, mail_id: int):
    with engine.connect() as conn:
        return conn.execute(select(db.mail_outbox).where(db.mail_outbox.c.id == mail_id)).one()


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mail", "says"),
    [
        ({"host": "smtp.example.org"}, "mail.sender: required key is missing"),
        (
            {"host": "h", "sender": "x@y", "username": "u"},
            "set both mail.username and mail.password_file, or neither",
        ),
        (
            {
                "host": "h",
                "sender": "x@y",
                "username": "u",
                "password_file": "/p",
                "security": "none",
            },
            "would send the password in the clear",
        ),
        ({"host": "h", "sender": "not an address"}, "mail.sender: String should match"),
        ({"host": "h", "sender": "x@y", "security": "ssl"}, "mail.security: Input should be"),
        ({"host": "h", "sender": "x@y", "server": "h"}, "mail.server: unknown key"),
    ],
)
def test_mail_settings_are_checked_at_load_and_errors_name_the_key(mail, says):
    with pytest.raises(ConfigError) as error:
        validate_config({"mail": mail}, HubSettings, source="hub.toml")
    assert says in str(error.value)


def test_mail_settings_read_the_password_file_and_default_the_port(tmp_path):
    secret = tmp_path / "mail-password"
    secret.write_text("s3cret\n")
    settings = validate_config(
        {
            "mail": {
                "host": "smtp.example.org",
                "sender": SENDER,
                "username": "u",
                "password_file": str(secret),
                "security": "tls",
            }
        },
        HubSettings,
    )
    assert settings.mail is not None and settings.mail.smtp_port() == 465
    assert settings.mail.password() == "s3cret" and settings.check_files() == []
    assert "mail smtp.example.org:465 (tls)" in settings.summary()
    secret.unlink()
    assert settings.check_files() == [f"mail.password_file: {secret}: no such file"]
    assert HubSettings().mail is None


# --- sending --------------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_goes_out_over_tls_with_a_sign_in(engine, tmp_path, security):
    with smtp_server(tmp_path, tls=security) as server:
        login = {"username": LOGIN[0], "password_file": tmp_path / "unused"}
        sender = MailSender(engine, server.mailer(security, LOGIN[1], **login))
        mail_id = queue(engine, ics=ICS)
        assert sender.send_due() == 1
        [message] = server.inbox.messages
        assert message["From"] == SENDER and message["To"] == "anna@example.org"
        assert message["Subject"] == "Hallo" and server.inbox.text() == "Ein Text.\n"
        [attachment] = list(message.iter_attachments())
        assert attachment.get_content_type() == "text/calendar"
        assert attachment.get_filename() == "booking.ics"
        assert attachment.get_content().replace("\r\n", "\n") == ICS.replace("\r\n", "\n")
    row = outbox_row(engine, mail_id)
    assert row.sent_at is not None and row.attempts == 1
    assert row.body == "" and row.ics is None  # a sent mail keeps no link


def test_a_wrong_sign_in_or_an_untrusted_certificate_keeps_the_mail_for_later(engine, tmp_path):
    with smtp_server(tmp_path, tls="starttls") as server:
        wrong = server.mailer("starttls", "not it", username=LOGIN[0], password_file=tmp_path)
        mail_id = queue(engine)
        MailSender(engine, wrong).send_due()
        assert "535" in outbox_row(engine, mail_id).last_error  # authentication failed
        with engine.begin() as conn:  # due again now
            conn.execute(db.mail_outbox.update().values(next_try_at=datetime.now(UTC)))
        login = {"username": LOGIN[0], "password_file": tmp_path, "ca_file": None}
        untrusted = server.mailer("starttls", LOGIN[1], **login)
        MailSender(engine, untrusted).send_due()
        assert "CERTIFICATE_VERIFY_FAILED" in outbox_row(engine, mail_id).last_error
        assert server.inbox.messages == []
    assert outbox_row(engine, mail_id).sent_at is None


def test_a_refusing_server_gets_the_mail_again_later_each_wait_longer(engine):
    with smtp_server() as server:
        server.inbox.refuse = 2
        mailer = server.mailer()
        sender = MailSender(engine, mailer)
        mail_id = queue(engine)
        start = datetime.now(UTC)
        assert sender.send_due(start) == 1
        first = outbox_row(engine, mail_id)
        assert first.sent_at is None and first.attempts == 1
        assert first.last_error.startswith("451 4.3.0")
        assert sender.send_due(start) == 0  # not due again yet
        second_try = db.aware(first.next_try_at)
        assert sender.send_due(second_try) == 1
        second = outbox_row(engine, mail_id)
        assert second.attempts == 2 and db.aware(second.next_try_at) - second_try >= timedelta(
            milliseconds=90
        )  # twice the first wait
        assert sender.send_due(db.aware(second.next_try_at)) == 1
        assert len(server.inbox.messages) == 1
    assert outbox_row(engine, mail_id).sent_at is not None


def test_a_server_away_then_back_gets_the_mail_without_a_request_waiting(engine):
    """The sender of a running hub: the server is away (nothing listens), the mail waits;
    the server comes back on that port and the mail goes out by itself."""
    port = free_port()
    mailer = SmtpServer(Inbox(), port).mailer()  # nothing listens there yet
    add_staff(engine)
    with api_client(engine, mail=mailer) as api:
        mail_id = queue(engine)
        assert wait_for(lambda: outbox_row(engine, mail_id).attempts >= 2, 10)
        assert "ConnectionRefusedError" in outbox_row(engine, mail_id).last_error
        with smtp_server(port=port) as server:
            with engine.begin() as conn:  # no need to wait out the doubled waits
                conn.execute(db.mail_outbox.update().values(next_try_at=datetime.now(UTC)))
            assert wait_for(lambda: len(server.inbox.messages) == 1, 10)
        assert wait_for(lambda: outbox_row(engine, mail_id).sent_at is not None, 5)
        admin = as_user(api, "nadia")
        [listed] = api.get("/mail/outbox", headers=admin).json()
        assert listed["sent_at"] is not None and "body" not in listed


def test_mail_refused_for_good_is_listed_as_failed_and_can_be_sent_again(engine):
    add_staff(engine)
    with smtp_server() as server, api_client(engine, mail=server.mailer()) as api:
        server.inbox.refuse, server.inbox.refusal = 1, "550 5.1.1 No such mailbox"
        mail_id = queue(engine, recipient="nobody@example.org")
        assert wait_for(lambda: outbox_row(engine, mail_id).attempts == MAX_ATTEMPTS, 10)
        admin = as_user(api, "nadia")
        [failed] = api.get("/mail/outbox", params={"failed": True}, headers=admin).json()
        assert failed["id"] == mail_id and failed["failed"] is True
        assert failed["last_error"] == "550 5.1.1 No such mailbox"
        assert server.inbox.messages == []
        again = api.post(f"/mail/outbox/{mail_id}/retry", headers=admin)
        assert again.status_code == 200 and again.json()["attempts"] == 0
        assert wait_for(lambda: len(server.inbox.messages) == 1, 10)
        assert api.get("/mail/outbox", params={"failed": True}, headers=admin).json() == []
        assert api.post(f"/mail/outbox/{mail_id}/retry", headers=admin).status_code == 404
        olga = as_user(api, "olga")
        assert api.get("/mail/outbox", headers=olga).status_code == 403


def test_two_senders_on_one_outbox_send_each_mail_once(engine):
    with smtp_server() as server:
        ids = [queue(engine, recipient=f"m{n}@example.org") for n in range(30)]
        senders = [MailSender(engine, server.mailer()) for _ in range(2)]
        rounds = [
            threading.Thread(target=lambda s=s: [s.send_due() for _ in range(3)]) for s in senders
        ]
        for thread in rounds:
            thread.start()
        for thread in rounds:
            thread.join()
        assert sorted(m["To"] for m in server.inbox.messages) == sorted(
            f"m{n}@example.org" for n in range(30)
        )
    assert all(outbox_row(engine, i).sent_at is not None for i in ids)


def test_a_letter_is_bounded_and_one_line_of_subject():
    with pytest.raises(ValueError, match="at most 16000"):
        Letter(recipient="a@b", subject="s", body="x" * 16_001)
    with pytest.raises(ValueError, match="recipient"):
        Letter(recipient="a@b\r\nBcc: everyone@example.org", subject="s", body="b")
    with pytest.raises(ValueError, match="at most 200"):
        Letter(recipient="a@b", subject="s" * 201, body="b")
