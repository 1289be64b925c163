"""Handing the door from the running agent to a new version of it, without a gap a member
would notice.

The new version starts as a child of the old one (in the same systemd service), on a socket
pair the old one made, and says ``ready`` once it has loaded everything it needs: a cold
start of a fresh venv takes seconds on a Pi, and all that while the old one keeps deciding.
Only then does the old one let go of the door (reader, pins, store, broker session) and say
``released``; the new one takes it at once and decides from then on. It runs its health gate
and says ``healthy`` or ``unhealthy <why>``. On ``healthy`` the old one makes the new version
current (edge.updater), says ``current``, tells systemd that the child is the service's main
process now (``MAINPID=``) and ends. Anything else (the child exits, falls silent, or
fails its gate) and the old one stops the child, takes the door back and says why.

A child whose parent goes away before ``current`` stops: under systemd the parent's end ends
the whole service anyway (KillMode=control-group), and the start that follows runs whatever
``current`` names.

The words are lines on the socket: ``<word>[ <detail>]``, at most ``MAX_LINE`` bytes.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

READY, RELEASED, HEALTHY, UNHEALTHY, CURRENT = (
    "ready",
    "released",
    "healthy",
    "unhealthy",
    "current",
)
MAX_LINE = 1024
#: The option that makes ``hafen edge run`` the child of a hand-over, on this inherited socket.
TAKE_OVER_OPTION = "--take-over"


class HandOverFailed(Exception):
    """The hand-over did not happen; the message says why (for the update's report)."""


class Channel:
    """Lines over a socket, each read with a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def send(self, word: str, detail: str = "") -> None:
        line = f"{word} {detail}".strip().replace("\n", " ")
        self.sock.sendall(line.encode()[: MAX_LINE - 1] + b"\n")

    def receive(self, timeout: float) -> tuple[str, str] | None:
        """The next line as (word, detail); None when the other side closed. TimeoutError
        when nothing came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(MAX_LINE)
            except TimeoutError:
                raise
            except OSError:
                return None
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE and b"\n" not in self._buffer:
                return None  # not our protocol: as good as gone
        line, _, self._buffer = self._buffer.partition(b"\n")
        word, _, detail = line.decode("utf-8", "replace").partition(" ")
        return word, detail

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class HandOverTimes:
    #: From the child's start to its ``ready``: a new venv compiles its modules first.
    ready: float = 180.0
    #: From ``released`` to ``healthy``: the child's health gate, with a margin.
    gate: float = 90.0
    #: For a child told to stop to end before it is killed.
    stop: float = 15.0


@dataclass
class OldSide:
    """What the old agent does around a hand-over (edge.agent.runner gives these)."""

    #: Stop deciding and let go of reader, pins, store and broker session.
    release_door: Callable[[], None]
    #: Take the door again and decide (after a failed hand-over).
    take_door: Callable[[], None]
    #: Tell the service manager something (``MAINPID=…``); sdnotify's notify.
    notify: Callable[[str], None]


def hand_over(
    command: Sequence[str],
    old: OldSide,
    gate_passed: Callable[[], None],
    times: HandOverTimes = HandOverTimes(),
) -> str | None:
    """Start ``command`` (the new version's ``hafen edge run ...``) as the child and hand the
    door to it (see the module). None: it took over, and this process is to end without
    touching the door; else why not, and this process drives the door again."""
    parent_end, child_end = socket.socketpair()
    try:
        child = subprocess.Popen(
            [*command, TAKE_OVER_OPTION, str(child_end.fileno())],
            pass_fds=(child_end.fileno(),),
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        parent_end.close()
        return f"the new version did not start: {exc.strerror or exc}"
    finally:
        child_end.close()
    channel = Channel(parent_end)
    released = False
    try:
        _expect(channel, child, READY, times.ready, "before it was ready")
        old.release_door()
        released = True
        channel.send(RELEASED)
        _expect(channel, child, HEALTHY, times.gate, "before its health gate passed")
        gate_passed()
        # The child hears it is current before systemd is told it is the main process: a
        # child gone by now fails the send, and systemd never watches a dead one.
        channel.send(CURRENT)
        old.notify(f"MAINPID={child.pid}")
        return None
    except HandOverFailed as exc:
        _stop(child, times.stop)
        if released:
            old.take_door()
        log.error("the hand-over failed: %s", exc)
        return str(exc)
    except Exception as exc:  # gate_passed could not switch (a disk error): as a failure
        _stop(child, times.stop)
        if released:
            old.take_door()
        log.exception("the hand-over failed")
        return f"the switch failed: {exc}"
    finally:
        channel.close()


def _expect(
    channel: Channel, child: subprocess.Popen[bytes], word: str, timeout: float, when: str
) -> None:
    try:
        said = channel.receive(timeout)
    except TimeoutError:
        raise HandOverFailed(f"the new version said nothing for {timeout:.0f} s {when}") from None
    if said is None:
        try:
            status = child.wait(5)
        except subprocess.TimeoutExpired:
            raise HandOverFailed(f"the new version closed its channel {when}") from None
        raise HandOverFailed(f"the new version exited with status {status} {when}")
    if said[0] == UNHEALTHY:
        raise HandOverFailed(f"the new version's health gate failed: {said[1]}")
    if said[0] != word:
        raise HandOverFailed(f"the new version said {said[0][:40]!r} {when}")


def _stop(child: subprocess.Popen[bytes], timeout: float) -> None:
    """End the child: asked first (it leaves the door as its fail mode says), then killed."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
