"""A resumable grid of training runs: every (config, seed) pair trained, then evaluated.

Layout: `OUT/<name>/seed<k>/` is an ordinary run folder (what `iaseg train --out` writes), and
`OUT/<name>/seed<k>/eval_<val split>/` the `iaseg evaluate` of its last epoch (report, per-image
counts, offset frontier). Nothing else holds the
state: re-invoking the same sweep looks at the folders, skips finished runs, resumes interrupted
ones from their last.pt and starts the rest, so a sweep survives Ctrl-C, a reboot or a session
that ends. OUT/sweep.json records the plan and the outcome of each job for people and tools.

Jobs run as child processes (`python -m iaseg train ...`), `parallel` at a time, seed-major
(seed 0 of every config, then seed 1, ...), so that paired runs of the methods finish together and
a study that is stopped early still has complete pairs. The same seed gives every config the same
initialisation and data order (see iaseg.engine.trainer), which is what makes per-seed
differences between losses paired.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from iaseg.engine.config import load_config


class SweepError(ValueError):
    """A sweep cannot be planned (bad seeds, names or configs); the message says which."""


@dataclass
class SweepJob:
    name: str            # method label (folder name), e.g. "ce"
    config: str          # config name or path, as given
    seed: int
    run_dir: Path
    epochs: int          # the epoch count the run must reach
    val_split: str | None
    val_options: dict = field(default_factory=dict)  # dataset options of the val split (data.val_options)
    full_resolution: bool = False  # evaluate at the labels' native resolution (eval_<split>_full/)

    @property
    def label(self) -> str:
        return f"{self.name} seed {self.seed}"


@dataclass
class JobState:
    epoch: int = 0            # last finished epoch (0: nothing yet)
    has_checkpoint: bool = False
    evaluated: bool = False
    epoch_seconds: list[float] = field(default_factory=list)  # time_s of the logged epochs, in order

    def seconds_left(self, job: SweepJob, recent: int = 5) -> float | None:
        """Training time left, from the median of the last `recent` epochs' times (None when no
        epoch has been timed). An epoch resumed mid-way logs only its remainder, which the median
        of several epochs shrugs off."""
        if not self.epoch_seconds or self.epoch >= job.epochs:
            return None
        last = sorted(self.epoch_seconds[-recent:])
        return last[len(last) // 2] * (job.epochs - self.epoch)

    def trained(self, job: SweepJob) -> bool:
        return self.has_checkpoint and self.epoch >= job.epochs


@dataclass
class SweepResult:
    done: list[SweepJob] = field(default_factory=list)
    failed: list[tuple[SweepJob, str]] = field(default_factory=list)
    interrupted: bool = False


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,2,5-6' -> [0, 2, 5, 6]. Order kept, duplicates refused."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise SweepError(f"--seeds {text!r}: expected numbers and ranges such as 0-4 or 0,2,5-6")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise SweepError(f"--seeds {text!r}: range {part} runs backwards")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {text!r}: a seed is listed twice")
    return seeds


def parse_config_spec(spec: str) -> tuple[str, str]:
    """'ce=camvid_study_ce' -> ('ce', 'camvid_study_ce'); 'camvid_study_ce' -> (its stem, itself)."""
    name, sep, config = spec.partition("=")
    if not sep:
        config, name = spec, Path(spec).stem
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        raise SweepError(f"--config {spec!r}: the name {name!r} must be a plain folder name "
                         "(letters, digits, _ . + -)")
    return name, config


def plan_sweep(configs: Sequence[str], seeds: Sequence[int], out: str | Path,
               overrides: Sequence[str] = (), full_resolution: bool = False) -> list[SweepJob]:
    """The jobs of a sweep, seed-major. Every config is loaded (with the overrides) first, so a
    typo fails before anything trains."""
    if not configs:
        raise SweepError("a sweep needs at least one --config")
    if not seeds:
        raise SweepError("a sweep needs at least one seed")
    specs = [parse_config_spec(c) for c in configs]
    names = [n for n, _ in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SweepError(f"two configs share the name {dup[0]!r}: name them, e.g. --config a={dup[0]}")
    loaded = {}
    for name, config in specs:
        cfg = load_config(config, list(overrides))
        loaded[name] = (config, cfg.train.epochs, cfg.data.val_split, dict(cfg.data.val_options))
    out = Path(out)
    return [SweepJob(name, loaded[name][0], seed, out / name / f"seed{seed}", *loaded[name][1:],
                     full_resolution=full_resolution)
            for seed in seeds for name in names]


def eval_dir(job: SweepJob) -> Path:
    """Where the evaluation of a run's last epoch goes: RUN/eval_<val split>/, or
    RUN/eval_<val split>_full/ at the labels' native resolution."""
    return job.run_dir / f"eval_{job.val_split}{'_full' if job.full_resolution else ''}"


def job_state(job: SweepJob, evaluate: bool = False) -> JobState:
    """What the run folder says: the last epoch in metrics.jsonl (if last.pt exists) and whether
    an evaluation of that checkpoint exists."""
    last = job.run_dir / "last.pt"
    state = JobState(has_checkpoint=last.is_file())
    metrics = job.run_dir / "metrics.jsonl"
    if state.has_checkpoint and metrics.is_file():
        for line in metrics.read_text().splitlines():
            try:
                record = json.loads(line)
                state.epoch = max(state.epoch, int(record.get("epoch", 0)))
                if isinstance(record.get("time_s"), (int, float)) and record["time_s"] > 0:
                    state.epoch_seconds.append(float(record["time_s"]))
            except (ValueError, AttributeError, TypeError):
                continue
    if evaluate and job.val_split:
        report = eval_dir(job) / "report.json"
        state.evaluated = (report.is_file() and state.has_checkpoint
                           and report.stat().st_mtime >= last.stat().st_mtime)
    return state


def train_command(job: SweepJob, overrides: Sequence[str], resume: bool, python: str = sys.executable) -> list[str]:
    cmd = [python, "-m", "iaseg", "train", "--config", job.config, "--out", str(job.run_dir),
           "--set", f"train.seed={job.seed}", "--no-progress"]
    for o in overrides:
        cmd += ["--set", o]
    if resume:
        cmd.append("--resume")
    return cmd


def evaluate_command(job: SweepJob, frontier: str | None = None, python: str = sys.executable) -> list[str]:
    """`iaseg evaluate` of the last epoch on the run's val split (with its val options), with the
    offset frontier of `frontier` (default: the most important group); `--full-resolution` for
    a job planned with full_resolution (networks trained at another size, e.g. two-resolution
    BiERF-PSPNet against ERF-PSPNet, scored at the same label pixels)."""
    cmd = [python, "-m", "iaseg", "evaluate", "--checkpoint", str(job.run_dir / "last.pt"),
           "--split", str(job.val_split), "--out", str(eval_dir(job)), "--no-progress",
           *(["--full-resolution"] if job.full_resolution else []),
           "--frontier", *([frontier] if frontier else [])]
    for key, value in job.val_options.items():
        cmd += ["--option", f"{key}={json.dumps(value)}"]
    return cmd


def status_table(jobs: Sequence[SweepJob], evaluate: bool = True) -> list[str]:
    """One line per job: name, seed, epochs done / planned (with the training time left at the
    recent epochs' pace), evaluated or not."""
    lines = []
    for job in jobs:
        s = job_state(job, evaluate)
        what = ("done" if s.trained(job) else f"epoch {s.epoch}/{job.epochs}" if s.has_checkpoint else "not started")
        left = s.seconds_left(job) if s.has_checkpoint else None
        if left is not None:
            what += f", about {_hours(left)} of training left"
        if evaluate and job.val_split and s.trained(job):
            what += ", evaluated" if s.evaluated else ", not evaluated"
        lines.append(f"{job.name:<16} seed {job.seed:<3} {what}  ({job.run_dir})")
    return lines


class _Slot:
    """One running child: the job, its phase ('train' or 'evaluate'), the process and its log."""

    def __init__(self, job: SweepJob, phase: str, cmd: list[str], env: dict[str, str]) -> None:
        from iaseg.io import append_text, write_error

        self.job, self.phase, self.started = job, phase, time.monotonic()
        log_path = job.run_dir / "console.log"
        try:  # a read-only or full disk: one line naming the file, before any child starts
            job.run_dir.mkdir(parents=True, exist_ok=True)
            append_text(log_path, f"\n# {_now()} {' '.join(cmd)}\n")   # no half line on failure
            self.log = open(log_path, "a")
        except OSError as e:
            raise write_error(log_path, e) from None
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)  # our Ctrl-C is forwarded, not shared

    def close(self) -> None:
        self.log.close()


def run_sweep(jobs: Sequence[SweepJob], overrides: Sequence[str] = (), parallel: int = 2,
              evaluate: bool = True, frontier: str | None = None, python: str = sys.executable,
              log: Callable[[str], None] = print, threads: int | None = None) -> SweepResult:
    """Train (or resume) and evaluate every job that is not finished, `parallel` at a time.

    Ctrl-C / SIGTERM are forwarded to the children as SIGTERM (a training run then saves last.pt)
    and the sweep returns with `interrupted` set; re-running it carries on. A job that fails is
    reported (its console.log holds the reason) and the others go on. With `evaluate`, each
    finished run's last epoch is evaluated on its val split (`evaluate_command`).
    `threads` sets OMP_NUM_THREADS of evaluation children (training uses train.threads).
    """
    if parallel < 1:
        raise SweepError(f"--parallel must be >= 1, got {parallel}")
    out_dirs = {j.run_dir.parent.parent for j in jobs}
    result = SweepResult()
    todo: list[tuple[SweepJob, str]] = []
    for job in jobs:
        s = job_state(job, evaluate)
        if not s.trained(job):
            todo.append((job, "train"))
        elif evaluate and job.val_split and not s.evaluated:
            todo.append((job, "evaluate"))
        else:
            result.done.append(job)
    n_total, n_skip = len(jobs), len(result.done)
    log(f"sweep: {n_total} runs, {n_skip} finished, {len(todo)} to do, {parallel} at a time")
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    running: list[_Slot] = []
    stop = {"flag": False}
    durations: list[float] = []

    def on_signal(signum: int, frame: object) -> None:
        if not stop["flag"]:
            log(f"sweep: {signal.Signals(signum).name} received: stopping the running jobs (they save last.pt); "
                "run the same command again to carry on")
        stop["flag"] = True
        for s in running:
            if s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    failing = True
    try:
        while (todo and not stop["flag"]) or running:
            while todo and len(running) < parallel and not stop["flag"]:
                job, phase = todo.pop(0)
                if phase == "train":
                    state = job_state(job)
                    cmd = train_command(job, overrides, resume=state.has_checkpoint, python=python)
                    how = f"resuming after epoch {state.epoch}" if state.has_checkpoint else "new run"
                else:
                    cmd, how = evaluate_command(job, frontier, python=python), f"on {job.val_split}"
                running.append(_Slot(job, phase, cmd, env))
                log(f"sweep: {_now()} {phase} {job.label} ({how})")
            time.sleep(0.2)
            for slot in list(running):
                rc = slot.proc.poll()
                if rc is None:
                    continue
                running.remove(slot)
                slot.close()
                job, elapsed = slot.job, time.monotonic() - slot.started
                if stop["flag"] and rc != 0:
                    continue
                if rc != 0:
                    reason = f"{slot.phase} exited with status {rc}; see {job.run_dir / 'console.log'}"
                    result.failed.append((job, reason))
                    log(f"sweep: {_now()} FAILED {job.label}: {reason}")
                    continue
                if slot.phase == "train":
                    durations.append(elapsed)
                    if evaluate and job.val_split:
                        todo.insert(0, (job, "evaluate"))
                    else:
                        result.done.append(job)
                else:
                    result.done.append(job)
                left = sum(1 for _, p in todo if p == "train") + sum(1 for s in running if s.phase == "train")
                eta = ""
                if durations and left:
                    eta = f", about {_hours(left * sum(durations) / len(durations) / parallel)} left"
                log(f"sweep: {_now()} finished {slot.phase} {job.label} in {_hours(elapsed)} "
                    f"({len(result.done)}/{n_total} done{eta})")
    except BaseException:  # an error of the sweep itself: the running children stop too (and save)
        for s in running:
            if s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
        for s in running:
            s.proc.wait()
            s.close()
        raise
    else:
        failing = False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for out in out_dirs:
            try:
                _write_summary(out, jobs, evaluate, result)
            except OSError:
                if not failing:  # else the error in flight says more than the summary's
                    raise
    result.interrupted = stop["flag"]
    return result


def _write_summary(out: Path, jobs: Sequence[SweepJob], evaluate: bool, result: SweepResult) -> None:
    from iaseg.io import write_error, write_json

    failed = {(j.name, j.seed): why for j, why in result.failed}
    rows = []
    for job in jobs:
        if job.run_dir.parent.parent != out:
            continue
        s = job_state(job, evaluate)
        rows.append({"name": job.name, "config": job.config, "seed": job.seed, "run": str(job.run_dir),
                     "epoch": s.epoch, "epochs": job.epochs, "trained": s.trained(job),
                     "evaluated": s.evaluated, "failed": failed.get((job.name, job.seed))})
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(out / "sweep.json", e) from None
    write_json(out / "sweep.json", {"format": "iaseg.sweep/1", "updated": _now(), "evaluate": evaluate, "jobs": rows},
               indent=1)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"
