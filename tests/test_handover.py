"""The old version's side of an update's hand-over (edge.agent.handover), against children
that behave and children that do not: the old one lets go of the door only once the new one
is ready, takes it back whenever the new one does not end healthy, and says why."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from edge.agent.handover import HandOverTimes, OldSide, hand_over

#: A stand-in for the new version: speaks the hand-over's words as its mode says.
CHILD = textwrap.dedent(
    """
    import socket, sys, time
    mode, fd = sys.argv[1], int(sys.argv[sys.argv.index("--take-over") + 1])
    sock = socket.socket(fileno=fd)
    def say(line): sock.sendall(line.encode() + b"\\n")
    def hear(): return sock.makefile().readline().strip()
    if mode == "crash":
        sys.exit(3)
    if mode == "silent":
        time.sleep(60)
    say("ready")
    assert hear() == "released"
    if mode == "unhealthy":
        say("unhealthy the reader is not ready (no reader found at usb)")
        time.sleep(60)
    if mode == "dies":
        sys.exit(4)
    say("healthy")
    print("told:", hear(), flush=True)
    """
)

FAST = HandOverTimes(ready=5.0, gate=5.0, stop=5.0)


class Door:
    """What the old side did with its door, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def side(self) -> OldSide:
        return OldSide(
            release_door=lambda: self.log.append("released"),
            take_door=lambda: self.log.append("taken back"),
            notify=lambda message: self.log.append(message.split("=")[0]),
        )


def child(tmp_path: Path, mode: str) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return [sys.executable, str(script), mode]


def test_a_healthy_child_gets_the_door_and_is_made_current(tmp_path):
    door = Door()
    why = hand_over(
        child(tmp_path, "healthy"), door.side(), lambda: door.log.append("switched"), FAST
    )
    assert why is None
    assert door.log == ["released", "switched", "MAINPID"]


@pytest.mark.parametrize(
    ("mode", "why", "released"),
    [
        ("crash", "exited with status 3 before it was ready", False),
        ("silent", "said nothing for 5 s before it was ready", False),
        ("unhealthy", "health gate failed: the reader is not ready (no reader found at usb)", True),
        ("dies", "exited with status 4 before its health gate passed", True),
    ],
)
def test_a_child_that_does_not_end_healthy_gives_the_door_back(tmp_path, mode, why, released):
    door = Door()
    said = hand_over(child(tmp_path, mode), door.side(), lambda: door.log.append("switched"), FAST)
    assert said is not None and why in said
    assert door.log == (["released", "taken back"] if released else [])


def test_a_switch_that_fails_after_the_gate_gives_the_door_back(tmp_path):
    door = Door()

    def switch() -> None:
        raise OSError(28, "No space left on device")

    said = hand_over(child(tmp_path, "healthy"), door.side(), switch, FAST)
    assert said is not None and "No space left on device" in said
    assert door.log == ["released", "taken back"]


def test_a_release_without_a_program_is_said_so(tmp_path):
    door = Door()
    said = hand_over([str(tmp_path / "releases/9.9.9/bin/hafen")], door.side(), lambda: None, FAST)
    assert said is not None and said.startswith("the new version did not start")
    assert door.log == []


def test_a_child_gone_after_its_gate_is_never_named_to_systemd(tmp_path):
    """A child that said healthy and died before it heard it is current: the old side takes
    the door back, and systemd was never told the dead child is the service's main process
    (it would restart the service and kill the old version that just took the door back)."""
    import time

    script = tmp_path / "child.py"
    script.write_text(
        "import socket, sys\n"
        "sock = socket.socket(fileno=int(sys.argv[sys.argv.index('--take-over') + 1]))\n"
        "sock.sendall(b'ready\\n')\n"
        "sock.makefile().readline()\n"
        "sock.sendall(b'healthy\\n')\n"
        "sys.exit(5)\n"
    )
    told: list[str] = []
    side = OldSide(release_door=lambda: None, take_door=lambda: None, notify=told.append)

    def switch() -> None:
        time.sleep(0.5)  # the child is gone meanwhile

    said = hand_over([sys.executable, str(script)], side, switch, FAST)
    assert said is not None  # the door came back to this process
    assert not any(message.startswith("MAINPID=") for message in told), told
