"""docs/speed.md "The training step on the CPU": is torch.compile (inductor, which fuses the
element-wise work around the convolutions: BatchNorm, ReLU, dropout, adds) faster than the eager
bf16 + channels_last training step of ERF-PSPNet (weighted CE, 8 x 360x480, Adam)?
Both models start from the same weights; 2 warm-up steps, then 5 interleaved rounds, medians.
Under compile, dropout is `F.dropout` (inductor draws the masks in its own kernels: the same
element-wise inverted dropout, other random numbers). Needs a C++ compiler.
Usage: python benchmarks/train_path/compile_step.py [THREADS]"""
import sys
import time

import torch
import torch.nn.functional as F

import iaseg.models.dropout as dropout_module
from iaseg.losses import build_loss
from iaseg.models import build_model
from iaseg.speed.train import train_step

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
_fast_dropout = dropout_module.dropout


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    if torch.compiler.is_compiling():   # numpy masks would break the graph at every dropout
        return F.dropout(x, p, training)
    return _fast_dropout(x, p, training)


dropout_module.dropout = dropout
loss = build_loss("weighted_ce", class_weights=torch.ones(11), ignore_index=11)
x = torch.rand(8, 3, 360, 480).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 12, (8, 360, 480))


def make_step(compiled: bool):
    torch.manual_seed(0)
    model = build_model("erfpspnet", 11).to(memory_format=torch.channels_last).train()
    # the compiled module holds the same parameters, so Adam steps the same weights
    return train_step(torch.compile(model) if compiled else model, loss, (x,), y, fast=True,
                      device=torch.device("cpu"))


steps = {"eager": make_step(False), "compile": make_step(True)}
t = time.perf_counter()
steps["compile"]()
print(f"compilation + first step: {time.perf_counter() - t:.0f} s", flush=True)
for _ in range(2):
    for step in steps.values():
        step()
times = {name: [] for name in steps}
for _ in range(5):
    for name, step in steps.items():
        t = time.perf_counter()
        step()
        times[name].append(time.perf_counter() - t)
median = {name: sorted(v)[2] for name, v in times.items()}
for name, m in median.items():
    print(f"{name}: median step {m:.3f} s, {8 / m:.2f} images/s")
print(f"{threads} threads: compile / eager images/s = {median['eager'] / median['compile']:.3f}x")
