"""The CPU's name, instruction-set flags and whether it computes bf16 natively. No other iaseg imports,
so that both the training engine and the inference package can ask (iaseg.inference.cpu
re-exports these beside the rest of the machine description)."""
from __future__ import annotations

import functools
import platform

import torch


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags from /proc/cpuinfo (Linux); empty where unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16_cpu() -> bool:
    """True where the CPU computes bf16 natively (AVX-512 BF16 or AMX): there bf16 convolutions
    are several times faster than float32. Elsewhere oneDNN emulates bf16, which is slower."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"}) and torch.backends.mkldnn.is_available()
