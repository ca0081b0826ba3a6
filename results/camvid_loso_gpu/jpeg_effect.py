"""How much does scoring on JPEG copies of the frames move the metrics? (issue 13, GPU call 2)

The GPU runs' train images travelled as JPEG (quality 95, 4:4:4; results/camvid_study_gpu/transfer.py),
so the leave-one-sequence-out runs of the 2026-11-27 GPU call were scored on JPEG copies of the 0006R0
frames, not on the exact ones. This scores given weights on both, for 0006R0 and for val:

    python results/camvid_loso_gpu/jpeg_effect.py --root ../shared/data/camvid \\
        weights/camvid_erfpspnet_ce.pt weights/camvid_erfpspnet_ial.pt > results/camvid_loso_gpu/jpeg_effect.md

Same JPEG settings as transfer.py; fp32 `iaseg evaluate` on the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

SETS = {"0006R0": ["--split", "train", "--option", "sequences=[0006R0]"], "val": ["--split", "val"]}


def jpeg_root(src: Path, dst: Path) -> None:
    """dst: src's layout with every train/val image replaced by its JPEG q95 4:4:4 round trip."""
    for d in ("trainannot", "valannot"):
        os.symlink(src / d, dst / d)
    for f in ("train.txt", "val.txt"):
        shutil.copy(src / f, dst / f)
    for d in ("train", "val"):
        (dst / d).mkdir()
        for f in sorted((src / d).glob("*.png")):
            im = Image.open(f).convert("RGB")
            tmp = dst / d / (f.stem + ".jpg")
            im.save(tmp, "JPEG", quality=95, subsampling=0)
            Image.open(tmp).convert("RGB").save(dst / d / f.name, compress_level=1)
            tmp.unlink()


def score(iaseg: str, ckpt: str, root: Path, args: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([iaseg, "evaluate", "--checkpoint", ckpt, "--root", str(root), *args, "--out", out,
                        "--no-progress"], check=True, stdout=subprocess.DEVNULL)
        r = json.loads((Path(out) / "report.json").read_text())
    return {"mean IoU": 100 * r["mean"]["iou"], "G3 recall": 100 * r["groups"]["G3"]["recall"],
            "G3 precision": 100 * r["groups"]["G3"]["precision"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--iaseg", default=shutil.which("iaseg") or "iaseg")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        jroot = Path(tmp)
        jpeg_root(a.root.resolve(), jroot)
        print("| weights | frames | exact: mean IoU / G3 recall / G3 precision | JPEG q95 | JPEG - exact |")
        print("|---|---|---|---|---|")
        for ckpt in a.checkpoints:
            for name, args in SETS.items():
                e, j = score(a.iaseg, ckpt, a.root, args), score(a.iaseg, ckpt, jroot, args)
                fmt = lambda d: " / ".join(f"{v:.2f}" for v in d.values())  # noqa: E731
                diff = " / ".join(f"{j[k] - e[k]:+.2f}" for k in e)
                print(f"| {Path(ckpt).name} | {name} | {fmt(e)} | {fmt(j)} | {diff} |", flush=True)


if __name__ == "__main__":
    main()
