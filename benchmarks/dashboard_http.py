"""The dashboard's pages over HTTP against ``hafen hub serve``: sequential keep-alive requests."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from seed_dashboard import PASSWORD

from sim.broker import free_port

ROOT = Path(__file__).resolve().parent.parent
SITES = 500


@contextmanager
def serving(url: str) -> Iterator[str]:
    """``hafen hub serve`` on the store at ``url``; yields its base URL."""
    with hub_serving(url) as (base, _server):
        yield base


@contextmanager
def hub_serving(url: str, *options: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``hafen hub serve`` on the store at ``url`` (with more ``options``: a signing key, a
    broker); yields its base URL and its process."""
    port = free_port()
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/hafen"), "hub", "serve", "--db", url, "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    error = server.stderr.read().decode() if server.stderr else ""
                    raise RuntimeError(error) from None
                time.sleep(0.2)
        yield base, server
    finally:
        server.terminate()
        server.wait(10)


def signed_in(base: str, user: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    reply = client.post("/ui/sign-in", data={"username": user, "password": PASSWORD})
    assert reply.status_code == 303, reply.text[:200]
    assert "hafen_session" in client.cookies
    return client


def timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    reply = client.get(path)
    took = (time.perf_counter() - started) * 1000
    if reply.status_code != 200:
        raise RuntimeError(f"{path}: {reply.status_code} {reply.text[:200]}")
    return took


def bench_http(url: str, line: Callable, rounds: int = 200) -> None:
    rng = random.Random(5)
    with serving(url) as base:
        admin, operator = signed_in(base, "nadia"), signed_in(base, "olga")
        assert admin.get("/ui/").text.count('class="card site"') == SITES
        for client in (admin, operator):  # warm up: imports, first queries, the chart fonts
            for path in ("/ui/", "/ui/sites/site-000", "/ui/sites/site-000/today.svg"):
                client.get(path)
        health = httpx.Client(base_url=base)
        line("/health (framework floor)", [timed(health, "/health") for _ in range(rounds)])
        line("overview page, admin, 500 sites", [timed(admin, "/ui/") for _ in range(rounds)])
        line("overview page, operator of 3 sites", [timed(operator, "/ui/") for _ in range(rounds)])
        sites = [f"site-{rng.randrange(SITES):03d}" for _ in range(rounds)]
        line("site page, admin, random sites", [timed(admin, f"/ui/sites/{s}") for s in sites])
        cold = sorted(set(sites))[:50]
        line("today chart, first drawing", [timed(admin, f"/ui/sites/{s}/today.svg") for s in cold])
        line("today chart, cached", [timed(admin, f"/ui/sites/{s}/today.svg") for s in cold])
        line("week heatmap, first drawing", [timed(admin, f"/ui/sites/{s}/week.svg") for s in cold])
        line("fleet page, admin, 1,000 doors", [timed(admin, "/ui/fleet") for _ in range(20)])
        month = time.strftime("%Y-%m")
        line(
            f"report page {month}, all sites",
            [timed(admin, f"/ui/reports?month={month}") for _ in range(10)],
        )
        line(
            f"report CSV {month}, all sites",
            [timed(admin, f"/ui/reports.csv?month={month}") for _ in range(10)],
        )
