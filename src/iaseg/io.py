"""Atomic file writes: readers see either the old file or the whole new one, never half of it.

Every file iaseg writes (checkpoints, reports, figures, rules, caches, exported models, masks)
goes through `atomic_write`, so a crash or Ctrl-C never leaves a truncated file behind; files
made by another library in a staging folder are moved into place by `replace_files`. A write
the file system refuses (read-only folder, full disk, file-size limit, ...) raises `WriteError`
naming the path; the old file stays and no temp file is left. JSON goes through `write_json`,
whose one sanitizer `json_safe` makes every file strict JSON (NaN and infinities as null).
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
from pathlib import Path
from tempfile import mkstemp
from typing import Any, BinaryIO, Callable, Iterable, Mapping

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


def _normal_mode() -> int:
    """0666 minus the umask: the permissions of a file made with open()."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Make renames in `folder` durable (best effort: some file systems refuse a folder fsync)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


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
        os.fchmod(fd, _normal_mode())  # mkstemp creates 0600; give the file normal permissions
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
    _fsync_folder(path.parent)
    return path


def replace_files(moves: Iterable[tuple[str | Path, str | Path]]) -> list[Path]:
    """Move finished files (SOURCE, TARGET), in the given order, over their targets: each is
    fsynced, given normal permissions and renamed, so a reader sees each target whole, old or
    new (order matters for sets such as an OpenVINO IR: its .bin before the .xml that names
    it). SOURCE must be on TARGET's file system (a staging folder beside it). Returns the
    targets; an OSError becomes a WriteError naming the target, the files moved so far stay."""
    done: list[Path] = []
    mode = _normal_mode()
    for source, target in moves:
        target = Path(target)
        try:
            fd = os.open(source, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(source, mode)
            os.replace(source, target)
        except OSError as e:
            _raise(target, e)
        done.append(target)
    for folder in {t.parent for t in done}:
        _fsync_folder(folder)
    return done


def json_safe(obj: Any) -> Any:
    """`obj` as plain JSON values: NaN and infinities -> None, tensors, arrays and numpy scalars
    -> lists and numbers, paths -> str, tuples -> lists, mapping keys -> str. The one sanitizer
    of every JSON file iaseg writes (strict JSON: other tools read it)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # torch tensors, numpy arrays and scalars (no torch import here)
        return json_safe(obj.tolist())
    return obj


def json_text(obj: Any, indent: int | None = 2, **dumps: Any) -> str:
    """Strict JSON text of json_safe(obj) and a final newline; `dumps`: json.dumps options
    (separators, sort_keys, default for other objects)."""
    return json.dumps(json_safe(obj), indent=indent, allow_nan=False, **dumps) + "\n"


def write_json(path: str | Path, obj: Any, indent: int | None = 2, **dumps: Any) -> Path:
    """Write `obj` as strict JSON (json_text) to `path`, atomically. Returns `path`."""
    return atomic_write_text(path, json_text(obj, indent, **dumps))


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
