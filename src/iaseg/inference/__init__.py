"""Fast inference: BN folding, CPU fusion, reduced precision, compile, ONNX/TorchScript export,
int8, OpenVINO (fp32/bf16/int8), and one runner interface over all of them (see docs/speed.md).

    >>> from iaseg.inference import load_runner
    >>> runner = load_runner("best.pt")             # fastest checked path on this machine
    >>> logits = runner(images)                     # float32 N x C x H x W
"""
from iaseg.metadata import ModelMetadata  # the metadata every runner carries, part of this API

from .accuracy import (PLAIN_FP32, AccuracyDropError, accuracy_guard, agreement, format_guard, guarded_accuracy,
                       mean_iou, parity_check, split_accuracy)
from .cpu import cpu_name, default_precision, machine_info, native_bf16_cpu
from .files import (export_onnx, export_torchscript, int8_onnx_bytes, load_torchscript, onnx_bytes,
                    quantize_int8, read_onnx_metadata, trace_torchscript)
from .fold import count_batchnorms, fold_batchnorm, fold_conv_bn
from .fuse import fuse_conv_relu
from .graph import export_ready, specialise_pooling
from .openvino import (OpenVINORunner, export_openvino, openvino_available, openvino_model, quantize_openvino,
                       read_openvino_metadata, save_openvino)
from .runners import (BACKENDS, PRECISIONS, OnnxRunner, Runner, TorchRunner, TorchScriptRunner,
                      default_backend, load_runner, runner_from_model)

__all__ = [
    "BACKENDS", "PLAIN_FP32", "PRECISIONS", "AccuracyDropError", "ModelMetadata", "OnnxRunner", "OpenVINORunner",
    "Runner", "TorchRunner", "TorchScriptRunner", "accuracy_guard", "agreement",
    "count_batchnorms", "cpu_name", "default_backend", "default_precision", "export_onnx", "export_openvino",
    "export_ready", "export_torchscript", "fold_batchnorm", "fold_conv_bn", "format_guard", "fuse_conv_relu",
    "guarded_accuracy", "int8_onnx_bytes", "load_runner", "load_torchscript", "machine_info",
    "mean_iou", "native_bf16_cpu", "onnx_bytes", "openvino_available", "openvino_model", "parity_check", "quantize_int8",
    "quantize_openvino", "read_onnx_metadata", "read_openvino_metadata", "runner_from_model", "save_openvino",
    "specialise_pooling", "split_accuracy", "trace_torchscript",
]
