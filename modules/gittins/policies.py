"""The frontier policies compared by Choo et al. (arXiv:2505.21671): Gittins and its baselines.

* ``gittins``: the index policy of :mod:`modules.gittins.index` -- indices of every (node, parent
  label) computed once, then a table lookup. On a forest it is optimal. On other graphs it runs on
  the BFS tree of each component from its root, with P(X_v | X_BFS-parent) taken exactly from the
  full loopy MRF (other evidence ignored) -- the paper's heuristic.
* ``greedy``: the frontier node of largest posterior expected reward E[r(X_v) | observations]
  (= P(X_v = 1 | observations) for binary labels), recomputed exactly after every test.
* ``random``: uniform over the frontier.
* ``optimal``: the exact dynamic programme of :mod:`experiments.gittins.exact` (n <= 12).
"""

from __future__ import annotations

import numpy as np

from experiments.gittins.exact import nodes_of, solve_optimal
from experiments.gittins.frontier import FrontierState, PriorityPolicy, one_hot_argmax, tree_parents
from experiments.gittins.instance import Instance
from modules.gittins.index import GittinsIndices, gittins_indices


class GittinsPolicy(PriorityPolicy):
    name = "gittins"

    def __init__(self, instance: Instance):
        parent = tree_parents(instance.graph, instance.frontier.roots)
        self.indices: GittinsIndices = gittins_indices(
            parent, instance.inference, instance.reward, instance.beta
        )
        super().__init__(parent, self.indices.by_parent_label, self.indices.root)


class GreedyPolicy:
    name = "greedy"

    def __init__(self, instance: Instance):
        self.reward = instance.reward

    def probs(self, state: FrontierState) -> np.ndarray:
        score = state.posterior() @ self.reward  # [B, n] posterior expected reward
        return one_hot_argmax(np.where(state.allowed, score, -np.inf))


class RandomPolicy:
    name = "random"

    def __init__(self, instance: Instance):
        del instance

    def probs(self, state: FrontierState) -> np.ndarray:
        return state.allowed / state.allowed.sum(1, keepdims=True)


class OptimalPolicy:
    name = "optimal"

    def __init__(self, instance: Instance):
        self.solution = solve_optimal(instance.joint, instance.frontier, instance.reward, instance.beta)
        self.K = instance.K

    def probs(self, state: FrontierState) -> np.ndarray:
        tested = state.status >= 0
        masks = tested @ (1 << np.arange(state.status.shape[1], dtype=np.int64))
        out = np.zeros(state.status.shape)
        for mask in np.unique(masks):
            rows = np.flatnonzero(masks == mask)
            nodes = nodes_of(int(mask))
            history = (
                np.ravel_multi_index(tuple(state.status[rows][:, nodes].T), (self.K,) * len(nodes))
                if nodes
                else np.zeros(len(rows), dtype=np.int64)
            )
            out[rows, self.solution.action[int(mask)][history]] = 1.0
        return out


POLICIES = {p.name: p for p in (GittinsPolicy, GreedyPolicy, RandomPolicy, OptimalPolicy)}
