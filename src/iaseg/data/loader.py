"""DataLoader helper: worker count for small machines, seeded shuffling and a dict collate.

    >>> loader = build_loader(dataset, batch_size=8, shuffle=True, seed=0)
    >>> batch = next(iter(loader))   # {'image': N x 3 x H x W, 'label': N x H x W, 'path': [...]}
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def default_num_workers() -> int:
    """Two workers at most: on a 2-core machine they keep a CPU training step fed (decoding a
    CamVid frame takes a few ms) without starving the training process."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(2, cpus))


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack the tensors of dict items; strings (paths) become lists."""
    if not items:
        raise ValueError("collate: empty batch")
    keys = items[0].keys()
    out: dict[str, Any] = {}
    for key in keys:
        values = [it[key] for it in items]
        if isinstance(values[0], torch.Tensor):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                raise ValueError(f"collate: items have different {key!r} shapes {sorted(shapes)}; "
                                 f"give the dataset a fixed size=(H, W)")
            out[key] = torch.stack(values)
        else:
            out[key] = list(values)
    return out


class SeededItems(Dataset):
    """A dataset view whose items are built under their own torch RNG stream, seeded from
    (seed, epoch, index) (`augment.sample_seed`): random augmentation then draws the same for a
    sample whatever the worker count, and a run resumed mid-epoch draws what the uninterrupted
    run drew. The caller's RNG state is left untouched. Attributes are the wrapped dataset's."""

    def __init__(self, dataset: Dataset, seed: int, epoch: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, epoch

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        from .augment import sample_seed

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, self.epoch, index))
            return self.dataset[index]

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


# Ctrl-C and SIGTERM are the main process's to handle (the trainer finishes its step and saves
# last.pt). Sent to the whole process group (a terminal's Ctrl-C, `kill -TERM -PGID`, a job
# scheduler), they reach the loader's workers too, and a worker killed mid-batch makes torch stop
# the main process with "DataLoader worker ... is killed by signal" instead. So a worker ignores
# SIGINT, and SIGTERM unless its parent sends it: torch (a worker that does not stop) and
# multiprocessing (daemon processes at exit) end workers with SIGTERM, which must still work.
# The main process blocks both signals while it starts workers, so that none arrives in a new
# worker before it is set up; the main process gets them when it unblocks.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_MASKS = hasattr(signal, "pthread_sigmask")
_SIGINFO = _MASKS and hasattr(signal, "sigwaitinfo")   # Linux; not macOS: there workers keep torch's handling


def leave_stop_signals_to_main(worker_id: int) -> None:
    """worker_init_fn of every loader with workers: SIGINT ignored, SIGTERM only from the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _SIGINFO:
        # SIGTERM stays blocked in every thread of the worker (threads started later inherit the
        # mask); one thread takes each from the pending set and ends the worker if the parent sent it
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
        threading.Thread(target=_end_on_parents_sigterm, args=(os.getppid(),), daemon=True,
                         name="iaseg-sigterm").start()
    if _MASKS:  # SIGINT was blocked by the parent while it started the workers
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def _end_on_parents_sigterm(parent: int) -> None:
    while True:
        info = signal.sigwaitinfo([signal.SIGTERM])
        if info.si_pid == parent:
            os._exit(0)   # what torch's own worker handler does on its parent's SIGTERM


@contextmanager
def _stop_signals_blocked(block: bool) -> Iterator[None]:
    """SIGINT/SIGTERM held back (not lost: delivered on leaving) while workers are started."""
    if not (block and _MASKS):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Loader(DataLoader):
    """A DataLoader whose workers leave Ctrl-C/SIGTERM to the main process (see above), and that
    shuts them down as soon as an error (e.g. a DatasetError from a worker) leaves the loop. Torch
    otherwise leaves that to the garbage collector, whose shutdown can wait 5 s per worker before
    the error reaches the user."""

    def __iter__(self):
        with _stop_signals_blocked(self.num_workers > 0):   # workers start here
            it = super().__iter__()
        try:
            yield from it
        except Exception:
            shutdown = getattr(it, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
                if getattr(self, "_iterator", None) is it:   # persistent workers: start afresh next time
                    self._iterator = None
            raise


def build_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, num_workers: int | None = None,
                 drop_last: bool = False, sampler: Sampler | None = None, seed: int = 0,
                 pin_memory: bool | None = None, persistent_workers: bool | None = None,
                 prefetch_factor: int | None = None, collate_fn: Any = None) -> Loader:
    """A DataLoader with deterministic shuffling (a torch.Generator seeded with `seed`, which also
    seeds the workers' torch RNG used by augmentation), `min(2, cpus)` workers by default (which
    leave Ctrl-C and SIGTERM to the main process), persistent workers and pinned memory only when CUDA is available."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers is None:
        num_workers = default_num_workers()
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    if persistent_workers is None:
        persistent_workers = num_workers > 0
    generator = torch.Generator()
    generator.manual_seed(seed)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["persistent_workers"] = persistent_workers
        kwargs["worker_init_fn"] = leave_stop_signals_to_main
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
    return Loader(dataset, batch_size=batch_size, shuffle=shuffle if sampler is None else False,
                      sampler=sampler, num_workers=num_workers, drop_last=drop_last,
                      collate_fn=collate_fn or collate, pin_memory=pin_memory, generator=generator,
                      **kwargs)
