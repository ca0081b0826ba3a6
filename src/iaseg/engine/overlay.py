"""A Fig. 7-style overlay of two checkpoints (ground truth vs A vs B for the most important
group) on a few images of a split, for `iaseg compare --checkpoints`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from iaseg.checkpoint import dataset_settings, load_checkpoint, model_from_checkpoint
from iaseg.data.loader import collate
from iaseg.metrics.figures import importance_overlay, plot_overlays

from .evaluator import iter_logits


def to_uint8(image: Any) -> np.ndarray:
    """A dataset image (3 x H x W tensor or H x W x 3 array, [0, 1] or normalised) as H x W x 3 uint8."""
    x = np.asarray(image.detach().cpu().float() if hasattr(image, "detach") else image, dtype=np.float32)
    if x.ndim == 3 and x.shape[0] == 3:
        x = x.transpose(1, 2, 0)
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:  # normalised input: stretch for display
        x = (x - lo) / max(hi - lo, 1e-6)
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def load_pair(checkpoints: Sequence[str | Path], device: str = "cpu") -> tuple[list[dict], list[tuple], Any]:
    """The two checkpoints of a figure: (checkpoint dicts, (model, meta) pairs, A's description).
    ValueError when they were trained on different classes."""
    ckpts = [load_checkpoint(c) for c in checkpoints]
    loaded = [model_from_checkpoint(c, device=device, source=p) for c, p in zip(ckpts, checkpoints)]
    desc = loaded[0][1].description
    if loaded[1][1].description.classes != desc.classes:
        raise ValueError(f"{checkpoints[0]} and {checkpoints[1]} were trained on different classes")
    return ckpts, loaded, desc


def pair_datasets(metas: Sequence[Any], settings: dict[str, Any], split: str,
                  size: tuple[int, int] | None = None) -> list[Any]:
    """One dataset per network of a figure, at `size` (None: the labels' native resolution), with
    BiERF-PSPNet's spatial input at its spatial size; `settings` from `dataset_settings`."""
    from iaseg.data import build_dataset  # looked up at call time (tests substitute it)

    return [build_dataset(settings["name"], settings["root"], split, size=size,
                          **({"spatial_size": m.spatial_size} if m.num_inputs == 2 else {}),
                          **settings["options"]) for m in metas]


def overlay_from_checkpoints(checkpoints: Sequence[str | Path], names: Sequence[str], out_png: str | Path,
                             dataset: str | None = None, root: str | Path | None = None, split: str = "val",
                             images: int = 4, device: str = "cpu") -> Path:
    """Run both checkpoints on `images` images of a split, spread over it, that contain the most
    important group and draw `importance_overlay` panels into one PNG. The dataset defaults to
    the one checkpoint A was trained on, else to the name of its description
    (`iaseg.checkpoint.dataset_settings`). Two single-input networks of one input size are drawn at
    that size; otherwise (BiERF-PSPNet, or two sizes) at the labels' native resolution, each
    network at its own input size with its logits upsampled, as `iaseg evaluate --full-resolution`."""
    ckpts, loaded, desc = load_pair(checkpoints, device)
    settings = dataset_settings(ckpts[0], dataset, root, fallback=desc.name)
    name, root = settings["name"], settings["root"]
    metas = [meta for _, meta in loaded]
    if not any(m.num_inputs == 2 for m in metas) and metas[0].input_size == metas[1].input_size:
        data = pair_datasets(metas[:1], settings, split, tuple(metas[0].input_size)) * 2
    else:
        data = pair_datasets(metas, settings, split)
    ds = data[0]
    top_group = list(desc.groups)[-1]
    top_ids = desc.group_indices()[-1]
    # Images spread over the split (consecutive video frames look alike): scan up to 10 per
    # wanted image at even spacing, keep those showing the group, then pick evenly among them.
    scan = sorted({int(round(v)) for v in np.linspace(0, len(ds) - 1, min(len(ds), 10 * images))}) if len(ds) else []
    showing, spare = [], []
    for i in scan:
        frac = float(np.isin(np.asarray(ds[i]["label"]), top_ids).mean())
        (showing if frac >= 0.005 else spare).append(i)
    if len(showing) > images:
        showing = [showing[int(round(v))] for v in np.linspace(0, len(showing) - 1, images)]
    chosen = (showing + spare)[:images]
    if not chosen:
        raise ValueError(f"dataset {name!r} split {split!r} at {root} has no images")
    preds = [[logits.argmax(1)[0].cpu().numpy()
              for _, logits, _ in iter_logits(model, [collate([d[i]]) for i in chosen], meta.input_names, device,
                                              input_size=tuple(meta.input_size), progress=False)]
             for (model, meta), d in zip(loaded, data)]
    panels = []
    for k, item in enumerate(ds[i] for i in chosen):
        gt = np.asarray(item["label"])
        pa, pb = preds[0][k], preds[1][k]
        region = np.isin(gt, top_ids)
        scores = [f"{100 * float((p[region] == gt[region]).mean()):.0f}%" if region.any() else "-" for p in (pa, pb)]
        caption = (f"{Path(str(item.get('path', ''))).name}: {top_group} pixels correct "
                   f"{names[0]} {scores[0]}, {names[1]} {scores[1]}")
        panels.append((importance_overlay(to_uint8(item["image"]), gt, pa, pb, top_ids), caption))
    return plot_overlays(panels, out_png, (names[0], names[1]), top_group)
