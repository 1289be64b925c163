"""What open dashboards cost the hub: CPU of ``hafen hub serve`` while N live streams are open.

A network of 500 sites (two doors each, 2,000 members) on SQLite; N browsers' worth of
``/ui/live`` streams held open by one async client, half of them operators of 3 sites. The
hub's CPU (user + system, from /proc) is sampled over 20 s, first with nothing happening, then
while a door event lands every second (each one changes the picture, so every stream is
pushed). Beside it, the same hub with no stream open: the floor.
Run: ``.venv/bin/python benchmarks/dashboard_streams.py [--streams 1 100 500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import _path  # noqa: F401  (the project root on sys.path)
import httpx
from dashboard_http import serving, signed_in
from seed_dashboard import seed_directory

from hub import db
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from tests.support.events import tap

SITES = [f"site-{i:03d}" for i in range(500)]
WINDOW = 20.0


def hub_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid(port: int) -> int:
    """The pid of the ``hafen hub serve`` listening on ``port`` (found by its command line)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in words and str(port).encode() in words:
            return int(cmdline.parent.name)
    raise RuntimeError(f"no hub serving on {port}")


def taps(url: str, stop: threading.Event) -> None:
    """One allowed door decision a second, as ingest would store it."""
    ingest, n = IngestStore(db.connect(url, upgrade=False)), 0
    while not stop.wait(1.0):
        n += 1
        event = tap(SITES[n % len(SITES)], f"m{n % 2000:05d}", datetime.now(UTC))
        ingest.write(Batch(events=[event]))


async def hold_streams(base: str, cookies: list[str], count: int, measure) -> float:
    async def stream(client: httpx.AsyncClient) -> None:
        while True:  # each stream ends after its minute; a browser reconnects
            async with client.stream("GET", "/ui/live") as reply:
                async for _ in reply.aiter_lines():
                    pass

    clients = [
        httpx.AsyncClient(base_url=base, cookies={"hafen_session": cookies[i % 2]}, timeout=None)
        for i in range(count)
    ]
    tasks = [asyncio.create_task(stream(c)) for c in clients]
    await asyncio.sleep(3)  # all connected and pushed their first picture
    used = await measure()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in clients:
        await client.aclose()
    return used


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 100, 500])
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="hafen-streams-")
    url = f"sqlite:///{tmp}/hub.db"
    seed_directory(db.connect(url), SITES, 2000, ["Anna", "Ben"])  # sites, doors, members
    with serving(url) as base:
        pid = server_pid(int(base.rsplit(":", 1)[1]))
        cookies = [signed_in(base, user).cookies["hafen_session"] for user in ("nadia", "olga")]

        async def measure() -> float:
            before, started = hub_cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(WINDOW)
            return (hub_cpu_seconds(pid) - before) / (time.monotonic() - started) * 100

        floor = asyncio.run(measure())
        print(f"  no stream open (floor)          hub CPU {floor:5.1f} % of one core")
        for count in args.streams:
            idle = asyncio.run(hold_streams(base, cookies, count, measure))
            stop = threading.Event()
            tapper = threading.Thread(target=taps, args=(url, stop), daemon=True)
            tapper.start()
            busy = asyncio.run(hold_streams(base, cookies, count, measure))
            stop.set()
            tapper.join()
            print(
                f"  {count:4d} open streams: idle      hub CPU {idle:5.1f} %"
                f"   a tap a second: {busy:5.1f} % of one core"
            )
    print(f"(machine: {os.cpu_count()} cores; {WINDOW:.0f} s windows)")


if __name__ == "__main__":
    main()
