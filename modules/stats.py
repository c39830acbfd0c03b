"""Statistics shared by the methods' claims: paired comparisons, one-sided bounds, bootstrap.

Thin, documented wrappers over SciPy (t and normal quantiles, Mann-Whitney U, the bootstrap), so
every claim that says "A beats B" computes its interval the same way. Inputs are 1-D samples; a
``level`` is a confidence level in (0, 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
from scipy import stats


class Interval(NamedTuple):
    mean: float  # point estimate
    half_width: float  # of the two-sided interval
    lower: float
    upper: float


def _sample(x, name: str = "x") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"{name} must be a 1-D sample of at least 2 values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has {int(np.sum(~np.isfinite(x)))} non-finite values")
    return x


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def mean_ci(x, level: float = 0.95) -> Interval:
    """Student-t interval for the mean of ``x``."""
    x = _sample(x)
    _check_level(level)
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return Interval(float(x.mean()), float(half), float(x.mean() - half), float(x.mean() + half))


def paired_ci(a, b, level: float = 0.95) -> Interval:
    """Student-t interval for ``mean(a - b)`` over paired samples (same seeds/instances)."""
    a, b = _sample(a, "a"), _sample(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {len(a)} vs {len(b)}")
    return mean_ci(a - b, level)


def one_sided_upper(x, level: float = 0.95) -> float:
    """Upper one-sided ``level`` t-bound on the mean of ``x`` ("the mean is below this")."""
    x = _sample(x)
    _check_level(level)
    return float(x.mean() + stats.t.ppf(level, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def one_sided_lower(x, level: float = 0.95) -> float:
    """Lower one-sided ``level`` t-bound on the mean of ``x`` ("the mean is above this")."""
    return -one_sided_upper(-np.asarray(x, dtype=np.float64), level)


def bootstrap_ci(
    x,
    statistic: Callable[[np.ndarray], float],
    rng: np.random.Generator,
    level: float = 0.95,
    resamples: int = 2000,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` (SciPy's ``bootstrap``, BCa where it can)."""
    x = _sample(x)
    _check_level(level)
    res = stats.bootstrap(
        (x,), statistic, n_resamples=resamples, confidence_level=level, random_state=rng, vectorized=False
    )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(float(statistic(x)), (hi - lo) / 2, lo, hi)


def mann_whitney(
    a, b, alternative: Literal["two-sided", "greater", "less"] = "greater"
) -> tuple[float, float]:
    """``(p-value, rank-biserial effect in [-1, 1])`` of Mann-Whitney U for ``a`` vs ``b``."""
    a, b = _sample(a, "a"), _sample(b, "b")
    res = stats.mannwhitneyu(a, b, alternative=alternative)
    return float(res.pvalue), float(2 * res.statistic / (len(a) * len(b)) - 1)


def mean_std(x) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) for reporting spreads."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0
