"""A simulated CO2 sensor behind a pseudo-terminal, speaking the real byte protocols.

The sensor's port is a symlink (as ``/dev/serial/by-id/...`` is on a Pi) to the slave side of
a pty; this end answers each request frame as an MH-Z19B or S8 would. Tests and the simulated
site drive it: set the ppm, corrupt the checksum, send half a frame, go silent, or unplug the
port and plug it back (a new pty behind the same link).
"""

from __future__ import annotations

import os
import select
import threading
import tty
from pathlib import Path

from edge.drivers.co2 import MHZ19B_READ, S8_READ, Model, mhz19b_checksum, with_crc

MODES = ("good", "corrupt", "short", "silent")


def mhz19b_reply(ppm: int) -> bytes:
    frame = bytearray([0xFF, 0x86, ppm >> 8 & 0xFF, ppm & 0xFF, 0x40, 0x00, 0x00, 0x00, 0])
    frame[8] = mhz19b_checksum(frame)
    return bytes(frame)


def s8_reply(ppm: int) -> bytes:
    return with_crc(bytes([0xFE, 0x04, 0x02]) + ppm.to_bytes(2, "big"))


class SimulatedCo2Sensor:
    """An MH-Z19B or S8 on a pty, reachable at ``link``."""

    def __init__(self, link: Path, model: Model | str = Model.MHZ19B, ppm: int = 420) -> None:
        self.link = Path(link)
        self.model = Model(model)
        self.ppm = ppm
        self.mode = "good"
        self.requests = 0
        self._fds: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SimulatedCo2Sensor:
        self.plug()
        return self

    def plug(self) -> None:
        """Connect a fresh pty behind the link and start answering."""
        master, slave = os.openpty()
        tty.setraw(slave)
        self._fds = (master, slave)
        tmp = self.link.with_name(self.link.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.link)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._serve, args=(master,), name="co2-sim", daemon=True
        )
        self._thread.start()

    def unplug(self) -> None:
        """The cable is pulled: the port disappears and reads on it fail."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None
        self.link.unlink(missing_ok=True)

    stop = unplug

    def _reply(self) -> bytes:
        frame = mhz19b_reply(self.ppm) if self.model == Model.MHZ19B else s8_reply(self.ppm)
        if self.mode == "corrupt":
            frame = frame[:-1] + bytes([frame[-1] ^ 0x5A])
        elif self.mode == "short":
            frame = frame[: len(frame) // 2]
        return frame

    def _serve(self, master: int) -> None:
        request = MHZ19B_READ if self.model == Model.MHZ19B else S8_READ
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                buffer += os.read(master, 64)
            except OSError:
                return
            while len(buffer) >= len(request):
                frame, buffer = buffer[: len(request)], buffer[len(request) :]
                if frame != request:
                    buffer = b""  # not a request this sensor knows: it says nothing
                    break
                self.requests += 1
                if self.mode != "silent":
                    os.write(master, self._reply())

    def __enter__(self) -> SimulatedCo2Sensor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.unplug()
