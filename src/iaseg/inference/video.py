"""Video in, video out with PyAV (the optional `video` extra): frames of a video file as RGB
arrays, its frame rate and size, and an MP4 writer at the source's frame rate."""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from iaseg.data.errors import DatasetError
from iaseg.io import replace_files

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
# H.264 where PyAV's FFmpeg has it, else MPEG-4 part 2 (every FFmpeg build has that encoder)
CODECS = ("libx264", "h264", "mpeg4")


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise ImportError("video needs PyAV: pip install 'iaseg[video]'") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    frames: int            # 0 when the container does not say
    rate: Fraction         # frames per second
    width: int
    height: int


def video_info(path: str | Path) -> VideoInfo:
    """Frame count (from the header), frame rate and size of a video's first video stream."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            s = container.streams.video[0]
            rate = s.average_rate or s.guessed_rate or s.base_rate or Fraction(25)
            frames = int(s.frames or 0)
            if not frames and s.duration and s.time_base:
                frames = round(float(s.duration * s.time_base * rate))
            return VideoInfo(frames, Fraction(rate), s.codec_context.width, s.codec_context.height)
    except (av.error.FFmpegError, IndexError) as e:  # type: ignore[attr-defined]
        raise DatasetError(f"{path}: cannot read video ({e or 'no video stream'})") from None


def iter_video(path: str | Path) -> Iterator[tuple[str, np.ndarray]]:
    """(`<stem>_<index:06d>`, H x W x 3 uint8 RGB) for each frame of a video."""
    av = _av()
    path = Path(path)
    count = 0
    try:
        with av.open(str(path)) as container:
            for count, frame in enumerate(container.decode(video=0), 1):
                yield f"{path.stem}_{count - 1:06d}", frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as e:  # type: ignore[attr-defined]
        raise DatasetError(f"{path}: cannot read video ({e})") from None
    if not count:
        raise DatasetError(f"{path}: no video frames to decode")


class VideoWriter:
    """An MP4 of RGB frames at a fixed frame rate (`with VideoWriter(path, rate) as w: w.write(f)`).

    Written to a hidden temporary file beside `path` and renamed on a clean exit, so an
    interrupted run never leaves half a video under the final name. yuv420p needs even sizes:
    an odd last row or column is repeated (the source size is rounded up to even)."""

    def __init__(self, path: str | Path, rate: Fraction | float, codec: str | None = None,
                 quality: int = 16, preset: str = "veryfast") -> None:
        self.av = _av()
        self.path = Path(path)
        self.rate = Fraction(rate).limit_denominator(1001 * 1000)
        self.codec = codec or next(c for c in CODECS if _has_encoder(self.av, c))
        self.quality = quality
        # H.264: x264's veryfast preset encodes 2-3x faster than its medium; crf 16 (not medium's 20)
        # keeps the decoded frames as close to the source as medium at 20 did
        self.preset = preset
        self.tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.partial.mp4")
        self.container: Any = None
        self.stream: Any = None
        self.frames = 0

    def __enter__(self) -> "VideoWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.container = self.av.open(str(self.tmp), mode="w", format="mp4")
        return self

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self.stream is None:
            self.stream = self.container.add_stream(self.codec, rate=self.rate)
            self.stream.width, self.stream.height = w + w % 2, h + h % 2
            self.stream.pix_fmt = "yuv420p"
            if self.codec == "mpeg4":
                self.stream.codec_context.qscale = 3  # near-transparent MPEG-4 quality
            else:
                self.stream.options = {"crf": str(self.quality)}
                if self.codec == "libx264":
                    self.stream.options["preset"] = self.preset
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        vf = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.frames
        vf.time_base = 1 / self.rate
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
        self.frames += 1

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        try:
            if exc_type is None and self.stream is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
            self.container.close()
        finally:
            if exc_type is None and self.stream is not None:
                replace_files([(self.tmp, self.path)])
            else:
                self.tmp.unlink(missing_ok=True)


def _has_encoder(av: Any, name: str) -> bool:
    try:
        return av.codec.Codec(name, "w") is not None
    except Exception:  # an unknown codec name raises a codec-specific error type
        return False
