"""Atomic writes: the whole new file or the old one, usual permissions, no temp files left."""
import os
import stat

import pytest

from iaseg.io import atomic_write, atomic_write_bytes, atomic_write_text


def test_writes_bytes_and_text_with_usual_permissions(tmp_path):
    path = atomic_write_bytes(tmp_path / "a" / "b" / "x.bin", b"\x00\x01abc")
    assert path == tmp_path / "a" / "b" / "x.bin" and path.read_bytes() == b"\x00\x01abc"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    atomic_write_text(path, "größe\n")
    assert path.read_bytes() == "größe\n".encode()
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    path = atomic_write_bytes(tmp_path / "x.txt", b"old")

    def half_then_fail(f):
        f.write(b"new but incomplete")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
