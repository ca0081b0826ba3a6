"""Disk-fault injection for iaseg.io (no tmpfs in CI): the n-th write of a file through
iaseg.io raises an OSError with a chosen errno."""
from __future__ import annotations

import builtins
import errno as errno_codes
import os
from typing import Any


class _File:
    def __init__(self, f: Any, faults: "FailingWrites") -> None:
        self._f, self._faults = f, faults

    def write(self, data: bytes) -> int:
        self._faults.writes += 1
        if self._faults.writes == self._faults.nth:
            self._f.write(bytes(data)[: len(data) // 2])  # half a file reaches the disk, as with a real ENOSPC
            raise OSError(self._faults.errno, os.strerror(self._faults.errno))
        return self._f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> "_File":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._f.close()


class FailingWrites:
    """monkeypatch `open` in iaseg.io so that its `nth` write (1-based, counted over every file
    iaseg.io writes) raises OSError(errno); `writes` counts the writes so far."""

    def __init__(self, monkeypatch: Any, nth: int, errno: int = errno_codes.ENOSPC) -> None:
        self.nth, self.errno, self.writes = nth, errno, 0
        monkeypatch.setattr("iaseg.io.open", lambda *a, **k: _File(builtins.open(*a, **k), self), raising=False)


# -- a whole folder that refuses writes ------------------------------------------------------------
# Tests run as root in CI, where chmod does not stop a write: the faults are injected at the os
# level instead (os.open, os.mkdir, os.replace/rename, open), for paths below one folder.

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _below(path: Any, root: str, dir_fd: int | None = None) -> bool:
    if isinstance(path, int):  # an open file descriptor: where it points
        try:
            path = os.readlink(f"/proc/self/fd/{path}")
        except OSError:
            return False
    elif dir_fd is not None and not os.path.isabs(os.fsdecode(path)):
        try:
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), os.fsdecode(path))
        except OSError:
            return False
    try:
        full = os.path.abspath(os.fsdecode(path))
    except TypeError:
        return False
    return full == root or full.startswith(root + os.sep)


class _FullFile:
    """A file object below the full disk: its first write stores half the data, then ENOSPC."""

    def __init__(self, f: Any, folder: "BrokenFolder") -> None:
        self._f, self._folder = f, folder

    def write(self, data: Any) -> int:
        self._f.write(data[: len(data) // 2])
        self._folder.refused += 1
        raise OSError(self._folder.code, os.strerror(self._folder.code))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __iter__(self) -> Any:
        return iter(self._f)

    def __enter__(self) -> "_FullFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._f.close()


class BrokenFolder:
    """monkeypatch the os so that below `root` nothing can be written: `kind="readonly"` refuses
    to create, open for writing, rename into or make folders there (EROFS, as a read-only mount);
    `kind="full"` lets files be created but every write stores half its data and then fails
    with ENOSPC (a full disk). `snapshot(root)` before and after tells what was left behind."""

    def __init__(self, monkeypatch: Any, root: Any, kind: str = "readonly") -> None:
        self.root, self.kind, self.refused = os.path.abspath(os.fspath(root)), kind, 0
        self.code = errno_codes.EROFS if kind == "readonly" else errno_codes.ENOSPC
        real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
        real_replace, real_rename, real_write = os.replace, os.rename, os.write

        def refuse(path: Any) -> None:
            self.refused += 1
            raise OSError(self.code, os.strerror(self.code), os.fsdecode(path) if not isinstance(path, int) else None)

        def writing(mode: str) -> bool:
            return any(c in mode for c in "wax+")

        def fake_open(file: Any, mode: str = "r", *a: Any, **k: Any) -> Any:
            if writing(mode) and _below(file, self.root):
                if kind == "readonly":
                    refuse(file)
                return _FullFile(real_open(file, mode, *a, **k), self)
            return real_open(file, mode, *a, **k)

        def fake_os_open(path: Any, flags: int, *a: Any, dir_fd: int | None = None, **k: Any) -> int:
            if kind == "readonly" and flags & _WRITE_FLAGS and _below(path, self.root, dir_fd):
                refuse(path)
            return real_os_open(path, flags, *a, dir_fd=dir_fd, **k)

        def fake_mkdir(path: Any, *a: Any, dir_fd: int | None = None, **k: Any) -> None:
            if kind == "readonly" and _below(path, self.root, dir_fd) and not os.path.isdir(
                    path if dir_fd is None else os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)):
                refuse(path)
            return real_mkdir(path, *a, dir_fd=dir_fd, **k)

        def moving(real: Any) -> Any:
            def fake(src: Any, dst: Any, *a: Any, dst_dir_fd: int | None = None, **k: Any) -> None:
                if kind == "readonly" and _below(dst, self.root, dst_dir_fd):
                    refuse(dst)
                return real(src, dst, *a, dst_dir_fd=dst_dir_fd, **k)
            return fake

        def fake_write(fd: int, data: Any) -> int:
            if kind == "full" and _below(fd, self.root):
                real_write(fd, bytes(data)[: len(data) // 2])
                refuse(fd)
            return real_write(fd, data)

        import io
        for target, name, value in ((builtins, "open", fake_open), (io, "open", fake_open), (os, "open", fake_os_open),
                                    (os, "mkdir", fake_mkdir), (os, "replace", moving(real_replace)),
                                    (os, "rename", moving(real_rename)), (os, "write", fake_write)):
            monkeypatch.setattr(target, name, value)
        if kind == "full":  # fdopen/FileIO writes go around os.write: wrap what os.fdopen gives
            real_fdopen = os.fdopen
            monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: (
                _FullFile(real_fdopen(fd, mode, *a, **k), self) if writing(mode) and _below(fd, self.root)
                else real_fdopen(fd, mode, *a, **k)))


def snapshot(root: Any) -> dict[str, bytes]:
    """Every file below `root` (relative path -> content), folders as b'<dir>'."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = b"<dir>"
        for f in filenames:
            p = os.path.join(dirpath, f)
            with builtins.open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out
