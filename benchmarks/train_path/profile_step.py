"""docs/speed.md "The training step on the CPU": where a bf16 + channels_last training step of
ERF-PSPNet (weighted CE, 8 x 360x480, Adam) spends its time, by operator (torch.profiler, self
CPU time), and the GFLOP/s of its convolutions. Usage: python benchmarks/train_path/profile_step.py [THREADS]"""
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from iaseg.losses import build_loss
from iaseg.models import build_model, describe
from iaseg.speed.train import train_step

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
torch.manual_seed(0)
model = build_model("erfpspnet", 11).to(memory_format=torch.channels_last)
loss = build_loss("weighted_ce", class_weights=torch.ones(11), ignore_index=11)
x = torch.rand(8, 3, 360, 480).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 12, (8, 360, 480))
forward_gflop = 8 * describe(model.eval(), (x[:1],))["gflops"]
model.train()
step = train_step(model, loss, (x,), y, fast=True, device=torch.device("cpu"))

for _ in range(2):
    step()
times = []
for _ in range(3):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
print(f"{threads} threads: step {min(times):.3f}-{max(times):.3f} s, {8 / sorted(times)[1]:.2f} images/s")
with profile(activities=[ProfilerActivity.CPU]) as prof:
    step()
events = {e.key: e for e in prof.key_averages()}
total = sum(e.self_cpu_time_total for e in events.values()) / 1e6
fwd = events["aten::mkldnn_convolution"].self_cpu_time_total / 1e6
bwd = events["aten::convolution_backward"].self_cpu_time_total / 1e6
print(f"profiled: {total:.3f} s self CPU time; convolution forward {fwd:.3f} s ({forward_gflop / fwd:.0f} GFLOP/s), "
      f"backward {bwd:.3f} s ({2 * forward_gflop / bwd:.0f} GFLOP/s), everything else {total - fwd - bwd:.3f} s")
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=16))
