"""CO2 sensors on a serial port: Winsen MH-Z19B and SenseAir S8, read with pyserial.

Both answer a request frame with a reply frame that carries a checksum; ``Co2Sensor.read``
sends one request and returns the ppm, or raises a ``Co2Fault`` naming what went wrong. It
never returns a made-up value: a reading that cannot be trusted is an error. A sensor takes its
port and model; ``Co2Sensor.from_settings`` builds one from ``Co2Settings``
(``edge.drivers.co2_settings``).
"""

from __future__ import annotations

import contextlib
import logging
import termios
from enum import StrEnum

import serial

from edge.drivers.co2_settings import Co2Settings

log = logging.getLogger(__name__)
#: What a serial port raises when it fails or disappears (termios.error is no OSError).
PORT_ERRORS = (serial.SerialException, OSError, termios.error)

#: MH-Z19B "read CO2 concentration" (command 0x86), checksum 0x79.
MHZ19B_READ = bytes.fromhex("ff0186000000000079")
#: The range each model measures; a value outside it is a fault, not a reading.
PPM_RANGE = {"mhz19b": (0, 10_000), "s8": (0, 10_000)}


class Model(StrEnum):
    MHZ19B = "mhz19b"
    S8 = "s8"


class Co2Fault(Exception):
    """A reading failed; ``kind`` says how (for fault counters and events)."""

    kind = "fault"


class ChecksumError(Co2Fault):
    kind = "checksum"


class ShortRead(Co2Fault):
    kind = "short_read"


class SensorTimeout(Co2Fault):
    kind = "timeout"


class PortGone(Co2Fault):
    kind = "port"


class BadReply(Co2Fault):
    kind = "bad_reply"


def mhz19b_checksum(frame: bytes | bytearray) -> int:
    """The MH-Z19B checksum of a 9-byte frame: 0xFF minus the sum of bytes 1..7, plus one."""
    return (0xFF - (sum(frame[1:8]) & 0xFF) + 1) & 0xFF


def modbus_crc(data: bytes) -> int:
    """CRC-16/MODBUS (polynomial 0xA001 reflected, start 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def parse_mhz19b(frame: bytes) -> int:
    if len(frame) != 9:
        raise ShortRead(f"MH-Z19B sent {len(frame)} of 9 bytes")
    if frame[0] != 0xFF or frame[1] != 0x86:
        raise BadReply(f"MH-Z19B reply starts {frame[:2].hex()}, not ff86")
    if mhz19b_checksum(frame) != frame[8]:
        raise ChecksumError(
            f"MH-Z19B checksum {frame[8]:#04x}, expected {mhz19b_checksum(frame):#04x}"
        )
    return frame[2] * 256 + frame[3]


def parse_s8(frame: bytes) -> int:
    if len(frame) >= 5 and frame[1] == 0x84:  # Modbus exception reply: 5 bytes
        raise BadReply(f"S8 refused the request (Modbus exception {frame[2]:#04x})")
    if len(frame) != 7:
        raise ShortRead(f"S8 sent {len(frame)} of 7 bytes")
    if frame[1] != 0x04 or frame[2] != 2:
        raise BadReply(f"S8 reply {frame[:3].hex()} is not one input register")
    if modbus_crc(frame[:5]) != int.from_bytes(frame[5:7], "little"):
        raise ChecksumError("S8 CRC does not match")
    return int.from_bytes(frame[3:5], "big")


def with_crc(data: bytes) -> bytes:
    """A Modbus RTU frame: ``data`` and its CRC, low byte first."""
    return data + modbus_crc(data).to_bytes(2, "little")


#: S8 Modbus RTU: "read input registers" (0x04) at 0x0003 (CO2), one register, any address 0xFE.
S8_READ = with_crc(bytes.fromhex("fe0400030001"))

_PROTOCOL = {
    Model.MHZ19B: (MHZ19B_READ, 9, parse_mhz19b),
    Model.S8: (S8_READ, 7, parse_s8),
}


class Co2Sensor:
    """One CO2 sensor on a serial port (9600 baud, 8N1 for both models).

    The port opens on first use and again after it failed, so a sensor that was unplugged
    is read again once it is back.
    """

    def __init__(self, port: str, model: Model | str, timeout: float = 1.0) -> None:
        self.port = port
        self.model = Model(model)
        self.timeout = timeout
        self._serial: serial.Serial | None = None

    @classmethod
    def from_settings(cls, settings: Co2Settings, timeout: float = 1.0) -> Co2Sensor:
        return cls(settings.port, settings.model, timeout=timeout)

    def _open(self) -> serial.Serial:
        if self._serial is None:
            try:
                self._serial = serial.Serial(self.port, 9600, timeout=self.timeout)
            except PORT_ERRORS as exc:
                raise PortGone(f"cannot open {self.port}: {exc}") from None
        return self._serial

    def read(self) -> int:
        """One reading in ppm; raises Co2Fault (checksum, short read, timeout, port)."""
        request, size, parse = _PROTOCOL[self.model]
        port = self._open()
        try:
            port.reset_input_buffer()  # a late reply to an earlier request would misalign us
            port.write(request)
            port.flush()
            frame = port.read(size)
        except PORT_ERRORS as exc:
            self.close()
            raise PortGone(f"{self.port} failed: {exc}") from None
        if not frame:
            raise SensorTimeout(f"no reply from the {self.model.value} on {self.port}")
        ppm = parse(frame)
        low, high = PPM_RANGE[self.model.value]
        if not low <= ppm <= high:
            raise BadReply(f"{ppm} ppm is outside the sensor's range {low}..{high}")
        return ppm

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(*PORT_ERRORS):
                self._serial.close()
            self._serial = None

    def __enter__(self) -> Co2Sensor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
