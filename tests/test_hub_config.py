"""The hub's settings (hub/settings.py) through the real ``hafen hub`` commands: a config file,
environment variables over it, flags over both; ``check-config``; secrets never printed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sim.broker import LocalBroker, free_port
from tests.support.edge import CARD_KEY_HEX
from tests.support.processes import ProcessOutput
from tests.support.waiting import wait_for

runner = CliRunner()
HAFEN = str(Path(sys.executable).with_name("hafen"))


@pytest.fixture(autouse=True)
def _no_hub_settings_from_outside(monkeypatch):
    """The tests' environment holds only the variables each test sets."""
    for name in list(os.environ):
        if name.upper().startswith(("HAFEN_HUB", "HAFEN_RETENTION")):
            monkeypatch.delenv(name)


def hub(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    """Invoke ``hafen hub ...``; it must end through its own exit, never a crash."""
    from hafen.cli import app

    result = runner.invoke(app, ["hub", *args], env=env, input=input)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result


def failed(result, code: int = 2) -> str:
    """Assert a failure with ``code`` reported on stderr only; return the message."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    return result.stderr


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


def card_key(tmp_path: Path) -> Path:
    return write(tmp_path / "card.key", CARD_KEY_HEX + "\n")


def signing_key(tmp_path: Path) -> Path:
    """A signing key made the way an operator makes one: ``hafen hub keygen``."""
    path = tmp_path / "hub-signing.pem"
    assert hub("keygen", "--key", str(path)).exit_code == 0
    return path


def cutoff_days(output: str) -> int:
    """How many days back ``hafen hub retention`` pseudonymised, from what it printed."""
    stamp = output.split("from before ")[1].removesuffix(" UTC\n")
    cutoff = datetime.strptime(stamp, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    return round((datetime.now(UTC) - cutoff) / timedelta(days=1))


@pytest.fixture
def config(tmp_path) -> Path:
    """A config that sets the store and the retention period."""
    return write(
        tmp_path / "hub.toml",
        f'[store]\nurl = "{sqlite(tmp_path / "file.db")}"\n\n[retention]\ndays = 30\n',
    )


# --- precedence: file, environment, flags --------------------------------------------------------


def test_the_files_values_are_used(tmp_path, config):
    result = hub("retention", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert cutoff_days(result.stdout) == 30
    assert (tmp_path / "file.db").exists()


def test_the_environment_overrides_the_file(tmp_path, config):
    env = {
        "HAFEN_HUB__STORE__URL": sqlite(tmp_path / "env.db"),
        "HAFEN_HUB__RETENTION__DAYS": "60",
    }
    result = hub("retention", "--config", str(config), env=env)
    assert result.exit_code == 0, result.output
    assert cutoff_days(result.stdout) == 60
    assert (tmp_path / "env.db").exists() and not (tmp_path / "file.db").exists()


def test_a_flag_overrides_environment_and_file(tmp_path, config):
    env = {"HAFEN_HUB__STORE__URL": sqlite(tmp_path / "env.db"), "HAFEN_HUB__RETENTION__DAYS": "60"}
    db = sqlite(tmp_path / "flag.db")
    result = hub("retention", "-c", str(config), "--days", "90", "--db", db, env=env)
    assert result.exit_code == 0, result.output
    assert cutoff_days(result.stdout) == 90
    assert [p.name for p in tmp_path.glob("*.db")] == ["flag.db"]


def test_the_variable_names_the_file_and_the_option_beats_it(tmp_path, config):
    other = write(tmp_path / "other.toml", f'[store]\nurl = "{sqlite(tmp_path / "other.db")}"\n')
    result = hub("rebuild-rollups", env={"HAFEN_HUB_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "file.db").exists()
    result = hub("rebuild-rollups", "-c", str(other), env={"HAFEN_HUB_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "other.db").exists()


@pytest.mark.skipif(Path("/etc/hafen/hub.toml").exists(), reason="this machine has a hub config")
def test_without_a_file_the_defaults_apply(tmp_path):
    """No file, no variable: the store is the SQLite file in the user's state directory."""
    result = hub("retention", env={"HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert cutoff_days(result.stdout) == 180
    assert (tmp_path / ".local/state/hafen/hub.db").exists()


def test_the_other_commands_read_the_file(tmp_path, config):
    args = ("create-user", "nadia", "--role", "network_admin", "-c", str(config))
    created = hub(*args, input="correct horse battery\n" * 2)
    assert created.exit_code == 0, created.output
    with sqlite3.connect(tmp_path / "file.db") as conn:
        assert conn.execute("SELECT username FROM users").fetchall() == [("nadia",)]
    report = hub("report", "2026-05", "-c", str(config))
    assert report.exit_code == 0, report.output
    assert [p.name for p in tmp_path.glob("*.db")] == ["file.db"]


def test_create_user_refuses_a_taken_name_an_unknown_site_and_a_short_password(tmp_path, config):
    """Each is a clear line and exit 2, never a database traceback; nothing is stored."""
    args = ("create-user", "nadia", "--role", "network_admin", "-c", str(config))
    assert hub(*args, input="correct horse battery\n" * 2).exit_code == 0
    again = hub(*args, input="another long password\n" * 2)
    assert again.exit_code == 2 and "'nadia' exists" in again.output, again.output
    operator = ("create-user", "olga", "--role", "site_operator", "--site", "nowhere")
    unknown = hub(*operator, "-c", str(config), input="correct horse battery\n" * 2)
    assert unknown.exit_code == 2 and "no site 'nowhere'" in unknown.output, unknown.output
    short = hub(
        "create-user", "tim", "--role", "technician", "-c", str(config), input="short\n" * 2
    )
    assert short.exit_code == 2 and "password" in short.output and "short" not in short.stdout
    assert "Traceback" not in again.output + unknown.output + short.output
    with sqlite3.connect(tmp_path / "file.db") as conn:
        assert conn.execute("SELECT username FROM users").fetchall() == [("nadia",)]


def test_the_old_hub_env_variables_still_work_with_a_deprecation_warning(tmp_path, config):
    """/etc/hafen/hub.env of the retention timer set these before the config file existed."""
    old = {"HAFEN_RETENTION_DAYS": "45", "HAFEN_HUB_DB": sqlite(tmp_path / "old.db")}
    result = hub("retention", "-c", str(config), env=old)
    assert result.exit_code == 0, result.output
    assert cutoff_days(result.stdout) == 45 and (tmp_path / "old.db").exists()
    assert "HAFEN_RETENTION_DAYS is deprecated: set HAFEN_HUB__RETENTION__DAYS" in result.stderr
    newer = hub("retention", "-c", str(config), env={**old, "HAFEN_HUB__RETENTION__DAYS": "60"})
    assert cutoff_days(newer.stdout) == 60, "the new name wins where both are set"
    assert "HAFEN_RETENTION_DAYS is deprecated and ignored" in newer.stderr
    message = failed(hub("retention", "-c", str(config), env={"HAFEN_RETENTION_DAYS": "abc"}))
    assert "  HAFEN_RETENTION_DAYS: Input should be a valid integer" in message, message


# --- check-config -------------------------------------------------------------------------------


def test_check_config_passes_a_good_file_with_a_one_line_summary(tmp_path):
    key, cards = signing_key(tmp_path), card_key(tmp_path)
    path = write(
        tmp_path / "hub.toml",
        f'[store]\nurl = "{sqlite(tmp_path / "hub.db")}"\n\n[broker]\nhost = "mqtt.lan"\n\n'
        f'[signing]\nkey_file = "{key}"\n\n[cards]\nhash_key_file = "{cards}"\n\n'
        "[http]\nport = 8443\n",
    )
    result = hub("check-config", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{path}: ok (store {sqlite(tmp_path / 'hub.db')}, broker mqtt.lan:1883,"
        f" http 127.0.0.1:8443, signing key {key}, card key {cards})\n"
    )
    assert result.stderr == ""
    assert not (tmp_path / "hub.db").exists()  # checking opens no database


def test_check_config_takes_the_variables_and_the_default_file_name(tmp_path, config):
    env = {"HAFEN_HUB_CONFIG": str(config), "HAFEN_HUB__BROKER__PORT": "8883"}
    result = hub("check-config", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{config} + HAFEN_HUB__BROKER__PORT: ok (")
    assert "broker localhost:8883" in result.stdout


def test_check_config_fails_on_a_missing_or_broken_file(tmp_path):
    missing = tmp_path / "nope.toml"
    assert failed(hub("check-config", str(missing))) == f"{missing}: no such file\n"
    broken = write(tmp_path / "broken.toml", "[store\nurl = 1\n")
    assert failed(hub("check-config", str(broken))).startswith(f"{broken}: not valid TOML")
    named = hub("retention", env={"HAFEN_HUB_CONFIG": str(missing)})
    assert failed(named) == f"{missing}: no such file\n"


def test_unknown_keys_get_a_did_you_mean(tmp_path):
    path = write(
        tmp_path / "hub.toml",
        '[retention]\ndais = 30\n\n[ingest.influx]\nbukcet = "x"\n\n[brokr]\nport = 1\n',
    )
    assert failed(hub("check-config", str(path))) == (
        f"{path}: invalid config\n"
        "  ingest.influx.bukcet: unknown key (did you mean 'bucket'?)\n"
        "  retention.dais: unknown key (did you mean 'days'?)\n"
        "  brokr: unknown key (did you mean 'broker'?)\n"
    )
    # The services refuse the same file before they start anything.
    assert failed(hub("serve", "-c", str(path))).startswith(f"{path}: invalid config\n")


def test_an_unknown_variable_gets_a_did_you_mean_in_its_own_spelling(tmp_path, config):
    result = hub("retention", "-c", str(config), env={"HAFEN_HUB__RETENTION__DAIS": "3"})
    assert failed(result) == (
        "environment: invalid config\n"
        "  HAFEN_HUB__RETENTION__DAIS: unknown key (did you mean 'HAFEN_HUB__RETENTION__DAYS'?)\n"
    )


@pytest.mark.parametrize(
    ("toml", "line"),
    [
        (
            "[broker]\nport = 70000",
            "  broker.port: Input should be less than or equal to 65535 (got 70000)",
        ),
        ('[http]\nport = "x"', "  http.port: Input should be a valid integer"),
        ("[retention]\ndays = 0", "  retention.days: Input should be greater than or equal to 1"),
        (
            '[http]\nforwarded_allow_ips = ["proxy.lan"]',
            "  http.forwarded_allow_ips: 'proxy.lan' is not an IP address or network",
        ),
        (
            '[http]\nforwarded_allow_ips = ["*", "10.0.0.1"]',
            "  http.forwarded_allow_ips: '*' trusts every address: give it alone",
        ),
        (
            '[http]\npublic_url = "hub.example.org"',
            "  http.public_url: write the URL browsers use, e.g. https://hub.example.org"
            " (got 'hub.example.org')",
        ),
        ('[store]\nurl = "hub.db"', "  store.url: not a SQLAlchemy URL such as"),
        ('[ingest]\nname = "a b"', "  ingest.name: String should match pattern"),
        ('[ingest.influx]\nurl = "influx:8086"', "  ingest.influx.url: write InfluxDB's URL"),
        ('[signing]\nkey_file = ["a"]', "  signing.key_file: Input is not a valid path"),
    ],
)
def test_a_bad_value_names_the_key_and_the_reason(tmp_path, toml, line):
    path = write(tmp_path / "hub.toml", toml + "\n")
    message = failed(hub("check-config", str(path)))
    assert message.startswith(f"{path}: invalid config\n")
    assert line in message


def test_a_bad_variable_or_flag_is_named_as_written(tmp_path, config):
    env = failed(hub("retention", "-c", str(config), env={"HAFEN_HUB__BROKER__PORT": "x"}))
    assert env.startswith("environment: invalid config\n  HAFEN_HUB__BROKER__PORT: Input should")
    bad_flags = [
        (("serve", "--port", "0"), "--port: Input should be greater than or equal to 1"),
        (("serve", "--forwarded-allow-ips", "proxy.lan"), "--forwarded-allow-ips: 'proxy.lan'"),
        (("serve", "--public-url", "hub"), "--public-url: write the URL"),
        (("ingest", "--broker", "mqtt:99999"), "--broker: Input should be less than or equal"),
        (("ingest", "--name", "a/b"), "--name: String should match pattern"),
        (("ingest", "--influx-url", "influx"), "--influx-url: write InfluxDB's URL"),
        (("report", "2026-05", "--db", "nonsense"), "--db: not a SQLAlchemy URL"),
    ]
    for args, named in bad_flags:
        message = failed(hub(*args, "-c", str(config)))
        assert message.startswith("command line: invalid config\n  " + named), message


def test_the_old_flags_keep_their_spelling_and_meaning(tmp_path, config):
    """Flags that predate the config file still work, with no file at all."""
    db = sqlite(tmp_path / "flags.db")
    result = hub("retention", "--days", "7", "--db", db)
    assert result.exit_code == 0, result.output
    assert cutoff_days(result.stdout) == 7 and (tmp_path / "flags.db").exists()
    bad = failed(hub("ingest", "--broker", "localhost", "--key", "k.pem", "--db", db))
    assert "HOST:PORT" in bad
    # An empty --db (an unset variable in a unit's command line) was the default, now the file's.
    assert hub("rebuild-rollups", "--db", "", "-c", str(config)).exit_code == 0
    assert (tmp_path / "file.db").exists()


def test_loading_the_settings_imports_no_web_framework(tmp_path, config):
    code = (
        "import sys; from hafen.cli import app;"
        f"app(['hub', 'check-config', {str(config)!r}], standalone_mode=False);"
        "print(sorted({'fastapi', 'uvicorn', 'starlette', 'psycopg'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("[]\n")


# --- secrets ------------------------------------------------------------------------------------


def test_a_password_in_the_files_store_url_is_refused_and_not_shown(tmp_path):
    path = write(tmp_path / "hub.toml", '[store]\nurl = "postgresql://hafen:hunter2@db/hafen"\n')
    message = failed(hub("check-config", str(path)))
    assert "  store.url: a password does not go into the config" in message
    assert "store.password_file" in message and "hunter2" not in message


def test_secrets_from_the_environment_or_flags_are_used_but_never_printed(tmp_path):
    env = {"HAFEN_HUB__STORE__URL": "postgresql+psycopg://hafen:hunter2@db.lan/hafen"}
    result = hub("check-config", str(write(tmp_path / "empty.toml", "")), env=env)
    assert result.exit_code == 0, result.output
    assert "store postgresql+psycopg://hafen:***@db.lan/hafen" in result.stdout
    assert "hunter2" not in result.output
    bad = "postgresql+nodriver://hafen:hunter2@db.lan/hafen"
    message = failed(hub("report", "2026-05", "--db", bad))
    assert "--db: not a SQLAlchemy URL" in message and "hunter2" not in message


def test_a_passphrase_with_spaces_or_in_the_query_is_never_printed(tmp_path):
    empty = str(write(tmp_path / "empty.toml", ""))
    spaced = {"HAFEN_HUB__STORE__URL": "postgresql+psycopg://hafen:correct horse@db.lan/hafen"}
    result = hub("check-config", empty, env=spaced)
    assert result.exit_code == 0 and "hafen:***@db.lan" in result.stdout, result.output
    assert "horse" not in result.output
    query = {"HAFEN_HUB__STORE__URL": "postgresql+psycopg://hafen@db.lan/hafen?password=hunter2"}
    result = hub("check-config", empty, env=query)
    assert result.exit_code == 0 and "?password=***" in result.stdout, result.output
    assert "hunter2" not in result.output
    bad = "postgres+nodriver://hafen:my secret@db/hafen"
    message = failed(hub("report", "2026-05", "--db", bad))
    assert "secret" not in message
    in_file = (
        '[store]\nurl = "postgresql+psycopg://hafen@db/hafen?sslmode=require&password=hunter2"\n'
    )
    message = failed(hub("check-config", str(write(tmp_path / "hub.toml", in_file))))
    assert "a password does not go into the config" in message and "hunter2" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql:hafen:S3CRET@localhost/hafen",  # no // : not a URL, echoed in the error
        "postgresql+psycopg://door admin:S3CRET@db.lan/hafen",  # a space in the user
        "postgresql+psycopg://hafen:p@ssS3CRET@db.lan/hafen",  # an unescaped @
    ],
)
def test_a_mistyped_store_url_never_shows_its_password(tmp_path, url):
    result = hub(
        "check-config", str(write(tmp_path / "empty.toml", "")), env={"HAFEN_HUB__STORE__URL": url}
    )
    assert "S3CRET" not in result.output, result.output


def test_secret_values_are_never_keys_and_never_echoed(tmp_path):
    path = write(
        tmp_path / "hub.toml",
        '[ingest.influx]\ntoken = "s3cret-token"\n\n[cards]\nhash_key = "s3cret-key"\n',
    )
    message = failed(hub("check-config", str(path)))
    assert "  ingest.influx.token: unknown key (did you mean 'token_file'?)" in message
    assert "  cards.hash_key: unknown key (did you mean 'hash_key_file'?)" in message
    assert "s3cret" not in message


def test_check_config_reads_the_secret_files_without_showing_them(tmp_path):
    key = signing_key(tmp_path)
    wrong_key = write(tmp_path / "card.key", "not-hex-s3cret\n")
    token = write(tmp_path / "influx.token", "")
    path = write(
        tmp_path / "hub.toml",
        f'[signing]\nkey_file = "{wrong_key}"\n\n[cards]\nhash_key_file = "{key}"\n\n'
        f'[ingest.influx]\nurl = "http://localhost:8086"\ntoken_file = "{token}"\n\n'
        f'[store]\nurl = "postgresql+psycopg://hafen@db.lan/hafen"\n'
        f'password_file = "{tmp_path / "db-password"}"\n',
    )
    message = failed(hub("check-config", str(path)))
    assert message == (
        f"{path}: invalid config\n"
        f"  signing.key_file: {wrong_key}: not an unencrypted Ed25519 private key in PEM"
        " (`hafen hub keygen` makes one)\n"
        f"  cards.hash_key_file: {key}: the card hash key is at least 32 hex digits (16 bytes)\n"
        f"  ingest.influx.token_file: {token}: is empty\n"
        f"  store.password_file: {tmp_path / 'db-password'}: no such file\n"
    )
    assert "s3cret" not in message and "PRIVATE KEY" not in message


def test_check_config_passes_secret_files_that_no_command_would_read(tmp_path):
    """An InfluxDB token without an InfluxDB URL; a password file beside a URL (from the
    environment) that has its own password: ingest and serve never open either."""
    path = write(
        tmp_path / "hub.toml",
        f'[ingest.influx]\ntoken_file = "{tmp_path / "no-token"}"\n\n'
        f'[store]\npassword_file = "{tmp_path / "no-password"}"\n',
    )
    env = {"HAFEN_HUB__STORE__URL": "postgresql+psycopg://hafen:hunter2@db.lan/hafen"}
    result = hub("check-config", str(path), env=env)
    assert result.exit_code == 0, result.output


def test_a_missing_key_file_is_named(tmp_path, config):
    missing = tmp_path / "nope.pem"
    message = failed(hub("ingest", "-c", str(config), "--key", str(missing)))
    assert message == f"signing.key_file: {missing}: no such file\n"
    cards = failed(hub("serve", "-c", str(config), "--card-key-file", str(missing)))
    assert cards == f"cards.hash_key_file: {missing}: no such file\n"
    env = {"HAFEN_HUB__STORE__PASSWORD_FILE": str(missing)}
    assert failed(hub("report", "2026-05", "-c", str(config), env=env)) == (
        f"store.password_file: {missing}: no such file\n"
    )
    assert not (tmp_path / "file.db").exists()  # nothing was started


def test_ingest_without_a_signing_key_says_where_to_set_one(config):
    message = failed(hub("ingest", "-c", str(config)))
    assert "ingest needs the hub's signing key" in message
    assert "[signing] key_file" in message and "--key" in message


def test_ingest_without_the_card_key_says_where_to_set_it(tmp_path):
    key = signing_key(tmp_path)
    path = write(
        tmp_path / "hub.toml",
        f'[store]\nurl = "{sqlite(tmp_path / "hub.db")}"\n\n[signing]\nkey_file = "{key}"\n',
    )
    message = failed(hub("ingest", "-c", str(path)))
    assert "ingest needs the network's card key" in message
    assert "[cards] hash_key_file" in message and "--card-key-file" in message
    assert not (tmp_path / "hub.db").exists()  # nothing was started


# --- the services, as processes -----------------------------------------------------------------


def start(*args: str, env: dict[str, str]) -> tuple[subprocess.Popen, ProcessOutput]:
    process = subprocess.Popen(
        [HAFEN, "hub", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    return process, ProcessOutput(process)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_listens_where_the_environment_says_over_the_file(tmp_path):
    file_port, env_port = free_port(), free_port()
    path = write(
        tmp_path / "hub.toml",
        f'[store]\nurl = "{sqlite(tmp_path / "hub.db")}"\n\n[http]\nport = {file_port}\n\n'
        f'[cards]\nhash_key_file = "{card_key(tmp_path)}"\n',
    )
    process, output = start("serve", "-c", str(path), env={"HAFEN_HUB__HTTP__PORT": str(env_port)})
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{env_port}/health").status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(healthy, 30), "\n".join(output.lines)
        assert output.has(f"hub store: {sqlite(tmp_path / 'hub.db')}")
        assert output.has(f"hub API: http://127.0.0.1:{env_port}")
    finally:
        stop(process)


def test_ingest_takes_broker_and_name_from_flags_over_the_file(tmp_path):
    key = signing_key(tmp_path)
    path = write(
        tmp_path / "hub.toml",
        f'[store]\nurl = "{sqlite(tmp_path / "hub.db")}"\n\n[broker]\nport = 1\n\n'
        f'[signing]\nkey_file = "{key}"\n\n[ingest]\nname = "from-file"\n\n'
        f'[cards]\nhash_key_file = "{card_key(tmp_path)}"\n',
    )
    with LocalBroker(tmp_path / "broker") as broker:
        args = ("--broker", f"127.0.0.1:{broker.port}", "--name", "w-7")
        process, output = start("ingest", "-c", str(path), *args, env={})
        try:
            started = f"ingest worker w-7: broker 127.0.0.1:{broker.port}, store sqlite:///"
            assert wait_for(lambda: output.has(started), 30), "\n".join(output.lines)
        finally:
            assert stop(process) == 0, "\n".join(output.lines)
