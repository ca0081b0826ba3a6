"""Losses against float64 references written here (values and gradients), the authors' K = 3
formula written out literally, degenerate batches, autocast, validation and build_loss."""
import math

import pytest
import torch

from iaseg.losses import (FocalLoss, ImportanceAwareLoss, LOSSES, PRESETS, WeightedCrossEntropy, build_loss,
                          validate_groups)


C, IGN = 11, 11
CAMVID_GROUPS = [[0, 1, 5], [2, 3, 4, 7], [6, 8, 9, 10]]          # G1, G2, G3 (SegNet ids)
K4_GROUPS = [[0, 1, 5], [2, 3], [4, 7, 8], [6, 9, 10]]


def make_batch(seed=0, n=2, h=6, w=7, void_frac=0.2, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, C, h, w, generator=g, dtype=torch.float64)
    target = torch.randint(0, C, (n, h, w), generator=g)
    target[torch.rand(n, h, w, generator=g) < void_frac] = IGN
    # one labelled pixel with p < 1e-10: its CE is clipped (zero CE gradient), as in the authors' code
    target[0, 0, 0] = 3
    logits[0, :, 0, 0] = 0.0
    logits[0, 3, 0, 0] = -30.0
    weights = (0.5 + 3 * torch.rand(C, generator=g, dtype=torch.float64))
    return logits, target, weights


# ---------------------------------------------------------------- float64 references
def ref_terms(logits, target, weights):
    """softmax, clip, -log as the authors (not log_softmax)."""
    valid = target != IGN
    onehot = torch.nn.functional.one_hot(torch.where(valid, target, 0), C).permute(0, 3, 1, 2).to(logits.dtype)
    p = (torch.softmax(logits, 1) * onehot).sum(1)
    ell = -torch.log(torch.clamp(p, 1e-10, 1.0))
    w = weights[torch.where(valid, target, 0)] if weights is not None else torch.ones_like(p)
    return p, ell, w * valid, valid


def ref_ce(logits, target, weights):
    p, ell, w, valid = ref_terms(logits, target, weights)
    return (w * ell).sum() / max(int(valid.sum()), 1)


def ref_focal(logits, target, weights, gamma):
    p, ell, w, valid = ref_terms(logits, target, weights)
    return (w * (1 - p) ** gamma * ell).sum() / max(int(valid.sum()), 1)


def ref_ial(logits, target, weights, groups, alpha, c, lam=0.5, detach=False):
    """General K, with explicit per-rank masks: g(u) in 1..K, F_s over {g >= s}, m = 1[g >= s+1]."""
    p, ell, w, valid = ref_terms(logits, target, weights)
    pf = p.detach() if detach else p
    g = torch.zeros_like(target)
    for k, members in enumerate(groups, start=1):
        for cls in members:
            g[target == cls] = k
    g[~valid] = 0
    K = len(groups)
    F = []
    for s in range(1, K):
        sel = g >= s
        m = (g >= s + 1).to(p.dtype)
        n_s = int(sel.sum())
        F.append(c * ((m + lam) * (pf - m) ** 2 * sel).sum() / n_s if n_s else torch.zeros((), dtype=p.dtype))
    total = 0
    factor = 1.0
    for k in range(1, K + 1):
        if k > 1:
            factor = factor * (F[k - 2] + alpha)
        total = total + factor * (w * ell * (g == k)).sum()
    return total / max(int(valid.sum()), 1), torch.stack([f.detach() for f in F])


def authors_literal(logits, target, weights, groups, offset, halve):
    """spec section 3.1, transcribed: label 0 = void, class = label - 1; offset 2 and /(2*MASK) is
    trainial.py; offset 1 without the 1/2 is paper eq. 4/5."""
    annotations = torch.where(target == IGN, 0, target + 1)
    ohe = torch.nn.functional.one_hot(annotations, C + 1).to(logits.dtype)          # B x H x W x (C+1)
    probabilities = torch.softmax(logits, 1).permute(0, 2, 3, 1)                     # B x H x W x C
    MASK = torch.sum(1 - ohe[..., 0])
    mask = (1 - ohe[..., 0]).unsqueeze(-1)
    m = torch.split(ohe, 1, dim=-1)
    M1 = torch.sum(torch.cat([m[k + 1] for k in groups[1] + groups[2]], -1), -1, keepdim=True)
    M2 = torch.sum(torch.cat([m[k + 1] for k in groups[2]], -1), -1, keepdim=True)
    X_ = torch.sum(probabilities * ohe[..., 1:], -1, keepdim=True)
    d = 2 if halve else 1
    f1 = torch.sum(torch.pow(torch.sqrt(M1 + 0.5) * (X_ - M1) * mask, 2)) / (d * MASK)
    f2 = torch.sum(torch.pow(torch.sqrt(M2 + 0.5) * (X_ - M2) * M1, 2)) / (d * torch.sum(M1))

    def weighted_cross_entropy(onehot, p, w):
        return torch.sum(-torch.log(torch.clamp(p, 1e-10, 1.0)) * onehot * w)

    gt_one = ohe[..., 1:]
    cw = [torch.zeros(C, dtype=logits.dtype) for _ in range(3)]
    for k in range(3):
        cw[k][groups[k]] = weights[groups[k]]
    loss1 = weighted_cross_entropy(gt_one, probabilities, cw[0])
    loss2 = weighted_cross_entropy(gt_one, probabilities, cw[1])
    loss3 = weighted_cross_entropy(gt_one, probabilities, cw[2])
    return (loss1 + loss2 * (f1 + offset) + loss3 * (f1 + offset) * (f2 + offset)) / MASK


def value_and_grad(fn, logits):
    x = logits.detach().clone().requires_grad_(True)
    v = fn(x)
    (gx,) = torch.autograd.grad(v, x)
    return v.detach(), gx


def assert_same(fn_a, fn_b, logits, rtol=1e-10, atol=1e-12):
    va, ga = value_and_grad(fn_a, logits)
    vb, gb = value_and_grad(fn_b, logits)
    torch.testing.assert_close(va, vb, rtol=rtol, atol=atol)
    torch.testing.assert_close(ga, gb, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- CE and focal
@pytest.mark.parametrize("weighted", [False, True])
def test_weighted_ce_matches_reference(weighted):
    logits, target, w = make_batch()
    w = w if weighted else None
    loss = WeightedCrossEntropy(w, ignore_index=IGN)
    assert_same(lambda x: loss(x, target), lambda x: ref_ce(x, target, w), logits)
    # float32 path against the float64 reference
    v32, g32 = value_and_grad(lambda x: loss(x, target), logits.float())
    v64, g64 = value_and_grad(lambda x: ref_ce(x, target, w), logits)
    assert v32.dtype == torch.float32
    torch.testing.assert_close(v32.double(), v64, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g32.double(), g64, rtol=1e-4, atol=1e-7)


def test_clipped_pixel_has_no_ce_gradient():
    logits, target, w = make_batch()
    _, g = value_and_grad(lambda x: WeightedCrossEntropy(w, IGN)(x, target), logits)
    assert torch.all(g[0, :, 0, 0] == 0)            # p < 1e-10: clipped like the authors' clip
    assert g[0, :, 0, 1].abs().sum() > 0


def test_ce_divides_by_labelled_pixels_not_by_weight_sum():
    logits, target, w = make_batch()
    logits[0, :, 0, 0] = 0.0                        # no clipped pixel: torch's CE is unclipped
    n = (target != IGN).sum()
    ours = WeightedCrossEntropy(w, IGN)(logits, target)
    torch_sum = torch.nn.functional.cross_entropy(logits, target, weight=w, ignore_index=IGN, reduction="sum")
    torch.testing.assert_close(ours, torch_sum / n)
    torch_mean = torch.nn.functional.cross_entropy(logits, target, weight=w, ignore_index=IGN)
    assert not torch.isclose(ours, torch_mean)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_matches_reference(gamma):
    logits, target, w = make_batch(seed=1)
    loss = FocalLoss(w, ignore_index=IGN, gamma=gamma)
    assert_same(lambda x: loss(x, target), lambda x: ref_focal(x, target, w, gamma), logits)
    if gamma == 0:
        torch.testing.assert_close(loss(logits, target), WeightedCrossEntropy(w, IGN)(logits, target))


def test_focal_gradient_finite_when_p_is_one():
    logits = torch.zeros(1, C, 1, 2)
    logits[0, 4] = 200.0                            # p rounds to exactly 1 in float32
    logits.requires_grad_(True)
    target = torch.full((1, 1, 2), 4)
    v = FocalLoss(gamma=0.5, ignore_index=IGN)(logits, target)
    v.backward()
    assert torch.isfinite(v) and torch.isfinite(logits.grad).all()


# ---------------------------------------------------------------- IAL
@pytest.mark.parametrize("preset", ["paper", "authors_code"])
@pytest.mark.parametrize("groups", [CAMVID_GROUPS, K4_GROUPS], ids=["K3", "K4"])
@pytest.mark.parametrize("detach", [False, True])
def test_ial_matches_reference(preset, groups, detach):
    logits, target, w = make_batch(seed=2)
    alpha, c = PRESETS[preset]
    loss = ImportanceAwareLoss(w, groups, ignore_index=IGN, preset=preset, detach_dynamic_weights=detach)
    assert_same(lambda x: loss(x, target), lambda x: ref_ial(x, target, w, groups, alpha, c, detach=detach)[0],
                logits)
    _, F = ref_ial(logits, target, w, groups, alpha, c)
    assert loss.last_dynamic_weights.shape == (len(groups) - 1,)
    assert not loss.last_dynamic_weights.requires_grad
    torch.testing.assert_close(loss.last_dynamic_weights, F)
    # float32 path
    v32, g32 = value_and_grad(lambda x: loss(x, target), logits.float())
    v64, g64 = value_and_grad(lambda x: ref_ial(x, target, w, groups, alpha, c, detach=detach)[0], logits)
    torch.testing.assert_close(v32.double(), v64, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g32.double(), g64, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("preset,offset,halve", [("authors_code", 2, True), ("paper", 1, False)])
def test_ial_k3_equals_authors_formula_literally(preset, offset, halve):
    logits, target, w = make_batch(seed=3, n=3, h=8, w=9)
    loss = ImportanceAwareLoss(w, CAMVID_GROUPS, ignore_index=IGN, preset=preset)
    assert_same(lambda x: loss(x, target), lambda x: authors_literal(x, target, w, CAMVID_GROUPS, offset, halve),
                logits)


def test_ial_alpha_and_lam_options():
    logits, target, w = make_batch(seed=4)
    loss = ImportanceAwareLoss(w, K4_GROUPS, ignore_index=IGN, preset="authors_code", alpha=0.3, lam=0.2)
    assert loss.alpha == 0.3 and loss.scale == 0.5
    assert_same(lambda x: loss(x, target), lambda x: ref_ial(x, target, w, K4_GROUPS, 0.3, 0.5, lam=0.2)[0], logits)


def test_ial_dynamic_weight_ranges():
    # every F_s lies in [0, c * (1 + lam)]; for the authors' K = 3 that is [0, 0.75]
    logits, target, w = make_batch(seed=5, scale=6.0)
    loss = ImportanceAwareLoss(w, CAMVID_GROUPS, ignore_index=IGN, preset="authors_code")
    loss(logits, target)
    assert ((loss.last_dynamic_weights >= 0) & (loss.last_dynamic_weights <= 0.75)).all()


def test_detach_changes_gradients_not_value():
    logits, target, w = make_batch(seed=6)
    a = ImportanceAwareLoss(w, CAMVID_GROUPS, IGN, detach_dynamic_weights=False)
    b = ImportanceAwareLoss(w, CAMVID_GROUPS, IGN, detach_dynamic_weights=True)
    va, ga = value_and_grad(lambda x: a(x, target), logits)
    vb, gb = value_and_grad(lambda x: b(x, target), logits)
    torch.testing.assert_close(va, vb, rtol=0, atol=0)
    assert (ga - gb).abs().max() > 1e-4


@pytest.mark.parametrize("preset", ["paper", "authors_code"])
@pytest.mark.parametrize("groups", [CAMVID_GROUPS, K4_GROUPS], ids=["K3", "K4"])
def test_ial_reduces_to_weighted_ce_when_every_labelled_pixel_is_in_g1(preset, groups):
    # With >= 2 groups required, the sound reduction is: no labelled pixel outside G1. Then
    # I_2 = ... = I_K = 0, the loss is I_1 / N whatever the F_s are (F_1 > 0 here, from the G1
    # pixels' lam * p^2), and dL/dF_s = 0, so value AND gradient equal weighted CE exactly.
    logits, target, w = make_batch(seed=7)
    g1 = torch.tensor(groups[0])
    target = torch.where(target == IGN, IGN, g1[target % len(g1)])
    ial = ImportanceAwareLoss(w, groups, IGN, preset=preset)
    assert_same(lambda x: ial(x, target), lambda x: WeightedCrossEntropy(w, IGN)(x, target), logits)
    assert ial.last_dynamic_weights[0] > 0
    # Same with a two-group split whose upper group is absent from the batch.
    two = ImportanceAwareLoss(w, [list(range(C - 1)), [C - 1]], IGN, preset=preset)
    t2 = torch.where(target == C - 1, IGN, target)
    assert_same(lambda x: two(x, t2), lambda x: WeightedCrossEntropy(w, IGN)(x, t2), logits)


def test_ial_rank_without_pixels_gets_zero_weight():
    logits, target, w = make_batch(seed=8)
    g3 = torch.tensor(CAMVID_GROUPS[2])
    for cls in CAMVID_GROUPS[1] + CAMVID_GROUPS[2]:   # only G1 pixels and void
        target[target == cls] = 0
    loss = ImportanceAwareLoss(w, CAMVID_GROUPS, IGN, preset="authors_code")
    v, g = value_and_grad(lambda x: loss(x, target), logits)
    assert loss.last_dynamic_weights[1] == 0 and torch.isfinite(g).all()
    # a G3 pixel but no G2 pixel: F_2 is over G3 only and finite
    target[0, 1, 1] = int(g3[0])
    assert_same(lambda x: loss(x, target), lambda x: ref_ial(x, target, w, CAMVID_GROUPS, 2, 0.5)[0], logits)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_all_void_batch_gives_zero_loss_and_zero_grads(name):
    kwargs = {"ignore_index": IGN}
    if name in ("weighted_ce", "ial"):
        kwargs["class_weights"] = [1.0] * C
    if name == "ial":
        kwargs["groups"] = CAMVID_GROUPS
    loss = build_loss(name, **kwargs)
    logits = torch.randn(2, C, 4, 5, requires_grad=True)
    target = torch.full((2, 4, 5), IGN)
    v = loss(logits, target)
    v.backward()
    assert v.item() == 0 and torch.all(logits.grad == 0)
    if name == "ial":
        assert torch.all(loss.last_dynamic_weights == 0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = logits.detach().bfloat16().requires_grad_(True)
        v = loss(x, target)
        v.backward()
    assert v.item() == 0 and torch.all(x.grad == 0)


def tiny_case(seed):
    logits, target, w = make_batch(seed=seed, n=1, h=3, w=4, scale=1.0)
    logits[0, :, 0, 0] = torch.randn(C, dtype=torch.float64)   # keep away from the clip kink
    return logits, target, w


@pytest.mark.parametrize("preset", ["paper", "authors_code"])
@pytest.mark.parametrize("groups", [CAMVID_GROUPS, K4_GROUPS], ids=["K3", "K4"])
def test_ial_gradcheck(preset, groups):
    logits, target, w = tiny_case(9)
    loss = ImportanceAwareLoss(w, groups, IGN, preset=preset)
    assert torch.autograd.gradcheck(lambda z: loss(z, target), (logits.clone().requires_grad_(True),))


@pytest.mark.parametrize("groups", [CAMVID_GROUPS, K4_GROUPS], ids=["K3", "K4"])
def test_ial_detached_gradient_is_finite_difference_with_frozen_weights(groups):
    # With detach the gradient is deliberately not that of the loss value (F_s moves with the
    # logits), so plain gradcheck does not apply: compare it to central differences of
    # h(z) = [sum_k prod_{j<k}(F_j(z0) + alpha) I_k(z)] / N, with the F_s frozen at z0.
    logits, target, w = tiny_case(9)
    loss = ImportanceAwareLoss(w, groups, IGN, preset="authors_code", detach_dynamic_weights=True)
    _, grad = value_and_grad(lambda z: loss(z, target), logits)
    frozen = loss.last_dynamic_weights.clone()
    factors = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.float64), frozen + 2.0]), 0)
    rank = torch.full_like(target, -1)
    for k, members in enumerate(groups):
        for cls in members:
            rank[target == cls] = k

    def h(z):
        p, ell, wpix, valid = ref_terms(z, target, w)
        return sum(factors[k] * (wpix * ell * (rank == k)).sum() for k in range(len(groups))) / valid.sum()

    eps, numeric = 1e-6, torch.zeros_like(logits)
    for i in range(logits.numel()):
        d = torch.zeros(logits.numel(), dtype=torch.float64)
        d[i] = eps
        d = d.view_as(logits)
        numeric.view(-1)[i] = (h(logits + d) - h(logits - d)) / (2 * eps)
    torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls", [WeightedCrossEntropy, FocalLoss])
def test_ce_focal_gradcheck(cls):
    logits, target, w = tiny_case(10)
    loss = cls(w, IGN)
    assert torch.autograd.gradcheck(lambda z: loss(z, target), (logits.clone().requires_grad_(True),))


@pytest.mark.parametrize("name", ["weighted_ce", "focal", "ial"])
def test_bf16_autocast_is_finite_and_close_to_fp32(name):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, C, 3, padding=1)
    img = torch.rand(2, 3, 12, 16)
    _, target, w = make_batch(seed=11, h=12, w=16)
    kwargs = {"ignore_index": IGN, "class_weights": w.float()}
    if name == "ial":
        kwargs["groups"] = CAMVID_GROUPS
    loss = build_loss(name, **kwargs)
    ref = loss(conv(img), target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = conv(img)
        assert logits.dtype == torch.bfloat16
        v = loss(logits, target)
    assert v.dtype == torch.float32 and torch.isfinite(v)
    torch.testing.assert_close(v, ref, rtol=2e-2, atol=1e-3)
    v.backward()
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())


def test_half_logits_with_large_values_stay_finite():
    logits = torch.zeros(1, C, 2, 2, dtype=torch.float16)
    logits[:, 0] = 60000.0                           # exp overflows in fp16; computed in fp32 instead
    target = torch.tensor([[[3, 6], [2, IGN]]])
    loss = ImportanceAwareLoss([1.0] * C, CAMVID_GROUPS, IGN)
    x = logits.requires_grad_(True)
    v = loss(x, target)
    v.backward()
    assert torch.isfinite(v) and torch.isfinite(x.grad.float()).all()
    # p = 0 at all three labelled pixels (G2, G3, G2): l = -log(1e-10), F_1 = 1.5, F_2 = 1.5 / 3
    assert v.item() == pytest.approx(-math.log(1e-10) * ((1.5 + 1) * 2 + (1.5 + 1) * (0.5 + 1)) / 3, rel=1e-5)


# ---------------------------------------------------------------- validation and build_loss
@pytest.mark.parametrize("groups,message", [
    ([[0, 1, 5], [2, 3, 4, 7], [6, 8, 9, 10, 1]], r"class 1 is in two groups \(G1 and G3\)"),
    ([[0, 1], [2, 3, 4, 7], [6, 8, 9, 10]], r"classes \[5\] are in no group"),
    ([[0, 1, 5], [2, 3, 4, 7], [6, 8, 9, 10, 11]], r"class index 11 in group G3 is out of range \[0, 11\)"),
    ([[0, 1, 5], [-1, 2, 3, 4, 7], [6, 8, 9, 10]], r"class index -1 in group G2 is out of range"),
    ([list(range(C))], r"at least two groups"),
    ([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], []], r"group G2 is empty"),
    ([[0, 0, 1, 5], [2, 3, 4, 6, 7, 8, 9, 10]], r"class 0 is listed twice in group G1"),
    ([["Sky"], [1]], r"not a class index"),
    ({"G1": [0], "G2": [1]}, r"list of lists"),
])
def test_ial_group_validation(groups, message):
    with pytest.raises(ValueError, match=message):
        ImportanceAwareLoss([1.0] * C, groups, IGN)


def test_ial_other_validation():
    with pytest.raises(ValueError, match=r"unknown preset 'eq5'.*authors_code.*paper"):
        ImportanceAwareLoss(None, CAMVID_GROUPS, IGN, preset="eq5")
    with pytest.raises(ValueError, match="lam"):
        ImportanceAwareLoss(None, CAMVID_GROUPS, IGN, lam=-1)
    with pytest.raises(ValueError, match="class_weights must be finite"):
        ImportanceAwareLoss([1.0] * (C - 1) + [float("nan")], CAMVID_GROUPS, IGN)
    # without class weights C comes from the groups
    assert validate_groups([[1], [0, 2]], None) == ([[1], [0, 2]], 3)
    loss = ImportanceAwareLoss(None, CAMVID_GROUPS, IGN)
    torch.testing.assert_close(loss.class_weights, torch.ones(C))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_input_validation(name):
    kwargs = {"ignore_index": IGN}
    if name in ("weighted_ce", "ial"):
        kwargs["class_weights"] = torch.ones(C)
    if name == "ial":
        kwargs["groups"] = CAMVID_GROUPS
    loss = build_loss(name, **kwargs)
    logits = torch.randn(2, C, 4, 5)
    with pytest.raises(ValueError, match=r"target shape \(2, 4, 4\) does not match logits shape \(2, 11, 4, 5\)"):
        loss(logits, torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class ids"):
        loss(logits, torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match=r"values \[12, 13\] outside \[0, 11\)"):
        loss(logits, torch.tensor([12, 13, 0, 1, 11]).repeat(8).reshape(2, 4, 5))
    if name != "ce" and name != "focal":
        with pytest.raises(ValueError, match="logits have 10 classes but the loss was built for 11"):
            loss(logits[:, :10], torch.zeros(2, 4, 5, dtype=torch.long))


def test_build_loss_names_and_options():
    w = [1.0 + i for i in range(C)]
    assert isinstance(build_loss("ce"), WeightedCrossEntropy) and build_loss("ce").class_weights is None
    for weights in (w, torch.tensor(w)):
        torch.testing.assert_close(build_loss("weighted_ce", class_weights=weights).class_weights, torch.tensor(w))
        ial = build_loss("ial", class_weights=weights, groups=CAMVID_GROUPS, ignore_index=IGN, preset="authors_code")
        assert isinstance(ial, ImportanceAwareLoss) and ial.alpha == 2.0
    assert build_loss("focal", gamma=1.0).gamma == 1.0
    with pytest.raises(ValueError, match=r"unknown loss 'dice'; choose one of \['ce', 'focal', 'ial', 'weighted_ce'\]"):
        build_loss("dice")
    with pytest.raises(ValueError, match="use 'weighted_ce'"):
        build_loss("ce", class_weights=w)
    with pytest.raises(ValueError, match="'weighted_ce' needs class_weights"):
        build_loss("weighted_ce")
    with pytest.raises(ValueError, match=r"'ial' needs \['groups'\]"):
        build_loss("ial", class_weights=w)
    with pytest.raises(ValueError, match=r"does not take option\(s\) \['gama'\]"):
        build_loss("focal", gama=2)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        FocalLoss(gamma=-1)


def test_losses_follow_module_device_and_dtype_moves():
    logits, target, w = make_batch(seed=12)
    loss = ImportanceAwareLoss(w, CAMVID_GROUPS, IGN).double()   # buffers move, rank table stays int
    assert loss.class_rank.dtype == torch.long
    torch.testing.assert_close(loss(logits, target), ref_ial(logits, target, w.float().double(), CAMVID_GROUPS, 1, 1)[0])
