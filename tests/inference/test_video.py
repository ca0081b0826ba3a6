"""Video in, video out (PyAV): the writer keeps the frame count, the frame rate and the size."""
from fractions import Fraction

import numpy as np
import pytest

from iaseg.data import DatasetError

av = pytest.importorskip("av")

from iaseg.inference.video import VideoWriter, iter_video, video_info  # noqa: E402


def frames(n, h, w):
    # smooth content: a lossy codec keeps it close
    y, x = np.mgrid[0:h, 0:w]
    return [np.stack([(x * 4 + 20 * i) % 256, (y * 4) % 256, np.full_like(x, 40 * i % 256)], -1).astype(np.uint8)
            for i in range(n)]


@pytest.mark.parametrize("rate", [Fraction(15, 2), Fraction(30000, 1001), 25])
def test_roundtrip_keeps_count_rate_and_size(tmp_path, rate):
    src = frames(7, 48, 64)
    with VideoWriter(tmp_path / "out.mp4", rate) as w:
        for f in src:
            w.write(f)
    info = video_info(tmp_path / "out.mp4")
    assert (info.frames, info.rate, info.width, info.height) == (7, Fraction(rate), 64, 48)
    back = [f for _, f in iter_video(tmp_path / "out.mp4")]
    assert len(back) == 7
    assert all(np.abs(a.astype(int) - b.astype(int)).mean() < 4 for a, b in zip(src, back))
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temporary file left


def test_odd_sizes_are_padded_to_even_and_failures_leave_nothing(tmp_path):
    with VideoWriter(tmp_path / "odd.mp4", 10) as w:
        for f in frames(3, 33, 47):
            w.write(f)
    info = video_info(tmp_path / "odd.mp4")
    assert (info.frames, info.width, info.height) == (3, 48, 34)
    with pytest.raises(RuntimeError, match="stop"):
        with VideoWriter(tmp_path / "cut.mp4", 10) as w:
            w.write(frames(1, 32, 32)[0])
            raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]


def test_an_unreadable_video_is_one_line(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(DatasetError, match="bad.mp4: cannot read video"):
        video_info(tmp_path / "bad.mp4")

