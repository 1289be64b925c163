"""provisioning/install.sh, the door's installer, run for real into a scratch root (``--root``).

One install per module: the venv is made with the host's Python and hafen[edge] installed by pip
from a wheel built here from the working tree (its dependencies from the machine's package
index, as ``make test``'s set-up gets them; about 10 s). Every file it installs is checked by
path, content, mode and owner, the unit by ``systemd-analyze verify`` and the udev rule by udev's
own parser; a second run must change nothing at all.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "provisioning/install.sh"
UNIT = "hafen-edge.service"
RULE = "etc/udev/rules.d/60-hafen-nfc.rules"
BLACKLIST = "etc/modprobe.d/hafen-nfc-blacklist.conf"


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


def _run(*args: str, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300, umask=umask
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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hafen's wheel built from a copy of the working tree's files (tracked or new, not ignored),
    so no stale ``build/`` of the tree can slip into it."""
    base = tmp_path_factory.mktemp("wheel")
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
    (built,) = (base / "dist").glob("hafen-*.whl")
    return built


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Install:
    if os.geteuid() != 0:
        pytest.skip("the installer sets owners and adds a user, also under --root: needs root")
    root = tmp_path_factory.mktemp("pi")
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


def _ids(root: Path, name: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2]), int(fields[3])
    raise AssertionError(f"no user {name} in {root}/etc/passwd")


def _attrs(path: Path) -> tuple[str, int, int]:
    st = path.lstat()
    return oct(st.st_mode & 0o7777), st.st_uid, st.st_gid


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
    for planned in (
        "would run: useradd",
        "would run: /usr/bin/python3 -I -m venv",
        "would run: install -m 644 -o 0 -g 0",
        "would install hafen-edge.service",
    ):
        assert planned in dry.stdout, planned
    assert "\n    + " not in dry.stdout


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


def test_the_venv_runs_hafen_with_the_edge_extras_readable_by_the_agent(install):
    venv = install.root / "opt/hafen/venv"
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    version = subprocess.run(
        [str(venv / "bin/hafen"), "version"],
        cwd="/",
        env=clean_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "0.1.0"
    imports = "import nfc, gpiozero, serial, paho.mqtt, sdnotify, hafen; print(hafen.__file__)"
    where = subprocess.run(
        [str(venv / "bin/python"), "-I", "-c", imports], capture_output=True, text=True, check=True
    )
    assert where.stdout.startswith(str(venv))
    assert Path(where.stdout.strip()).stat().st_mode & 0o004, "installed under umask 077"
    link = install.root / "usr/local/bin/hafen"
    assert os.readlink(link) == "/opt/hafen/venv/bin/hafen"


def test_the_unit_is_the_shipped_one_from_the_wheel_enabled_and_verified(install):
    installed = install.root / "etc/systemd/system" / UNIT
    assert installed.read_bytes() == (ROOT / "systemd" / UNIT).read_bytes()
    assert _attrs(installed) == ("0o644", 0, 0)
    assert "site-packages/provisioning/systemd/hafen-edge.service" in install.first.stdout
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
    assert "hafen: installed already from wheel" in install.second.stdout


def test_without_a_config_it_names_the_next_step_and_with_one_it_starts(install):
    assert "hafen provision enrol https://HUB TOKEN" in install.first.stdout
    assert "would start hafen-edge.service" not in install.first.stdout
    assert install.with_config.returncode == 0, install.with_config.stderr
    started = "would start hafen-edge.service (/etc/hafen/edge.toml exists)"
    assert started in install.with_config.stdout
    assert "hafen provision enrol" not in install.with_config.stdout
