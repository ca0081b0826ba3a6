"""Atomic writes: the whole new file or the old one, usual permissions, no temp files left."""
import errno
import os
import stat

import pytest

from iaseg.io import (WriteError, append_text, atomic_write, atomic_write_bytes, atomic_write_text, json_safe,
                      json_text, remove_stale_temp_files, replace_files, write_json)

from tests.helpers.faults import FailingWrites


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


# ---------------------------------------------------------------------------------------------
# disk faults: one line naming the path, the old file intact, no temp file left

def _raiser(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize("where, code, reason", [
    ("write", errno.ENOSPC, "No space left on device (ENOSPC)"),
    ("write", errno.EFBIG, "File too large (EFBIG)"),
    ("iaseg.io.mkstemp", errno.EROFS, "Read-only file system (EROFS)"),
    ("iaseg.io.mkstemp", errno.EACCES, "Permission denied (EACCES)"),
    ("os.fsync", errno.EIO, "Input/output error (EIO)"),
    ("os.replace", errno.EROFS, "Read-only file system (EROFS)"),
])
def test_disk_faults_end_in_one_line_naming_the_path(tmp_path, monkeypatch, where, code, reason):
    path = atomic_write_bytes(tmp_path / "x.bin", b"old")
    if where == "write":
        FailingWrites(monkeypatch, nth=1, errno=code)
    elif where.startswith("os."):
        monkeypatch.setattr(os, where[3:], _raiser(code))
    else:
        monkeypatch.setattr(where, _raiser(code))
    with pytest.raises(WriteError) as info:
        atomic_write_bytes(path, b"new contents " * 1000)
    monkeypatch.undo()
    assert str(info.value) == f"cannot write {path}: {reason}"
    assert isinstance(info.value, OSError) and info.value.errno == code
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_the_nth_write_fails_and_earlier_files_stay_whole(tmp_path, monkeypatch):
    faults = FailingWrites(monkeypatch, nth=3)
    atomic_write_bytes(tmp_path / "a", b"1")
    atomic_write_text(tmp_path / "b", "2")
    with pytest.raises(WriteError, match=r"^cannot write .*c: No space left on device \(ENOSPC\)$"):
        atomic_write_bytes(tmp_path / "c", b"3" * 100)
    assert faults.writes == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_a_folder_in_the_way_or_a_file_as_parent(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(WriteError, match=r"^cannot write .*dir: it is a folder \(EISDIR\)$"):
        atomic_write_bytes(tmp_path / "dir", b"x")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(WriteError, match=r"^cannot write .*file/y: .*\((EEXIST|ENOTDIR)\)$"):
        atomic_write_bytes(tmp_path / "file" / "y", b"x")


def test_append_text_cuts_a_failed_line_back(tmp_path, monkeypatch):
    path = append_text(tmp_path / "log", "one\n")
    append_text(path, "two\n")
    FailingWrites(monkeypatch, nth=1)
    with pytest.raises(WriteError, match=r"^cannot write .*log: No space left on device \(ENOSPC\)$"):
        append_text(path, "three\n")
    assert path.read_text() == "one\ntwo\n"


def test_stale_temp_files_are_removed(tmp_path):
    for name in (".last.pt.abcd1234.tmp", ".metrics.jsonl.x_y9ZZ12.tmp", "keep.tmp", ".hidden", "last.pt"):
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_temp_files(tmp_path)
    assert [p.name for p in removed] == [".last.pt.abcd1234.tmp", ".metrics.jsonl.x_y9ZZ12.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "keep.tmp", "last.pt"]


def test_json_is_strict_nan_and_infinities_become_null_and_tensors_arrays_paths_plain_values(tmp_path):
    import json
    import math
    from pathlib import Path

    import numpy as np
    import torch

    data = {"nan": math.nan, "inf": -math.inf, 3: torch.tensor([1.5, math.nan]), "np": np.float32(0.25),
            "i": np.int64(7), "arr": np.array([[1, 2]]), "t": (1, "a"), "p": Path("a/b"), "ok": True, "none": None,
            "nested": [{"x": float("inf")}], "scalar": torch.tensor(2.0)}
    expected = {"nan": None, "inf": None, "3": [1.5, None], "np": 0.25, "i": 7, "arr": [[1, 2]], "t": [1, "a"],
                "p": "a/b", "ok": True, "none": None, "nested": [{"x": None}], "scalar": 2.0}
    assert json_safe(data) == expected
    path = write_json(tmp_path / "x.json", data, indent=1)
    assert path.read_text() == json_text(data, indent=1) == json.dumps(expected, indent=1) + "\n"
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict {c}")) == expected
    with pytest.raises(TypeError):  # anything else is an error, not silently a string
        json_text({"x": object()})
    assert json_text({"x": object()}, default=lambda o: "obj") == '{\n  "x": "obj"\n}\n'


def test_replace_files_moves_staged_files_in_order_with_usual_permissions(tmp_path, monkeypatch):
    stage = tmp_path / ".stage"
    stage.mkdir()
    (stage / "m.bin").write_bytes(b"weights")
    (stage / "m.xml").write_bytes(b"graph")
    os.chmod(stage / "m.bin", 0o600)
    (tmp_path / "m.xml").write_bytes(b"old graph")
    order = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append(os.path.basename(b)), real(a, b)))
    done = replace_files([(stage / "m.bin", tmp_path / "m.bin"), (stage / "m.xml", tmp_path / "m.xml")])
    assert done == [tmp_path / "m.bin", tmp_path / "m.xml"] and order == ["m.bin", "m.xml"]
    assert (tmp_path / "m.bin").read_bytes() == b"weights" and (tmp_path / "m.xml").read_bytes() == b"graph"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "m.bin").stat().st_mode) == 0o666 & ~umask
    assert list(stage.iterdir()) == []
    (stage / "n.bin").write_bytes(b"x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "inside").write_text("keeps the folder non-empty")
    with pytest.raises(WriteError, match=f"^cannot write {tmp_path / 'dir'}: "):  # a folder in the way
        replace_files([(stage / "n.bin", tmp_path / "dir")])
    assert (stage / "n.bin").read_bytes() == b"x"
