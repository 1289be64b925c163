"""What a real release costs the fleet-update tests (issue 17), step by step: the dependency
wheels (warm, and cold with ``--cold``: fetched from pip's sources into a scratch cache),
hafen's wheel at a new version, the wheelhouse, its manifest, a venv with and without pip of
its own, and the offline ``--require-hashes`` install into it with and without bytecode, then
the first ``hafen version``. Each step is run ``--rounds`` times; the median is printed. The
figures say how many real release installs the suite can afford on this machine.

Run: ``.venv/bin/python benchmarks/release_install.py [--rounds 3] [--cold]``. Prints
figures, asserts nothing (``--cold`` needs what ``make setup`` needs: pip's sources).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _path  # noqa: F401  (the project root on sys.path)

from hafen.releases import manifest_for
from tests.support.wheelhouse import (
    dependency_wheels,
    hafen_wheel,
    requirements_for,
    run_release,
    wheelhouse,
)


class Figures:
    """Seconds per step, over the rounds."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def time(self, step: str, action: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        result = action(*args)
        self.seconds.setdefault(step, []).append(time.perf_counter() - started)
        return result


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=600)


def one_round(figures: Figures, base: Path, version: str, cold: bool) -> None:
    if cold:
        figures.time("dependency wheels, cold", dependency_wheels, base / "cache")
    figures.time("dependency wheels, warm", dependency_wheels)
    figures.time("hafen wheel, built", hafen_wheel, version, base / "w")
    figures.time("hafen wheel, again (cached)", hafen_wheel, version, base / "w2")
    house = figures.time("wheelhouse (hafen wheel cached)", wheelhouse, version, base / "house")
    manifest = figures.time("manifest_for", manifest_for, house, version, datetime.now(UTC))
    requirements = base / "requirements.txt"
    requirements.write_text(requirements_for(manifest, house))
    python = sys.executable
    with_pip, without, bare = base / "with-pip", base / "without-pip", base / "no-compile"
    figures.time("venv with pip", run, python, "-m", "venv", str(with_pip))
    figures.time("venv --without-pip", run, python, "-m", "venv", "--without-pip", str(without))
    run(python, "-m", "venv", "--without-pip", str(bare))
    install = ("install", "-q", "--no-index", "--require-hashes", "-r", str(requirements))
    inner = (str(with_pip / "bin/python"), "-m", "pip", *install)
    figures.time("install, the venv's own pip", run, *inner)
    outer = (python, "-m", "pip", "--python", str(without / "bin/python"), *install)
    figures.time("install, outer pip --python", run, *outer)
    no_compile = (python, "-m", "pip", "--python", str(bare / "bin/python"), *install)
    figures.time("install, outer pip --no-compile", run, *no_compile, "--no-compile")
    figures.time("first `hafen version`, compiled", run_release, without, "version")
    figures.time("first `hafen version`, not compiled", run_release, bare, "version")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time a cold dependency cache")
    args = parser.parse_args()
    dependency_wheels()  # the warm figures are warm
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="hafen-bench-") as scratch:
        for n in range(args.rounds):
            one_round(figures, Path(scratch) / str(n), f"0.2.{n}", args.cold)
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; median of {args.rounds} rounds")
    for step, values in figures.seconds.items():
        each = ", ".join(f"{value:.2f}" for value in values)
        print(f"  {step:38s} {statistics.median(values):6.2f} s  ({each})")


if __name__ == "__main__":
    main()
