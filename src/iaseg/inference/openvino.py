"""OpenVINO backend (optional extra `openvino`; int8 also needs `nncf`): IR files with the iaseg
metadata, a runner in fp32 | bf16 | int8, and NNCF post-training int8.

    export_openvino(model, meta, "erfpspnet.xml")                        # fp32 IR (+ erfpspnet.bin)
    export_openvino(model, meta, "erfpspnet-int8.xml", precision="int8", calibration=inputs)
    runner = load_runner("erfpspnet.xml", precision="bf16")              # or OpenVINORunner(path)

The IR is converted from iaseg's own ONNX export (BatchNorm folded, pooling fixed for the input
size, dynamic batch, fp32 weights) by OpenVINO's ONNX reader, so every backend runs the same
graph. The metadata (ModelMetadata JSON: classes, palette, groups, sizes, precision, decision
rule) is stored in the IR's rt_info under "iaseg". The runner compiles one static-shape model per
input shape it sees (3 % faster than a dynamic batch axis at batch 1 here).

Precision: the IR holds fp32 or int8 weights. An fp32 IR runs in fp32 or bf16 (OpenVINO's
INFERENCE_PRECISION_HINT; native on AVX-512 BF16 / AMX CPUs, emulated and slow elsewhere); an
int8 IR runs int8 with its remaining float operations in bf16 where the CPU has native bf16.

Telemetry: OpenVINO's conversion tool and NNCF send usage statistics through the
`openvino_telemetry` package unless the user opted out. Before importing either, iaseg makes that
package unimportable for the process (both then use their built-in no-op stubs) and sets NNCF_CI,
so nothing is sent and no client-id file is written; iaseg itself never calls OpenVINO's
converter (ovc), only the runtime's ONNX reader.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from iaseg.io import replace_files
from iaseg.metadata import WEIGHTS_KEY, ModelMetadata

from .cpu import native_bf16_cpu
from .files import _Reader, onnx_bytes
from .integrity import check_output_classes, check_weights, expects_checksum, weights_digest
from .runner_base import OPENVINO_SUFFIXES, Runner, numpy_inputs

RT_INFO_KEY = "iaseg"
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}  # iaseg name -> INFERENCE_PRECISION_HINT
DEFAULT_CALIBRATION_COUNT = 30  # training images for NNCF int8 (a seeded subset): enough in the measurements


def _quiet_telemetry() -> None:
    """Keep OpenVINO's and NNCF's usage telemetry off (see the module docstring)."""
    if "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import now raises ImportError
    os.environ.setdefault("NNCF_CI", "1")  # NNCF's own switch to its telemetry stub


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ValueError:  # sys.modules[package] is None: blocked in this process
        return False


def openvino_available() -> bool:
    """True when the `openvino` package is installed (nothing is imported)."""
    return _installed("openvino")


def nncf_available() -> bool:
    """True when `nncf` (needed for int8) is installed."""
    return _installed("nncf")


def _ov() -> Any:
    _quiet_telemetry()
    try:
        import openvino
    except ImportError:
        raise ImportError("the OpenVINO backend needs the `openvino` package: pip install 'iaseg[openvino]'") from None
    return openvino


@functools.lru_cache(maxsize=1)
def _core() -> Any:
    return _ov().Core()


def _set_metadata(model: Any, meta: ModelMetadata) -> None:
    model.set_rt_info(meta.to_json(), [RT_INFO_KEY])


def read_openvino_metadata(source: str | Path | Any) -> ModelMetadata:
    """The iaseg metadata of an IR file (.xml) or an in-memory openvino.Model."""
    if isinstance(source, (str, Path)):
        return _metadata(_read(source), str(source))
    return _metadata(source, "<openvino model>")


def _metadata(model: Any, name: str) -> ModelMetadata:
    if not model.has_rt_info([RT_INFO_KEY]):
        raise ValueError(f"{name}: no iaseg metadata (export the file with `iaseg export`)")
    return ModelMetadata.from_json(model.get_rt_info([RT_INFO_KEY]).astype(str), name)


def _read(path: str | Path) -> Any:
    """An IR file's openvino.Model, checked before anything runs: readable, the weights' SHA-256
    recorded at export, output channels = the metadata's class count (ValueError naming it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OpenVINO IR {path} not found")
    if not path.with_suffix(".bin").is_file():
        raise FileNotFoundError(f"OpenVINO IR {path}: its weights {path.with_suffix('.bin').name} are missing")
    try:
        model = _core().read_model(str(path))
    except RuntimeError as e:  # OpenVINO raises RuntimeError for unreadable IR
        raise ValueError(f"{path}: OpenVINO cannot read it ({str(e).strip().splitlines()[0]})") from None
    text = model.get_rt_info([RT_INFO_KEY]).astype(str) if model.has_rt_info([RT_INFO_KEY]) else None
    recorded = model.get_rt_info([WEIGHTS_KEY]).astype(str) if model.has_rt_info([WEIGHTS_KEY]) else None
    if recorded or expects_checksum(text):  # the digest reads every weight: only when it is checked
        check_weights(f"{path} ({path.with_suffix('.bin').name})", recorded,
                      openvino_weights_digest(model) if recorded else "", required=True)
    if model.has_rt_info([RT_INFO_KEY]) and model.outputs:
        dim = model.outputs[0].get_partial_shape()
        channels = dim[1].get_length() if dim.rank.is_static and len(dim) > 1 and dim[1].is_static else None
        check_output_classes(str(path), _metadata(model, str(path)), channels)
    return model


def openvino_weights_digest(model: Any) -> str:
    """SHA-256 of an openvino.Model's weights: its Constant nodes in graph order."""
    return weights_digest((op.get_friendly_name(), op.get_data()) for op in model.get_ordered_ops()
                          if op.get_type_name() == "Constant")


def openvino_model(model: nn.Module, meta: ModelMetadata, fold_bn: bool = True, opset: int = 17) -> Any:
    """An fp32 openvino.Model of `model` (float32, eval) at meta's input size(s), with a dynamic
    batch axis and the iaseg metadata, converted from iaseg's ONNX export."""
    meta = meta.complete()
    data = onnx_bytes(model, meta, opset=opset, fold_bn=fold_bn)
    with tempfile.TemporaryDirectory(prefix="iaseg-ov-") as tmp:
        src = Path(tmp, "model.onnx")
        src.write_bytes(data)  # a path, not bytes: read_model(bytes) is not in older releases
        ov_model = _core().read_model(str(src))
    _set_metadata(ov_model, meta.with_(precision="fp32"))
    return ov_model


def quantize_openvino(ov_model: Any, calibration: Iterable[Sequence[torch.Tensor] | torch.Tensor],
                      fast_bias_correction: bool = True) -> Any:
    """NNCF post-training int8 of an fp32 openvino.Model (symmetric 'performance' preset: int8
    weights per channel and int8 activations), calibrated on `calibration`: input tuples (float32
    N x 3 x H x W in [0, 1] at the model's size, e.g. ~30 training images; never the split you
    evaluate on). Returns a new model whose metadata says precision 'int8'."""
    meta = read_openvino_metadata(ov_model)
    if meta.precision != "fp32":
        raise ValueError(f"quantize an fp32 model, not a {meta.precision} one")
    feeds = list(iter(_Reader(meta.input_names, calibration).get_next, None))  # dicts of numpy arrays by input name
    if not feeds:
        raise ValueError("int8 calibration got no inputs")
    _quiet_telemetry()
    try:
        import nncf
    except ImportError:
        raise ImportError("OpenVINO int8 needs the `nncf` package: pip install 'iaseg[openvino]'") from None
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.WARNING)  # its INFO lines and progress bars (stdout) are noise in iaseg's output
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantized = nncf.quantize(ov_model, nncf.Dataset(feeds), subset_size=len(feeds),
                                      preset=nncf.QuantizationPreset.PERFORMANCE,
                                      fast_bias_correction=fast_bias_correction)
    finally:
        nncf_log.setLevel(level)
    _set_metadata(quantized, meta.with_(precision="int8"))
    return quantized


def save_openvino(ov_model: Any, path: str | Path) -> Path:
    """Write an openvino.Model as IR (PATH.xml + PATH.bin, weights kept as they are: no fp16
    compression), both files replaced atomically (the .bin first)."""
    path = Path(path)
    if path.suffix.lower() not in OPENVINO_SUFFIXES:
        raise ValueError(f"an OpenVINO IR path ends in .xml, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    ov_model.set_rt_info(openvino_weights_digest(ov_model), [WEIGHTS_KEY])  # checked by _read
    with tempfile.TemporaryDirectory(prefix=".iaseg-ov-", dir=path.parent) as tmp:
        xml = Path(tmp, "model.xml")
        _ov().save_model(ov_model, str(xml), compress_to_fp16=False)
        replace_files([(xml.with_suffix(".bin"), path.with_suffix(".bin")), (xml, path)])  # normal permissions
    return path


def record_accuracy_check(path: str | Path, record: dict[str, Any]) -> Path:
    """Store an accuracy-guard record (checked_int8.accuracy_record) in an IR's metadata,
    rewriting the IR atomically; the weights are untouched."""
    model = _read(path)
    _set_metadata(model, _metadata(model, str(path)).with_(accuracy_check=record))
    return save_openvino(model, path)


def export_openvino(model: nn.Module, meta: ModelMetadata, path: str | Path, precision: str = "fp32",
                    calibration: Iterable[Sequence[torch.Tensor] | torch.Tensor] | None = None,
                    fold_bn: bool = True, opset: int = 17) -> Path:
    """Write `model` as an OpenVINO IR (PATH.xml + PATH.bin) with the iaseg metadata in its
    rt_info. precision 'fp32' (runs in fp32 or bf16, chosen when loading) or 'int8' (NNCF
    post-training quantization, needs `calibration`: see quantize_openvino). Returns the .xml path."""
    if precision not in ("fp32", "int8"):
        raise ValueError(f"an OpenVINO IR stores fp32 or int8 weights, not {precision!r} "
                         "(bf16 is chosen when loading an fp32 IR)")
    if precision == "int8" and calibration is None:
        raise ValueError("int8 needs calibration inputs (e.g. ~30 training images at the export size)")
    ov_model = openvino_model(model, meta, fold_bn=fold_bn, opset=opset)
    if precision == "int8":
        ov_model = quantize_openvino(ov_model, calibration)  # type: ignore[arg-type]
    return save_openvino(ov_model, path)


class OpenVINORunner(Runner):
    """An OpenVINO model on the CPU: an IR file (.xml) or an in-memory openvino.Model with iaseg
    metadata.

    precision: 'auto' | 'fp32' | 'bf16' for an fp32 model ('auto' = bf16 on CPUs with native
        bf16, else fp32); 'auto' | 'int8' for an int8 model.
    threads: inference threads (default torch.get_num_threads()); one stream, latency hint.
    rebuild: a function giving the fp32 model for other input sizes (runners made from a
        PyTorch network have one, so they run at any size like eager); None = fixed H x W.
    One static-shape compiled model per input shape seen (batch size included), kept in a cache.
    """

    backend = "openvino"

    def __init__(self, source: str | Path | Any, precision: str = "auto", device: str | torch.device = "cpu",
                 threads: int | None = None,
                 rebuild: Callable[[ModelMetadata], Any] | None = None) -> None:
        device = torch.device(device)
        if device.type != "cpu":
            raise ValueError(f"the OpenVINO backend runs on the CPU, not {device}")
        where = str(source) if isinstance(source, (str, Path)) else "this model"
        self.model = _read(source) if isinstance(source, (str, Path)) else source
        meta = _metadata(self.model, where)
        stored = meta.precision
        if precision == "auto":
            precision = "int8" if stored == "int8" else ("bf16" if native_bf16_cpu() else "fp32")
        allowed = ("int8",) if stored == "int8" else ("fp32", "bf16")
        if precision not in allowed:
            raise ValueError(f"{where} holds a {stored} model; it runs {' or '.join(allowed)}, not {precision!r}"
                             + (" (quantize an fp32 model for int8)" if precision == "int8" else ""))
        if rebuild is not None and stored == "int8":
            raise ValueError("an int8 model is calibrated for one size: it cannot be rebuilt for others")
        super().__init__(meta, precision, device)
        self.threads = int(threads or torch.get_num_threads())
        # int8: the float operations left (upsampling, adds of quantized branches) in bf16 where native
        self.inference_precision = OV_PRECISION.get(precision, "bf16" if native_bf16_cpu() else "f32")
        self.output_device = torch.device("cpu")
        self._rebuild = rebuild
        self._models: dict[tuple, Any] = {self._sizes(): self.model}
        self._requests: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    @property
    def fixed_size(self) -> bool:
        return self._rebuild is None

    def _sizes(self, inputs: Sequence[torch.Tensor] | None = None) -> tuple:
        if inputs is None:
            return tuple(s for s in (self.meta.input_size, self.meta.spatial_size)[: self.meta.num_inputs])
        return tuple(tuple(t.shape[-2:]) for t in inputs)

    def config(self) -> dict[str, Any]:
        """The compile_model properties."""
        return {"INFERENCE_PRECISION_HINT": self.inference_precision, "INFERENCE_NUM_THREADS": self.threads,
                "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}

    def options(self) -> dict[str, Any]:
        return {**super().options(), "threads": self.threads, "inference_precision": self.inference_precision,
                "any_size": not self.fixed_size, "openvino": _ov().get_version()}

    def _request(self, inputs: Sequence[torch.Tensor]) -> Any:
        key = tuple(tuple(t.shape) for t in inputs)
        request = self._requests.get(key)
        if request is None:
            sizes = self._sizes(inputs)
            base = self._models.get(sizes)
            if base is None:  # only runners with a rebuild function get here (fixed sizes are checked)
                assert self._rebuild is not None
                keys = ("input_size", "spatial_size")[: len(sizes)]
                base = self._models[sizes] = self._rebuild(self.meta.with_(**dict(zip(keys, sizes))))
            model = base.clone()
            model.reshape({n: list(t.shape) for n, t in zip(self.input_names, inputs)})
            request = _core().compile_model(model, "CPU", self.config()).create_infer_request()
            self._requests[key] = request
        return request

    def _run(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        feed = numpy_inputs(self.input_names, inputs)
        with self._lock:  # one infer request per shape: calls from several threads take turns
            out = self._request(inputs).infer(feed, share_inputs=True, share_outputs=False)
        return torch.from_numpy(out[0])


def openvino_runner_from_model(model: nn.Module, meta: ModelMetadata, precision: str = "auto",
                               device: str | torch.device = "cpu", fold_bn: bool = True, *,
                               threads: int | None = None,
                               calibration: Iterable[Sequence[torch.Tensor] | torch.Tensor] | None = None,
                               opset: int = 17) -> OpenVINORunner:
    """An OpenVINORunner for an in-memory float32 network, converted in memory. fp32/bf16 runners
    convert again for each new input size (so they take any size, like eager); int8 quantizes
    once with `calibration` at meta's size and is fixed to it."""
    if meta.input_size is None:
        raise ValueError("the OpenVINO backend needs an input size (the checkpoint has none: give one)")
    if precision not in ("auto", "fp32", "bf16", "int8"):
        raise ValueError(f"backend openvino runs fp32, bf16 or int8, not {precision}")
    ov_model = openvino_model(model, meta, fold_bn=fold_bn, opset=opset)
    if precision == "int8":
        if calibration is None:
            raise ValueError("int8 needs calibration inputs (e.g. ~30 training images at the input size)")
        return OpenVINORunner(quantize_openvino(ov_model, calibration), "int8", device, threads=threads)
    rebuild = functools.partial(openvino_model, model, fold_bn=fold_bn, opset=opset)
    return OpenVINORunner(ov_model, precision, device, threads=threads, rebuild=rebuild)

