"""A real SMTP server for the hub's mail tests (aiosmtpd on a free port): it keeps what it is
sent, may refuse the first few mails (as a mail server that is busy or down for a while
does), and may speak STARTTLS or TLS with a sign-in, with a certificate of the tests' CA."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from hub.mail import Mailer
from hub.settings_sections import MailSettings
from sim.broker import free_port
from tests.support.tls import make_ca

SENDER = "hafen@hub.example"
#: The sign-in the TLS servers accept.
LOGIN = ("hub@mail.example", "a mail password")


@dataclass
class Inbox:
    """What the server was sent, and how many more mails it refuses (with ``refusal``)."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: int = 0
    refusal: str = "451 4.3.0 Mail server busy, try again later"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            return self.refusal
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def text(self, index: int = -1) -> str:
        """The plain-text body of a message received."""
        part = self.messages[index].get_body(("plain",))
        assert part is not None
        return part.get_content().replace("\r\n", "\n")

    def link(self, index: int = -1) -> str:
        """The first hub link in a message's text."""
        found = re.search(r"https?://\S+", self.text(index))
        assert found is not None, self.text(index)
        return found.group()


@dataclass(frozen=True)
class SmtpServer:
    inbox: Inbox
    port: int
    #: The CA that signed the server's certificate (None: no TLS).
    ca_file: Path | None = None

    def settings(self, security: str = "none", **overrides: Any) -> MailSettings:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "security": security,
            "sender": SENDER,
        }
        if self.ca_file is not None:
            values["ca_file"] = self.ca_file
        return MailSettings.model_validate(values | overrides)

    def mailer(self, security: str = "none", password: str | None = None, **kw: Any) -> Mailer:
        """A mailer that looks often and retries fast (tests wait for it)."""
        return Mailer(
            self.settings(security, **kw),
            password,
            poll_seconds=0.05,
            first_retry=timedelta(milliseconds=50),
        )


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == LOGIN
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535


@contextmanager
def smtp_server(
    tmp_path: Path | None = None, tls: str | None = None, port: int | None = None
) -> Iterator[SmtpServer]:
    """An SMTP server on ``port`` (default: a free one) of 127.0.0.1: plain (``tls`` None),
    ``starttls`` (the sign-in required, and only after STARTTLS) or ``tls`` (TLS from the
    first byte)."""
    inbox, port = Inbox(), port or free_port()
    options: dict[str, Any] = {}
    ca_file = None
    if tls is not None:
        assert tmp_path is not None
        files = make_ca(tmp_path, "mail-ca")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(files.broker_cert, files.broker_key)
        ca_file = files.ca_cert
        if tls == "starttls":
            options |= {
                "tls_context": context,
                "require_starttls": True,
                "auth_required": True,
                "authenticator": _authenticate,
            }
        else:
            # The whole connection is TLS, which aiosmtpd's own check cannot see.
            options |= {
                "ssl_context": context,
                "authenticator": _authenticate,
                "auth_require_tls": False,
            }
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer(inbox, port, ca_file)
    finally:
        controller.stop()
