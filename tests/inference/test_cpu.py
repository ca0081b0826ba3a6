"""What the machine offers."""
import torch

from iaseg.inference import machine_info


def test_machine_info_states_the_machine():
    info = machine_info("cpu")
    for key in ("cpu", "cpu_cores", "torch_threads", "torch", "gpu", "cpu_bf16", "onnxruntime", "openvino", "nncf"):
        assert key in info
    assert info["torch"] == torch.__version__ and info["gpu"] is None
