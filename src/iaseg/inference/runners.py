"""Runners: one call signature for every way of running a trained network.

    runner = load_runner("best.pt")                 # iaseg's fastest checked path for the device
    logits = runner(images)                         # float32 N x C x H x W
    logits = load_runner("model.onnx")(context, spatial)   # BiERF-PSPNet from its ONNX file
    runner.describe()                               # e.g. 'openvino bf16 on cpu (chosen: ...)'

Inputs are float32 N x 3 x H x W RGB in [0, 1] (any device, any memory format); the runner
moves and casts them. Logits are float32 on the runner's device (CPU for onnxruntime); they
may be channels_last-strided, which every torch op and `.numpy()` handle.
"""
from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from iaseg.metadata import ModelMetadata

from .checked_int8 import default_int8_ir, describe_record
from .cpu import default_precision
from .files import (check_classes_by_running, int8_onnx_bytes, load_onnx, load_torchscript, onnx_bytes, quiet_jit,
                    trace_torchscript)
from .fold import fold_batchnorm
from .fuse import Float32Head, fuse_conv_relu
from .runner_base import (BACKENDS, DTYPES, FILE_BACKENDS, ONNX_SUFFIXES, OPENVINO_SUFFIXES, PRECISIONS,
                          TORCHSCRIPT_SUFFIXES, Runner, numpy_inputs)


class TorchRunner(Runner):
    """PyTorch eager or torch.compile.

    Preparation (each optional): BN folding; on CPU, conv + ReLU fusion and the fast max-pool
    (iaseg.inference.fuse, eager only); the weights in fp32/bf16/fp16; channels_last; logits
    upsampled in float32. Calls run under torch.inference_mode.

    CUDA extras: cudnn.benchmark, and with cuda_graphs=True each new input shape is captured
    once into a CUDA graph and replayed (removes per-kernel launch cost at batch 1). The compile
    backend on CUDA uses mode 'reduce-overhead' (which also uses CUDA graphs) unless
    compile_mode says otherwise; on CPU it compiles with inductor freezing (constant-folded,
    prepacked weights). compile_backend picks another torch.compile backend (e.g. 'aot_eager'
    where no C++ compiler is available).
    """

    def __init__(self, model: nn.Module, meta: ModelMetadata, precision: str = "fp32",
                 device: str | torch.device = "cpu", fold_bn: bool = True, channels_last: bool = True,
                 fuse: bool | None = None, compile: bool = False, compile_mode: str | None = None,
                 cuda_graphs: bool = False, compile_backend: str = "inductor") -> None:
        device = torch.device(device)
        if precision not in DTYPES:
            raise ValueError(f"precision {precision!r} is not available for PyTorch runners "
                             f"(choose {sorted(DTYPES)}; int8 runs on backend 'onnxruntime' or 'openvino')")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
        if cuda_graphs and device.type != "cuda":
            raise ValueError("cuda_graphs needs device 'cuda'")
        super().__init__(meta, precision, device)
        self.backend = "compile" if compile else "eager"
        self.dtype = DTYPES[precision]
        self.fold_bn = fold_bn
        self.channels_last = channels_last
        self.fuse = (device.type == "cpu" and fold_bn and not compile) if fuse is None else fuse
        if self.fuse and not fold_bn:
            raise ValueError("fuse=True needs fold_bn=True (fusion works on folded blocks)")
        self.cuda_graphs = cuda_graphs
        if compile and compile_mode is None and device.type == "cuda":
            compile_mode = "reduce-overhead"
        self.compile_mode = compile_mode
        model = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
        if self.fuse:
            model = fuse_conv_relu(model)
        model = model.to(device=device, dtype=self.dtype)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        for p in model.parameters():
            p.requires_grad_(False)
        self.module: nn.Module = Float32Head(model).eval()
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self._forward: Callable[..., torch.Tensor] = self.module
        if compile:
            kwargs: dict[str, Any] = {"dynamic": False, "backend": compile_backend}
            if compile_mode is not None:
                kwargs["mode"] = compile_mode
            elif compile_backend == "inductor":
                kwargs["options"] = {"freezing": True}
            self._forward = torch.compile(self.module, **kwargs)
        self._graphs: dict[tuple, tuple[Any, list[torch.Tensor], torch.Tensor]] = {}
        self._lock = threading.Lock()

    def options(self) -> dict[str, Any]:
        return {**super().options(), "fold_bn": self.fold_bn, "channels_last": self.channels_last,
                "fuse": self.fuse, "cuda_graphs": self.cuda_graphs,
                **({"compile_mode": self.compile_mode or "default (freezing)"} if self.backend == "compile" else {})}

    def prepare(self, t: torch.Tensor) -> torch.Tensor:
        """An input moved to the runner's device, dtype and memory format."""
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return t.to(device=self.device, dtype=self.dtype, memory_format=fmt, non_blocking=True)

    def _run(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode():
            xs = [self.prepare(t) for t in inputs]
            if self.cuda_graphs:
                return self._replay(xs)
            out = self._forward(*xs)
            # compiled 'reduce-overhead' graphs reuse their output buffers on the next call
            return out.clone() if self.backend == "compile" and self.device.type == "cuda" else out

    def _replay(self, xs: list[torch.Tensor]) -> torch.Tensor:
        key = tuple((tuple(x.shape), x.dtype) for x in xs)
        with self._lock:
            if key not in self._graphs:
                static = [x.clone() for x in xs]
                side = torch.cuda.Stream(device=self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(side):
                    for _ in range(3):  # warm up (cudnn.benchmark picks algorithms) off the graph
                        self._forward(*static)
                torch.cuda.current_stream(self.device).wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    out = self._forward(*static)
                self._graphs[key] = (graph, static, out)
            graph, static, out = self._graphs[key]
            for s, x in zip(static, xs):
                s.copy_(x, non_blocking=True)
            graph.replay()
            return out.clone()  # the graph's output buffer is overwritten by the next replay


class TorchScriptRunner(Runner):
    """A TorchScript file from `iaseg export --format torchscript` (fp32; fixed H x W, any batch).
    On CPU the graph is frozen with torch.jit.freeze (weights become constants)."""

    backend = "torchscript"

    def __init__(self, module: torch.jit.ScriptModule, meta: ModelMetadata,
                 device: str | torch.device = "cpu", freeze: bool = True) -> None:
        super().__init__(meta, "fp32", torch.device(device))
        module = module.to(self.device).eval()
        with quiet_jit():
            self.module = torch.jit.freeze(module) if freeze else module

    @property
    def fixed_size(self) -> bool:
        return True

    def _run(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(*(t.to(self.device, torch.float32) for t in inputs)).float()


class OnnxRunner(Runner):
    """An ONNX model (file path or bytes) in ONNX Runtime; fp32 or int8 as stored in the file.
    CPUExecutionProvider with `threads` intra-op threads (default: torch.get_num_threads()), or
    CUDAExecutionProvider for device 'cuda' when onnxruntime-gpu is installed."""

    backend = "onnxruntime"

    def __init__(self, source: str | Path | bytes, device: str | torch.device = "cpu",
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        device = torch.device(device)
        name = "<onnx bytes>" if isinstance(source, bytes) else str(source)
        data, meta = load_onnx(source)  # checked before anything runs: weights checksum, class count
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or torch.get_num_threads())
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError("onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(data, so, providers=providers)
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            raise ValueError(f"{name}: onnxruntime cannot load it ({type(e).__name__}: {e})") from None
        super().__init__(meta, meta.precision, device)
        self.threads = so.intra_op_num_threads
        self.output_device = torch.device("cpu")
        check_classes_by_running(name, meta, lambda *x: self._run(x))  # the graph states no output shape

    @property
    def fixed_size(self) -> bool:
        return True

    def options(self) -> dict[str, Any]:
        return {**super().options(), "threads": self.threads,
                "providers": self.session.get_providers()}

    def _run(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        (out,) = self.session.run(["logits"], numpy_inputs(self.input_names, inputs))
        return torch.from_numpy(out)


def _source_kind(source: Any) -> str:
    if isinstance(source, dict):
        return "checkpoint"
    suffix = Path(source).suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in TORCHSCRIPT_SUFFIXES:
        return "torchscript"
    if suffix in OPENVINO_SUFFIXES:
        return "openvino"
    return "checkpoint"


def stored_precision(source: str | Path) -> str:
    """The precision an exported file's graph is stored in ('fp32' or 'int8'): what scoring runs
    unless another is asked for (load_runner's 'auto' would pick the fast path, bf16 on CPUs with
    native bf16, for an fp32 OpenVINO IR)."""
    kind = _source_kind(source)
    if kind == "openvino":
        from .openvino import read_openvino_metadata

        return read_openvino_metadata(source).precision
    if kind == "onnx":
        return load_onnx(source)[1].precision
    return "fp32"


def default_backend(device: str | torch.device, precision: str, meta: ModelMetadata,
                    torch_options: bool = False) -> tuple[str, str]:
    """The backend load_runner gives a checkpoint when none is named, and why: 'openvino' on the
    CPU where the package is installed (measured at batch 1: OpenVINO bf16 1.1-1.2x eager bf16 on
    one thread, 1.5-2.9x on two threads of a loaded AMX Xeon; fp32 1.06x and 1.8x eager fp32;
    0.98-1.04x eager bf16 on a quiet AMD EPYC; docs/speed.md) for precision auto/fp32/bf16 and a checkpoint that states
    its input size; 'eager' otherwise, and always when the caller set a PyTorch-only option
    (`torch_options`: fold_bn=False, channels_last=False, fuse, cuda_graphs, compile_*)."""
    from .openvino import openvino_available

    if torch.device(device).type != "cpu":
        return "eager", ""
    if not openvino_available():
        return "eager", "chosen: openvino is not installed"
    if torch_options:
        return "eager", "chosen: PyTorch-only options were given"
    if precision not in ("auto", "fp32", "bf16"):
        return "eager", f"chosen: openvino runs {precision} only from a quantized model"
    if meta.input_size is None:
        return "eager", "chosen: the checkpoint states no input size to convert at"
    return "openvino", "chosen: openvino is installed and faster on CPU"


def runner_from_model(model: nn.Module, meta: ModelMetadata, backend: str = "eager",
                      precision: str = "auto", device: str | torch.device = "cpu",
                      fold_bn: bool = True, channels_last: bool = True, *,
                      threads: int | None = None,
                      calibration: Iterable[Sequence[torch.Tensor]] | None = None,
                      calibration_method: str = "minmax", compile_mode: str | None = None,
                      cuda_graphs: bool = False, fuse: bool | None = None,
                      opset: int = 17, compile_backend: str = "inductor") -> Runner:
    """A runner for an in-memory float32 network; see load_runner for the arguments."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
    if precision == "auto":
        precision = default_precision(device, backend)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)} or 'auto'")
    if backend in ("eager", "compile"):
        return TorchRunner(model, meta, precision, device, fold_bn=fold_bn, channels_last=channels_last,
                           fuse=fuse, compile=backend == "compile", compile_mode=compile_mode,
                           cuda_graphs=cuda_graphs, compile_backend=compile_backend)
    if backend == "openvino":
        from .openvino import openvino_runner_from_model

        return openvino_runner_from_model(model, meta, precision, device, fold_bn, threads=threads,
                                          calibration=calibration, opset=opset)
    if backend == "onnxruntime":
        if precision not in ("fp32", "int8"):
            raise ValueError(f"backend onnxruntime runs fp32 or int8, not {precision}")
        data = onnx_bytes(model, meta, opset=opset, fold_bn=fold_bn)
        if precision == "int8":
            if calibration is None:
                raise ValueError("int8 needs calibration inputs (e.g. a few training images at the export size)")
            data = int8_onnx_bytes(data, calibration, method=calibration_method)
        return OnnxRunner(data, device=device, threads=threads)
    if precision != "fp32":
        raise ValueError(f"backend torchscript runs fp32, not {precision}")
    meta = meta.complete()
    return TorchScriptRunner(trace_torchscript(model, meta, fold_bn=fold_bn), meta, device=device)


def load_runner(source: str | Path | dict[str, Any], backend: str | None = None,
                precision: str = "auto", device: str | torch.device = "cpu",
                fold_bn: bool = True, channels_last: bool = True, *,
                threads: int | None = None,
                calibration: Iterable[Sequence[torch.Tensor]] | None = None,
                calibration_method: str = "minmax", compile_mode: str | None = None,
                cuda_graphs: bool = False, fuse: bool | None = None, opset: int = 17,
                compile_backend: str = "inductor", input_size: tuple[int, int] | None = None) -> Runner:
    """Load a runner from an iaseg checkpoint (path or dict), an .onnx file, a TorchScript
    file (.ts/.torchscript/.jit) or an OpenVINO IR (.xml) written by `iaseg export`.

    backend: 'eager' | 'compile' | 'onnxruntime' | 'torchscript' | 'openvino'; None picks it from
        the source: for checkpoints an accuracy-checked int8 IR beside the file where one fits
        (iaseg.inference.checked_int8: OpenVINO installed, precision 'auto' or 'int8', no
        calibration or PyTorch-only option given), else default_backend() (openvino on CPU where
        it is installed, else eager); runner.describe() says which and why. For files their own
        runtime. A checkpoint can run on any backend (exported in memory).
    precision: 'fp32' | 'bf16' | 'fp16' | 'int8' | 'auto'. 'auto' is iaseg's default fast path:
        bf16 on CPUs with native bf16 (AVX-512 BF16 / AMX) for eager/compile/openvino, fp16 on
        CUDA for eager/compile, fp32 otherwise. int8 needs backend 'onnxruntime' or 'openvino'
        and, from a checkpoint, `calibration` (an iterable of input tuples at the checkpoint's
        input size), or no backend and a checked int8 IR beside the checkpoint.
    fold_bn, channels_last: fold BatchNorm into convs; channels_last activations (eager/compile).
    threads: onnxruntime/openvino threads (PyTorch uses torch.set_num_threads).
    compile_mode: torch.compile mode (default: CPU freezing / CUDA 'reduce-overhead').
    compile_backend: torch.compile backend (default 'inductor').
    cuda_graphs: eager on CUDA only: capture and replay CUDA graphs per input shape.
    fuse: CPU conv+ReLU fusion (default: on for CPU eager with fold_bn).
    input_size: the (context) H x W a checkpoint's runner will be called at (default the
        checkpoint's; BiERF-PSPNet's spatial size follows at the default ratio); a checked int8
        IR is chosen only at its own size. Exported files keep their own size.
    """
    kind = _source_kind(source)
    if kind == "checkpoint":
        from iaseg.checkpoint import model_from_checkpoint

        model, meta = model_from_checkpoint(source, device="cpu")
        if input_size is not None and tuple(input_size) != meta.input_size:
            meta = meta.at_size(input_size)  # a spatial size belongs to its context size: the default follows
        chosen = ""
        if backend is None:
            torch_options = (not fold_bn or not channels_last or fuse is not None or cuda_graphs
                             or compile_mode is not None or compile_backend != "inductor")
            checked, note = default_int8_ir(source, model, meta, precision, device, torch_options, calibration)
            if checked is not None:
                from .openvino import OpenVINORunner

                runner = OpenVINORunner(checked, "int8", device, threads=threads)
                runner.chosen = (f"chosen: the accuracy-checked int8 IR {note} beside the checkpoint "
                                 f"({describe_record(runner.meta.accuracy_check or {})})")
                return runner
            if precision == "int8" and calibration is None and not torch_options:
                where = source if isinstance(source, (str, Path)) else "this checkpoint"
                raise ValueError(f"{where}: int8 from a checkpoint needs calibration inputs or an accuracy-checked "
                                 "int8 IR beside it (STEM.int8*.xml from `iaseg export --format openvino --int8` "
                                 f"with labelled --val-root){'; passed over: ' + note if note else ''}")
            backend, chosen = default_backend(device, precision, meta, torch_options)
            if note:
                chosen += f"; int8 IRs beside it passed over: {note}"
        runner = runner_from_model(model, meta, backend, precision, device, fold_bn,
                                   channels_last, threads=threads, calibration=calibration,
                                   calibration_method=calibration_method, compile_mode=compile_mode,
                                   cuda_graphs=cuda_graphs, fuse=fuse, opset=opset,
                                   compile_backend=compile_backend)
        runner.chosen = chosen
        return runner
    expected = FILE_BACKENDS[kind]
    if backend not in (None, expected):
        raise ValueError(f"{source} is a {kind} file: it runs on backend {expected!r}, not {backend!r}")
    if kind == "onnx":
        runner: Runner = OnnxRunner(source, device=device, threads=threads)
        if precision not in ("auto", runner.precision):
            raise ValueError(f"{source} holds a {runner.precision} model; precision {precision!r} "
                             "needs another export")
        return runner
    if kind == "openvino":
        from .openvino import OpenVINORunner

        return OpenVINORunner(source, precision, device=device, threads=threads)
    if precision not in ("auto", "fp32"):
        raise ValueError(f"TorchScript runs fp32, not {precision}")
    module, meta = load_torchscript(source, map_location=device)
    return TorchScriptRunner(module, meta, device=device)
