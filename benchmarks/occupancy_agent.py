"""The door agent's memory and idle CPU with the full occupancy estimator, beside a door alone.

Two ``hafen edge run --simulate`` processes in turn (mock pins, nfcpy's UDP reader): a door
alone, then the same door with two rooms (PIRs, volume and ventilation), a CO2 sensor in
each (simulated MH-Z19Bs on ptys, read every 30 s) and a two-beam counter. Each settles,
then idles for ``--seconds``; printed are its resident and peak memory from /proc and the
share of one core it used while idle (user + system time), and the ratio to the door alone.
The goals (issue 15): at most 60 MB resident, under 2 % of a core idle.
Run: ``.venv/bin/python benchmarks/occupancy_agent.py [--seconds S]``. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from pathlib import Path

import _path  # noqa: F401  (the project root on sys.path)

from sim.co2_sensor import SimulatedCo2Sensor
from tests.support.agent_memory import proc_status_kib
from tests.support.agent_process import start_agent, write_config
from tests.support.edge import free_udp_port

SETTLE_SECONDS = 10.0


def occupancy(co2_links: dict[str, Path]) -> dict:
    rooms = [
        {"name": "coworking", "pin": 5, "volume_m3": 300, "air_changes_per_hour": 2.0},
        {"name": "meeting", "pin": 6, "volume_m3": 60, "air_changes_per_hour": 3.0},
    ]
    co2 = [
        {"name": room, "room": room, "port": str(link), "model": "mhz19b", "every_seconds": 30}
        for room, link in co2_links.items()
    ]
    hours = [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "07:00", "end": "22:00"}]
    counter = {"outer": {"pin": 12}, "inner": {"pin": 13}}
    return {
        "capacity": 60,
        "rooms": rooms,
        "co2": co2,
        "counter": counter,
        "opening_hours": hours,
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(tmp: Path, sections: dict, seconds: float) -> tuple[float, float, float]:
    """(resident MB, peak MB, share of a core idle) of one agent run."""
    tmp.mkdir()
    config = write_config(tmp, free_udp_port(), sections)
    proc = start_agent(config, tmp / "pins.log", tmp / "agent.log")
    try:
        time.sleep(SETTLE_SECONDS)
        if proc.poll() is not None:
            raise SystemExit(f"the agent stopped: see {tmp / 'agent.log'}")
        t0, c0 = time.monotonic(), cpu_seconds(proc.pid)
        time.sleep(seconds)
        share = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
        rss = proc_status_kib(proc.pid, "VmRSS") / 1024
        peak = proc_status_kib(proc.pid, "VmHWM") / 1024
        return rss, peak, share
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        sensors = {
            room: SimulatedCo2Sensor(tmp / f"co2-{room}", ppm=ppm).start()
            for room, ppm in (("coworking", 650), ("meeting", 480))
        }
        try:
            alone = measure(tmp / "alone", {}, args.seconds)
            full = measure(
                tmp / "full",
                {"occupancy": occupancy({room: s.link for room, s in sensors.items()})},
                args.seconds,
            )
        finally:
            for sensor in sensors.values():
                sensor.unplug()
    print(f"idle for {args.seconds:.0f} s after {SETTLE_SECONDS:.0f} s to settle")
    print(f"{'agent':44} {'resident':>9} {'peak':>7} {'CPU idle':>9}")
    for name, (rss, peak, share) in (
        ("door alone (baseline)", alone),
        ("door + 2 rooms, 2 CO2 sensors, counter", full),
    ):
        print(f"{name:44} {rss:6.1f} MB {peak:4.1f} MB {share:8.2%}")
    cpu_ratio = full[2] / max(alone[2], 1e-9)
    print(f"ratio to the door alone: resident x{full[0] / alone[0]:.2f}, CPU x{cpu_ratio:.1f}")


if __name__ == "__main__":
    main()
