"""The evaluation cache: sufficient statistics of every generation drawn, per (fidelity, configuration).

IAMFM (arXiv:2604.06263) reuses optimisation data to compute VCG payments. Welfare is linear in the
bids, so per (f, theta) the cache keeps only the count of generations and the outcome sums [n + 1];
any objective W(theta; w) = w . mean outcome is re-scored from them for free. New generations are
drawn only to top a configuration up to a requested count, from one stream per (f, theta), so the
k-th generation of (f, theta) is the same in every run that shares the streams (common random numbers).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from experiments.iamfm.simulator import draw
from experiments.iamfm.task import AdInstance

Sampler = Callable[[int, int, int], np.ndarray]  # (fidelity, configuration, m) -> outcome sums [n + 1]


def simulator_sampler(instance: AdInstance, stream: Callable[[str], np.random.Generator]) -> Sampler:
    """Generations from the simulator; ``stream(name)`` gives the named RNG of one (f, theta)."""
    rngs: dict[tuple[int, int], np.random.Generator] = {}

    def sample(f: int, k: int, m: int) -> np.ndarray:
        if (f, k) not in rngs:
            rngs[f, k] = stream(f"f{f}/theta{k}")
        return draw(instance.means[f, k], m, rngs[f, k])

    return sample


class EvaluationCache:
    """Counts [F, K] and outcome sums [F, K, n + 1] of the generations drawn through ``sampler``."""

    def __init__(self, costs: np.ndarray, n_configs: int, n_outcomes: int, sampler: Sampler):
        self.costs, self.sampler = np.asarray(costs, dtype=np.float64), sampler
        self.counts = np.zeros((len(costs), n_configs), dtype=np.int64)  # [F, K]
        self.sums = np.zeros((len(costs), n_configs, n_outcomes))  # [F, K, n + 1]
        self.cost = 0.0  # total cost of the generations drawn into this cache

    def ensure(self, arms: np.ndarray, f: int, m: int) -> None:
        """Top every configuration in ``arms`` up to m generations at fidelity f."""
        for k in np.atleast_1d(arms):
            deficit = m - self.counts[f, k]
            if deficit > 0:
                self.sums[f, k] += self.sampler(f, int(k), int(deficit))
                self.counts[f, k] = m
                self.cost += deficit * self.costs[f]

    def add(self, arm: int, f: int, m: int) -> None:
        """Draw m more generations of one configuration at fidelity f."""
        self.ensure(np.array([arm]), f, self.counts[f, arm] + m)

    def estimate(self, arms: np.ndarray, f: int, weights: np.ndarray) -> np.ndarray:
        """Estimated W(theta; w) [len(arms)] from the cached generations (each arm needs one)."""
        arms = np.atleast_1d(arms)
        return self.sums[f, arms] @ weights / self.counts[f, arms]

    def variance(self, arms: np.ndarray, f: int, weights: np.ndarray) -> np.ndarray:
        """Plug-in variance of :meth:`estimate` (independent Bernoulli outcomes) [len(arms)]."""
        arms = np.atleast_1d(arms)
        p = self.sums[f, arms] / self.counts[f, arms, None]  # [A, n + 1]
        return (p * (1 - p)) @ weights**2 / self.counts[f, arms]


def simulator_caches(instance: AdInstance, stream: Callable[[str], np.random.Generator]):
    """``caches(prefix)``: a fresh simulator-backed cache drawing from the streams ``<prefix>/...``."""

    def caches(prefix: str) -> EvaluationCache:
        sampler = simulator_sampler(instance, lambda name: stream(f"{prefix}/{name}"))
        return EvaluationCache(instance.costs, len(instance.configs), instance.n + 1, sampler)

    return caches
