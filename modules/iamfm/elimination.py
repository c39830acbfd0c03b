"""Elimination-based optimisation: (multi-fidelity) successive halving and the uniform baseline.

IAMFM's elimination instantiation (arXiv:2604.06263), in the successive-halving form of Karnin,
Koren & Somekh (ICML 2013) and Jamieson & Talwalkar (AISTATS 2016): R = ceil(log_eta K) rungs; rung r
gets an equal share of what is left (at least one generation per survivor); its n_r = ceil(K / eta^r)
survivors are topped up to a cumulative count at fidelity f_r and the best ceil(n_r / eta) by
estimated welfare survive; the last rung keeps one. Multi-fidelity: rung r uses fidelity
min(r, F - 1) (fidelities ordered cheap to target) and the last rung the target, so the cheapest
proxy only screens the full set. With a single (sample-count) fidelity this is plain SH. Written
here because it is a dozen lines over our cache.
"""

from __future__ import annotations

import math

import numpy as np

from modules.iamfm.cache import EvaluationCache

Schedule = list[tuple[int, int]]  # per rung: (fidelity, cumulative generations per survivor)


def sh_schedule(n_configs: int, costs: np.ndarray, budget: float, eta: int, multi_fidelity: bool) -> Schedule:
    """The rungs of SH over ``n_configs`` configurations with total cost <= ``budget``."""
    F, R = len(costs), max(1, math.ceil(math.log(n_configs) / math.log(eta) - 1e-12))
    schedule, totals, left = [], np.zeros(F, dtype=np.int64), budget
    for r in range(R):
        f = min(r, F - 1) if multi_fidelity and r < R - 1 else F - 1
        survivors = math.ceil(n_configs / eta**r)
        new = max(1, math.floor(left / (R - r) / (survivors * costs[f])))
        left -= new * survivors * costs[f]
        if left < -1e-9:
            raise ValueError(
                f"budget={budget:g} is too small for successive halving over {n_configs} "
                f"configurations: rung {r} cannot give its {survivors} survivors one generation "
                f"at cost {costs[f]:g}"
            )
        totals[f] += new
        schedule.append((f, int(totals[f])))
    return schedule


def successive_halving(cache: EvaluationCache, weights: np.ndarray, schedule: Schedule, eta: int) -> int:
    """The last survivor of SH on W(theta; weights); generations already in ``cache`` are reused."""
    arms = np.arange(cache.counts.shape[1])
    for r, (f, m) in enumerate(schedule):
        cache.ensure(arms, f, m)
        scores = cache.estimate(arms, f, weights)
        keep = math.ceil(len(arms) / eta) if r < len(schedule) - 1 else 1
        arms = arms[np.argsort(-scores, kind="stable")[:keep]]
    return int(arms[0])


def uniform_allocation(cache: EvaluationCache, weights: np.ndarray, budget: float) -> int:
    """The single-fidelity baseline: the same number of target generations for every configuration."""
    f, K = len(cache.costs) - 1, cache.counts.shape[1]
    m = math.floor(budget / (K * cache.costs[f]))
    if m < 1:
        raise ValueError(
            f"budget={budget:g} is too small for uniform allocation over {K} configurations "
            f"at cost {cache.costs[f]:g}"
        )
    cache.ensure(np.arange(K), f, m)
    return int(np.argmax(cache.estimate(np.arange(K), f, weights)))
