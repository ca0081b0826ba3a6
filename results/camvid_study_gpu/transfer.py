"""Carry CamVid train/val through the device tool's 64 MiB transfer and rebuild the layout there.

    python transfer.py pack   SRC_CAMVID DST   # here: train images as JPEG q95 4:4:4 (lossy, mean abs
                                               # pixel error ~1.3), val as lossless WebP, labels as is
    python transfer.py unpack SRC DST_CAMVID   # there: SegNet layout with PNG images

(The 2026-11-26 run used these two halves as pack.py and unpack.py, with the same code.)"""
import shutil
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

MODE, SRC, DST = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])


def copy_layout() -> None:
    for d in ("train", "val"):
        (DST / d).mkdir(parents=True, exist_ok=True)
    for d in ("trainannot", "valannot"):
        shutil.copytree(SRC / d, DST / d, dirs_exist_ok=True)
    for f in ("train.txt", "val.txt"):
        shutil.copy(SRC / f, DST / f)


def pack_one(args: tuple[str, Path]) -> float:
    split, f = args
    im = Image.open(f).convert("RGB")
    if split == "train":
        out = DST / "train" / (f.stem + ".jpg")
        im.save(out, "JPEG", quality=95, subsampling=0)
        back = np.asarray(Image.open(out).convert("RGB")).astype(int)
        return float(np.abs(back - np.asarray(im).astype(int)).mean())
    out = DST / "val" / (f.stem + ".webp")
    im.save(out, "WEBP", lossless=True, method=4)
    assert Image.open(out).convert("RGB").tobytes() == im.tobytes()
    return 0.0


def unpack_one(f: Path) -> None:
    split = "train" if f.suffix == ".jpg" else "val"
    Image.open(f).convert("RGB").save(DST / split / (f.stem + ".png"), compress_level=1)


if __name__ == "__main__":
    copy_layout()
    if MODE == "pack":
        jobs = [(s, f) for s in ("train", "val") for f in sorted((SRC / s).glob("*.png"))]
        with Pool(2) as p:
            errs = p.map(pack_one, jobs)
        print(len(jobs), "images; train mean abs error", np.mean([e for (s, _), e in zip(jobs, errs) if s == "train"]))
    else:
        files = sorted((SRC / "train").glob("*.jpg")) + sorted((SRC / "val").glob("*.webp"))
        with Pool(16) as p:
            p.map(unpack_one, files)
        print("unpacked", len(files), "images to", DST)
