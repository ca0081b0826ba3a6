"""Shared, cached models and inputs for the fast-path tests (inference/, speed/, cli/ export and
benchmark): models with non-trivial BatchNorm statistics, briefly trained networks, inputs and
image folders."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from iaseg.checkpoint import inference_checkpoint
from iaseg.data import load_description
from iaseg.inference import ModelMetadata
from iaseg.inference.probe import fit_briefly, structured_scenes
from iaseg.models import build_model, example_inputs, image_inputs


MODELS = ["erfpspnet", "bierfpspnet"]
SIZE = (64, 64)
SPATIAL = (128, 128)


def camvid():
    return load_description("camvid")


def spatial_for(name: str):
    return SPATIAL if name == "bierfpspnet" else None


def meta_for(name: str, size=SIZE) -> ModelMetadata:
    return ModelMetadata(name, camvid(), size, SPATIAL if name == "bierfpspnet" else None)


def randomise_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters (negative gammas included), so that
    folding has something to fold."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.25)
                m.weight.copy_(torch.rand(n, generator=g) * 3 - 1.5)
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model.eval()


@functools.lru_cache(maxsize=None)
def random_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return randomise_bn(build_model(name, 11))


@functools.lru_cache(maxsize=None)
def fitted_model(name: str) -> torch.nn.Module:
    """Trained ~5-10 s on structured synthetic scenes: confident predictions, real BN stats."""
    with torch.random.fork_rng():
        return fit_briefly(name, 11, SIZE, steps=80 if name == "erfpspnet" else 50, spatial_size=spatial_for(name))


def checkpoint_for(model: torch.nn.Module, name: str, size=SIZE) -> dict:
    return inference_checkpoint(model, name, {}, camvid(), size, spatial_for(name))


def inputs_for(name: str, batch: int = 2, seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple:
    """Seeded uniform inputs of `name` at SIZE (and SPATIAL)."""
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(t.shape, generator=g, dtype=dtype)
                 for t in example_inputs(name, SIZE, batch=batch, spatial_size=SPATIAL))


def batch_inputs(name: str, batch: int, seed: int = 0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    sizes = [SIZE] + ([SPATIAL] if name == "bierfpspnet" else [])
    return tuple(torch.rand(batch, 3, *s, generator=g) for s in sizes)


def structured_inputs(name: str, n: int, seed: int) -> tuple[list, torch.Tensor]:
    """`n` probe scenes as batch-1 input tuples of `name`, and their labels."""
    images, labels = structured_scenes(n, SIZE, 11, seed=seed)
    return [image_inputs(name, images[i:i + 1], spatial_size=spatial_for(name)) for i in range(n)], labels


def write_scene_folder(root: Path, n: int, seed: int, with_labels: bool = False) -> tuple[Path, Path | None]:
    """`n` probe scenes as PNGs in root/img (and their labels in root/lab)."""
    from PIL import Image

    images, labels = structured_scenes(n, (48, 64), 11, seed=seed)  # resized to the export size on read
    (root / "img").mkdir(parents=True)
    if with_labels:
        (root / "lab").mkdir()
    for i in range(n):
        arr = (images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(root / "img" / f"{i:03d}.png")
        if with_labels:
            Image.fromarray(labels[i].numpy().astype(np.uint8), mode="L").save(root / "lab" / f"{i:03d}.png")
    return root / "img", (root / "lab" if with_labels else None)


def benchmark_args(argv: list[str]):
    """`iaseg benchmark` options parsed into the settings object iaseg.speed.benchmark takes."""
    import argparse

    from iaseg.cli.benchmark import add_arguments, settings_of

    p = argparse.ArgumentParser()
    add_arguments(p)
    return settings_of(p.parse_args(argv))
