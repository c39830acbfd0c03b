"""Mean estimators for LLM-judged data with a small human-labelled subset (NaiAD's VC-PPI family).

NaiAD (Zhang et al., "NaiAD: Initiate Data-Driven Research for LLM Advertising", arXiv 2605.09918)
calibrates LLM-judge scores against human annotations with "VC-PPI". Its equations are not available
to us; this file is our reconstruction [R] from the prediction-powered inference literature, one
class per estimator behind a common interface so the paper's definition can replace ours:

* :class:`Classical`    the human mean, Y_bar_n +- z sd(Y)/sqrt(n)                      (lambda = 0)
* :class:`NaiveJudge`   the judge mean over the unlabelled items, ignoring humans      (biased)
* :class:`PPI`          Angelopoulos et al. 2023 (arXiv 2301.09633):
                          theta = f_bar_N - (f_bar_n - Y_bar_n),
                          se^2 = Var(f)/N + Var(f - Y)/n                                 (lambda = 1)
* :class:`PPIpp`        PPI++ power tuning (Angelopoulos, Duchi, Zrnic, arXiv 2311.01453):
                          theta_lam = Y_bar_n + lam (f_bar_N - f_bar_n),
                          lam* = Cov(Y, f) / ((1 + n/N) Var(f)) clipped to [0, 1]
* :class:`CrossFitPPI`  our "VC" predictor (option A of the notes): f_d = a_d + b_d^T s(x), a linear
                        recalibration of dimension d on *all four* judge scores (which can cancel the
                        judge's shared halo), fitted with K-fold cross-fitting on the human subset
                        (cross-prediction-powered inference, Zrnic & Candes; ``ppi_py.crossppi_mean_ci``),
                        then power-tuned as in PPI++.

Every estimator maps ``(Y [n, D], S [n, D], S_unl [N, D])`` -- human labels and judge scores on the
labelled items, judge scores on the unlabelled items -- to an :class:`Estimate` of the D means.
The power-tuned mean is written by hand (vectorised over dimensions and reused by the cross-fitted
predictor); ``ppi_py.ppi_mean_ci`` is the reference it is checked against, to 1e-10, in the tests
and in every trial of ``experiment=naiad_vcppi``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, t

# Below this many human labels the normal-quantile intervals under-cover: at n = 20 PPI++ covered
# 0.835-0.857 for a nominal 0.9 on heavy-tailed, Likert and strongly biased judges (ppi_py alike).
SMALL_N = 50


@dataclass(frozen=True)
class Estimate:
    """Point estimates and standard errors of D means (arrays of shape [D]); ``df`` set = t quantiles."""

    point: np.ndarray
    se: np.ndarray
    df: int | None = None

    def interval(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """The two-sided (1 - alpha) interval ``(lo, hi)``: normal quantile, or Student t with ``df``."""
        check_alpha(alpha)
        q = norm.ppf(1 - alpha / 2) if self.df is None else t.ppf(1 - alpha / 2, self.df)
        return self.point - q * self.se, self.point + q * self.se


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def check_array(x, name: str) -> None:
    """A 2-D float/int NumPy array of finite values, or a ValueError naming the argument and row."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array of shape [items, dimensions], got {type(x).__name__}")
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name} must hold numbers, got dtype {x.dtype} (scores as strings or booleans?)")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [items, dimensions], got {x.ndim}-D shape {x.shape}")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad):
        raise ValueError(f"{name} has non-finite values (NaN/inf) in {len(bad)} rows, first row {bad[0]}")


def check_inputs(Y: np.ndarray, S: np.ndarray, S_unl: np.ndarray) -> None:
    """Types, shapes and values, and a non-empty human subset (a clear error instead of a NaN interval)."""
    for x, name in (
        (Y, "Y (human labels)"),
        (S, "S (judge scores, labelled)"),
        (S_unl, "S_unl (judge scores)"),
    ):
        check_array(x, name)
    if Y.shape[0] == 0:
        raise ValueError("empty human subset: at least 2 human-labelled items are needed, got 0")
    if Y.shape[0] < 2:
        raise ValueError(f"human subset too small: at least 2 labelled items are needed, got {Y.shape[0]}")
    if S_unl.shape[0] == 0:
        raise ValueError("no unlabelled items: the judge must score at least one item without a human label")
    if Y.shape != S.shape or S.shape[1:] != S_unl.shape[1:]:
        raise ValueError(
            f"shape mismatch: Y {Y.shape}, S {S.shape}, S_unl {S_unl.shape} (expected [n, D], [n, D], [N, D])"
        )


def power_tuned_mean(
    Y: np.ndarray, f: np.ndarray, f_unl: np.ndarray, lam: float | np.ndarray | None = None
) -> Estimate:
    """theta_lam = mean(lam f_unl) + mean(Y - lam f), per column; ``lam=None`` tunes it (PPI++).

    Y, f: [n, D] labels and predictions on the labelled items; f_unl: [N, D]. Variances use
    ddof = 0 and the pooled Var(f) uses ddof = 1, exactly as ``ppi_py`` does.
    """
    n, N = Y.shape[0], f_unl.shape[0]
    if lam is None:
        cov = ((Y - Y.mean(0)) * (f - f.mean(0))).mean(0)  # [D]
        var = np.var(np.concatenate([f, f_unl]), axis=0, ddof=1)  # [D]
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(var > 0, cov / ((1 + n / N) * var), 0.0)
        lam = np.clip(lam, 0.0, 1.0)
    imputed, rectifier = lam * f_unl, Y - lam * f
    point = imputed.mean(0) + rectifier.mean(0)
    se = np.sqrt(imputed.var(0) / N + rectifier.var(0) / n)
    return Estimate(point, se)


class MeanEstimator:
    """Common interface: ``estimate(Y, S, S_unl) -> Estimate`` of the D per-dimension means.

    ``finite_sample=True`` gives Student-t intervals with n - 1 degrees of freedom (n = human labels);
    the default normal intervals warn below ``SMALL_N`` labels."""

    name = ""

    def __init__(self, finite_sample: bool = False):
        self.finite_sample = finite_sample

    def estimate(self, Y: np.ndarray, S: np.ndarray, S_unl: np.ndarray) -> Estimate:
        check_inputs(Y, S, S_unl)
        n = Y.shape[0]
        if n < SMALL_N and not self.finite_sample:
            warnings.warn(
                f"{self.name}: {n} human labels; normal intervals under-cover below {SMALL_N} "
                "(finite_sample=true uses t quantiles)",
                stacklevel=2,
            )
        est = self._estimate(np.asarray(Y, float), np.asarray(S, float), np.asarray(S_unl, float))
        return Estimate(est.point, est.se, n - 1) if self.finite_sample else est

    def _estimate(self, Y: np.ndarray, S: np.ndarray, S_unl: np.ndarray) -> Estimate:
        raise NotImplementedError


class Classical(MeanEstimator):
    name = "classical"

    def _estimate(self, Y, S, S_unl):
        return Estimate(Y.mean(0), Y.std(0) / np.sqrt(Y.shape[0]))


class NaiveJudge(MeanEstimator):
    name = "naive"

    def _estimate(self, Y, S, S_unl):
        return Estimate(S_unl.mean(0), S_unl.std(0) / np.sqrt(S_unl.shape[0]))


class PPI(MeanEstimator):
    name = "ppi"

    def _estimate(self, Y, S, S_unl):
        return power_tuned_mean(Y, S, S_unl, lam=1.0)


class PPIpp(MeanEstimator):
    name = "ppipp"

    def _estimate(self, Y, S, S_unl):
        return power_tuned_mean(Y, S, S_unl, lam=None)


class CrossFitPPI(MeanEstimator):
    """[R] VC-PPI option A: K-fold cross-fitted (ridge-)linear recalibration on all judge scores,
    then PPI++ (``power_tuning=True``) or plain cross-PPI (``False``, equals ``ppi_py.crossppi_mean_ci``)."""

    name = "crossfit"

    def __init__(
        self, folds: int = 5, ridge: float = 0.0, power_tuning: bool = True, finite_sample: bool = False
    ):
        super().__init__(finite_sample)
        if folds < 2:
            raise ValueError(f"cross-fitting needs folds >= 2, got {folds}")
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        self.folds, self.ridge, self.power_tuning = folds, ridge, power_tuning

    def fit(self, Y: np.ndarray, S: np.ndarray) -> np.ndarray:
        """Coefficients B [1 + D_s, D] of Y ~ [1, S] by (ridge) least squares; the intercept is not
        penalised, and collinear judge scores get the minimum-norm solution."""
        X = np.hstack([np.ones((S.shape[0], 1)), S])  # [m, 1 + D_s]
        penalty = np.sqrt(self.ridge) * np.eye(X.shape[1])[1:]  # [D_s, 1 + D_s]
        X_aug, Y_aug = np.vstack([X, penalty]), np.vstack([Y, np.zeros((len(penalty), Y.shape[1]))])
        return np.linalg.lstsq(X_aug, Y_aug, rcond=None)[0]

    def cross_predict(self, Y: np.ndarray, S: np.ndarray, S_unl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold predictions on the labelled items [n, D] and the fold-averaged predictions on
        the unlabelled items [N, D] (linear models: averaging predictions = averaging coefficients)."""
        n = Y.shape[0]
        if n < 2 * self.folds:
            raise ValueError(
                f"cross-fitting with {self.folds} folds needs >= {2 * self.folds} labelled items, got {n}"
            )
        fold = np.arange(n) * self.folds // n  # contiguous folds; the labelled items are i.i.d.
        f = np.empty_like(Y)
        coefs = []
        for k in range(self.folds):
            B = self.fit(Y[fold != k], S[fold != k])
            f[fold == k] = np.hstack([np.ones(((fold == k).sum(), 1)), S[fold == k]]) @ B
            coefs.append(B)
        f_unl = np.hstack([np.ones((S_unl.shape[0], 1)), S_unl]) @ np.mean(coefs, axis=0)
        return f, f_unl

    def _estimate(self, Y, S, S_unl):
        f, f_unl = self.cross_predict(Y, S, S_unl)
        return power_tuned_mean(Y, f, f_unl, lam=None if self.power_tuning else 1.0)


ESTIMATORS = {cls.name: cls for cls in (Classical, NaiveJudge, PPI, PPIpp, CrossFitPPI)}
