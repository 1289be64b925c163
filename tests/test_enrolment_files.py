"""Who owns what enrolment writes on the Pi: run as root for the agent's user, root writes and
the agent reads (the config, the card key, the broker password), except its own identity in
``tls/``, which it renews itself; and root never hands a file to that user by its name."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.agent.enrolment import DevicePaths, enrol
from tests.support.provisioned import ProvisionedNetwork

SITE, DEVICE = "leipzig-ost", "front-door"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root gives files to another user")


@pytest.fixture
def hub(provisioned: ProvisionedNetwork) -> ProvisionedNetwork:
    """The real hub (plain HTTP on loopback), with the site the Pi enrols at."""
    provisioned.add_site(SITE)
    return provisioned


def _token(hub: ProvisionedNetwork) -> str:
    return hub.token_for(SITE, DEVICE)


@pytest.fixture
def pi() -> Iterator[DevicePaths]:
    """A Pi's /etc/hafen and /var/lib/hafen, somewhere another user can reach (the agent's
    user must get to its files; pytest's own directories are root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="hafen-pi-"))
    root.chmod(0o755)
    try:
        yield DevicePaths(root / "etc" / "hafen", root / "var" / "lib" / "hafen")
    finally:
        shutil.rmtree(root)


def _attrs(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pytest.skip(f"this machine has no user {name}")


def test_without_an_agent_user_everything_is_the_writers_alone(hub, pi):
    _config, written = enrol(hub.url, _token(hub), pi)
    me = os.geteuid(), os.getegid()
    for directory in (pi.etc, pi.tls, pi.state):
        assert _attrs(directory) == (*me, 0o700), directory
    for path in written:
        assert _attrs(path) == (*me, 0o600), path


@as_root
def test_root_writes_and_the_agent_reads_except_its_own_identity(hub, pi):
    agent = _user("nobody")  # its primary group (nogroup) has another name
    _config, written = enrol(hub.url, _token(hub), pi, owner="nobody")
    uid, gid = agent.pw_uid, agent.pw_gid
    assert _attrs(pi.etc) == (0, gid, 0o750)
    assert _attrs(pi.tls) == (uid, gid, 0o700)
    assert _attrs(pi.state) == (uid, gid, 0o700)
    for path in (pi.config, pi.card_key, pi.password):
        assert _attrs(path) == (0, gid, 0o640), path
    for path in (pi.key, pi.certificate, pi.ca):
        assert _attrs(path) == (uid, gid, 0o600), path
    assert set(written) == {pi.config, pi.card_key, pi.password, pi.key, pi.certificate, pi.ca}

    # As the agent's user (setpriv drops root's rights for real): it reads everything, renews
    # its certificate in tls/, keeps its store, and cannot change the keys it trusts.
    def as_agent(script: str) -> int:
        command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        return subprocess.run([*command, "sh", "-c", script], capture_output=True).returncode

    assert as_agent(f"cat {' '.join(str(p) for p in written)} >/dev/null") == 0
    assert as_agent(f": > {pi.key}.pending && : > {pi.state}/edge.db") == 0
    assert as_agent(f": > {pi.config}") != 0
    assert as_agent(f": > {pi.etc}/other.toml") != 0
    assert as_agent(f"mv {pi.config} {pi.tls}/") != 0


class Swapper(threading.Thread):
    """The agent's user at work in its tls/ directory while root enrols again: each file root
    puts there is replaced by a symlink to ``victim`` the moment it appears."""

    def __init__(self, directory: Path, names: tuple[str, ...], victim: Path) -> None:
        super().__init__(daemon=True)
        self.directory, self.names, self.victim = directory, names, victim
        self.swapped: set[str] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and len(self.swapped) < len(self.names):
            for name in self.names:
                path = self.directory / name
                if name in self.swapped or not path.is_file() or path.is_symlink():
                    continue
                link = self.directory / f".{name}.swap"
                link.symlink_to(self.victim)
                os.replace(link, path)
                self.swapped.add(name)


@as_root
def test_a_file_swapped_for_a_symlink_does_not_hand_roots_file_to_the_agent(hub, pi):
    agent = _user("daemon")
    # Enrolled before: /etc/hafen as install.sh makes it, tls/ the agent's.
    pi.etc.mkdir(parents=True)
    os.chown(pi.etc, 0, agent.pw_gid)
    pi.etc.chmod(0o750)
    pi.tls.mkdir(mode=0o700)
    os.chown(pi.tls, agent.pw_uid, agent.pw_gid)
    victim = pi.etc.parent / "shadow"  # a file of root's, such as /etc/shadow
    victim.write_text("root's secrets\n")
    victim.chmod(0o600)
    # The swap must come while root enrols; on a busy machine the swapper may miss that.
    for _attempt in range(10):
        token = _token(hub)
        swapper = Swapper(pi.tls, ("device.key", "device.crt", "ca.crt"), victim)
        swapper.start()
        try:
            enrol(hub.url, token, pi, owner="daemon")
            during = set(swapper.swapped)
        finally:
            swapper.done.set()
            swapper.join(10)
        assert _attrs(victim) == (0, 0, 0o600)
        if during:
            break
    assert during, "no file was swapped while root enrolled: the test tested nothing"
