"""Prediction as a pipeline: reading (decode, colour conversion, resize) in one thread, the
network in the caller's, label maps and writing (overlay, encode, PNGs) in a third, joined by
bounded queues. Frames stay in order and at most `depth` batches wait between two stages, so
memory does not grow with the length of a video; the stages overlap, so the network waits
less for the work around it.

    stats = predict_stream(iter_frames(src), predictor, write, batch_size=4)

`write(name, image, label)` is called in order, in the writing thread. An error in any stage
stops the others and is raised in the caller.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TypeVar

import numpy as np
import torch

from .predictor import Predictor, Prepared

T = TypeVar("T")
_DONE = object()


class _Stop(Exception):
    """The consumer went away: a producer thread ends quietly."""


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    while True:  # a bounded put that gives up when the other side has stopped
        if stop.is_set():
            raise _Stop
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate `items` in a background thread, at most `depth` items ahead of the consumer.
    The producer's error is raised here, where the item would have come; closing the iterator
    early stops the producer."""
    if depth < 1:
        raise ValueError("depth must be >= 1")
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for item in items:
                _put(q, item, stop)
        except _Stop:
            close = getattr(items, "close", None)
            if close is not None:  # a generator's files (a video container) closed in this thread
                close()
            return
        except BaseException as e:  # handed to the consumer
            failure.append(e)
        try:
            _put(q, _DONE, stop)
        except _Stop:
            pass

    thread = threading.Thread(target=produce, name="iaseg-read", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                break
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        thread.join()


class Consumer:
    """Calls `fn(item)` for each `put` item, in order, in a background thread; `put` blocks
    while `depth` items wait. `close()` (or leaving the `with` block) waits for the rest and
    raises the thread's error, if any; the error is also raised by the next `put`."""

    def __init__(self, fn: Callable[[Any], None], depth: int = 2, name: str = "iaseg-write") -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.fn = fn
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.failure: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is _DONE:
                return
            if self.stop.is_set():
                continue  # after a failure or a cancel: drain, so put never blocks forever
            try:
                self.fn(item)
            except BaseException as e:
                self.failure.append(e)
                self.stop.set()

    def _raise(self) -> None:
        if self.failure:
            raise self.failure[0]

    def put(self, item: Any) -> None:
        self._raise()
        try:
            _put(self.q, item, self.stop)
        except _Stop:
            self._raise()

    def close(self) -> None:
        self.q.put(_DONE)
        self.thread.join()
        self._raise()

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.close()
        else:  # the caller failed: stop without waiting for the queued work
            self.stop.set()  # makes the thread skip what is queued
            self.q.put(_DONE)
            self.thread.join()


@dataclass
class StreamStats:
    """What a `predict_stream` run measured: frames, wall seconds of the whole path, seconds
    inside the network calls (shared with the other stages' threads)."""
    frames: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    first: Prepared | None = field(default=None, repr=False)  # the first (full) batch, for `model_fps`

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def _batches(frames: Iterable[tuple[str, np.ndarray]], predictor: Predictor, batch_size: int
             ) -> Iterator[tuple[list[str], list[np.ndarray], Prepared]]:
    names: list[str] = []
    images: list[np.ndarray] = []
    for name, image in frames:
        names.append(name)
        images.append(image)
        if len(names) == batch_size:
            yield names, images, predictor.prepare(images)
            names, images = [], []
    if names:
        yield names, images, predictor.prepare(images)


def predict_stream(frames: Iterable[tuple[str, np.ndarray]], predictor: Predictor,
                   write: Callable[[str, np.ndarray, np.ndarray], None], batch_size: int = 1,
                   depth: int = 2, on_batch: Callable[[int], None] | None = None) -> StreamStats:
    """Segment (name, image) frames: reading and `predictor.prepare` in a reading thread, the
    network here, `predictor.labels` and `write(name, image, label)` in a writing thread, at
    most `depth` batches queued between stages. `on_batch(n)` after each batch is written
    (a progress bar). Returns the run's StreamStats."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    stats = StreamStats()

    def finish(item: tuple[list[str], list[np.ndarray], Prepared, torch.Tensor]) -> None:
        names, images, prepared, logits = item
        for name, image, label in zip(names, images, predictor.labels(prepared, logits)):
            write(name, image, label)
        if on_batch is not None:
            on_batch(len(names))

    start = time.perf_counter()
    with Consumer(finish, depth) as writer:
        batches = prefetch(_batches(frames, predictor, batch_size), depth)
        try:
            for names, images, prepared in batches:
                t = time.perf_counter()
                logits = predictor.logits(prepared)
                stats.model_seconds += time.perf_counter() - t
                stats.frames += len(names)
                if stats.first is None:
                    stats.first = prepared
                writer.put((names, images, prepared, logits))
        finally:
            batches.close()  # type: ignore[attr-defined]
    stats.seconds = time.perf_counter() - start
    return stats


def model_fps(predictor: Predictor, prepared: Prepared, calls: int = 10, warmup: int = 2) -> float:
    """Frames per second of the network alone on one prepared batch (median of `calls` timed
    calls after `warmup`): the model's own speed to set the whole path against."""
    for _ in range(warmup):
        predictor.logits(prepared)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        predictor.logits(prepared)
        times.append(time.perf_counter() - t)
    return len(prepared.shapes) / float(np.median(times))
