"""Model-based optimisation: MF-GP-UCB over an AR(1) co-kriging surrogate.

IAMFM's model-based instantiation (arXiv:2604.06263) as MF-GP-UCB (Kandasamy et al., NeurIPS 2016) with
the Kennedy-O'Hagan surrogate W_hi(theta) = rho W_lo(theta) + delta(theta): one scikit-learn GP on the
cheap fidelity's welfare estimates and one on the target's residuals, each with the estimates' plug-in
variances as observation noise and fixed RBF hyperparameters (27 noisy points do not identify them).
BoTorch's multi-fidelity GP installs without changing torch, but refitting it at every acquisition over
hundreds of paired seeds costs minutes on two cores; two small sklearn GPs do the same job here.

Each step picks theta by the UCB of the target posterior, and queries the cheap fidelity there while
its own posterior standard deviation exceeds ``gamma``, the target otherwise; it stops when the next
batch would exceed the budget and recommends the argmax of the target posterior mean. The surrogate
models the scalar objective W(theta; w): the cache re-scores its data for any counterfactual w.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel

from modules.iamfm.cache import EvaluationCache


@dataclass(frozen=True)
class CoKriging:
    """Surrogate hyperparameters (in welfare units; strengths in [0, 1])."""

    length: float = 0.5  # RBF length scale over strengths
    scale: float = 0.5  # prior standard deviation of W_lo around its mean
    delta_scale: float = 0.15  # prior standard deviation of the discrepancy delta
    rho: float = 1.0  # AR(1) coefficient

    def _fit_predict(self, x: np.ndarray, y: np.ndarray, noise: np.ndarray, scale: float, grid: np.ndarray):
        kernel = ConstantKernel(scale**2, "fixed") * RBF(self.length, "fixed")
        gp = GaussianProcessRegressor(kernel, alpha=np.maximum(noise, 1e-10), optimizer=None)
        centre = y.mean()
        gp.fit(x, y - centre)
        mean, sd = gp.predict(grid, return_std=True)
        return mean + centre, sd

    def posterior(self, cache: EvaluationCache, weights: np.ndarray, configs: np.ndarray):
        """(target mean [K], target sd [K], cheap sd [K] or None) from everything in the cache."""
        target = len(cache.costs) - 1
        high = np.flatnonzero(cache.counts[target])
        if target == 0:
            mean, sd = self._fit_predict(
                configs[high],
                cache.estimate(high, 0, weights),
                cache.variance(high, 0, weights),
                self.scale,
                configs,
            )
            return mean, sd, None
        low = np.flatnonzero(cache.counts[0])
        mean_lo, sd_lo = self._fit_predict(
            configs[low],
            cache.estimate(low, 0, weights),
            cache.variance(low, 0, weights),
            self.scale,
            configs,
        )
        if len(high) == 0:
            return self.rho * mean_lo, np.hypot(self.rho * sd_lo, self.delta_scale), sd_lo
        residual = cache.estimate(high, target, weights) - self.rho * mean_lo[high]
        mean_d, sd_d = self._fit_predict(
            configs[high], residual, cache.variance(high, target, weights), self.delta_scale, configs
        )
        return self.rho * mean_lo + mean_d, np.hypot(self.rho * sd_lo, sd_d), sd_lo


def mf_gp_ucb(
    cache: EvaluationCache,
    weights: np.ndarray,
    configs: np.ndarray,
    budget: float,
    batch: int,
    beta: float,
    gamma: float,
    surrogate: CoKriging,
) -> int:
    """Spend ``budget`` in batches of ``batch`` generations; return the recommended configuration."""
    K, target = len(configs), len(cache.costs) - 1
    if K * batch * cache.costs[0] > budget:
        raise ValueError(
            f"budget={budget:g} is too small for MF-GP-UCB: the initial design costs "
            f"{K * batch * cache.costs[0]:g} ({K} configurations x {batch} generations)"
        )
    cache.ensure(np.arange(K), 0, batch)  # initial design: every configuration at the cheapest fidelity
    while True:
        mean, sd, sd_lo = surrogate.posterior(cache, weights, configs)
        k = int(np.argmax(mean + np.sqrt(beta) * sd))
        f = 0 if sd_lo is not None and sd_lo[k] > gamma else target
        if cache.cost + batch * cache.costs[f] > budget:
            return int(np.argmax(mean))
        cache.add(k, f, batch)
