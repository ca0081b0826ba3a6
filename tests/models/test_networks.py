"""ERF-PSPNet and BiERF-PSPNet: parameter counts, shapes, gradients, modes, export, init."""
import pytest
import torch
import torch.nn.functional as F

from iaseg.models import (build_model, count_parameters, default_spatial_size, describe, example_inputs, image_inputs,
                          input_names, input_sizes, takes_spatial, zero_inputs)


def _inputs(name, h, w, n=1):
    if name == "bierfpspnet":
        return torch.rand(n, 3, h, w), torch.rand(n, 3, 2 * h, 2 * w)
    return (torch.rand(n, 3, h, w),)


@pytest.mark.parametrize("name,classes,expected", [
    ("erfpspnet", 11, 2_483_836),
    ("erfpspnet", 19, 2_485_884),
    ("bierfpspnet", 19, 4_078_197),
    ("bierfpspnet", 11, 4_058_965),
])
def test_parameter_counts_match_spec(name, classes, expected):
    assert count_parameters(build_model(name, classes)) == expected


def test_bin_variant_has_same_parameter_count():
    assert count_parameters(build_model("erfpspnet", 11, bins=(1, 2, 4, 8))) == 2_483_836


@pytest.mark.parametrize("h,w", [(64, 64), (96, 128), (120, 160), (360, 480)])
def test_erfpspnet_shapes(h, w):
    model = build_model("erfpspnet", 11).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, h, w)).shape == (2, 11, h, w)


@pytest.mark.parametrize("h,w,sh,sw", [(64, 64, 128, 128), (48, 96, 128, 256), (72, 144, 64, 64)])
def test_bierfpspnet_shapes_follow_context(h, w, sh, sw):
    model = build_model("bierfpspnet", 19).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, h, w), torch.rand(2, 3, sh, sw))
    assert y.shape == (2, 19, h, w)


def test_bierf_final_relu_option():
    torch.manual_seed(0)
    x = _inputs("bierfpspnet", 64, 64)
    with_relu = build_model("bierfpspnet", 5).eval()
    without = build_model("bierfpspnet", 5, final_relu=False).eval()
    without.load_state_dict(with_relu.state_dict())
    with torch.no_grad():
        a, b = with_relu(*x), without(*x)
    assert a.min() >= 0 and b.min() < 0


@pytest.mark.parametrize("bad", [(1, 3, 60, 64), (1, 1, 64, 64), (3, 64, 64)])
def test_bad_input_shapes_raise_clear_errors(bad):
    with pytest.raises(ValueError, match="divisible by 8|N x 3 x H x W"):
        build_model("erfpspnet", 11)(torch.rand(*bad))


def test_unknown_model_and_option():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("unet", 3)
    with pytest.raises(ValueError, match="bad option"):
        build_model("erfpspnet", 3, colour=True)
    with pytest.raises(ValueError, match="unknown init"):
        build_model("erfpspnet", 3, init="xavier")


@pytest.mark.parametrize("name", ["erfpspnet", "bierfpspnet"])
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = build_model(name, 7).train()
    out = model(*_inputs(name, 64, 64, n=2))
    F.cross_entropy(out, torch.randint(0, 7, (2, 64, 64))).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"no gradient reaches {pname}"


@pytest.mark.parametrize("name", ["erfpspnet", "bierfpspnet"])
def test_batch_size_one_training_step(name):
    torch.manual_seed(0)
    model = build_model(name, 5, bins=(1, 2, 4, 8)) if name == "erfpspnet" else build_model(name, 5)
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = model(*_inputs(name, 64, 64))
    loss = F.cross_entropy(out, torch.randint(0, 5, (1, 64, 64)))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed


@pytest.mark.parametrize("name", ["erfpspnet", "bierfpspnet"])
def test_train_and_eval_modes_differ_and_eval_is_deterministic(name):
    torch.manual_seed(0)
    model = build_model(name, 4)
    x = _inputs(name, 64, 64, n=2)
    model.train()
    a, b = model(*x), model(*x)
    assert not torch.allclose(a, b)  # dropout is active in training
    model.eval()
    with torch.no_grad():
        c, d = model(*x), model(*x)
    torch.testing.assert_close(c, d, rtol=0, atol=0)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", ["erfpspnet", "bierfpspnet"])
def test_state_dict_round_trip(name, tmp_path):
    torch.manual_seed(0)
    src = build_model(name, 6)
    src.train()
    src(*_inputs(name, 64, 64, n=2))  # move running stats away from their init
    src.eval()
    path = tmp_path / "m.pt"
    torch.save(src.state_dict(), path)
    dst = build_model(name, 6).eval()
    dst.load_state_dict(torch.load(path, weights_only=True))
    x = _inputs(name, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(src(*x), dst(*x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["erfpspnet", "bierfpspnet"])
def test_jit_trace_matches_eager(name):
    model = build_model(name, 5).eval()
    x = _inputs(name, 64, 64)
    with torch.no_grad():
        traced = torch.jit.trace(model, x)
        torch.testing.assert_close(traced(*x), model(*x))


def test_torch_export_erfpspnet():
    model = build_model("erfpspnet", 5).eval()
    x = _inputs("erfpspnet", 64, 64)
    ep = torch.export.export(model, x)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(*x), model(*x))


@pytest.mark.parametrize("name", ["erfpspnet", "bierfpspnet"])
def test_same_seed_same_model_and_output(name):
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        m = build_model(name, 3)
        torch.manual_seed(7)
        outs.append(m.train()(*_inputs(name, 64, 64)))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_tf_normal_init():
    torch.manual_seed(0)
    m = build_model("erfpspnet", 11, init="tf_normal")
    w = m.encoder.layers[-1].conv3x1_1.weight
    assert abs(w.std().item() - 0.1) < 0.005
    assert torch.count_nonzero(m.encoder.layers[-1].conv3x1_1.bias) == 0


def test_describe_and_default_spatial_size():
    info = describe(build_model("erfpspnet", 11), example_inputs("erfpspnet", (360, 480)))
    assert info["params"] == 2_483_836
    assert 10 < info["gflops"] < 40
    assert default_spatial_size((360, 720)) == (1024, 2048)


def test_each_network_declares_its_inputs_and_image_inputs_builds_them():
    assert input_names("erfpspnet") == ("image",) and input_names("BiERF-PSPNet") == ("context", "spatial")
    assert not takes_spatial("erfpspnet") and takes_spatial("bierfpspnet")
    images = torch.rand(2, 3, 40, 60)
    (x,) = image_inputs("erfpspnet", images)
    assert x is images
    ctx, sp = image_inputs("bierfpspnet", images, (32, 48), (64, 96))
    torch.testing.assert_close(ctx, F.interpolate(images, size=(32, 48), mode="bilinear", align_corners=False))
    torch.testing.assert_close(sp, F.interpolate(images, size=(64, 96), mode="bilinear", align_corners=False))
    assert image_inputs("bierfpspnet", images, (360, 720))[1].shape[-2:] == (1024, 2048)  # the paper's pair
    with pytest.raises(ValueError, match="unknown model"):
        input_names("segnet")


def test_input_sizes_fill_the_spatial_size_only_for_a_two_input_network():
    assert input_sizes("erfpspnet", [360, 480], (64, 96)) == ((360, 480),)  # one input: no spatial size
    assert input_sizes("bierfpspnet", (360, 720)) == ((360, 720), (1024, 2048))
    assert input_sizes("bierfpspnet", (360, 720), [512, 1024]) == ((360, 720), (512, 1024))
    assert input_sizes("pkg.mod:factory", (32, 48)) == ((32, 48),)  # an imported network takes one image
    assert [tuple(t.shape) for t in zero_inputs([(8, 16), (16, 32)], batch=2)] == [(2, 3, 8, 16), (2, 3, 16, 32)]
