"""CO2 sensors through pyserial, against a simulated sensor on a pty speaking the real bytes."""

from __future__ import annotations

import pytest

from edge.drivers.co2 import (
    MHZ19B_READ,
    S8_READ,
    ChecksumError,
    Co2Sensor,
    PortGone,
    SensorTimeout,
    ShortRead,
    mhz19b_checksum,
    modbus_crc,
    parse_mhz19b,
    parse_s8,
)
from sim.co2_sensor import SimulatedCo2Sensor, mhz19b_reply, s8_reply


def test_frames_match_the_datasheets():
    # Request and reply frames as printed in the MH-Z19B and SenseAir S8 manuals.
    assert bytes.fromhex("ff0186000000000079") == MHZ19B_READ
    assert bytes.fromhex("fe0400030001d5c5") == S8_READ
    assert parse_mhz19b(bytes.fromhex("ff86026047000000d1")) == 608
    assert parse_s8(bytes.fromhex("fe04020190acd8")) == 400
    assert parse_mhz19b(mhz19b_reply(1234)) == 1234
    assert parse_s8(s8_reply(410)) == 410
    assert mhz19b_checksum(mhz19b_reply(5000)) == mhz19b_reply(5000)[8]
    assert modbus_crc(b"") == 0xFFFF


@pytest.mark.parametrize("model", ["mhz19b", "s8"])
def test_a_good_sensor_reads_its_ppm(tmp_path, model):
    with (
        SimulatedCo2Sensor(tmp_path / "co2", model, ppm=612) as sim,
        Co2Sensor(str(sim.link), model, timeout=0.5) as sensor,
    ):
        assert sensor.read() == 612
        sim.ppm = 1850
        assert sensor.read() == 1850
        assert sim.requests == 2


@pytest.mark.parametrize("model", ["mhz19b", "s8"])
@pytest.mark.parametrize(
    ("mode", "fault"),
    [("corrupt", ChecksumError), ("short", ShortRead), ("silent", SensorTimeout)],
)
def test_bad_replies_are_faults_never_values(tmp_path, model, mode, fault):
    with (
        SimulatedCo2Sensor(tmp_path / "co2", model, ppm=700) as sim,
        Co2Sensor(str(sim.link), model, timeout=0.3) as sensor,
    ):
        sim.mode = mode
        with pytest.raises(fault) as caught:
            sensor.read()
        assert caught.value.kind in {"checksum", "short_read", "timeout"}
        sim.mode = "good"  # the next request reads cleanly again: no stale bytes
        assert sensor.read() == 700


def test_a_port_that_goes_away_and_comes_back(tmp_path):
    sim = SimulatedCo2Sensor(tmp_path / "co2", "mhz19b", ppm=500).start()
    sensor = Co2Sensor(str(sim.link), "mhz19b", timeout=0.3)
    try:
        assert sensor.read() == 500
        sim.unplug()
        with pytest.raises(PortGone):
            sensor.read()
        with pytest.raises(PortGone, match="cannot open"):
            sensor.read()  # still gone: the link points nowhere
        sim.plug()
        assert sensor.read() == 500
    finally:
        sensor.close()
        sim.unplug()


def _read_co2(*args: str):
    import subprocess
    import sys
    from pathlib import Path

    hafen = Path(sys.executable).with_name("hafen")
    return subprocess.run(
        [str(hafen), "edge", "read-co2", *args], capture_output=True, text=True, timeout=30
    )


def test_technicians_read_a_sensor_once_from_the_command_line(tmp_path):
    with SimulatedCo2Sensor(tmp_path / "co2", "s8", ppm=845) as sim:
        done = _read_co2("--port", str(sim.link), "--model", "s8")
        assert (done.returncode, done.stdout.strip()) == (0, "845 ppm")
        sim.mode = "corrupt"
        done = _read_co2("--port", str(sim.link), "--model", "s8")
        assert done.returncode == 1 and "checksum" in done.stderr
        sim.mode = "silent"
        done = _read_co2("--port", str(sim.link), "--model", "s8", "--timeout", "0.3")
        assert done.returncode == 1 and "timeout" in done.stderr
    done = _read_co2("--port", str(tmp_path / "nothing"), "--model", "mhz19b")
    assert done.returncode == 1 and "cannot open" in done.stderr
    done = _read_co2("--port", str(tmp_path / "nothing"), "--model", "k30")
    assert done.returncode == 2 and "mhz19b" in done.stderr
