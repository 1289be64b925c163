"""Agent memory benchmark: the door agent's peak memory with a 250 MB message retained on its
list topic, beside a baseline run without it, in the same run.

The broker runs without the shipped ``max_packet_size``, so what is measured is the door's own
bound: the Maximum Packet Size it sends in its CONNECT, after which mosquitto drops the message
for it instead of sending it. Each run is ``hafen edge run --simulate --no-walk-through`` with its
MQTT link (mock pins, nfcpy's UDP reader, a one-member list), measured from /proc after it has
been connected for a while. The goal is the agent's budget: 60 MB, + 10 %.

Run: ``.venv/bin/python benchmarks/agent_memory.py``. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _path  # noqa: F401  (the project root on sys.path)

from hafen import protocol
from sim.broker import LocalBroker
from tests.support.agent_memory import SITE, AgentProcess, Publisher, proc_status_kib

BUDGET_MB = 60.0
SETTLE_SECONDS = 5.0


def run_agent(tmp: Path, retained_mb: int) -> tuple[float, float, float]:
    """(peak MB, resident MB, seconds to publish the retained message) of one agent run."""
    tmp.mkdir()
    with LocalBroker(tmp / "broker", packet_limit=False) as broker:
        publish_s = 0.0
        if retained_mb:
            intruder = Publisher(broker.port)
            t0 = time.perf_counter()
            payload = os.urandom(1024) * (retained_mb * 1024)
            intruder.publish(protocol.acl_topic(SITE), payload, retain=True)
            publish_s = time.perf_counter() - t0
            del payload
            intruder.close()
        agent = AgentProcess(tmp, broker.port).start()
        try:
            time.sleep(SETTLE_SECONDS)  # the retained list arrives on subscribing, or never
            if not agent.alive():
                raise SystemExit(f"the agent died:\n{agent.log.read_text()[-2000:]}")
            log = (broker.state_dir / "mosquitto.log").read_text()
            if retained_mb and "Dropping too large outgoing PUBLISH" not in log:
                print("  (the broker did not drop the retained message for the door)")
            return agent.peak_kib() / 1024, proc_status_kib(agent.pid, "VmRSS") / 1024, publish_s
        finally:
            agent.stop()


IMPORTS = """
import os
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
import edge.agent.runner, edge.agent.link, edge.agent.remote, edge.agent.occupancy_service
import sim.edge_site
from pathlib import Path
status = Path("/proc/self/status").read_text().splitlines()
print(next(r for r in status if r.startswith("VmHWM:")).split()[1])
"""


def imports_mb() -> float:
    """What importing the agent's modules alone costs (no threads, stores or connections)."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retained-mb", type=int, default=250)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hafen-bench-") as name:
        tmp = Path(name)
        base_peak, base_rss, _ = run_agent(tmp / "baseline", 0)
        peak, rss, publish_s = run_agent(tmp / "retained", args.retained_mb)
    limit = BUDGET_MB * 1.1
    print(
        "Agent memory (hafen edge run --simulate with its MQTT link; a broker without"
        " max_packet_size, so the door's own bound is measured)"
    )
    baseline = "nothing retained (baseline):"
    print(f"  {baseline:<34} peak {base_peak:6.1f} MB   resident {base_rss:.1f} MB")
    print(
        f"  {args.retained_mb} MB retained on its list topic: peak {peak:6.1f} MB   resident"
        f" {rss:.1f} MB   (published in {publish_s:.1f} s)"
    )
    print(f"  ratio peak with / without: {peak / base_peak:.3f}")
    verdict = "within" if peak <= limit else "OVER"
    print(f"  goal: the {BUDGET_MB:.0f} MB budget + 10 % = {limit:.0f} MB: {verdict}")
    print(f"  of the baseline, importing the agent's modules alone: {imports_mb():.1f} MB")
    print(f"(machine: {os.cpu_count()} cores, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
