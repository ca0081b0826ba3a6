import os
from pathlib import Path

import pytest
import torch

# Keep the suite quick and deterministic on a 2-core machine.
torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED = Path(__file__).resolve().parents[2] / "shared"
CAMVID = Path(os.environ.get("IASEG_CAMVID", SHARED / "data" / "camvid"))
CITYSCAPES_SAMPLE = Path(os.environ.get("IASEG_CITYSCAPES_SAMPLE", SHARED / "data" / "cityscapes_sample"))


@pytest.fixture
def camvid_root() -> Path:
    if not (CAMVID / "train").is_dir():
        pytest.skip(f"CamVid not found at {CAMVID} (set IASEG_CAMVID)")
    return CAMVID


@pytest.fixture
def cityscapes_sample_root() -> Path:
    if not (CITYSCAPES_SAMPLE / "leftImg8bit").is_dir():
        pytest.skip(f"Cityscapes sample not found at {CITYSCAPES_SAMPLE}")
    return CITYSCAPES_SAMPLE
