"""Boundary F-score and trimap IoU against a direct numpy reference (pixel loops for the
boundaries, brute-force pairwise Euclidean distances) on small constructed masks."""
import datetime
import math

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from iaseg.metrics import BoundaryFScore, BoundaryMetrics, TrimapIoU, boundary_map, boundary_tolerance, summarize
from iaseg.metrics.boundary import _squared_distance
from tests.metrics.test_confusion_ddp import _free_port

VOID = 255


# -- numpy reference ----------------------------------------------------------------------------

def ref_boundary(labels, valid):
    """Class id where a valid pixel has a valid 4-neighbour of another class, -1 elsewhere."""
    h, w = labels.shape
    out = np.full((h, w), -1, np.int64)
    for y in range(h):
        for x in range(w):
            if not valid[y, x]:
                continue
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < h and 0 <= xx < w and valid[yy, xx] and labels[yy, xx] != labels[y, x]:
                    out[y, x] = labels[y, x]
    return out


def ref_min_d2(points, others):
    """Squared Euclidean distance from each of `points` (K x 2) to the nearest of `others`."""
    if len(others) == 0:
        return np.full(len(points), np.inf)
    return ((points[:, None, :] - others[None, :, :]) ** 2).sum(-1).min(1).astype(np.float64)


def ref_image_counts(pred, target, c, tol, ignore=VOID):
    """4 x C: predicted boundary pixels matched, predicted, GT matched, GT (one image)."""
    valid = target != ignore
    gb, pb = ref_boundary(target, valid), ref_boundary(pred, valid)
    counts = np.zeros((4, c), np.int64)
    for k in range(c):
        p, g = np.argwhere(pb == k), np.argwhere(gb == k)
        counts[:, k] = [(ref_min_d2(p, g) <= tol * tol).sum(), len(p), (ref_min_d2(g, p) <= tol * tol).sum(), len(g)]
    return counts


def ref_f(counts):
    pm, p, gm, g = counts.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision, recall = pm / p, gm / g
        p0, r0 = np.nan_to_num(precision), np.nan_to_num(recall)
        f = np.where(p0 + r0 > 0, 2 * p0 * r0 / np.where(p0 + r0 > 0, p0 + r0, 1), 0.0)
    return precision, recall, np.where(p + g == 0, np.nan, f)


def ref_trimap(pred, target, c, widths, ignore=VOID):
    """len(widths) x C x C matrices over the valid pixels within d of any GT boundary pixel."""
    valid = target != ignore
    gb = np.argwhere(ref_boundary(target, valid) >= 0)
    pixels = np.argwhere(np.ones(target.shape, bool))
    d2 = ref_min_d2(pixels, gb).reshape(target.shape)
    out = np.zeros((len(widths), c, c), np.int64)
    for i, d in enumerate(widths):
        band = valid & (d2 <= d * d)
        np.add.at(out[i], (target[band], pred[band]), 1)
    return out


def ref_iou(m):
    tp = np.diagonal(m, axis1=-2, axis2=-1).astype(np.float64)
    with np.errstate(invalid="ignore"):
        return tp / (m.sum(-1) + m.sum(-2) - tp)


def nan_close(a, b):
    return np.allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=0, atol=1e-12, equal_nan=True)


# -- constructed masks --------------------------------------------------------------------------

def square(shift=(0, 0), size=(32, 32), top_left=(10, 8), side=12):
    m = np.zeros(size, np.int64)
    y, x = top_left[0] + shift[0], top_left[1] + shift[1]
    m[y:y + side, x:x + side] = 1
    return m


def blocky(g, c, size=(24, 30), cell=(4, 5), void=0.15):
    """Random piecewise-constant labels (cells of random classes), random void cells."""
    cells = torch.randint(0, c, (size[0] // cell[0], size[1] // cell[1]), generator=g)
    labels = cells.repeat_interleave(cell[0], 0).repeat_interleave(cell[1], 1)
    if void:
        holes = torch.rand(cells.shape, generator=g) < void
        labels[holes.repeat_interleave(cell[0], 0).repeat_interleave(cell[1], 1)] = VOID
    return labels


def perturbed(g, target, c):
    """A prediction: the target with void filled, shifted by a pixel or two, some cells relabelled."""
    pred = torch.where(target == VOID, torch.randint(0, c, target.shape, generator=g), target)
    pred = torch.roll(pred, shifts=(int(torch.randint(-2, 3, (1,), generator=g)), 1), dims=(0, 1))
    flip = torch.rand(pred.shape, generator=g) < 0.03
    return torch.where(flip, torch.randint(0, c, pred.shape, generator=g), pred)


def random_batch(seed, n=2, c=4, size=(24, 30)):
    g = torch.Generator().manual_seed(seed)
    target = torch.stack([blocky(g, c, size) for _ in range(n)])
    return torch.stack([perturbed(g, t, c) for t in target]), target


# -- definitions --------------------------------------------------------------------------------

def test_tolerance_is_the_rounded_fraction_of_the_diagonal():
    assert boundary_tolerance(360, 480) == 5  # 4.5 rounds up
    assert boundary_tolerance(720, 960) == 9  # 9.0
    assert boundary_tolerance(1024, 2048) == 17  # 17.17
    assert boundary_tolerance(12, 16) == 1  # 0.15: at least 1
    assert boundary_tolerance(300, 400, 0.01) == 5
    with pytest.raises(ValueError, match="> 0"):
        boundary_tolerance(10, 10, 0)
    f = BoundaryFScore(2)
    assert f.tolerance_for(360, 480) == 5 and BoundaryFScore(2, tolerance=3).tolerance_for(360, 480) == 3


def test_boundary_map_marks_both_sides_of_an_edge_and_ignores_void_and_the_image_border():
    labels = torch.tensor([[[0, 0, 1, 1],
                            [0, 0, 1, 1],
                            [2, 2, 2, 2]]])
    valid = torch.ones_like(labels, dtype=torch.bool)
    valid[0, 0, 3] = False  # a void pixel borders class 1 only: no boundary there
    expected = torch.tensor([[[-1, 0, 1, -1],
                              [0, 0, 1, 1],
                              [2, 2, 2, 2]]])
    assert torch.equal(boundary_map(labels, valid), expected)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        t = blocky(g, 3)
        v = t != VOID
        assert torch.equal(boundary_map(t[None], v[None])[0], torch.from_numpy(ref_boundary(t.numpy(), v.numpy())))


@pytest.mark.parametrize("radius", [0, 1, 3, 7])
def test_squared_distance_is_euclidean_and_exact_up_to_the_radius(radius):
    g = torch.Generator().manual_seed(radius)
    mask = torch.rand(3, 17, 23, generator=g) < 0.02
    mask[2] = False  # an empty plane: everything is "farther"
    d2 = _squared_distance(mask, radius)
    pixels = np.argwhere(np.ones((17, 23), bool))
    for i in range(3):
        ref = ref_min_d2(pixels, np.argwhere(mask[i].numpy())).reshape(17, 23)
        got = d2[i].numpy()
        near = ref <= radius * radius
        assert np.array_equal(got[near], ref[near]) and (got[~near] > radius * radius).all()


# -- boundary F ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shift", [(0, 1), (0, 2), (2, 0), (1, 1), (0, 3), (0, 5), (2, 2), (3, -1)])
def test_shifted_square(shift):
    tol = 2
    target, pred = square(), square(shift)
    f = BoundaryFScore(2, tolerance=tol)
    f.update(torch.from_numpy(pred)[None], torch.from_numpy(target)[None])
    ref = ref_image_counts(pred, target, 2, tol)
    assert f.counts.tolist() == ref.tolist()
    # every boundary pixel of the shifted square lies within |shift| of the square's boundary
    if math.hypot(*shift) <= tol:
        assert f.metrics()["f"].tolist() == [1.0, 1.0]
    else:
        assert (f.metrics()["f"] < 1).all()
    for key, value in zip(("precision", "recall", "f"), ref_f(ref)):
        assert nan_close(f.metrics()[key], value)


def test_shift_beyond_tolerance_by_hand():
    # a 12 x 12 square moved 3 px right, tolerance 2: its ring has 44 boundary pixels
    f = BoundaryFScore(2, tolerance=2)
    f.update(torch.from_numpy(square((0, 3)))[None], torch.from_numpy(square())[None])
    pm, p, gm, g = f.counts[:, 1].tolist()
    assert (p, g) == (44, 44)
    # top and bottom rows (12 each): all within 2 of the other ring's row but the last one,
    # 3 px past its corner; left column (10 between the rows): 3 px from the other left column,
    # within 2 of the other top or bottom row only in the 2 rows next to each; right column: none
    assert pm == 2 * 11 + 4 + 0
    assert gm == pm  # the shift is symmetric


@pytest.mark.parametrize("width", [1, 2])
def test_thin_pole_one_pixel_off(width):
    h, w = 20, 24
    target = np.zeros((h, w), np.int64)
    target[:, 10:10 + width] = 1  # touches the image border: no top/bottom edges
    pred = np.roll(target, 1, axis=1)
    for tol, expected in ((0, [0.0, 0.0 if width == 1 else 0.5]), (1, [1.0, 1.0])):
        f = BoundaryFScore(2, tolerance=tol)
        f.update(torch.from_numpy(pred)[None], torch.from_numpy(target)[None])
        # pole boundary: its `width` columns (each has a background neighbour), h pixels each
        assert f.counts[:, 1].tolist()[1::2] == [width * h, width * h]
        assert f.metrics()["f"].tolist() == expected
        assert f.counts.tolist() == ref_image_counts(pred, target, 2, tol).tolist()


@pytest.mark.parametrize("tol", [0, 1, 3])
def test_random_masks_match_the_reference(tol):
    pred, target = random_batch(tol, n=3)
    f = BoundaryFScore(4, VOID, tolerance=tol)
    f.update(pred, target)
    per_image = [ref_image_counts(p.numpy(), t.numpy(), 4, tol) for p, t in zip(pred, target)]
    assert f.counts.tolist() == sum(per_image).tolist() and f.counts.dtype == torch.int64
    m = f.metrics()
    for key, value in zip(("precision", "recall", "f"), ref_f(sum(per_image))):
        assert nan_close(m[key], value) and m[key].dtype == torch.float64
    image_f = np.stack([ref_f(c)[2] for c in per_image])
    assert nan_close(m["f_image_mean"], np.nanmean(image_f, 0))  # Csurka's per-image averaging


def test_perfect_prediction():
    _, target = random_batch(5)
    pred = torch.where(target == VOID, 0, target)
    bm = BoundaryMetrics(4, VOID, tolerance=0, widths=(0, 2, 5))
    bm.update(pred, target)
    r = bm.result()
    assert all(v["f"] == 1.0 and v["precision"] == 1.0 and v["recall"] == 1.0
               for v in r["boundary_f"]["per_class"].values())
    assert all(v == [1.0, 1.0, 1.0] for v in r["trimap_iou"]["per_class"].values())


def test_void_is_excluded():
    target = torch.zeros(1, 16, 20, dtype=torch.int64)
    target[:, :, 10:] = VOID  # class 0 borders void only: no ground-truth boundary
    g = torch.Generator().manual_seed(0)
    pred = torch.where(target == VOID, torch.randint(0, 3, target.shape, generator=g), target)
    bm = BoundaryMetrics(3, VOID, tolerance=1)
    bm.update(pred, target)
    assert bm.fscore.counts.sum() == 0  # the prediction's edges in and along the void are not boundaries
    assert bm.fscore.metrics()["f"].isnan().all() and bm.trimap.matrices.sum() == 0
    # with a real edge, what is predicted on void changes nothing
    pred, target = random_batch(6)
    counts = []
    for seed in (0, 1):
        g = torch.Generator().manual_seed(seed)
        noisy = torch.where(target == VOID, torch.randint(0, 4, target.shape, generator=g), pred)
        bm = BoundaryMetrics(4, VOID, tolerance=2)
        bm.update(noisy, target)
        counts.append((bm.fscore.counts.clone(), bm.trimap.matrices.clone()))
    assert all(torch.equal(a, b) for a, b in zip(*counts))


def test_absent_class_is_nan_and_a_missed_class_is_zero():
    target = torch.from_numpy(square())[None]  # classes 0 and 1; 2 is never in the ground truth
    pred = target.clone()
    pred[0, 0:3, 0:3] = 2  # class 2 predicted where it is not: precision 0, recall undefined
    bm = BoundaryMetrics(4, tolerance=1)  # class 3: absent from both
    bm.update(pred, target)
    m = bm.fscore.metrics()
    assert m["precision"][2] == 0 and math.isnan(m["recall"][2]) and m["f"][2] == 0
    assert all(math.isnan(m[k][3]) for k in m)
    iou = bm.trimap.iou()
    assert iou[:, 3].isnan().all()
    missed = BoundaryFScore(2, tolerance=1)
    missed.update(torch.zeros_like(target), target)  # the square is never predicted
    assert missed.metrics()["recall"][1] == 0 and missed.metrics()["f"].tolist() == [0.0, 0.0]


def test_trimap_matches_the_reference():
    widths = (0, 1, 3, 6)
    pred, target = random_batch(7, n=3)
    t = TrimapIoU(4, VOID, widths=(6, 0, 3, 1))  # kept in increasing order
    assert t.widths == widths
    t.update(pred, target)
    ref = sum(ref_trimap(p.numpy(), g.numpy(), 4, widths) for p, g in zip(pred, target))
    assert t.matrices.tolist() == ref.tolist()
    assert nan_close(t.iou(), ref_iou(ref))
    r = t.result()
    assert r["widths"] == list(widths) and r["pixels"] == ref.sum((1, 2)).tolist()
    assert nan_close([r["per_class"][str(c)] for c in range(4)], ref_iou(ref).T)
    # the narrowest band is the boundary pixels themselves, the widest covers more
    assert r["pixels"][0] == int((boundary_map(target, target != VOID) >= 0).sum()) < r["pixels"][-1]


def test_two_batches_equal_one_batch_with_both_and_merge():
    (p1, t1), (p2, t2) = random_batch(8), random_batch(9)
    one, two, other = (BoundaryMetrics(4, VOID) for _ in range(3))
    one.update(torch.cat([p1, p2]), torch.cat([t1, t2]))
    two.update(p1, t1)
    two.update(p2, t2)
    other.update(p2, t2)
    merged = BoundaryMetrics(4, VOID)
    merged.update(p1, t1)
    merged.merge(other)
    for bm in (two, merged):
        assert torch.equal(bm.fscore.counts, one.fscore.counts)
        assert torch.equal(bm.trimap.matrices, one.trimap.matrices)
        assert nan_close(bm.fscore.metrics()["f_image_mean"], one.fscore.metrics()["f_image_mean"])
    two.reset()
    assert two.fscore.counts.sum() == 0 and two.trimap.matrices.sum() == 0


def test_the_separate_accumulators_agree_with_the_combined_one_and_hw_inputs():
    pred, target = random_batch(10, n=1)
    bm, f, t = BoundaryMetrics(4, VOID, tolerance=2), BoundaryFScore(4, VOID, tolerance=2), TrimapIoU(4, VOID)
    bm.update(pred, target)
    f.update(pred[0], target[0])  # H x W is one image
    t.update(pred, target)
    assert torch.equal(bm.fscore.counts, f.counts) and torch.equal(bm.trimap.matrices, t.matrices)


def test_result_group_means_are_the_reports():
    pred, target = random_batch(11, n=3)
    bm = BoundaryMetrics(4, VOID, tolerance=1, widths=(1, 3))
    bm.update(pred, target)
    names, groups = ["a", "b", "c", "d"], {"G1": ["a", "b"], "G2": ["c"], "G3": ["d"]}
    r = bm.result(names, groups)
    f = r["boundary_f"]
    assert list(f["per_class"]) == names and list(f["groups"]) == list(groups)
    for key in ("precision", "recall", "f", "f_image_mean"):
        per_class = {c: {"iou": v[key]} for c, v in f["per_class"].items()}
        s = summarize(per_class, groups, warn=False)
        assert nan_close([f["groups"][g][key] for g in groups], [s["groups"][g]["iou"] for g in groups])
        assert nan_close(f["mean"][key], s["mean"]["iou"])
        assert nan_close(f["mean"][key], np.nanmean([v[key] for v in f["per_class"].values()]))
    assert f["counts"]["a"] == dict(zip(("pred_matched", "pred", "gt_matched", "gt"), bm.fscore.counts[:, 0].tolist()))
    assert f["meta"]["tolerance_px"] == [1]
    t = r["trimap_iou"]
    assert nan_close(t["groups"]["G1"], np.nanmean([t["per_class"]["a"], t["per_class"]["b"]], 0))
    assert nan_close(t["mean"], np.nanmean(list(t["per_class"].values()), 0))
    default = BoundaryFScore(4, VOID)
    default.update(pred, target)
    assert default.result()["meta"]["tolerance_px"] == [1]  # 0.75 % of a 24 x 30 diagonal, at least 1


def test_bad_input_raises():
    with pytest.raises(ValueError, match="is a class id"):
        BoundaryFScore(3, ignore_index=1)
    with pytest.raises(ValueError, match="whole number"):
        BoundaryFScore(3, tolerance=1.5)
    with pytest.raises(ValueError, match="distinct"):
        TrimapIoU(3, widths=(2, 2))
    bm = BoundaryMetrics(3, VOID)
    with pytest.raises(TypeError, match="integer class ids"):
        bm.update(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="differs"):
        bm.update(torch.zeros(1, 4, 4, dtype=torch.int64), torch.zeros(1, 4, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="prediction value 3"):
        bm.update(torch.full((1, 4, 4), 3), torch.zeros(1, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="target value 7"):
        bm.update(torch.zeros(1, 4, 4, dtype=torch.int64), torch.full((1, 4, 4), 7))
    with pytest.raises(ValueError, match="class names"):
        bm.result(["a", "b"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    pred, target = random_batch(12, n=4, size=(48, 60))
    cpu, gpu = BoundaryMetrics(4, VOID), BoundaryMetrics(4, VOID)
    cpu.update(pred, target)
    gpu.update(pred.cuda(), target.cuda())
    assert gpu.fscore.counts.device.type == "cuda" and gpu.trimap.matrices.device.type == "cuda"
    assert torch.equal(gpu.fscore.counts.cpu(), cpu.fscore.counts)
    assert torch.equal(gpu.trimap.matrices.cpu(), cpu.trimap.matrices)
    assert nan_close(gpu.fscore.metrics()["f_image_mean"], cpu.fscore.metrics()["f_image_mean"])


# -- DDP ----------------------------------------------------------------------------------------

def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=60))
    try:
        bm = BoundaryMetrics(4, VOID, tolerance=2)
        bm.update(*random_batch(20 + rank))  # each process sees a different shard
        bm.all_reduce()
        torch.save({"counts": bm.fscore.counts, "f_image_mean": bm.fscore.metrics()["f_image_mean"],
                    "trimap": bm.trimap.matrices},
                   f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_all_reduce_sums_two_gloo_processes(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    expected = BoundaryMetrics(4, VOID, tolerance=2)
    for rank in (0, 1):
        expected.update(*random_batch(20 + rank))
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.equal(got["counts"], expected.fscore.counts)
        assert nan_close(got["f_image_mean"], expected.fscore.metrics()["f_image_mean"])
        assert torch.equal(got["trimap"], expected.trimap.matrices)
    assert BoundaryMetrics(4, VOID).all_reduce().fscore.counts.sum() == 0  # no process group: a no-op
