"""What a benchmark measures: the settings `iaseg.speed.benchmark` and each mode's runner take
(`iaseg benchmark` builds them from its options; a script builds them directly). None means the
mode's own default (see the options of `iaseg benchmark`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class BenchmarkSettings:
    mode: str = "inference"                 # inference | train | pipeline | video
    model: str = "erfpspnet"                # a registered network or 'package.module:factory'
    checkpoint: str | None = None           # weights (default: random init)
    num_classes: int | None = None          # classes of a random-init model (default 11)
    size: tuple[int, int] | None = None     # input HxW
    spatial_size: tuple[int, int] | None = None  # BiERF-PSPNet's spatial input HxW
    batch: int | None = None
    backend: str = "all"                    # one backend, naive, or all side by side
    precision: str = "auto"                 # with one backend: its precision, or all
    device: str = "cpu"
    threads: int | None = None              # CPU threads for PyTorch and ONNX Runtime
    warmup: int | None = None
    repeats: int | None = None
    no_compile: bool = False                # leave torch.compile rows out of backend all
    cuda_graphs: bool = False
    no_peak: bool = False                   # skip the matmul peak (no fraction of peak per row)
    # train mode
    loss: str = "all"
    train_precision: str = "all"
    crop: str | tuple[int, int] | None = None  # HxW crops too, 'off', or None (the default crop where it fits)
    # video mode
    input: str | None = None                # a video (default: a synthetic clip)
    frames: int | None = None
    frame_size: tuple[int, int] | None = None
    # pipeline mode; inference mode's int8 accuracy check
    dataset: str | None = None
    root: Path | None = None
    split: str | None = None
    workers: int | None = 2
    config: str | None = None               # pipeline: a training config's loader
    accuracy_images: int | None = None
    calib_images: int = 32
