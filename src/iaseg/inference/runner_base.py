"""The runner base class and the constants every backend shares (backends, precisions, file
suffixes). Kept apart from runners.py so a backend module (inference/openvino.py) can subclass
Runner without importing the module that dispatches to it."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from iaseg.data.description import DatasetDescription
from iaseg.metadata import ModelMetadata

BACKENDS = ("eager", "compile", "onnxruntime", "torchscript", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ONNX_SUFFIXES = (".onnx",)
TORCHSCRIPT_SUFFIXES = (".ts", ".torchscript", ".jit")
OPENVINO_SUFFIXES = (".xml",)
FILE_BACKENDS = {"onnx": "onnxruntime", "torchscript": "torchscript", "openvino": "openvino"}


class Runner:
    """Base class: metadata, input checks and the call convention. Subclasses define _run."""

    backend = "?"
    chosen = ""  # why load_runner picked this backend when the caller named none

    def __init__(self, meta: ModelMetadata, precision: str, device: torch.device) -> None:
        self.meta = meta
        self.precision = precision
        self.device = torch.device(device)

    @property
    def model_name(self) -> str:
        return self.meta.model_name

    @property
    def description(self) -> DatasetDescription:
        return self.meta.description

    @property
    def num_classes(self) -> int:
        return self.meta.description.num_classes

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.meta.input_names

    @property
    def input_size(self) -> tuple[int, int] | None:
        return self.meta.input_size

    @property
    def spatial_size(self) -> tuple[int, int] | None:
        return self.meta.spatial_size

    @property
    def fixed_size(self) -> bool:
        """True when the graph only runs at input_size/spatial_size (exported files)."""
        return False

    def options(self) -> dict[str, Any]:
        """Backend, precision, device and switches, for reports."""
        return {"backend": self.backend, "precision": self.precision, "device": str(self.device)}

    def describe(self) -> str:
        """One line for logs: backend, precision, device and, if load_runner chose the backend
        itself, why."""
        return f"{self.backend} {self.precision} on {self.device}" + (f" ({self.chosen})" if self.chosen else "")

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options().items())
        return f"{type(self).__name__}({self.model_name}, {opts})"

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != self.meta.num_inputs:
            raise ValueError(f"{self.model_name} takes {self.meta.num_inputs} input(s) "
                             f"{list(self.input_names)}, got {len(inputs)}")
        for name, t in zip(self.input_names, inputs):
            if not isinstance(t, torch.Tensor) or t.dim() != 4 or t.shape[1] != 3:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"input {name!r} must be a N x 3 x H x W tensor, got {shape}")
        if self.fixed_size:
            sizes = [self.meta.input_size, self.meta.spatial_size][: len(inputs)]
            for name, t, size in zip(self.input_names, inputs, sizes):
                if size is not None and tuple(t.shape[-2:]) != tuple(size):
                    raise ValueError(f"this {self.backend} model was exported for {name} {size[0]}x{size[1]}, "
                                     f"got {t.shape[-2]}x{t.shape[-1]} (resize, or export at that size)")
        return self._run(inputs)

    def _run(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


def numpy_inputs(names: Sequence[str], inputs: Sequence[torch.Tensor]) -> dict[str, np.ndarray]:
    """Inputs as contiguous float32 CPU arrays by input name, for runtimes outside PyTorch."""
    return {n: np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy()) for n, t in zip(names, inputs)}
