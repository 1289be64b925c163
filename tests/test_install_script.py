"""provisioning/install.sh, the door's installer, run for real into a scratch root (``--root``).

One install per module: root's own venv for the ``hafen`` command and the agent's release, both
made with the host's Python and hafen[edge] installed by pip from a wheel built here from the
working tree (its dependencies from the machine's package index, as ``make test``'s set-up gets
them; about 25 s). The release is made as the agent's user (the uid the root's passwd gives it),
so the scratch root lies where that user can reach it (``_open_dir``). Every file it installs
is checked by path, content, mode and owner, the releases by the updater's own reader
(edge.updater.release_dirs), the launcher by running it, the unit by ``systemd-analyze verify``
and the udev rule by udev's own parser; a second run must change nothing at all. A copy of that
root is then upgraded with a wheel of a newer version (about 20 s more).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.version import Version

from edge.updater.release_dirs import ReleaseDirs
from provisioning import launch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "provisioning/install.sh"
UNIT = "hafen-edge.service"
RULE = "etc/udev/rules.d/60-hafen-nfc.rules"
BLACKLIST = "etc/modprobe.d/hafen-nfc-blacklist.conf"
EDGE = "opt/hafen/edge"
#: Root's own install, which the command on PATH runs (with sudo, too).
TOOLS = "opt/hafen/venv"
COMMAND = "usr/local/bin/hafen"
#: The working tree's version, and one after it for the upgrade.
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
NEWER = ".".join(map(str, (*Version(VERSION).release[:-1], Version(VERSION).release[-1] + 1)))


def _seed_root(root: Path) -> None:
    """The account files a system has, as ``--root`` wants them: no ``gpio`` group (this is not
    a Pi), so the warning for a missing group is exercised too."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\nplugdev:x:46:\n")
    for secret in ("shadow", "gshadow"):
        (etc / secret).write_text("")
        (etc / secret).chmod(0o640)


def _run(
    *args: str, umask: int = 0o022, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        umask=umask,
        env=env,
    )


def _no_index(find_links: Path) -> dict[str, str]:
    """pip's environment with the wheels in ``find_links`` as its only package index."""
    return {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(find_links)}


def _launch(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed launcher, run as systemd would (without the test's Python settings)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYTHON") and key not in ("HAFEN_ROOT", "STATE_DIRECTORY")
    }
    return subprocess.run(
        [str(root / "opt/hafen/launch"), *args],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def _tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``root`` with its type, mode, owner, mtime and content (hash or target)."""
    seen: dict[str, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            st = path.lstat()
            if path.is_symlink():
                content: object = os.readlink(path)
            elif path.is_file():
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = None
            seen[str(path.relative_to(root))] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_mtime_ns,
                content,
            )
    return seen


@dataclass
class Install:
    root: Path
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    tree_after_first: dict[str, tuple[object, ...]]
    tree_after_second: dict[str, tuple[object, ...]]
    with_config: subprocess.CompletedProcess[str]


@dataclass
class Upgrade:
    root: Path
    run: subprocess.CompletedProcess[str]
    kept: subprocess.CompletedProcess[str]
    tree_before_kept: dict[str, tuple[object, ...]]
    tree_after_kept: dict[str, tuple[object, ...]]


def _build_wheel(base: Path, version: str) -> Path:
    """hafen's wheel built from a copy of the working tree's files (tracked or new, not ignored),
    so no stale ``build/`` of the tree can slip into it; its version is ``version``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    source = base / "src"
    for name in filter(None, listed):
        origin = ROOT / name
        if not origin.exists() and not origin.is_symlink():
            continue  # deleted in the working tree, not yet in git
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_symlink():
            target.symlink_to(os.readlink(origin))
        else:
            shutil.copy2(origin, target)
    pyproject = source / "pyproject.toml"
    line = f'version = "{VERSION}"'
    assert line in pyproject.read_text()
    pyproject.write_text(pyproject.read_text().replace(line, f'version = "{version}"', 1))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(base / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = (base / "dist").glob(f"hafen-{version}-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"), VERSION)


@pytest.fixture(scope="module")
def newer_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("newer"), NEWER)


@pytest.fixture(scope="module")
def open_dirs() -> Iterator[list[Path]]:
    """Scratch directories the agent's user can reach, removed when the module is done."""
    made: list[Path] = []
    yield made
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def _open_dir(made: list[Path], name: str) -> Path:
    """A scratch directory in the system's /tmp, open to others (0755): install.sh makes the
    release as the agent's user, which pytest's own directories (0700) would keep out."""
    path = Path(tempfile.mkdtemp(prefix=f"hafen-install-{name}-", dir="/tmp"))
    path.chmod(0o755)
    made.append(path)
    return path


@pytest.fixture(scope="module")
def install(open_dirs: list[Path], wheel: Path) -> Install:
    if os.geteuid() != 0:
        pytest.skip("the installer sets owners and adds a user, also under --root: needs root")
    root = _open_dir(open_dirs, "pi")
    _seed_root(root)
    # A technician's umask of 077 must not leave the venv unreadable to the agent.
    first = _run("--root", str(root), "--from", str(wheel), umask=0o077)
    assert first.returncode == 0, first.stdout + first.stderr
    tree_after_first = _tree(root)
    second = _run("--root", str(root), "--from", str(wheel))
    assert second.returncode == 0, second.stdout + second.stderr
    tree_after_second = _tree(root)
    config = root / "etc/hafen/edge.toml"
    config.write_text("# enrolled\n")
    with_config = _run("--root", str(root), "--from", str(wheel))
    config.unlink()
    return Install(root, first, second, tree_after_first, tree_after_second, with_config)


@pytest.fixture(scope="module")
def upgrade(
    tmp_path_factory: pytest.TempPathFactory,
    open_dirs: list[Path],
    install: Install,
    newer_wheel: Path,
) -> Upgrade:
    """A copy of the installed root (owners, modes and links kept: ``cp -a``) upgraded with the
    newer wheel; then run again with neither ``--from`` nor ``--version``, and no index to ask."""
    root = _open_dir(open_dirs, "upgraded") / "pi"
    subprocess.run(["cp", "-a", str(install.root), str(root)], check=True)
    upgraded = _run("--root", str(root), "--from", str(newer_wheel))
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    before = _tree(root)
    nothing = tmp_path_factory.mktemp("no-index")
    kept = _run("--root", str(root), env=_no_index(nothing))
    return Upgrade(root, upgraded, kept, before, _tree(root))


def _ids(root: Path, name: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2]), int(fields[3])
    raise AssertionError(f"no user {name} in {root}/etc/passwd")


def _attrs(path: Path) -> tuple[str, int, int]:
    st = path.lstat()
    return oct(st.st_mode & 0o7777), st.st_uid, st.st_gid


def _not_roots_alone(top: Path) -> list[str]:
    """Every path under ``top`` (itself included) that is not root's, or that its group or
    others may write (a link's own mode means nothing: only its owner counts)."""
    found = []
    for path in (top, *top.rglob("*")):
        st = path.lstat()
        if st.st_uid != 0 or (not path.is_symlink() and st.st_mode & 0o022):
            found.append(f"{path} ({oct(st.st_mode & 0o7777)}, {st.st_uid}:{st.st_gid})")
    return found


def _python_of(venv: Path, *args: str, uid: int = 0, gid: int = 0) -> str:
    """What ``args`` print, run by the venv's own Python, as the user ``uid``."""
    command = [str(venv / "bin/python"), "-I", *args]
    if uid:
        command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]
    return subprocess.run(
        command, cwd="/", capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def _roots_commands(steps: str) -> list[str]:
    """The commands install.sh says it ran as root (``+ ...``), not as the agent's user."""
    return [
        line
        for line in steps.splitlines()
        if line.startswith("    + ") and not line.startswith("    + (as hafen) ")
    ]


def test_the_script_parses_and_shellcheck_finds_nothing():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    # scripts/setup.sh installs Debian's shellcheck, and `make test` runs it first.
    assert shutil.which("shellcheck"), "shellcheck is missing: run scripts/setup.sh"
    checked = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def test_help_says_how_to_run_it():
    shown = _run("--help")
    assert shown.returncode == 0
    for option in ("--from", "--version", "--root", "--dry-run", "HAFEN_INSTALL_ROOT"):
        assert option in shown.stdout


def test_a_user_other_than_root_is_refused_before_anything_is_touched(tmp_path):
    """As root, the script is run as ``nobody`` (setpriv drops the privileges for real)."""
    _seed_root(tmp_path)
    before = _tree(tmp_path)
    command = ["bash", "-c", SCRIPT.read_text(), "install.sh", "--root", str(tmp_path)]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1
    assert "must be run as root" in refused.stderr and "--dry-run" in refused.stderr
    assert refused.stdout == "" and _tree(tmp_path) == before


def test_a_dry_run_says_each_step_and_changes_nothing(tmp_path, wheel):
    _seed_root(tmp_path)
    before = _tree(tmp_path)
    dry = _run("--root", str(tmp_path), "--from", str(wheel), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _tree(tmp_path) == before
    release = f"{tmp_path}/{EDGE}/releases/{VERSION}"
    for planned in (
        "would run: useradd",
        f"would run: /usr/bin/python3 -I -m venv --system-site-packages {tmp_path}/{TOOLS}\n",
        f"would run as hafen: /usr/bin/python3 -I -m venv --system-site-packages {release}\n",
        "would check its version and write its .complete, as hafen",
        f"would run as hafen: ln -s -T releases/{VERSION} {tmp_path}/{EDGE}/.current.new",
        f"would run: ln -s /opt/hafen/venv/bin/hafen {tmp_path}/{COMMAND}\n",
        f"launch.py {tmp_path}/opt/hafen/launch\n",
        f"hafen-edge.service {tmp_path}/etc/systemd/system/hafen-edge.service\n",
    ):
        assert planned in dry.stdout, planned
    assert "\n    + " not in dry.stdout


def test_from_the_index_pip_picks_the_version_that_names_the_release(tmp_path, wheel, newer_wheel):
    """The package index is a directory of wheels here (pip's find-links, no index): pip is
    asked for hafen's wheel before anything is made, since its version names the release's
    directory, and a venv cannot be moved once pip wrote its scripts."""
    root, index = tmp_path / "pi", tmp_path / "index"
    _seed_root(root)
    index.mkdir()
    for built in (wheel, newer_wheel):
        shutil.copy(built, index)
    before = _tree(root)
    newest = _run("--root", str(root), "--dry-run", env=_no_index(index))
    assert newest.returncode == 0, newest.stderr
    assert "asking pip for the wheel of hafen (" in newest.stdout
    python = "/usr/bin/python3 -I -m venv --system-site-packages"
    venv = f"would run as hafen: {python} {root}/{EDGE}/releases"
    assert f"{venv}/{NEWER}\n" in newest.stdout
    pinned = _run("--root", str(root), "--dry-run", "--version", VERSION, env=_no_index(index))
    assert pinned.returncode == 0, pinned.stderr
    assert f"{venv}/{VERSION}\n" in pinned.stdout
    missing = _run("--root", str(root), "--dry-run", "--version", "9.9", env=_no_index(index))
    assert "pip could not get hafen==9.9" in missing.stderr
    assert _tree(root) == before


def test_an_install_from_before_releases_becomes_the_commands_own(tmp_path, wheel):
    """/opt/hafen/venv, where hafen went before releases (and where the hub's units run it
    from), is root's: hafen is installed into it again, the rest of it kept, and the ``hafen``
    command keeps linking it."""
    _seed_root(tmp_path)
    old = tmp_path / TOOLS / "bin/hafen"
    old.parent.mkdir(parents=True)
    old.write_text("#!/bin/sh\n")
    command = tmp_path / COMMAND
    command.parent.mkdir(parents=True)
    command.symlink_to("/opt/hafen/venv/bin/hafen")
    before = _tree(tmp_path)
    dry = _run("--root", str(tmp_path), "--from", str(wheel), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _tree(tmp_path) == before
    assert f"would run: /usr/bin/python3 -I -m venv --system-site-packages {old.parents[1]}\n" in (
        dry.stdout
    )
    assert f"{command}: there\n" in dry.stdout
    assert "would run: rm" not in dry.stdout


def test_the_command_linked_to_the_agents_release_is_moved_to_roots_own(tmp_path, wheel):
    """The first install.sh of releases linked the command to ``current``: code the agent can
    change, which ``sudo hafen`` ran as root. A run moves the link, in one rename."""
    _seed_root(tmp_path)
    command = tmp_path / COMMAND
    command.parent.mkdir(parents=True)
    command.symlink_to("/opt/hafen/edge/current/bin/hafen")
    before = _tree(tmp_path)
    dry = _run("--root", str(tmp_path), "--from", str(wheel), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _tree(tmp_path) == before
    assert "links the agent's release, which the agent can change" in dry.stdout
    assert f"would run: ln -s -T /opt/hafen/venv/bin/hafen {command}.new\n" in dry.stdout
    assert f"would run: mv -T {command}.new {command}\n" in dry.stdout
    # Such a door, run again without a version: its release is kept, and root's install, which
    # it never had, is asked for by the version the door runs (the link is moved all the same).
    (tmp_path / EDGE).mkdir(parents=True)
    (tmp_path / EDGE / "current").symlink_to(f"releases/{VERSION}")
    kept = _run("--root", str(tmp_path), "--dry-run", env=_no_index(tmp_path / "no-index"))
    assert kept.returncode == 0, kept.stderr
    assert f"run me again with --version {VERSION} (the version the door runs)" in kept.stderr
    assert f"would run: mv -T {command}.new {command}\n" in kept.stdout


def test_roots_install_that_others_could_change_is_refused_before_root_runs_it(open_dirs, wheel):
    """Root runs pip from /opt/hafen/venv and technicians run its hafen with sudo: a file in it
    that is not root's alone stops the install before anything of it is run."""
    root = _open_dir(open_dirs, "foreign")
    _seed_root(root)
    tools = root / TOOLS
    (tools / "bin").mkdir(parents=True)
    python = tools / "bin/python"
    python.write_text('#!/bin/sh\ntouch "$0.ran"\n')
    python.chmod(0o775)  # the group may write it
    dry = _run("--root", str(root), "--from", str(wheel), "--dry-run")
    assert dry.returncode == 0 and f"{python} is not root's alone" in dry.stderr
    if os.geteuid() != 0:
        return
    refused = _run("--root", str(root), "--from", str(wheel))
    assert refused.returncode == 1
    assert f"{python} is not root's alone" in refused.stderr
    assert "remove /opt/hafen/venv" in refused.stderr
    assert not (tools / "bin/python.ran").exists()
    assert "==> hafen" not in refused.stdout  # nor anything of the release


def test_a_root_the_agents_user_cannot_reach_is_refused_with_the_reason(tmp_path, wheel):
    """The release is made as the agent's user; under --root in a directory closed to others
    (pytest's own: 0700), that user could not, and is not made to fail halfway."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to add the user and drop to it")
    _seed_root(tmp_path)
    refused = _run("--root", str(tmp_path), "--from", str(wheel))
    assert refused.returncode == 1
    assert f"the hafen user (uid {_ids(tmp_path, 'hafen')[0]}) cannot write" in refused.stderr
    assert "every directory above it must be open to others" in refused.stderr
    assert not (tmp_path / EDGE / "releases").exists()


def test_unknown_options_and_version_with_a_wheel_are_refused(wheel):
    assert "unknown option --frm" in _run("--frm", "x").stderr
    both = _run("--from", str(wheel), "--version", "0.1.0", "--dry-run")
    assert both.returncode == 1 and "--version picks from the package index" in both.stderr


def test_the_user_and_its_groups(install):
    uid, gid = _ids(install.root, "hafen")
    entry = f"hafen:x:{uid}:{gid}:hafen door agent:/var/lib/hafen:/usr/sbin/nologin"
    assert entry in (install.root / "etc/passwd").read_text().splitlines()
    assert uid < 1000  # a system user
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (install.root / "etc/group").read_text().splitlines()
    }
    assert "hafen" in groups["dialout"] and "hafen" in groups["plugdev"]
    assert "gpio" not in groups, "a group Raspberry Pi OS has must not be made up here"
    assert "group gpio does not exist on this machine" in install.first.stderr


def test_the_directories_have_the_modes_the_unit_keeps_them_in(install):
    uid, gid = _ids(install.root, "hafen")
    assert _attrs(install.root / "etc/hafen") == ("0o750", 0, gid)
    assert _attrs(install.root / "var/lib/hafen") == ("0o700", uid, gid)
    assert _attrs(install.root / "opt/hafen") == ("0o755", 0, 0)
    # systemd sets the state directory's mode at every start, and warns about the config's:
    # the unit must say the same modes, or the first start would undo the installer's.
    unit = (install.root / "etc/systemd/system" / UNIT).read_text()
    assert "StateDirectoryMode=0700" in unit and "ConfigurationDirectoryMode=0750" in unit


def test_the_release_is_complete_current_and_the_agents(install):
    """As the updater reads releases (edge.updater.release_dirs): complete (its marker), what
    ``current`` names; and the agent's, every file of it, since the updater prunes them."""
    edge = install.root / EDGE
    releases = ReleaseDirs(edge)
    assert releases.installed() == [VERSION]
    assert (releases.current(), releases.previous()) == (VERSION, None)
    release = edge / "releases" / VERSION
    assert (release / ".complete").read_text() == f"{VERSION}\n"
    assert "include-system-site-packages = true" in (release / "pyvenv.cfg").read_text()
    uid, gid = _ids(install.root, "hafen")
    assert _attrs(edge) == ("0o755", uid, gid)
    not_the_agents = [
        str(path)
        for path in (edge, *edge.rglob("*"))
        if (path.lstat().st_uid, path.lstat().st_gid) != (uid, gid)
    ]
    assert not_the_agents == []
    # The agent's user made all of it: root ran nothing in the agent's tree, nor on a path
    # through it (the agent could swap a directory there for another meanwhile).
    steps = install.first.stdout
    assert [line for line in _roots_commands(steps) if f"{edge}/" in line] == []
    made = steps.index(f"+ (as hafen) /usr/bin/python3 -I -m venv --system-site-packages {release}")
    # The marker is the last step of the release, then the switch.
    marked = steps.index(f"+ (as hafen) mv -T {release}/.complete.new {release}/.complete")
    assert made < marked < steps.index(f"+ (as hafen) mv -T {edge}/.current.new {edge}/current")


def test_the_release_holds_hafen_with_the_edge_extras_readable_by_the_agent(install):
    release = install.root / EDGE / "releases" / VERSION
    imports = "import nfc, gpiozero, serial, paho.mqtt, sdnotify, hafen; print(hafen.__file__)"
    where = subprocess.run(
        [str(release / "bin/python"), "-I", "-c", imports],
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(release))
    assert Path(where.stdout.strip()).stat().st_mode & 0o004, "installed under umask 077"


def test_the_command_on_path_is_roots_own_install_apart_from_the_releases(install):
    """``sudo hafen provision enrol`` runs what the command links as root: nothing of it, nor
    of the directories above it, may be the agent's or writable by others. It is a venv of its
    own (not the release's, which the agent changes), from the same wheel as the release."""
    link = install.root / COMMAND
    assert os.readlink(link) == "/opt/hafen/venv/bin/hafen"
    tools = install.root / TOOLS
    assert (tools / "bin/hafen").is_file()
    assert _not_roots_alone(tools) == []
    for above in (install.root / "opt/hafen", install.root / "opt", link.parent):
        assert above.stat().st_uid == 0 and not above.stat().st_mode & 0o022, above
    assert "include-system-site-packages = true" in (tools / "pyvenv.cfg").read_text()
    # A tree apart from the releases: its hafen is its own copy, not a link into them.
    edge = (install.root / EDGE).resolve()
    assert not tools.resolve().is_relative_to(edge)
    imports = "import nfc, gpiozero, serial, paho.mqtt, sdnotify, hafen; print(hafen.__file__)"
    assert Path(_python_of(tools, "-c", imports)).is_relative_to(tools)
    release = install.root / EDGE / "releases" / VERSION
    stamp = ".hafen-installed-from"
    assert (tools / stamp).read_text() == (release / stamp).read_text()
    version = "import hafen; print(hafen.__version__)"
    assert _python_of(tools, "-c", version) == VERSION
    # The agent's user may run it too (`sudo -u hafen hafen edge selftest`): installed under
    # umask 077, it is readable by all.
    uid, gid = _ids(install.root, "hafen")
    assert _python_of(tools, "-c", version, uid=uid, gid=gid) == VERSION


def test_the_launcher_is_roots_and_runs_the_current_release(install):
    """The launcher is the package's own, root's (a release cannot change its way back), and
    runs the release ``current`` names (and not root's /opt/hafen/venv: the upgrade's test
    tells them apart by their versions)."""
    launcher = install.root / "opt/hafen/launch"
    assert launcher.read_bytes() == (ROOT / "provisioning/launch.py").read_bytes()
    assert _attrs(launcher) == ("0o755", 0, 0)
    assert _launch(install.root, "version").stdout.strip() == VERSION


def test_the_unit_is_the_shipped_one_from_the_wheel_enabled_and_verified(install):
    installed = install.root / "etc/systemd/system" / UNIT
    assert installed.read_bytes() == (ROOT / "systemd" / UNIT).read_bytes()
    assert _attrs(installed) == ("0o644", 0, 0)
    wanted = install.root / "etc/systemd/system/multi-user.target.wants" / UNIT
    assert os.readlink(wanted) == f"/etc/systemd/system/{UNIT}"
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not here")
    # After the second run's snapshot: the system's units beside ours, as verify wants them.
    shutil.copytree(
        "/usr/lib/systemd/system",
        install.root / "usr/lib/systemd/system",
        symlinks=True,
        dirs_exist_ok=True,
    )
    verify = subprocess.run(
        ["systemd-analyze", "verify", f"--root={install.root}", UNIT],
        cwd=installed.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stderr


RULE_LINE = re.compile(
    r'SUBSYSTEM=="usb", ENV\{DEVTYPE\}=="usb_device", ATTR\{idVendor\}=="([0-9a-f]{4})", '
    r'ATTR\{idProduct\}=="([0-9a-f]{4})", GROUP="hafen", MODE="0660"'
)


def test_the_udev_rule_gives_every_reader_nfcpy_drives_to_the_agent(install):
    from nfc.clf.device import usb_device_map

    rule = install.root / RULE
    assert _attrs(rule) == ("0o644", 0, 0)
    covered = set()
    for line in rule.read_text().splitlines():
        if line.startswith("#"):
            continue
        match = RULE_LINE.fullmatch(line)
        assert match, line
        covered.add((int(match[1], 16), int(match[2], 16)))
    assert covered == set(usb_device_map)


@pytest.mark.skipif(not shutil.which("udevadm"), reason="udevadm is not here")
def test_udev_reads_the_rule_without_a_complaint(install):
    """udev's own parser (systemd 252 has no ``udevadm verify``): ``udevadm test`` on the
    loopback device, in a mount namespace where the root's rules and accounts are the system's,
    so the real /etc is never touched and the group ``hafen`` is known."""
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespace here: " + probe.stderr.decode())
    mounts = " && ".join(
        f"mount --bind {install.root}/{path} /{path}"
        for path in ("etc/udev/rules.d", "etc/group", "etc/passwd")
    )
    tested = subprocess.run(
        ["unshare", "--mount", "sh", "-c", f"{mounts} && udevadm test /sys/class/net/lo 2>&1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"Reading rules file: /{RULE}" in tested.stdout, tested.stdout[-2000:]
    complaints = [line for line in tested.stdout.splitlines() if line.startswith(f"/{RULE}:")]
    assert complaints == []


def test_the_kernel_drivers_that_would_claim_the_reader_are_blacklisted(install):
    blacklist = install.root / BLACKLIST
    assert _attrs(blacklist) == ("0o644", 0, 0)
    lines = [line for line in blacklist.read_text().splitlines() if not line.startswith("#")]
    assert lines == ["blacklist pn533_usb", "blacklist port100"]


def test_a_second_run_changes_nothing(install):
    assert install.tree_after_second == install.tree_after_first
    assert "\n    + " not in install.second.stdout, install.second.stdout
    # Both installs, root's and the agent's, were found as they are.
    assert install.second.stdout.count("installed already from the same contents") == 2


def test_without_a_config_it_names_the_next_step_and_with_one_it_starts(install):
    assert "hafen provision enrol https://HUB TOKEN" in install.first.stdout
    assert "would start hafen-edge.service" not in install.first.stdout
    assert install.with_config.returncode == 0, install.with_config.stderr
    started = "would start hafen-edge.service (/etc/hafen/edge.toml exists)"
    assert started in install.with_config.stdout
    assert "hafen provision enrol" not in install.with_config.stdout


def test_an_upgrade_installs_the_newer_release_and_makes_the_old_one_previous(install, upgrade):
    edge = upgrade.root / EDGE
    releases = ReleaseDirs(edge)
    assert releases.installed() == [VERSION, NEWER]
    assert (releases.current(), releases.previous()) == (NEWER, VERSION)
    assert _launch(upgrade.root, "version").stdout.strip() == NEWER
    # Root's install for the command is upgraded in the same run, in its place, root's still.
    tools = upgrade.root / TOOLS
    assert os.readlink(upgrade.root / COMMAND) == "/opt/hafen/venv/bin/hafen"
    assert _python_of(tools, "-c", "import hafen; print(hafen.__version__)") == NEWER
    assert _not_roots_alone(tools) == []
    assert f"+ {upgrade.root}/{TOOLS}/bin/python -I -m pip install" in upgrade.run.stdout
    # The old release is untouched: it is the one to go back to.
    old = f"{EDGE}/releases/{VERSION}"
    assert {k: v for k, v in upgrade.tree_before_kept.items() if k.startswith(old)} == {
        k: v for k, v in install.tree_after_second.items() if k.startswith(old)
    }
    # The launcher's way back (a new version that crash-loops) works on what install.sh wrote.
    assert launch.switch_back(edge)
    assert (releases.current(), releases.previous()) == (VERSION, NEWER)
    assert _launch(upgrade.root, "version").stdout.strip() == VERSION
    # The command's hafen is not the release's: it stays on the version it was installed with.
    assert _python_of(tools, "-c", "import hafen; print(hafen.__version__)") == NEWER


def test_a_run_without_a_version_keeps_the_current_release_and_asks_no_index(upgrade):
    """A door the hub has updated is not taken back to what the index has: without --from or
    --version the current release stays, and pip is not asked (it has no index here)."""
    kept = upgrade.kept
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert f"hafen {NEWER} is current in /opt/hafen/edge: kept" in kept.stdout
    assert "asking pip" not in kept.stdout and "\n    + " not in kept.stdout
    assert "not by the hub's rollouts" in kept.stdout  # root's install is left too
    assert upgrade.tree_after_kept == upgrade.tree_before_kept


def test_a_source_tree_is_built_and_its_wheel_matched_by_contents(install, wheel):
    """``--from DIR`` builds a wheel first; a build of the same files is a new zip (its times
    differ) with the same contents, so the release installed from the first is kept."""
    source = wheel.parent.parent / "src"  # what the wheel fixture built the wheel from
    before = _tree(install.root)
    again = _run("--root", str(install.root), "--from", str(source), "--dry-run")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"asking pip for the wheel of {source} (" in again.stdout
    assert "installed already from the same contents" in again.stdout
    assert "would run:" not in again.stdout.split("==> The hafen command on PATH")[0]
    assert _tree(install.root) == before
