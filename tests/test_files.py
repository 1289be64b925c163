"""hafen.files: a replaced file is whole, has its mode and owner from the start, and a
symlink planted at its name is replaced, not followed."""

from __future__ import annotations

import os

from hafen.files import write_atomically


def test_a_file_is_replaced_whole_with_its_mode(tmp_path):
    target = tmp_path / "device.key"
    target.write_bytes(b"old")
    write_atomically(target, b"new", mode=0o640)
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["device.key"]  # no temporary left


def test_a_symlink_at_the_name_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"root's file")
    os.chmod(victim, 0o600)
    link = tmp_path / "device.crt"
    link.symlink_to(victim)
    write_atomically(link, b"certificate", mode=0o644, uid=os.getuid(), gid=os.getgid())
    assert not link.is_symlink() and link.read_bytes() == b"certificate"
    assert victim.read_bytes() == b"root's file" and victim.stat().st_mode & 0o777 == 0o600
