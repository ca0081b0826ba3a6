"""Shared, cached fixtures for the speed tests (test_runtime, test_export, test_benchmark):
models with non-trivial BatchNorm statistics and briefly trained networks."""
from __future__ import annotations

import functools

import torch

from iaseg.checkpoint import inference_checkpoint
from iaseg.data import load_description
from iaseg.inference import ModelMetadata
from iaseg.inference.probe import fit_briefly
from iaseg.models import build_model

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
