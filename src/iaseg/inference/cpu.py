"""What the machine offers: CPU model and instruction-set flags, GPU name, library versions."""
from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

import torch

from iaseg.hardware import cpu_flags, cpu_name, native_bf16_cpu  # noqa: F401  (re-exported)


def default_precision(device: str | torch.device, backend: str = "eager") -> str:
    """The fastest precision whose accuracy iaseg checks: fp16 on CUDA (eager/compile), bf16 on
    CPUs with native bf16 (eager/compile/openvino backends), fp32 otherwise."""
    device = torch.device(device)
    if backend not in ("eager", "compile", "openvino"):
        return "fp32"
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and native_bf16_cpu():
        return "bf16"
    return "fp32"


def machine_info(device: str | torch.device = "cpu") -> dict[str, Any]:
    """CPU model, cores, threads, torch/onnxruntime/openvino/nncf versions and the GPU name (if any)."""
    device = torch.device(device)
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16": native_bf16_cpu(),
        "cpu_amx": "amx_tile" in cpu_flags(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "gpu": None,
        "cuda": torch.version.cuda,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    for package in ("openvino", "nncf"):  # versions without importing them
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    if device.type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
