"""Statistics for comparing methods over seeds (numpy; no scipy), following the evidence protocol
(paired seeds, CIs, sign-flip tests, a seed-then-block hierarchical bootstrap).

- `seed_summary`: mean, SD and Student-t CI of one metric over seeds.
- `paired_differences`: per-seed differences of two methods with a t CI, a percentile bootstrap
  CI of the mean difference and a two-sided sign-flip permutation p-value.
- `hierarchical_bootstrap`: CIs of every report metric (per class, group means, mean) of one
  method or of a paired difference, resampling seeds and then blocks of consecutive frames
  from per-image confusion counts (`iaseg.metrics.per_image`).
- `detectable_difference`: the smallest true mean difference a paired comparison of n seeds
  with the observed SD finds with 80 % power (two-sided t test, alpha 0.05): what "not
  significant" can and cannot rule out.
- `verdict`, `summary_sentence`: each effect with its CI, saying plainly when the CI includes 0.

Metric values are fractions, as in report.json; differences are `a - b`.
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from iaseg.metrics.per_image import PerImageCounts, sequence_blocks
from iaseg.metrics.report import confusion_metrics, nan_mean

_CHUNK = 1000  # bootstrap resamples scored at once (bounds memory; fixed, so results are reproducible)


# -- Student t ----------------------------------------------------------------------------------

def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b), by its continued fraction (modified Lentz),
    evaluated where it converges fast and mirrored with I_x(a, b) = 1 - I_(1-x)(b, a) elsewhere."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = a * math.log(x) + b * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 1000):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),          # even term d_2m
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # odd term d_2m+1
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-16:
            break
    return math.exp(log_front) * f / a


def t_tail(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom (t >= 0)."""
    return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` > 0 degrees of freedom (bisection on the exact
    CDF; about 1e-12 relative accuracy)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    tail = 1.0 - p
    lo, hi = 0.0, 1.0
    while t_tail(hi, df) > tail:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if t_tail(mid, df) > tail else (lo, mid)
    return 0.5 * (lo + hi)


# -- power -------------------------------------------------------------------------------------

def _chi_scale_grid(df: int, points: int = 4001) -> tuple[np.ndarray, np.ndarray]:
    """Nodes u and Simpson weights w (density included) for integrals over u = sqrt(V / df),
    V ~ chi-square(df): sum(w * h(u)) ~ E[h(u)]. The grid ends where the density is below 1e-30."""
    hi = 1.0 + 15.0 / math.sqrt(df)
    u = np.linspace(0.0, hi, points)
    with np.errstate(divide="ignore"):
        log_u = np.where(u > 0, np.log(np.where(u > 0, u, 1.0)), -np.inf)
    power_term = (df - 1) * log_u if df > 1 else np.zeros_like(u)  # u^0 = 1 at u = 0 too
    density = np.exp(math.log(2.0) + (df / 2.0) * math.log(df / 2.0) - math.lgamma(df / 2.0)
                     + power_term - df * u * u / 2.0)
    simpson = np.ones(points)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    return u, density * simpson * (hi / (points - 1) / 3.0)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    # math.erfc per element: numpy has no erf, and torch's threaded ndtr is slower on a few
    # thousand values (thread start-up) than this loop
    return np.fromiter((0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x.tolist()), np.float64, x.size)


def _power_function(df: int, alpha: float) -> Any:
    """lambda -> power of the two-sided t test (see `t_test_power`), with the critical value and
    the quadrature grid computed once."""
    if int(df) < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    c = t_quantile(1.0 - alpha / 2.0, df)
    u, w = _chi_scale_grid(int(df))
    return lambda lam: float(w @ (_normal_cdf(float(lam) - c * u) + _normal_cdf(-float(lam) - c * u)))


def t_test_power(noncentrality: float, df: int, alpha: float = 0.05) -> float:
    """Power of the two-sided one-sample (paired) t test at level `alpha` when the true mean is
    `noncentrality` standard errors away from 0: P(|T'| > t_(1-alpha/2, df)) for T' noncentral t,
    integrated over the chi-square denominator (P(T' > c) = E[Phi(lambda - c u)])."""
    return _power_function(df, alpha)(noncentrality)


@functools.lru_cache(maxsize=256)
def _detectable_noncentrality(df: int, alpha: float, power: float) -> float:
    """The noncentrality at which the two-sided t test reaches `power` (bisection; the power
    grows with it)."""
    at = _power_function(df, alpha)
    if at(0.0) >= power:
        return 0.0
    lo, hi = 0.0, 1.0
    while at(hi) < power:
        lo, hi = hi, 2.0 * hi
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if hi - lo < 1e-12 * hi:
            break
        lo, hi = (mid, hi) if at(mid) < power else (lo, mid)
    return 0.5 * (lo + hi)


def detectable_difference(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference that a paired comparison of `n` seeds with per-seed
    differences of standard deviation `sd` detects with probability `power` (two-sided t test
    at level `alpha`, the test behind the study's t CI): the minimal detectable difference at
    the observed spread. NaN for n < 2 or an undefined SD; 0 for SD 0."""
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")
    if int(n) < 2 or math.isnan(sd):
        return math.nan
    if sd < 0:
        raise ValueError(f"sd must be >= 0, got {sd}")
    return _detectable_noncentrality(int(n) - 1, float(alpha), float(power)) * float(sd) / math.sqrt(n)


# -- one metric over seeds ----------------------------------------------------------------------

@dataclass(frozen=True)
class SeedSummary:
    """Mean ± SD (ddof=1) of n values and the Student-t CI of the mean (NaN when n < 2)."""
    mean: float
    sd: float
    n: int
    low: float
    high: float
    confidence: float = 0.95

    @property
    def estimate(self) -> float:
        return self.mean


def _values(values: Any) -> np.ndarray:
    v = np.asarray(list(values.values()) if isinstance(values, Mapping) else values, dtype=np.float64).ravel()
    return v[~np.isnan(v)]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def seed_summary(values: Sequence[float] | Mapping[Any, float] | np.ndarray,
                 confidence: float = 0.95) -> SeedSummary:
    """Mean, SD (ddof=1), n and the Student-t CI of the mean of one metric's values over seeds
    (a sequence or a {seed: value} dict). Undefined (NaN) values are left out and n counts the
    rest; with n = 1 the SD and the CI are NaN."""
    _check_confidence(confidence)
    v = _values(values)
    if v.size == 0:
        raise ValueError("seed_summary needs at least one defined value")
    mean = float(v.mean())
    if v.size < 2:
        return SeedSummary(mean, math.nan, 1, math.nan, math.nan, confidence)
    sd = float(v.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2.0, v.size - 1) * sd / math.sqrt(v.size)
    return SeedSummary(mean, sd, int(v.size), mean - half, mean + half, confidence)


# -- paired differences -------------------------------------------------------------------------

def aligned_seeds(a: Mapping[Any, Any] | Sequence[Any], b: Mapping[Any, Any] | Sequence[Any]) -> list[Any]:
    """The seeds two methods share: dict keys (which must be the same, or ValueError naming the
    missing seeds) in `a`'s order, or positions 0..n-1 of two sequences of equal length."""
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise ValueError("pair seeds either as two {seed: value} dicts or as two aligned sequences, not a mix")
    if isinstance(a, Mapping):
        only_a = [s for s in a if s not in b]
        only_b = [s for s in b if s not in a]
        if only_a or only_b:
            raise ValueError(f"the methods' seeds differ: missing from b: {only_a}, missing from a: {only_b}")
        return list(a)
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return list(range(len(a)))


def bootstrap_mean_ci(values: Sequence[float] | np.ndarray, n_boot: int = 10_000, confidence: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean: resample the values with replacement `n_boot`
    times (numpy Generator seeded with `seed`) and take the central `confidence` quantiles."""
    _check_confidence(confidence)
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or np.isnan(v).any():
        raise ValueError("bootstrap_mean_ci needs at least one value and no NaN")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(int(n_boot), v.size))].mean(1)
    low, high = np.quantile(means, [0.5 - confidence / 2.0, 0.5 + confidence / 2.0])
    return float(low), float(high)


def sign_flip_p_value(diffs: Sequence[float] | np.ndarray, exact_max_n: int = 16, n_perm: int = 100_000,
                      seed: int = 0) -> tuple[float, bool]:
    """Two-sided sign-flip permutation p-value of the mean of paired differences: the fraction
    of sign patterns whose |mean| is >= the observed |mean|, the observed pattern included.
    All 2^n patterns for n <= `exact_max_n`; above, `n_perm` random patterns (seeded) plus the
    observed one. Returns (p, exact)."""
    d = np.asarray(diffs, dtype=np.float64).ravel()
    if d.size == 0 or np.isnan(d).any():
        raise ValueError("sign_flip_p_value needs at least one difference and no NaN")
    n = d.size
    observed = abs(d.sum())
    # sums of the same terms in another order may differ by rounding; ties must count
    tol = 4 * n * np.finfo(np.float64).eps * np.abs(d).sum()
    if n <= exact_max_n:
        bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
        sums = (1 - 2 * bits) @ d
        return float(np.count_nonzero(np.abs(sums) >= observed - tol) / 2 ** n), True
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < n_perm:
        m = min(_CHUNK * 100, n_perm - done)
        signs = 1 - 2 * rng.integers(0, 2, size=(m, n))
        hits += int(np.count_nonzero(np.abs(signs @ d) >= observed - tol))
        done += m
    return (hits + 1) / (n_perm + 1), False


@dataclass(frozen=True)
class PairedDifference:
    """Per-seed differences a - b and their statistics. `low`/`high` are the Student-t CI: with
    the handful of seeds a study affords, the percentile bootstrap CI (also kept, as
    `bootstrap_ci`) is too narrow (about 1.75 standard errors wide on each side at n = 5 against
    t's 2.78), so verdicts use the t CI. `detectable`: the smallest true difference these seeds
    would detect with 80 % power at the observed SD (`detectable_difference`)."""
    seeds: tuple[Any, ...]
    diffs: tuple[float, ...]
    mean: float
    sd: float
    n: int
    t_ci: tuple[float, float]
    bootstrap_ci: tuple[float, float]
    p_value: float
    exact_p: bool
    undefined_seeds: tuple[Any, ...] = ()
    confidence: float = 0.95
    detectable: float = math.nan  # detectable_difference at 80 % power, level 1 - confidence

    @property
    def estimate(self) -> float:
        return self.mean

    @property
    def low(self) -> float:
        return self.t_ci[0]

    @property
    def high(self) -> float:
        return self.t_ci[1]


def paired_differences(a: Mapping[Any, float] | Sequence[float], b: Mapping[Any, float] | Sequence[float],
                       n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0,
                       exact_max_n: int = 16, n_perm: int = 100_000) -> PairedDifference:
    """Differences a - b per seed ({seed: value} dicts with the same seeds, or aligned
    sequences) with mean, SD, Student-t CI, a percentile bootstrap CI of the mean difference
    (`bootstrap_mean_ci`) and a two-sided sign-flip permutation p-value (`sign_flip_p_value`).
    Seeds where either value is undefined (NaN) are left out and listed in `undefined_seeds`."""
    seeds = aligned_seeds(a, b)
    pairs = [(s, float(a[s]), float(b[s])) for s in seeds]
    undefined = tuple(s for s, x, y in pairs if math.isnan(x) or math.isnan(y))
    kept = [(s, x - y) for s, x, y in pairs if s not in undefined]
    if not kept:
        raise ValueError("no seed with both values defined")
    d = np.array([v for _, v in kept])
    summary = seed_summary(d, confidence)
    p, exact = sign_flip_p_value(d, exact_max_n, n_perm, seed)
    return PairedDifference(tuple(s for s, _ in kept), tuple(float(v) for v in d), summary.mean, summary.sd,
                            summary.n, (summary.low, summary.high), bootstrap_mean_ci(d, n_boot, confidence, seed),
                            p, exact, undefined, confidence,
                            detectable_difference(summary.sd, summary.n, alpha=1.0 - confidence))


# -- hierarchical bootstrap from per-image counts -----------------------------------------------

@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap CI."""
    estimate: float
    low: float
    high: float
    confidence: float = 0.95


def _seed_mean(values: dict[str, Any], axis: int) -> dict[str, Any]:
    """NaN-aware mean over the seed axis of every array in a confusion_metrics() result."""
    def mean(x: np.ndarray) -> np.ndarray:
        return nan_mean(np.moveaxis(x, axis, -1))
    return {"per_class": {k: mean(v) for k, v in values["per_class"].items()},
            "groups": {g: {k: mean(v) for k, v in m.items()} for g, m in values["groups"].items()},
            "mean": {k: mean(v) for k, v in values["mean"].items()}}


def _runs(runs: Mapping[Any, PerImageCounts] | Sequence[PerImageCounts]) -> dict[Any, PerImageCounts]:
    runs = dict(runs) if isinstance(runs, Mapping) else dict(enumerate(runs))
    if not runs:
        raise ValueError("no runs given")
    for key, run in runs.items():
        if not isinstance(run, PerImageCounts):
            raise TypeError(f"run {key!r}: expected PerImageCounts (load_per_image), got {type(run).__name__}")
    return runs


def _block_counts(runs: list[PerImageCounts], names: tuple[str, ...], blocks: list[np.ndarray]) -> np.ndarray:
    """(S, K, C, C) float64: each run's counts summed over each block of images (in `names` order)."""
    out = []
    for run in runs:
        if run.names != names:
            missing = sorted(set(names) - set(run.names))[:5]
            extra = sorted(set(run.names) - set(names))[:5]
            if missing or extra:
                raise ValueError(f"runs were evaluated on different images: missing {missing}, extra {extra}")
            position = {n: i for i, n in enumerate(run.names)}
            counts = run.counts[[position[n] for n in names]]
        else:
            counts = run.counts
        out.append(np.stack([counts[idx].sum(0) for idx in blocks]))
    return np.stack(out).astype(np.float64)


def _resample(block_counts: np.ndarray, drawn: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pooled (m, S, C, C) matrices: for each resample and drawn seed, the block counts of that
    seed weighted by how often each block was drawn."""
    pooled = np.empty(drawn.shape + block_counts.shape[2:])
    for u in range(block_counts.shape[0]):
        chosen = drawn == u
        pooled[chosen] = np.tensordot(weights[chosen], block_counts[u], axes=1)
    return pooled


def _flatten(values: dict[str, Any], classes: Sequence[str]) -> dict[tuple[str, str, str], Any]:
    """{(section, name, metric): array} of a confusion_metrics()-shaped result."""
    flat = {("per_class", c, k): v[..., i] for k, v in values["per_class"].items() for i, c in enumerate(classes)}
    flat.update({("groups", g, k): v for g, m in values["groups"].items() for k, v in m.items()})
    flat.update({("mean", "mean", k): v for k, v in values["mean"].items()})
    return flat


def hierarchical_bootstrap(a: Mapping[Any, PerImageCounts] | Sequence[PerImageCounts],
                           b: Mapping[Any, PerImageCounts] | Sequence[PerImageCounts] | None = None,
                           groups: Mapping[str, Sequence[str]] | None = None, block_len: int = 10,
                           n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Bootstrap CIs of every report metric of method `a`, or of the paired difference a - b.

    `a` (and `b`) hold one run per seed: {seed: PerImageCounts} (or a list), all evaluated on
    the same images with the same classes; a pair needs the same seeds. Each resample draws
    seeds with replacement, then, for each drawn seed, the blocks of `sequence_blocks(names,
    block_len)` with replacement (as many as there are); the drawn images' counts are pooled
    and scored like a report (`confusion_metrics`), and the scores averaged over the drawn
    seeds (NaN-aware). A pair uses the same seed and block draws for both methods. The
    estimate is the average over seeds of each run's full-split value (for a pair, of a minus
    that of b); the CI the central `confidence` quantiles of the resamples (numpy Generator
    seeded with `seed`).

    Returns {"per_class": {class: {metric: Interval}}, "groups": {group: {metric: Interval}},
    "mean": {metric: Interval}, "meta": {...}}.
    """
    _check_confidence(confidence)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    runs_a = _runs(a)
    runs_b = _runs(b) if b is not None else None
    seeds = aligned_seeds(runs_a, runs_b) if runs_b is not None else list(runs_a)
    first = runs_a[seeds[0]]
    classes, names = first.classes, first.names
    every = list(runs_a.values()) + (list(runs_b.values()) if runs_b is not None else [])
    for run in every:
        if run.classes != classes:
            raise ValueError(f"runs have different classes: {list(classes)} vs {list(run.classes)}")
    blocks = sequence_blocks(names, block_len)
    methods = [_block_counts([runs_a[s] for s in seeds], names, blocks)]
    if runs_b is not None:
        methods.append(_block_counts([runs_b[s] for s in seeds], names, blocks))
    n_seeds, n_blocks = len(seeds), len(blocks)

    def score(pooled: list[np.ndarray], axis: int) -> dict[tuple[str, str, str], Any]:
        flat = [_flatten(_seed_mean(confusion_metrics(p, classes, groups), axis), classes) for p in pooled]
        return {key: flat[0][key] - flat[1][key] if len(flat) > 1 else flat[0][key] for key in flat[0]}

    estimate = score([m.sum(1) for m in methods], axis=0)
    rng = np.random.default_rng(seed)
    samples: dict[tuple[str, str, str], list[np.ndarray]] = {key: [] for key in estimate}
    for start in range(0, int(n_boot), _CHUNK):
        m = min(_CHUNK, int(n_boot) - start)
        drawn = rng.integers(0, n_seeds, size=(m, n_seeds))
        picks = rng.integers(0, n_blocks, size=(m, n_seeds, n_blocks))
        offsets = n_blocks * np.arange(m * n_seeds).reshape(m, n_seeds, 1)
        weights = np.bincount((picks + offsets).ravel(), minlength=m * n_seeds * n_blocks)
        weights = weights.reshape(m, n_seeds, n_blocks).astype(np.float64)
        for key, v in score([_resample(bc, drawn, weights) for bc in methods], axis=1).items():
            samples[key].append(v)
    q = [0.5 - confidence / 2.0, 0.5 + confidence / 2.0]
    out: dict[str, Any] = {"per_class": {}, "groups": {}, "mean": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: a class absent everywhere
        for (section, name, metric), v in samples.items():
            low, high = np.nanquantile(np.concatenate(v), q)
            interval = Interval(float(estimate[(section, name, metric)]), float(low), float(high), confidence)
            if section == "mean":
                out["mean"][metric] = interval
            else:
                out[section].setdefault(name, {})[metric] = interval
    out["meta"] = {"seeds": seeds, "images": len(names), "blocks": n_blocks, "block_len": int(block_len),
                   "n_boot": int(n_boot), "seed": seed, "difference": runs_b is not None}
    return out


# -- words ----------------------------------------------------------------------------------------

def verdict(low: float, high: float, p_value: float | None = None) -> str:
    """The plain verdict on an effect from its CI and, when given, its sign-flip p-value: an
    effect counts only when the CI excludes 0; with few seeds the t CI rests on normal seed noise,
    which the sign-flip test does not assume, so a p >= 0.05 is said too. A CI that includes 0
    leaves the effect unresolved, which is not evidence of no effect: `detectable_phrase` says
    how large an effect the comparison could have found."""
    if math.isnan(low) or math.isnan(high):
        return "no conclusion possible (CI undefined)"
    if low <= 0.0 <= high:
        return "not resolved at this precision (CI includes 0)"
    if p_value is not None and p_value >= 0.05:
        return "CI excludes 0, not confirmed by the sign-flip test (p >= 0.05)"
    return "CI excludes 0"


def detectable_phrase(detectable: float | None, scale: float = 100.0, unit: str = " points",
                      digits: int = 1) -> str:
    """'; 80 % power only for effects of at least 5.1 points' (the detectable difference times
    `scale`), '' when undefined: appended to an unresolved verdict."""
    if detectable is None or math.isnan(detectable):
        return ""
    return f"; 80 % power only for effects of at least {scale * detectable:.{digits}f}{unit}"


def summary_sentence(effects: Mapping[str, Any], scale: float = 100.0, unit: str = " points",
                     digits: int = 1) -> str:
    """One sentence per effect: '{label}: +1.2 points (95 % CI -0.5 to +2.9, p = 0.31, n = 5):
    not resolved at this precision (CI includes 0).' Effects are anything with estimate/low/high
    (PairedDifference: its t CI; Interval; SeedSummary) and, optionally, p_value, n and detectable;
    the verdict is `verdict`'s, with `detectable_phrase` when the CI includes 0. Values are
    multiplied by `scale` (fractions -> percentage points)."""
    def num(x: float) -> str:
        return f"{scale * x:+.{digits}f}"

    sentences = []
    for label, e in effects.items():
        level = f"{100 * getattr(e, 'confidence', 0.95):g} %"
        p_value = getattr(e, "p_value", None)
        parts = [f"{level} CI undefined" if math.isnan(e.low) or math.isnan(e.high)
                 else f"{level} CI {num(e.low)} to {num(e.high)}"]
        if p_value is not None:
            parts.append(f"p = {p_value:.3g}")
        if getattr(e, "n", None) is not None:
            parts.append(f"n = {e.n}")
        word = verdict(e.low, e.high, p_value)
        if e.low <= 0.0 <= e.high:
            word += detectable_phrase(getattr(e, "detectable", None), scale, unit, digits)
        sentences.append(f"{label}: {num(e.estimate)}{unit} ({', '.join(parts)}): {word}.")
    return "\n".join(sentences)
