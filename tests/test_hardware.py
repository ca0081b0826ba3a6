"""iaseg.hardware: the CPU flags and the native-bf16 test the engine and the inference package share."""
import iaseg.hardware as hardware
import iaseg.inference.cpu as inference_cpu


def test_flags_come_from_proc_cpuinfo_and_decide_native_bf16(monkeypatch):
    try:
        with open("/proc/cpuinfo") as f:
            line = next((x for x in f if x.startswith("flags")), "")
    except OSError:
        line = ""
    assert hardware.cpu_flags() == frozenset(line.split(":", 1)[1].split() if line else ())
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    monkeypatch.setattr(hardware.torch.backends.mkldnn, "is_available", lambda: True)
    assert hardware.native_bf16_cpu()
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert hardware.native_bf16_cpu()
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not hardware.native_bf16_cpu()


def test_inference_cpu_re_exports_the_same_functions():
    assert inference_cpu.cpu_flags is hardware.cpu_flags and inference_cpu.native_bf16_cpu is hardware.native_bf16_cpu
    assert inference_cpu.cpu_name is hardware.cpu_name and hardware.cpu_name()
