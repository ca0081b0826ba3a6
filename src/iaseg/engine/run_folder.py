"""The run folder of a training: what may be in it when a run starts, and what describes the run.

A fresh `train` refuses a folder that holds another run's results (checkpoints, metrics) unless
told to overwrite it; temp files of interrupted saves are removed at every start. `run_info`
is what makes a run self-describing: versions, git commit, command line, threads, start time
(in run.json, as a comment header of config.yaml, and in every checkpoint).
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from iaseg.io import remove_stale_temp_files, write_error

# written before the first checkpoint; a folder with only these is a start that saved nothing
START_FILES = frozenset({"config.yaml", "run.json", "train.log", "tb"})
# kept by a fresh start: caches keyed on their inputs, and the console log `iaseg sweep` writes
# around its `iaseg train` child before the child starts
KEPT = frozenset({"class_stats.json", "preflight.json", "console.log"})
RESULTS = ("last.pt", "best.pt", "last_good.pt", "metrics.jsonl", "curves.png")  # and epoch_N.pt


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (bad input: one line, exit 2); the message names it
    and the way out."""


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def is_result(name: str) -> bool:
    return name in RESULTS or (name.startswith("epoch_") and name.endswith(".pt"))


def prepare_run_folder(out: Path, resume: bool, overwrite: bool = False) -> list[str]:
    """Create `out` if needed, delete stale temp files, and for a fresh run make sure no earlier
    run is overwritten by accident. Returns lines worth logging."""
    notes: list[str] = []
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out}: is a file, not a run folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(out, e) from None
    removed = remove_stale_temp_files(out)
    if removed:
        notes.append(f"removed {len(removed)} temp file(s) of interrupted saves: "
                     + ", ".join(p.name for p in removed[:3]) + (", ..." if len(removed) > 3 else ""))
    if resume:
        return notes
    entries = sorted(p.name for p in out.iterdir())
    results = [n for n in entries if is_result(n)]
    foreign = [n for n in entries if not is_result(n) and n not in START_FILES and n not in KEPT]
    if (results or foreign) and not overwrite:
        shown = ", ".join((results or foreign)[:4]) + (", ..." if len(results or foreign) > 4 else "")
        what = "another run" if results else "other files"
        raise RunFolderError(f"--out {out} holds {what} ({shown}): continue it with --resume, or start "
                             "afresh with --overwrite (deletes its checkpoints and logs), or pick an empty folder")
    cleared = [n for n in entries if is_result(n) or n in START_FILES]
    for name in cleared:
        path = out / name
        try:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        except OSError as e:
            raise write_error(path, e) from None
    if results:
        notes.append(f"--overwrite: deleted the earlier run's {', '.join(cleared)}")
    return notes


def git_commit(folder: Path) -> tuple[str | None, bool | None]:
    """(commit, has uncommitted changes) of the git checkout holding `folder`, or (None, None)."""
    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, (bool(status) if status is not None else None)


def run_info(command: Sequence[str] | None = None, device: Any = None, world_size: int = 1) -> dict[str, Any]:
    """What this training session is: versions, code, command, machine, threads, start time."""
    from iaseg import __version__

    commit, dirty = git_commit(Path(__file__).resolve().parent)
    return {
        "started": utc_now(),
        "iaseg": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "git_commit": commit,
        "git_dirty": dirty,
        "command": shlex.join(list(command) if command is not None else sys.argv),
        "cwd": os.getcwd(),
        "host": platform.node(),
        "device": str(device) if device is not None else None,
        "processes": world_size,
        "threads": torch.get_num_threads(),
    }


def config_header(info: dict[str, Any]) -> str:
    """YAML comment lines for the top of config.yaml (comments keep it a loadable config)."""
    code = info["git_commit"] or "not a git checkout"
    if info.get("git_dirty"):
        code += " (with uncommitted changes)"
    lines = [f"started {info['started']} on {info['host']}: {info['command']}",
             f"iaseg {info['iaseg']}, torch {info['torch']}, Python {info['python']}, commit {code}",
             f"{info['threads']} threads, device {info['device']}, {info['processes']} process(es); "
             "details in run.json"]
    if info.get("resumed_from"):
        r = info["resumed_from"]
        lines.append(f"resumed from epoch {r['epoch']}, step {r['step']}")
    return "".join(f"# {line}\n" for line in lines)
