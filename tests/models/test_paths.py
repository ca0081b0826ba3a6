"""previous_training_path(): the bf16 training path before the CPU speed work, for benchmarks."""
import torch
import torch.nn.functional as F

from iaseg.models import build_model
from iaseg.models.blocks import Downsampler, upsample_logits
from iaseg.models.dropout import dropout
from iaseg.models.paths import previous_training_path, using_previous_path


def test_switches_masks_trunk_and_head_back_and_restores() -> None:
    x = torch.ones(1000)
    d = Downsampler(3, 16)
    img = torch.rand(2, 3, 16, 16)
    logits = torch.randn(1, 11, 4, 4).bfloat16()
    with previous_training_path():
        assert using_previous_path()
        torch.manual_seed(0)
        masked = dropout(x, 0.3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert d(img).dtype == torch.float32            # concat promoted to fp32, as before
            assert upsample_logits(logits, (8, 8)).dtype == torch.bfloat16
    assert not using_previous_path()
    torch.manual_seed(0)
    assert torch.equal(masked, F.dropout(x, 0.3, True))     # torch's bernoulli_ masks
    torch.manual_seed(0)
    assert not torch.equal(dropout(x, 0.3), masked)         # the fast generator is back
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert d(img).dtype == torch.bfloat16
        assert upsample_logits(logits, (8, 8)).dtype == torch.float32


def test_previous_path_is_the_same_model_in_eval() -> None:
    torch.manual_seed(0)
    m = build_model("erfpspnet", 11).eval()
    x = torch.rand(1, 3, 64, 64)
    with previous_training_path():
        a = m(x)
    assert torch.equal(a, m(x))   # fp32 eval: nothing differs
