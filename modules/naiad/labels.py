"""Variance-calibrated per-sample labels: NaiAD's ``ppied_scores`` (our reconstruction [R], option B).

NaiAD (arXiv 2605.09918) publishes per-sample scores q1..q4 "calibrated ... aligning automated
scoring with human annotations" by VC-PPI. We reconstruct the per-sample map as the affine map of
the judge score f that carries the judge's mean and spread onto PPI++ estimates of the human ones:

    y~_i = mu_PPI + (sigma_PPI / sd(f)) (f(x_i) - f_bar)

    mu_PPI       PPI++ mean of Y
    sigma_PPI^2  ``marginal``:  PPI++ mean of Y^2 (predictor f^2) minus mu_PPI^2   = Var(Y)
                 ``explained``: Cov(Y, f)^2 / Var(f)                               = Var(E[Y | f]) (linear)

The map is increasing, so the calibrated labels keep the judge's ranking exactly; their mean is the
PPI++ mean (valid interval) and their spread the human spread, where raw judge scores are biased and
compressed. Swap the class (or ``target_variance``) to plug in the paper's definition.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from modules.naiad.estimators import check_inputs, power_tuned_mean


class VarianceCalibratedLabels:
    """Fit on (Y [n, D], f [n, D], f_unl [N, D]); ``transform`` maps judge scores [m, D] to labels."""

    def __init__(self, target_variance: Literal["marginal", "explained"] = "marginal"):
        if target_variance not in ("marginal", "explained"):
            raise ValueError(f"target_variance must be 'marginal' or 'explained', got {target_variance!r}")
        self.target_variance = target_variance

    def fit(self, Y: np.ndarray, f: np.ndarray, f_unl: np.ndarray) -> VarianceCalibratedLabels:
        check_inputs(Y, f, f_unl)
        Y, f, f_unl = (np.asarray(a, float) for a in (Y, f, f_unl))
        self.mu = power_tuned_mean(Y, f, f_unl).point  # [D]
        if self.target_variance == "marginal":
            second_moment = power_tuned_mean(Y**2, f**2, f_unl**2).point
            variance = second_moment - self.mu**2
        else:
            cov = ((Y - Y.mean(0)) * (f - f.mean(0))).mean(0)
            variance = cov**2 / np.var(np.concatenate([f, f_unl]), axis=0, ddof=1)
        self.sigma = np.sqrt(np.maximum(variance, 0.0))
        self.f_all = np.concatenate([f, f_unl])  # the items the labels are made for
        return self

    def transform(self, f: np.ndarray) -> np.ndarray:
        """Labels for judge scores ``f`` [m, D], standardised with the fitted items' f mean and sd."""
        centre, spread = self.f_all.mean(0), self.f_all.std(0, ddof=1)
        if np.any(spread == 0):
            raise ValueError(
                "the judge gives every item the same score on some dimension; "
                "its scores carry no ranking to calibrate"
            )
        return self.mu + self.sigma / spread * (np.asarray(f, float) - centre)
