"""The occupancy sensors: each room's PIR read, each CO2 sensor read over its serial protocol,
and the door counter's beams, which must both be clear."""

from __future__ import annotations

from edge.drivers.co2 import Co2Fault, Co2Sensor
from edge.drivers.door_counter import DoorCounter
from edge.drivers.motion import Pir
from edge.selftest.results import CheckResult, failed, passed

#: What indoor air plausibly reads, in ppm. Outdoor air is about 420; below 300 a sensor is
#: mis-calibrated (an MH-Z19B's automatic baseline gone wrong reads 0 or so), and above 5000
#: (the workplace limit over 8 hours) a co-working space is not ventilated or the sensor is
#: broken: either way a technician should look before leaving.
SANE_PPM = (300, 5000)


def check_pir(room: str, pir: Pir) -> CheckResult:
    """The PIR's output now (a technician can walk past and run it again)."""
    moving = "motion seen now" if pir.motion_detected else "no motion now"
    return passed(f"pir.{room}", moving)


def check_co2(name: str, sensor: Co2Sensor) -> CheckResult:
    """One reading, which must come and be plausible for a room."""
    check = f"co2.{name}"
    try:
        ppm = sensor.read()
    except Co2Fault as exc:
        return failed(check, f"{exc.kind}: {exc}")
    low, high = SANE_PPM
    if not low <= ppm <= high:
        return failed(check, f"{ppm} ppm is outside {low}..{high} ppm: check or calibrate it")
    return passed(check, f"{ppm} ppm")


def check_counter(counter: DoorCounter) -> CheckResult:
    """Both beams see their light now: one broken while nobody stands in the doorway is out of
    line or has something across it, and the counter would count nothing."""
    blocked = counter.blocked()
    if blocked:
        beams = "both beams are" if len(blocked) == 2 else f"the {blocked[0]} beam is"
        return failed("counter", f"{beams} broken: clear the doorway, or align the receivers")
    return passed("counter", "both beams clear")
