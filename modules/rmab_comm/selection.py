"""Budgeted joint action selection (Bandit Whisperer; released code's index-style selection).

Advantages delta_i(a) = max(Q_i(s_i, a) - Q_i(s_i, 0), 0); each arm bids with its highest-advantage
action, and arms are served in decreasing order of that advantage while the budget allows (an arm
whose bid no longer fits stays passive; later, cheaper bids may still fit). With unit costs this
is "pull the top-B arms with positive advantage", done with one cumulative sum; with larger costs
(SIS) a loop over the N ranks, vectorised over the B copies. Random feasible joint actions (the
exploration move) are the same rule applied to random advantages.
"""

import numpy as np


def budgeted_greedy(q: np.ndarray, costs: np.ndarray, budget: int) -> np.ndarray:
    """q [B, N, A] -> joint actions [B, N] with sum_i costs[a_i] <= budget in every row."""
    adv = np.maximum(q - q[..., :1], 0.0)
    bid = adv.argmax(-1)  # [B, N]
    value = np.take_along_axis(adv, bid[..., None], -1)[..., 0]
    bid = np.where(value > 0, bid, 0)
    order = np.argsort(-value, axis=1, kind="stable")  # [B, N] arms by advantage
    cost = np.take_along_axis(costs[bid], order, 1)  # bid costs in serving order
    if np.all(costs[1:] == 1):
        served = np.cumsum(cost, axis=1) <= budget
    else:
        served = np.zeros(order.shape, dtype=bool)
        spent = np.zeros(order.shape[0])
        for k in range(order.shape[1]):
            served[:, k] = spent + cost[:, k] <= budget
            spent += np.where(served[:, k], cost[:, k], 0)
    keep = np.zeros_like(served)
    np.put_along_axis(keep, order, served, 1)
    return np.where(keep, bid, 0)


def random_feasible(
    shape: tuple[int, int], n_actions: int, costs: np.ndarray, budget: int, rng: np.random.Generator
) -> np.ndarray:
    """Uniformly random bids served in random order: a random budget-feasible joint action [B, N]."""
    q = rng.random((*shape, n_actions))
    q[..., 0] = 0.0
    return budgeted_greedy(q, costs, budget)
