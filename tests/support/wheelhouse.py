"""Real releases of hafen for the fleet-update tests and benchmarks (issue 17): wheels of this
checkout at any version, the wheels of what ``hafen[edge]`` needs at run time, and the two
together as a wheelhouse, the directory ``hafen hub release add DIR --version V`` takes.

The dependency wheels are the versions installed in the venv the tests run in (its
``hafen[edge]`` closure is the lock), fetched by pip from this machine's package sources
(pip's config: the local indexes first, PyPI for what they lack) once, and kept beside the
venv for every later run and every xdist worker (``dependency_wheels``). ``make setup``
builds them while it installs (``python -m tests.support.wheelhouse``), so the tests
themselves need no network.

Building hafen's own wheel calls setuptools' build hook directly on a copy of the packages
(a fraction of a second; ``pip wheel`` spends twice that starting, an isolated build five
times), and a build with the same version and the same patch function is made once per
process and copied.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from hafen.releases import Manifest

ROOT = Path(__file__).resolve().parents[2]
#: What hafen's wheel is built from: pyproject's metadata and readme, and the packages its
#: ``packages.find`` includes (``provisioning/systemd`` is a link: copied as the files).
WHEEL_SOURCES = ("pyproject.toml", "README.md", "hafen", "edge", "hub", "provisioning", "sim")
#: The extra a door installs.
EXTRA = "edge"
#: A prefix of the dependency caches' names; older ones are removed when a new one is built.
_DEPS_PREFIX = f"{EXTRA}-deps-"
_BUILDING_PREFIX = ".building-"
#: Zip entries dated alike: the same tree builds the same bytes, whichever process builds it.
_SOURCE_DATE_EPOCH = "315532800"

#: A patch makes a deliberately broken release: it changes the copied source tree in place.
Patch = Callable[[Path], None]


class WheelhouseError(RuntimeError):
    """A wheel could not be built or fetched; the message says what ran and what it said."""


def default_cache_dir() -> Path:
    """Where the dependency wheels are kept: beside the venv the tests run in (``make
    setup``'s ``.venv``, ignored by git and made anew with it), else the user's cache."""
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / "hafen-cache"
    return Path.home() / ".cache" / "hafen-tests"


def runtime_pins(extra: str = EXTRA) -> dict[str, str]:
    """Every distribution ``hafen[extra]`` needs at run time on this machine (hafen itself not
    included), by its name, at the version installed in this venv: the closure of the
    installed metadata's requirements whose markers hold here."""
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [("hafen", frozenset({extra}))]
    while todo:
        name, extras = todo.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise WheelhouseError(
                f"{name} (needed by hafen[{extra}]) is not installed in {sys.prefix}: "
                "run `make setup`"
            ) from None
        if canonicalize_name(name) != "hafen":
            pins[dist.metadata["Name"]] = dist.version
        for text in dist.requires or ():
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return pins


def cached_directory(final: Path, build: Callable[[Path], None]) -> Path:
    """``final``, made by ``build`` (given an empty directory to fill) if it is not there yet.

    One process builds and the others wait for it (an exclusive ``flock`` on a lock file
    beside it); the build fills a directory of its own, renamed to ``final`` only when it
    is complete, so a directory under the final name is always whole, and a build that
    fails or is killed leaves nothing under it (its leftovers are removed by the next)."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with (final.parent / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        for stale in final.parent.glob(f"{_BUILDING_PREFIX}*"):
            shutil.rmtree(stale)  # a build killed half-way: the lock says nobody else is
        building = Path(tempfile.mkdtemp(prefix=_BUILDING_PREFIX, dir=final.parent))
        building.chmod(0o755)  # mkdtemp makes it 0700; the cache is to be read like any file
        try:
            build(building)
            building.rename(final)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    return final


def dependency_wheels(cache_dir: Path | None = None) -> Path:
    """A directory of wheels, one for each of ``runtime_pins()``, built once (see the
    module) under ``cache_dir`` (default: ``default_cache_dir()``). Read-only to callers:
    ``wheelhouse`` copies from it."""
    cache_dir = cache_dir or default_cache_dir()
    pins = runtime_pins()
    lines = sorted(f"{name}=={version}" for name, version in pins.items())
    # Another set of pins, another Python or machine: another cache.
    key = "\n".join([*lines, sys.implementation.cache_tag, platform.machine()])
    final = cache_dir / f"{_DEPS_PREFIX}{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if final.is_dir():
        return final

    def build(into: Path) -> None:
        _pip_wheels(lines, into)
        _check_one_wheel_each(pins, into)
        for old in cache_dir.glob(f"{_DEPS_PREFIX}*"):
            shutil.rmtree(old)  # the venv's pins changed: nothing will use those again

    return cached_directory(final, build)


def _pip_wheels(pins: list[str], into: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="hafen-pins-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text("\n".join(pins) + "\n")
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        command += ["--progress-bar", "off", "--wheel-dir", str(into), "-r", str(requirements)]
        ran = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if ran.returncode != 0:
        raise WheelhouseError(
            f"pip could not fetch the wheels of hafen[{EXTRA}]'s dependencies "
            f"(exit {ran.returncode}); it said:\n{ran.stderr[-3000:]}\n"
            "The first build takes them from pip's package sources (see `pip config list`), "
            "PyPI among them: run `make setup` where the network is reachable."
        )


def _check_one_wheel_each(pins: dict[str, str], directory: Path) -> None:
    found: dict[str, str] = {}
    for path in directory.iterdir():
        name, version, _, _ = parse_wheel_filename(path.name)
        found[name] = str(version)
    wanted = {canonicalize_name(name): str(Version(v)) for name, v in pins.items()}
    if found != wanted:
        missing = sorted(set(wanted.items()) - set(found.items()))
        extra = sorted(set(found.items()) - set(wanted.items()))
        raise WheelhouseError(f"pip's wheels are not the pins: missing {missing}, extra {extra}")


_built: dict[tuple[str, Patch | None], Path] = {}
_session_dir: Path | None = None


def hafen_wheel(version: str, out_dir: Path, patch: Patch | None = None) -> Path:
    """A wheel of this checkout's hafen with its version set to ``version``, in ``out_dir``
    (made if missing); ``patch`` changes the copied source tree first (a broken release).
    The same version with the same patch function is built once per process and copied."""
    key = (str(Version(version)), patch)
    built = _built.get(key)
    if built is None or not built.is_file():
        built = _build_hafen_wheel(version, patch)
        _built[key] = built
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / built.name
    shutil.copyfile(built, target)
    return target


def _build_hafen_wheel(version: str, patch: Patch | None) -> Path:
    global _session_dir
    if _session_dir is None:
        # One per process (each xdist worker builds its own), removed when it exits.
        _session_dir = Path(tempfile.mkdtemp(prefix="hafen-wheels-"))
        atexit.register(shutil.rmtree, _session_dir, True)
    build_dir = Path(tempfile.mkdtemp(prefix="build-", dir=_session_dir))
    source, dist = build_dir / "src", build_dir / "dist"
    _copy_sources(source)
    _set_version(source / "pyproject.toml", version)
    if patch is not None:
        patch(source)
    # setuptools' PEP 517 hook, called directly: no pip, no isolated build environment.
    hook = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
    env = {**os.environ, "SOURCE_DATE_EPOCH": _SOURCE_DATE_EPOCH, "PYTHONDONTWRITEBYTECODE": "1"}
    ran = subprocess.run(
        [sys.executable, "-c", hook, str(dist)],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    wheels = list(dist.glob("hafen-*.whl")) if dist.is_dir() else []
    if ran.returncode != 0 or len(wheels) != 1:
        raise WheelhouseError(
            f"setuptools could not build hafen {version} (exit {ran.returncode}); it said:\n"
            f"{ran.stderr[-3000:]}\n(setuptools 70.1 or newer builds wheels on its own: "
            "`make setup` installs it with the dev extra)"
        )
    return wheels[0]


def _copy_sources(source: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    for name in WHEEL_SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=ignore)
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, source / name)


def _set_version(pyproject: Path, version: str) -> None:
    """``[project] version`` set to ``version``, the rest of the file as it was."""
    lines, table = pyproject.read_text().splitlines(keepends=True), None
    for i, line in enumerate(lines):
        header = re.match(r"\s*\[([^\[\]]+)\]\s*$", line)
        if header:
            table = header.group(1).strip()
        elif table == "project" and re.match(r"\s*version\s*=", line):
            lines[i] = f'version = "{version}"\n'
            break
    pyproject.write_text("".join(lines))
    written = tomllib.loads(pyproject.read_text())["project"].get("version")
    if written != version:
        raise WheelhouseError(f"{pyproject}: no `version = ...` under [project] to set")


def fails_at_import(source: Path) -> None:
    """A patch for ``hafen_wheel``: a release that fails to start, as its core raises when it
    is imported (``hafen version`` exits 1 naming "broken release"). One function, so that
    every test asking for it shares one build."""
    init = source / "hafen" / "__init__.py"
    init.write_text(init.read_text() + '\nraise RuntimeError("broken release (a test\'s patch)")\n')


def wheelhouse(version: str, out_dir: Path, patch: Patch | None = None) -> Path:
    """``out_dir`` (made, or empty) holding hafen's wheel of ``version`` and the dependency
    wheels: a release as ``hafen hub release add`` takes it. The dependency wheels are
    copies, not links, so a test that damages one damages its own."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise WheelhouseError(f"{out_dir}: not empty; a wheelhouse holds its wheels alone")
    hafen_wheel(version, out_dir, patch)
    for wheel in dependency_wheels().iterdir():
        shutil.copyfile(wheel, out_dir / wheel.name)
    return out_dir


def requirements_for(manifest: Manifest, wheel_dir: Path) -> str:
    """The requirements file that installs ``manifest``'s release from ``wheel_dir`` with
    ``pip install --no-index --require-hashes -r FILE``: each wheel named by its file URL
    with the manifest's hash, hafen with the extra a door installs. Nothing but these files
    can be installed: pip refuses a requirement without a hash, and a file whose hash
    differs."""
    lines = []
    for release_file in sorted(manifest.files, key=lambda f: f.name):
        name, _, _, _ = parse_wheel_filename(release_file.name)
        wanted = f"{name}[{EXTRA}]" if name == "hafen" else name
        url = (wheel_dir / release_file.name).resolve().as_uri()
        lines.append(f"{wanted} @ {url} --hash=sha256:{release_file.sha256}")
    return "\n".join(lines) + "\n"


def install_release(
    wheel_dir: Path, manifest: Manifest, venv: Path, compile_bytecode: bool = False
) -> subprocess.CompletedProcess[str]:
    """Make a venv at ``venv`` and install ``manifest``'s release into it from ``wheel_dir`` as
    a door would: ``pip install --no-index --require-hashes`` (``requirements_for``, written
    into the venv). The venv gets no pip of its own (``venv --without-pip`` takes 0.05 s,
    with pip 3 s): this venv's pip installs into it through ``--python``. Bytecode is not
    compiled unless asked (it is most of an install's time). Returns pip's run, to check."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    requirements = venv / "requirements.txt"
    requirements.write_text(requirements_for(manifest, wheel_dir))
    command = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    command += ["--quiet", "--no-index", "--require-hashes", "-r", str(requirements)]
    if not compile_bytecode:
        command.append("--no-compile")
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def run_release(venv: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``venv/bin/hafen ARGS``, run as on a door: in the venv's directory and without the
    test's PYTHONPATH, so that nothing of this checkout stands in for the installed code."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [str(venv / "bin" / "hafen"), *args],
        cwd=venv,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


if __name__ == "__main__":
    # `make setup` (scripts/setup.sh) fills the cache while it has pip's sources at hand.
    print(f"hafen[{EXTRA}]'s dependency wheels: {dependency_wheels()}")
