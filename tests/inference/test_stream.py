"""The prediction pipeline: same label maps as the Predictor called batch by batch, frames in
order, errors from any stage raised in the caller, bounded queues (frames in flight and the
process's memory do not grow with the video's length)."""
import threading
import time

import numpy as np
import pytest
import torch

from iaseg.inference.predictor import Predictor
from iaseg.inference.stream import Consumer, model_fps, predict_stream, prefetch

from tests.helpers.speed import meta_for



def test_prefetch_keeps_order_and_stays_bounded():
    made = []

    def items():
        for i in range(50):
            made.append(i)
            yield i

    seen = []
    for i in prefetch(items(), depth=3):
        time.sleep(0.001)
        assert len(made) - len(seen) <= 3 + 2  # queued + one being put + the one handed out
        seen.append(i)
    assert seen == list(range(50))


def test_prefetch_raises_the_producer_error_where_the_item_would_come():
    def items():
        yield 1
        raise KeyError("bad frame")

    it = prefetch(items(), depth=2)
    assert next(it) == 1
    with pytest.raises(KeyError, match="bad frame"):
        next(it)


def test_prefetch_closed_early_stops_and_closes_the_producer():
    closed = threading.Event()

    def items():
        try:
            for i in range(10**6):
                yield i
        finally:
            closed.set()

    it = prefetch(items(), depth=2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert closed.wait(5)


def test_consumer_in_order_and_errors_reach_the_caller():
    got = []
    with Consumer(got.append, depth=2) as c:
        for i in range(20):
            c.put(i)
    assert got == list(range(20))

    def fail(i):
        if i == 3:
            raise OSError("disk full")

    c = Consumer(fail, depth=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            c.put(i)
        c.close()
    with pytest.raises(ValueError, match="depth"):
        Consumer(got.append, depth=0)


def small_net():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 11, 3, padding=1).eval()
    return lambda x: conv(torch.nn.functional.avg_pool2d(x, 2))  # logits at half the input size


def frames(n, h=24, w=40, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    for i in range(n):
        yield f"f{i:04d}", np.roll(base, i, axis=1)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_same_labels_in_the_same_order_as_the_predictor(batch_size):
    predictor = Predictor(small_net(), meta_for("erfpspnet", (32, 32)), torch.device("cpu"))
    written = []
    stats = predict_stream(frames(7), predictor, lambda n, im, lab: written.append((n, lab)), batch_size)
    assert [n for n, _ in written] == [f"f{i:04d}" for i in range(7)]
    for (_, lab), (_, image) in zip(written, frames(7)):
        assert np.array_equal(lab, predictor([image])[0])
    assert stats.frames == 7 and stats.seconds > 0 and 0 < stats.model_seconds <= stats.seconds
    assert model_fps(predictor, stats.first, calls=2, warmup=0) > 0


def test_a_writer_error_stops_the_run():
    predictor = Predictor(small_net(), meta_for("erfpspnet", (32, 32)), torch.device("cpu"))

    def write(name, image, label):
        if name == "f0005":
            raise OSError("no space left")

    with pytest.raises(OSError, match="no space left"):
        predict_stream(frames(10**6), predictor, write, batch_size=2)


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.fixture
def one_thread():
    """Tiny frames: torch's per-call thread hand-off would dominate (10x slower on a busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"), reason="needs /proc")
def test_memory_and_frames_in_flight_stay_flat_over_a_long_video(one_thread):
    """2,000 frames: at most (2 depth + 3) batches between reading and writing, and the resident
    memory after frame 2,000 within a few MB of that after frame 200 (an unbounded queue would
    hold every decoded frame and its input: 2,000 x 96 x 128 x 3 x (1 + 4 bytes) = 369 MB)."""
    predictor = Predictor(small_net(), meta_for("erfpspnet", (16, 24)), torch.device("cpu"))
    read = []
    written = []
    rss = {}

    def source():
        for name, image in frames(2000, 96, 128):
            read.append(name)
            yield name, image

    def write(name, image, label):
        written.append(name)
        assert len(read) - len(written) <= (2 * 2 + 3) * 8 + 1
        if len(written) in (200, 2000):
            rss[len(written)] = _rss_mb()

    stats = predict_stream(source(), predictor, write, batch_size=8, depth=2)
    assert stats.frames == 2000 and written == read
    assert rss[2000] - rss[200] < 15, rss
