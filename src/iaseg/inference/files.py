"""Exported files: ONNX (with iaseg metadata in `metadata_props`), TorchScript (metadata in the
archive's extra files plus a sidecar JSON) and int8 ONNX by ONNX Runtime static quantization."""
from __future__ import annotations

import contextlib
import io
import itertools
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn

from iaseg.io import atomic_write_bytes
from iaseg.metadata import DECISION_RULE_KEY, WEIGHTS_KEY, ModelMetadata

from .cpu import cpu_flags
from .graph import export_ready
from .integrity import check_output_classes, check_weights, expects_checksum, weights_digest

MIN_OPSET = 17
MAX_OPSET = 20  # the highest the TorchScript-based exporter of torch 2.13 writes
TORCHSCRIPT_EXTRA = "iaseg.json"


@contextlib.contextmanager
def quiet_jit() -> Iterator[None]:
    """TorchScript is deprecated in recent PyTorch (it still works, and iaseg offers it for C++ and
    mobile users); silence the deprecation and tracer warnings of iaseg's own jit calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def write_file(path: str | Path, data: bytes) -> Path:
    """Atomic write (with the usual 0666-minus-umask permissions: exported models are shared)."""
    return atomic_write_bytes(path, data)


def _inputs_for(meta: ModelMetadata, batch: int) -> tuple[torch.Tensor, ...]:
    if meta.input_size is None:
        raise ValueError("export needs an input size (the checkpoint has none: pass --size HxW)")
    return meta.example_inputs(batch)


def check_classes_by_running(source: str, meta: ModelMetadata, run: Any) -> None:
    """For graphs that do not state their output shape: one batch-1 call of `run` at the file's
    sizes; ValueError naming `source` when it fails or its output channels are not the
    metadata's class count."""
    try:
        out = run(*_inputs_for(meta, 1))
    except Exception as e:  # noqa: BLE001 - each runtime raises its own types
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{source}: the model does not run on the inputs its metadata describes "
                         f"({type(e).__name__}: {first})") from None
    check_output_classes(source, meta, int(out.shape[1]) if out.dim() == 4 else None)


def onnx_bytes(model: nn.Module, meta: ModelMetadata, opset: int = MIN_OPSET, batch: int = 1,
               fold_bn: bool = True) -> bytes:
    """Export `model` (float32, eval) to an ONNX model with a dynamic batch axis and the iaseg
    metadata, checked by onnx.checker. Uses the TorchScript-based exporter (dynamo=False; torch
    2.13 marks it deprecated but it is the one that works without onnxscript, which iaseg does
    not depend on)."""
    import onnx

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset {opset} is not supported: iaseg exports opset {MIN_OPSET} to {MAX_OPSET}")
    meta = meta.complete()  # exported files state every input's size
    inputs = _inputs_for(meta, batch)
    ready = export_ready(model, meta.input_size, fold_bn=fold_bn)
    names = list(meta.input_names)
    axes = {n: {0: "batch"} for n in names + ["logits"]}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(ready, inputs, buf, dynamo=False, opset_version=opset, input_names=names,
                          output_names=["logits"], dynamic_axes=axes, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    set_onnx_metadata(proto, meta)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def set_onnx_metadata(proto: Any, meta: ModelMetadata) -> None:
    """Write the iaseg metadata into an onnx.ModelProto: one 'iaseg' JSON entry (what runners
    read) plus readable copies of the main fields for other tools."""
    d = meta.to_dict()
    entries = {
        "iaseg": meta.to_json(),
        "model_name": meta.model_name,
        "classes": json.dumps(d["description"]["classes"]),
        "palette": json.dumps(d["description"]["palette"]),
        "groups": json.dumps(d["description"]["groups"]),
        "ignore_index": str(meta.description.ignore_index),
        "input_names": json.dumps(d["input_names"]),
        "input_size": json.dumps(d["input_size"]),
        "spatial_size": json.dumps(d["spatial_size"]),
        "precision": meta.precision,
    }
    if meta.decision_rule is not None:
        entries[DECISION_RULE_KEY] = json.dumps(meta.decision_rule)
    entries[WEIGHTS_KEY] = onnx_weights_digest(proto)
    del proto.metadata_props[:]
    for k, v in entries.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = "iaseg"


def onnx_weights_digest(proto: Any) -> str:
    """SHA-256 of an onnx.ModelProto's weights: its initializers and Constant nodes."""
    from onnx import numpy_helper

    arrays = [(t.name, numpy_helper.to_array(t)) for t in proto.graph.initializer]
    arrays += [(node.output[0], numpy_helper.to_array(a.t)) for node in proto.graph.node
               if node.op_type == "Constant" for a in node.attribute if a.name == "value"]
    return weights_digest(arrays)


def export_onnx(model: nn.Module, meta: ModelMetadata, path: str | Path, opset: int = MIN_OPSET,
                fold_bn: bool = True) -> Path:
    """Write an ONNX file (see onnx_bytes) atomically and return its path."""
    return write_file(path, onnx_bytes(model, meta, opset=opset, fold_bn=fold_bn))


def read_onnx_metadata(source: str | Path | bytes) -> ModelMetadata:
    """The iaseg metadata of an ONNX file (or its bytes), checked against the model: the
    weights' checksum and the class count of the output (ValueError naming the file)."""
    return load_onnx(source)[1]


def load_onnx(source: str | Path | bytes) -> tuple[bytes, ModelMetadata]:
    """(the model's bytes, its metadata) of an ONNX file written by `iaseg export`, checked
    before anything runs: readable, iaseg metadata, the weights' SHA-256 recorded at export, and
    output channels = the metadata's class count. Each failure is a ValueError naming the file."""
    import onnx

    name = "<onnx bytes>" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise FileNotFoundError(f"ONNX file {source} not found")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        proto = onnx.load_from_string(data)
    except Exception as e:  # noqa: BLE001 - onnx/protobuf raise several types for a bad file
        raise ValueError(f"{name}: cannot read ONNX model ({type(e).__name__}: {e})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if "iaseg" not in props:
        raise ValueError(f"{name}: no iaseg metadata (export the file with `iaseg export`)")
    meta = ModelMetadata.from_json(props["iaseg"], name)
    try:
        digest = onnx_weights_digest(proto)
    except Exception as e:  # noqa: BLE001 - a tensor whose bytes do not fit its shape
        raise ValueError(f"{name}: its weights cannot be read ({type(e).__name__}: {e})") from None
    check_weights(name, props.get(WEIGHTS_KEY), digest, required=expects_checksum(props["iaseg"]))
    outputs = proto.graph.output
    dims = outputs[0].type.tensor_type.shape.dim if outputs else []
    check_output_classes(name, meta, dims[1].dim_value if len(dims) > 1 and dims[1].HasField("dim_value") else None)
    return data, meta


def torchscript_sidecar(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def trace_torchscript(model: nn.Module, meta: ModelMetadata, fold_bn: bool = True) -> torch.jit.ScriptModule:
    """Trace `model` (float32, folded, pooling fixed for meta.input_size). The traced graph runs at
    any batch size; its H x W are those of meta.input_size/spatial_size."""
    meta = meta.complete()  # exported files state every input's size
    inputs = _inputs_for(meta, 1)
    ready = export_ready(model, meta.input_size, fold_bn=fold_bn)
    with quiet_jit(), torch.no_grad():
        return torch.jit.trace(ready, inputs, check_trace=False)


def export_torchscript(model: nn.Module, meta: ModelMetadata, path: str | Path,
                       fold_bn: bool = True) -> Path:
    """Save trace_torchscript(model) with the metadata inside the archive (extra file
    'iaseg.json') and beside it (PATH.json, for tools that do not read TorchScript)."""
    meta = meta.complete()  # exported files state every input's size
    traced = trace_torchscript(model, meta, fold_bn=fold_bn)
    buf = io.BytesIO()
    with quiet_jit():
        torch.jit.save(traced, buf, _extra_files={TORCHSCRIPT_EXTRA: meta.to_json(),
                                                  WEIGHTS_KEY: torchscript_weights_digest(traced)})
    write_file(path, buf.getvalue())
    write_file(torchscript_sidecar(path), (json.dumps(meta.to_dict(), indent=2) + "\n").encode())
    return Path(path)


def load_torchscript(path: str | Path, map_location: str | torch.device = "cpu"
                     ) -> tuple[torch.jit.ScriptModule, ModelMetadata]:
    """Load a TorchScript file written by export_torchscript: (module, metadata). The metadata
    comes from the archive, or from the sidecar JSON if the archive has none."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TorchScript file {path} not found")
    extra = {TORCHSCRIPT_EXTRA: "", WEIGHTS_KEY: ""}
    try:
        with quiet_jit():
            module = torch.jit.load(str(path), map_location=map_location, _extra_files=extra)
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError/ValueError for bad archives
        raise ValueError(f"{path}: cannot read TorchScript ({type(e).__name__}: {e})") from None
    text = extra[TORCHSCRIPT_EXTRA]
    if isinstance(text, bytes):
        text = text.decode()
    if not text:
        sidecar = torchscript_sidecar(path)
        if not sidecar.is_file():
            raise ValueError(f"{path}: no iaseg metadata in the archive and no {sidecar.name} beside it")
        text = sidecar.read_text()
    meta = ModelMetadata.from_json(text, str(path))
    recorded = extra[WEIGHTS_KEY]
    # the sidecar JSON travels apart from the archive: only metadata inside it can demand a checksum
    check_weights(str(path), recorded.decode() if isinstance(recorded, bytes) else recorded,
                  torchscript_weights_digest(module), required=bool(extra[TORCHSCRIPT_EXTRA]) and expects_checksum(text))
    module.eval()
    with torch.no_grad():  # the graph states no output shape
        check_classes_by_running(str(path), meta, lambda *x: module(*(t.to(map_location) for t in x)))
    return module, meta


def torchscript_weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a TorchScript module's parameters and buffers (state_dict order)."""
    return weights_digest((k, v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
                          for k, v in module.state_dict().items())


class _Reader:
    """onnxruntime CalibrationDataReader over tuples of input tensors."""

    def __init__(self, names: Sequence[str], batches: Iterable[Sequence[torch.Tensor]]) -> None:
        self.names = list(names)
        self.batches = iter(batches)
        self.count = 0

    def get_next(self) -> dict[str, Any] | None:
        batch = next(self.batches, None)
        if batch is None:
            return None
        if isinstance(batch, torch.Tensor):
            batch = (batch,)
        if len(batch) != len(self.names):
            raise ValueError(f"calibration batch has {len(batch)} inputs, the model takes {self.names}")
        self.count += 1
        return {n: t.detach().float().contiguous().cpu().numpy() for n, t in zip(self.names, batch)}


def int8_onnx_bytes(fp32_onnx: bytes | str | Path, calibration: Iterable[Sequence[torch.Tensor]],
                    method: str = "minmax", per_channel: bool = True) -> bytes:
    """Post-training static int8 quantization with ONNX Runtime (QDQ format, uint8 activations,
    int8 per-channel weights), calibrated on `calibration`: an iterable of input tuples (float32
    N x 3 x H x W in [0, 1] at the export size, e.g. training images). `method`: 'minmax' |
    'percentile' | 'entropy'. On CPUs without VNNI the weights use a reduced 7-bit range (ONNX
    Runtime's advice against saturation in its u8s8 kernels). The result keeps the iaseg
    metadata, with precision 'int8'."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ValueError(f"unknown calibration method {method!r}; choose one of {sorted(methods)}")
    data = fp32_onnx if isinstance(fp32_onnx, bytes) else Path(fp32_onnx).read_bytes()
    meta = read_onnx_metadata(data)
    if meta.precision != "fp32":
        raise ValueError(f"quantize an fp32 model, not a {meta.precision} one")
    batches = iter(calibration)
    first = next(batches, None)
    if first is None:
        raise ValueError("int8 calibration got no inputs")
    flags = cpu_flags()
    vnni = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"}) or not flags
    with tempfile.TemporaryDirectory(prefix="iaseg-int8-") as tmp:
        src, pre, dst = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
            reader = _Reader(meta.input_names, itertools.chain([first], batches))
            quantize_static(str(pre), str(dst), reader, quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, reduce_range=not vnni,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=methods[method])
        proto = onnx.load(str(dst))
    set_onnx_metadata(proto, meta.with_(precision="int8"))
    return proto.SerializeToString()


def quantize_int8(fp32_onnx: bytes | str | Path, out: str | Path,
                  calibration: Iterable[Sequence[torch.Tensor]], method: str = "minmax",
                  per_channel: bool = True) -> Path:
    """int8_onnx_bytes written atomically to `out`."""
    return write_file(out, int8_onnx_bytes(fp32_onnx, calibration, method, per_channel))
