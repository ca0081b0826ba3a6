"""The fast CPU dropout: nn.Dropout's semantics (rate, scale, gradient, eval identity) with
another mask generator, reproducible from torch's seed."""
import math

import pytest
import torch
import torch.nn.functional as F

from iaseg.models import build_model
from iaseg.models.dropout import Dropout, dropout, dropout_noise


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.03, 0.3])
def test_rate_and_scale_match_inverted_dropout(dtype: torch.dtype, p: float) -> None:
    torch.manual_seed(0)
    x = torch.ones(4, 16, 50, 60, dtype=dtype)
    noise = dropout_noise(x, p)
    assert noise.dtype == dtype and noise.shape == x.shape
    values = set(noise.unique().tolist())
    # the kept value is 1 / (1 - p) rounded to the dtype, as nn.Dropout's noise tensor holds
    assert values == {0.0, torch.tensor(1 / (1 - p), dtype=dtype).item()}
    n = x.numel()
    dropped = (noise == 0).sum().item()
    sd = math.sqrt(n * p * (1 - p))
    assert abs(dropped - n * p) < 5 * sd   # binomial(n, p) within 5 SD


def test_elements_are_independent_across_channels_and_positions() -> None:
    # no structure: the drop rate of every channel and of every pixel column agrees with p
    torch.manual_seed(1)
    x = torch.ones(8, 32, 40, 40).contiguous(memory_format=torch.channels_last)
    keep = (dropout_noise(x, 0.3) != 0).double()
    per_channel = 1 - keep.mean(dim=(0, 2, 3))
    per_row = 1 - keep.mean(dim=(0, 1, 3))
    assert per_channel.sub(0.3).abs().max() < 5 * math.sqrt(0.21 / (8 * 40 * 40))
    assert per_row.sub(0.3).abs().max() < 5 * math.sqrt(0.21 / (8 * 32 * 40))
    # neighbouring elements in memory are uncorrelated
    flat = keep.permute(0, 2, 3, 1).reshape(-1)
    corr = torch.corrcoef(torch.stack([flat[:-1], flat[1:]]))[0, 1]
    assert abs(corr) < 0.02


def test_noise_follows_the_memory_format() -> None:
    x = torch.rand(2, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    noise = dropout_noise(x, 0.5)
    assert noise.stride() == x.stride()
    assert dropout_noise(torch.rand(2, 8, 5, 7), 0.5).is_contiguous()
    assert dropout_noise(torch.rand(3, 10), 0.5).shape == (3, 10)


def test_forward_and_gradient_equal_input_times_noise() -> None:
    torch.manual_seed(3)
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    state = torch.get_rng_state()
    y = dropout(x, 0.3)
    torch.set_rng_state(state)
    noise = dropout_noise(x.detach(), 0.3)
    torch.testing.assert_close(y, x.detach() * noise)
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(x.grad, g * noise)


def test_seeded_by_torch_and_different_per_call() -> None:
    x = torch.ones(1000)
    torch.manual_seed(5)
    a, b = dropout(x, 0.3), dropout(x, 0.3)
    torch.manual_seed(5)
    c = dropout(x, 0.3)
    assert torch.equal(a, c) and not torch.equal(a, b)


def test_eval_zero_and_one() -> None:
    x = torch.randn(2, 3, 4, 4)
    m = Dropout(0.3).eval()
    assert torch.equal(m(x), x)
    assert torch.equal(dropout(x, 0.0), x)
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="dropout probability"):
        dropout_noise(x, 1.5)
    with pytest.raises(TypeError, match="float"):
        dropout_noise(torch.ones(3, dtype=torch.int64), 0.3)


def test_probability_is_quantised_to_1_over_65536() -> None:
    # the mask is `16 random bits >= round(p * 65536)`: exact rate round(p * 65536) / 65536
    torch.manual_seed(0)
    x = torch.ones(2**22)
    rate = (dropout_noise(x, 0.3) == 0).double().mean().item()
    assert abs(rate - round(0.3 * 65536) / 65536) < 5 * math.sqrt(0.21 / 2**22)


def test_networks_use_it_and_keep_their_state_dict() -> None:
    model = build_model("erfpspnet", 11)
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and all(isinstance(m, Dropout) for m in drops)
    assert sorted(m.p for m in drops) == sorted([0.03] * 5 + [0.3] * 8 + [0.1])
    assert not any("dropout" in k for k in model.state_dict())


def test_cuda_and_inplace_fall_back_to_torch() -> None:
    m = Dropout(0.5, inplace=True).train()
    x = torch.ones(1000)
    torch.manual_seed(0)
    y = m(x.clone())
    torch.manual_seed(0)
    assert torch.equal(y, F.dropout(x.clone(), 0.5, True, True))
