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
