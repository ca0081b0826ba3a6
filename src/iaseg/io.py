"""Atomic file writes: readers see either the old file or the whole new one, never half of it.

Every file iaseg writes (checkpoints, reports, figures, rules, caches, exported models, masks)
goes through `atomic_write`, so a crash or Ctrl-C never leaves a truncated file behind. A write
the file system refuses (read-only folder, full disk, file-size limit, ...) raises `WriteError`
naming the path; the old file stays and no temp file is left.
"""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from tempfile import mkstemp
from typing import BinaryIO, Callable

# the temp files of atomic_write: `.NAME.XXXXXXXX.tmp` next to NAME (mkstemp's 8 random characters)
TEMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


class WriteError(OSError):
    """A file could not be written (permissions, full disk, size limit, ...); the message names
    the path and the reason in one line."""

    def __str__(self) -> str:  # the message alone, without OSError's "[Errno N]" prefix
        return self.strerror or super().__str__()


def write_error(path: str | Path, error: OSError) -> WriteError:
    """WriteError('cannot write PATH: reason (ERRNO)') from an OSError."""
    if isinstance(error, WriteError):
        return error
    code = errno.errorcode.get(error.errno or 0)
    reason = error.strerror or str(error) or type(error).__name__
    return WriteError(error.errno or 0, f"cannot write {path}: {reason}" + (f" ({code})" if code else ""))


def _raise(path: Path, error: OSError) -> None:
    raise write_error(path, error) from None


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file atomically: `write(f)` fills a temp file in the same folder, which is fsynced
    and renamed over `path` (parents are created). The file gets the usual permissions (0666
    minus the umask). Returns `path`. OSErrors (read-only folder, ENOSPC, EFBIG, ...) become a
    WriteError naming `path`, with the old file intact and the temp file removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder")
        fd, tmp = mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        _raise(path, e)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        with open(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            _raise(path, e)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """atomic_write() of a bytes object."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """atomic_write() of a str, UTF-8 encoded."""
    return atomic_write_bytes(path, text.encode())


def append_text(path: str | Path, text: str) -> Path:
    """Append `text` to a log-like file; on failure the file is cut back to its old length (no
    half line) and a WriteError names it."""
    path = Path(path)
    try:
        with open(path, "ab") as f:
            start = f.tell()
            try:
                f.write(text.encode())
                f.flush()
            except OSError:
                try:
                    f.truncate(start)
                except OSError:
                    pass
                raise
    except OSError as e:
        _raise(path, e)
    return path


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temp files of interrupted atomic writes (kill -9 during a save) directly in
    `folder`; returns what was removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in sorted(folder.iterdir()):
        if TEMP_PATTERN.match(p.name) and p.is_file() and not p.is_symlink():
            try:
                p.unlink()
                removed.append(p)
            except FileNotFoundError:
                pass
    return removed
