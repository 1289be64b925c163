"""The sections of the hub's settings, one per part of the hub (hub/settings.py loads them).

Secrets are never values here, only the files that hold them (``*_file``), read when a
command needs them; a ConfigError then names the key and the file.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from hafen.config import ConfigError, PublicKeyText, Section, mask_credentials
from hub.addresses import EMAIL_PATTERN
from hub.settings_keys import secret_text

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from hub.mqtt import BrokerLogin
    from hub.services.places import Gazetteer

Port = Annotated[int, Field(ge=1, le=65535)]
#: The bounds of ``http.max_body_bytes``: room for a sign-in form, and no more than a hub
#: that answers hundreds of requests at once can hold for each.
MIN_BODY_BYTES, MAX_BODY_BYTES = 4096, 64 << 20


#: Query parameters by which a driver takes a password (libpq's, psycopg's).
_PASSWORD_PARAMETERS = frozenset({"password", "passwd", "sslpassword"})


def _has_password(url: URL) -> bool:
    """Whether a SQLAlchemy URL carries a password, before the host or in its query."""
    return url.password is not None or any(key.lower() in _PASSWORD_PARAMETERS for key in url.query)


class StoreSettings(Section):
    """The hub's SQL store."""

    #: A SQLAlchemy URL; unset: a SQLite file in the state directory of the user running the
    #: command (``hub.db.default_url()``, ``~/.local/state/hafen/hub.db``).
    url: str | None = None
    #: A file holding the database password, for a URL that has none.
    password_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _sqlalchemy_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = make_url(value)
            url.get_dialect()  # the dialect's module only, not its driver
        except (ArgumentError, NoSuchModuleError):
            raise ValueError(
                "not a SQLAlchemy URL such as sqlite:////var/lib/hafen/hub.db or"
                " postgresql+psycopg://hafen@localhost/hafen"
            ) from None
        if url.host is not None and "@" in url.host:
            raise ValueError("write an @ in the user or password as %40")
        if _has_password(url) and (info.context or {}).get("layer") == "file":
            raise ValueError(
                "a password does not go into the config: put it in a file that only the hub"
                " can read and name that file in store.password_file"
            )
        return value

    def reads_password_file(self) -> bool:
        """Whether connecting reads ``password_file``: only for a URL given without one."""
        from sqlalchemy.engine import make_url

        return (
            self.password_file is not None
            and self.url is not None
            and not _has_password(make_url(self.url))
        )

    def sqlalchemy_url(self) -> str:
        """The URL to connect to: the default filled in, the password read from its file.

        Creates the default SQLite file's directory, as ``hub.db.default_url`` does."""
        from sqlalchemy.engine import make_url

        from hub.db import default_url

        url = self.url or default_url()
        if not self.reads_password_file():
            return url  # the default SQLite file, or the environment's or --db's own password
        assert self.password_file is not None
        password = secret_text("store.password_file", self.password_file)
        return make_url(url).set(password=password).render_as_string(hide_password=False)

    def shown(self) -> str:
        """The store as it may be printed: never a password."""
        return mask_credentials(self.url) if self.url else "the default SQLite file"


class BrokerTlsSettings(Section):
    """TLS to the broker: the network's CA and the hub's client certificate (``hafen hub
    init-ca`` makes all three in its directory)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


class BrokerClientSettings(Section):
    """One hub service's own client at the broker (``hafen hub broker-setup`` makes it)."""

    username: Annotated[str, Field(min_length=1, max_length=64)]
    password_file: Path


#: The hub's services, each with its own client and rights at the broker: ``ingest`` reads
#: events and states and sends acks and catch-up lists; ``publisher`` (``serve``) sends lists
#: and commands; ``admin`` (``serve``, ``provision``) gives devices their rights and takes them.
BROKER_SERVICES = ("ingest", "publisher", "admin")


class BrokerSettings(Section):
    """The MQTT broker that the doors and the hub share.

    Without ``[broker.tls]`` the hub speaks plain TCP (tests, the demo, a broker on the same
    machine); the shipped broker listens with TLS only (``hafen hub broker-config``). Each of
    the hub's services signs in as its own client: ``[broker.ingest]``, ``[broker.publisher]``
    and ``[broker.admin]``, each a user name and a password file."""

    host: Annotated[str, Field(min_length=1)] = "localhost"
    port: Port = 1883
    #: Where devices reach the broker, told to each at enrolment (its certificate names it,
    #: ``init-ca --broker-host``); unset: ``host`` and ``port``.
    device_host: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    device_port: Port | None = None
    tls: BrokerTlsSettings | None = None
    ingest: BrokerClientSettings | None = None
    publisher: BrokerClientSettings | None = None
    admin: BrokerClientSettings | None = None

    def login(self, service: str | None) -> BrokerLogin:
        """How ``service`` (one of BROKER_SERVICES; None: no client, TLS only) signs in: its
        client (the password read from its file now; a ConfigError names the key) and the
        TLS files."""
        from hub.mqtt import BrokerLogin

        client: BrokerClientSettings | None = getattr(self, service) if service else None
        username = password = None
        if client is not None:
            username = client.username
            password = secret_text(f"broker.{service}.password_file", client.password_file)
        tls = self.tls
        if tls is None:
            return BrokerLogin(username, password)
        for key in ("ca_file", "cert_file", "key_file"):
            secret_text(f"broker.tls.{key}", getattr(tls, key))  # there, readable, not empty
        return BrokerLogin(username, password, tls.ca_file, tls.cert_file, tls.key_file)

    def shown(self) -> str:
        return f"{self.host}:{self.port}" + (" (TLS)" if self.tls is not None else "")


class CaSettings(Section):
    """The network's certificate authority (``hafen hub init-ca``): with it, ``[broker.tls]``
    and ``[broker.admin]``, devices enrol at this hub (``hafen provision``)."""

    #: The directory init-ca wrote (the CA's key stays there, readable by the hub's user only).
    directory: Path | None = None

    def check(self) -> None:
        """The CA's key, certificate and revocation list are there and readable."""
        if self.directory is None:
            return
        for name in ("ca.key", "ca.crt", "ca.crl"):
            secret_text("ca.directory", self.directory / name)


def _address_list(value: object) -> object:
    """Accept a TOML list or one comma-separated string (as the flag and a variable give)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class HttpSettings(Section):
    """The API and dashboard (``hafen hub serve``)."""

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Port = 8080
    #: Reverse proxies whose X-Forwarded-For/-Proto are believed: addresses or networks, or
    #: "*" if nothing but the proxy can reach the hub (anyone could claim any address).
    forwarded_allow_ips: Annotated[list[str], BeforeValidator(_address_list)] = Field(
        default_factory=lambda: ["127.0.0.1"]
    )
    #: Where browsers reach the hub behind a proxy, e.g. https://hub.example.org.
    public_url: str | None = None
    #: Request bodies larger than this many bytes are refused (413) before anything reads
    #: them; no route takes files, so 1 MiB is far above any request the hub is sent.
    max_body_bytes: Annotated[int, Field(ge=MIN_BODY_BYTES, le=MAX_BODY_BYTES)] = 1 << 20
    #: The longest an API token may live, in days (a sign-in lasts 12 hours): an admin's
    #: long-lived token for a script ends after this too, however long it was asked for.
    token_max_days: Annotated[int, Field(ge=1, le=3660)] = 365

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        if "*" in value:
            if len(value) > 1:
                raise ValueError("'*' trusts every address: give it alone")
            return value
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry[:60]!r} is not an IP address or network (such as 10.0.0.0/8)"
                ) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("write the URL browsers use, e.g. https://hub.example.org")
        return value


class InfluxSettings(Section):
    """Mirror what ingest stores into InfluxDB 2 (for Grafana); off while ``url`` is unset."""

    url: str | None = None
    org: Annotated[str, Field(min_length=1)] = "hafen"
    bucket: Annotated[str, Field(min_length=1)] = "hafen"
    #: A file holding the InfluxDB API token.
    token_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("write InfluxDB's URL, e.g. http://localhost:8086")
        return value

    def token(self) -> str:
        """The token from its file, or "" without one."""
        if self.token_file is None:
            return ""
        return secret_text("ingest.influx.token_file", self.token_file)


class IngestSettings(Section):
    """The ingest workers (``hafen hub ingest``)."""

    #: This worker's name, unique per worker: run several with different names to share load.
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")] = "1"
    influx: InfluxSettings = InfluxSettings()


class RetentionSettings(Section):
    """GDPR retention (``hafen hub retention``, daily by systemd/hafen-hub-retention.timer)."""

    #: Door events older than this many days are pseudonymised.
    days: Annotated[int, Field(ge=1, le=36_500)] = 180


class MailSettings(Section):
    """The SMTP server through which ``hafen hub serve`` sends mail (invitations, booking
    confirmations). Without ``[mail]`` nothing is queued: whoever invites someone is shown
    the link to hand over instead. Links in the mail point at ``http.public_url``."""

    host: Annotated[str, Field(min_length=1, max_length=253)]
    #: Default: 587 for starttls, 465 for tls, 25 for none.
    port: Port | None = None
    #: ``starttls`` (upgrade a plain connection, usually port 587), ``tls`` (TLS from the
    #: first byte, usually port 465) or ``none`` (a relay on this machine or a trusted network).
    security: Literal["starttls", "tls", "none"] = "starttls"
    #: Sign in at the server as this user (with ``password_file``); unset: no sign-in.
    username: Annotated[str, Field(min_length=1, max_length=254)] | None = None
    password_file: Path | None = None
    #: The From: address of every mail the hub sends.
    sender: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]
    #: CA certificates to trust for the server's certificate (a private relay); unset: the
    #: system's.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _login_needs_tls(self) -> MailSettings:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("set both mail.username and mail.password_file, or neither")
        if self.username is not None and self.security == "none":
            raise ValueError(
                "mail.username over mail.security = none would send the password in the"
                ' clear: use "starttls" or "tls"'
            )
        return self

    def smtp_port(self) -> int:
        """The port to connect to: ``port``, else the usual one for ``security``."""
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]

    def password(self) -> str | None:
        """The sign-in password from its file (None without a sign-in); a ConfigError names
        the key and the file."""
        if self.password_file is None:
            return None
        return secret_text("mail.password_file", self.password_file)

    def check(self) -> None:
        """The password and CA files are there and readable."""
        self.password()
        if self.ca_file is not None:
            secret_text("mail.ca_file", self.ca_file)

    def shown(self) -> str:
        return f"{self.host}:{self.smtp_port()} ({self.security})"


class BookingSettings(Section):
    """The network's booking system (``hafen hub serve``)."""

    #: A GeoNames postal-code dump (e.g. DE.txt from https://download.geonames.org/export/zip/):
    #: the postcodes and towns that finding a space takes (``/spaces?near=``), besides those
    #: in the sites' own addresses. Read once when the hub starts; at most 64 MiB.
    gazetteer: Path | None = None

    def places(self) -> Gazetteer | None:
        """The gazetteer, if one is configured; a ConfigError names the key and what is
        wrong with the file."""
        if self.gazetteer is None:
            return None
        from hub.services.places import GazetteerError, load_gazetteer

        try:
            return load_gazetteer(self.gazetteer)
        except GazetteerError as exc:
            raise ConfigError(f"booking.gazetteer: {exc}") from None


class ReleasesSettings(Section):
    """Where the hub keeps the wheels of edge software releases (``hafen hub release add``),
    one directory per version, which doors download."""

    directory: Path | None = None
    #: The release keys' public halves (`hafen hub release key`), which enrolment writes into
    #: a new door's ``[updates] release_keys``: the release key itself may stay offline.
    public_keys: list[PublicKeyText] = Field(default_factory=list, max_length=8)

    def require_directory(self) -> Path:
        """The directory, made if missing; a ConfigError if none is set."""
        if self.directory is None:
            raise ConfigError("releases.directory: not set; name where the releases' wheels live")
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory
