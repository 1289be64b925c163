"""Request bodies over the limit are refused before routing or auth: a served hub (a process of
its own, over a socket) answers a 300 MB body to a route that needs a token with 413, soon,
and its memory does not grow, whether the body declares its length or is chunked."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from hafen.config import ConfigError
from hub import db
from hub.app import create_app
from hub.http.body_limit import DEFAULT_MAX_BODY_BYTES
from hub.settings import load_hub_settings
from sim.broker import free_port
from tests.support.hub import add_staff, api_client, as_user
from tests.support.processes import ProcessOutput
from tests.support.waiting import wait_for

HAFEN = str(Path(sys.executable).with_name("hafen"))
#: What an attacker sends: far more than the hub should ever hold.
HUGE = 300 * 1024 * 1024
PIECE = 64 * 1024
#: How much the hub's peak memory may grow while refusing it (the limit and buffers).
GROWTH_BYTES = 24 * 1024 * 1024


@pytest.fixture(scope="module")
def served_hub(tmp_path_factory) -> Iterator[tuple[int, int]]:
    """``hafen hub serve`` on SQLite in a process of its own: (its pid, its port)."""
    where = tmp_path_factory.mktemp("served")
    port = free_port()
    process = subprocess.Popen(
        [HAFEN, "hub", "serve", "--db", f"sqlite:///{where / 'hub.db'}", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HAFEN_HUB_CONFIG": ""},
    )
    output = ProcessOutput(process)

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_for(healthy, 30), str(output)
        yield process.pid, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        finally:
            if process.poll() is None:
                process.kill()


def peak_memory(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


def json_array(total: int) -> Iterator[bytes]:
    """``total`` bytes of one JSON array, piece by piece: never all of it in memory."""
    yield b"["
    sent = 1
    while sent < total - 1:
        piece = min(PIECE, total - 1 - sent)
        yield b"1," * (piece // 2) + b"1" * (piece % 2)
        sent += piece
    yield b"]"


def send_until_answered(port: int, path: str, total: int, chunked: bool) -> tuple[int, int]:
    """POST a ``total``-byte body from a generator, stopping as soon as the hub answers;
    (the answer's status, the body bytes handed to the socket by then)."""
    sock = socket.create_connection(("127.0.0.1", port))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n".encode()
    )
    sock.setblocking(False)
    pieces = json_array(total)
    sent, pending, finished = 0, b"", False
    try:
        while True:
            readable, writable, _ = select.select([sock], [] if finished else [sock], [], 30)
            if readable:
                break
            assert writable, "the hub neither answered nor took more of the body"
            if not pending:
                piece = next(pieces, None)
                if piece is None:
                    pending, finished = (b"0\r\n\r\n" if chunked else b""), True
                else:
                    sent += len(piece)
                    pending = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            try:
                pending = pending[sock.send(pending) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break  # it answered and closed: read the answer
        sock.setblocking(True)
        sock.settimeout(10)
        answer = sock.recv(4096)
    finally:
        sock.close()
    return int(answer.split(b" ", 2)[1]), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_body_is_refused_at_once_and_never_held(served_hub, chunked):
    pid, port = served_hub
    assert httpx.get(f"http://127.0.0.1:{port}/members").status_code == 401  # needs a token
    before = peak_memory(pid)
    started = time.monotonic()
    status, sent = send_until_answered(port, "/members", HUGE, chunked)
    took = time.monotonic() - started
    grown = peak_memory(pid) - before
    assert grown < GROWTH_BYTES, f"the hub's peak memory grew by {grown / 2**20:.0f} MiB"
    assert status == 413
    assert took < 5, f"answered after {took:.1f} s"
    assert sent < HUGE // 4, f"{sent / 2**20:.0f} MiB sent before the answer"
    # It still serves everyone else.
    assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200


def test_bodies_within_the_limit_work_declared_or_chunked(engine):
    """The limit refuses only what is over it: a sign-in form and a JSON body sent chunked
    (the body read first, then handed on) are served as ever."""
    add_staff(engine)
    with api_client(engine) as api:
        form = b"username=nadia&password=a+long+passphrase"
        chunked = api.post(
            "/auth/token",
            content=iter([form[:10], form[10:]]),  # no length: sent chunked
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert chunked.status_code == 200, chunked.text
        nadia = as_user(api, "nadia")
        body = b'{"id": "anna", "name": "' + b"A" * 150 + b'"}'
        made = api.post(
            "/members",
            content=iter([body[:20], body[20:]]),
            headers={**nadia, "content-type": "application/json"},
        )
        assert made.status_code == 201, made.text
        over = b'{"id": "bert", "name": "' + b"B" * DEFAULT_MAX_BODY_BYTES + b'"}'
        for content in (over, iter([over[:100], over[100:]])):
            refused = api.post(
                "/members", content=content, headers={**nadia, "content-type": "application/json"}
            )
            assert refused.status_code == 413
            assert refused.json()["detail"] == "the request body is larger than 1048576 bytes"
        assert api.get("/members", headers=nadia).json()[0]["id"] == "anna"


def test_the_limit_is_the_hubs_setting(tmp_path):
    """``http.max_body_bytes`` is validated at load, naming the key, and is the limit."""
    path = tmp_path / "hub.toml"
    path.write_text("[http]\nmax_body_bytes = 100\n")
    with pytest.raises(ConfigError, match=r"http\.max_body_bytes: Input should be greater"):
        load_hub_settings(path, {})
    settings = load_hub_settings(None, {"HAFEN_HUB__HTTP__MAX_BODY_BYTES": "4096"})
    engine = db.connect(f"sqlite:///{tmp_path / 'hub.db'}")
    with TestClient(create_app(engine, max_body_bytes=settings.http.max_body_bytes)) as small:
        assert small.post("/members", content=b"x" * 4097).status_code == 413
        assert small.post("/members", content=b"x" * 4096).status_code == 401
