"""The frontier policies compared by Choo et al. (arXiv:2505.21671): Gittins and its baselines.

* ``gittins``: the index policy of :mod:`modules.gittins.index` -- indices of every (node, parent
  label) computed once, then a table lookup. On a forest it is optimal. On other graphs it runs on
  the BFS tree of each component from its root, with P(X_v | X_BFS-parent) taken exactly from the
  full loopy MRF (other evidence ignored) -- the paper's heuristic [C].
* ``gittins_replan``: the non-tree extension by re-planning [R]. After every test, in the component
  of that test, the untested nodes form a BFS forest grown from all frontier nodes at once (each
  frontier node a root); its conditionals P(X_v | X_parent, all observed labels) and the frontier
  nodes' posteriors are exact (sum-product with evidence on the loopy graph), and the frontier node
  of largest root index is tested. Untouched components use the static indices. On a forest the
  evidence beyond a node's parent is irrelevant (Markov property), so it takes the same decisions as
  ``gittins``; on other graphs it uses every observation, as greedy does.
* ``greedy``: the frontier node of largest posterior expected reward E[r(X_v) | observations]
  (= P(X_v = 1 | observations) for binary labels), recomputed exactly after every test.
* ``random``: uniform over the frontier.
* ``optimal``: the exact dynamic programme of :mod:`experiments.gittins.exact` (n <= 12).
"""

from __future__ import annotations

import networkx as nx
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


class EvidenceOracle:
    """Exact P(X_v | X_parent, evidence) and P(X_v | evidence) for one evidence row of one component,
    read from calibrated bag beliefs; nodes are numbered by ``ids`` (forest id -> component-local id)."""

    def __init__(self, component, beliefs: list[np.ndarray], ids: np.ndarray):
        self.component, self.beliefs, self.ids = component, beliefs, ids
        self.posterior = component.marginals(beliefs)[0]  # [n_c, K]

    def conditional(self, child: int, parent: int) -> np.ndarray:
        joint = self.component.pair_table(self.beliefs, int(self.ids[parent]), int(self.ids[child]))[0]
        return joint / joint.sum(1, keepdims=True)  # [sigma, a]

    def marginal(self, v: int) -> np.ndarray:
        return self.posterior[self.ids[v]]


class ReplanningGittinsPolicy:
    name = "gittins_replan"

    def __init__(self, instance: Instance):
        self.reward, self.beta = instance.reward, instance.beta
        self.static = GittinsPolicy(instance)  # untouched components: no evidence yet
        self.inference = instance.inference
        self.graphs = [  # each component's graph on its local ids
            nx.relabel_nodes(
                instance.graph.subgraph(c.nodes.tolist()), {int(v): i for i, v in enumerate(c.nodes)}
            )
            for c in self.inference.components
        ]
        self.cache: dict[tuple[int, bytes], np.ndarray] = {}  # (component, its status) -> frontier scores

    def frontier_scores(self, c: int, status: np.ndarray, allowed: np.ndarray, beliefs: list) -> np.ndarray:
        """Root indices of the frontier nodes of one touched component (local ids, -inf elsewhere)."""
        untested = np.flatnonzero(status < 0)
        forest = self.graphs[c].subgraph(untested.tolist()).copy()
        forest.add_edges_from((-1, int(f)) for f in np.flatnonzero(allowed))  # -1: a virtual source
        ids = np.array([v for _, v in nx.bfs_edges(forest, -1)])  # BFS order from all frontier nodes
        forest_id = {int(v): i for i, v in enumerate(ids)}
        parent = np.array([forest_id.get(p, -1) for p, _ in nx.bfs_edges(forest, -1)])
        oracle = EvidenceOracle(self.inference.components[c], beliefs, ids)
        root = gittins_indices(parent, oracle, self.reward, self.beta).root
        score = np.full(len(status), -np.inf)
        score[ids[parent < 0]] = root[parent < 0]
        return score

    def probs(self, state: FrontierState) -> np.ndarray:
        status, allowed = state.status, state.allowed
        score = np.where(self.static.tree_parent < 0, self.static.root_priority, -np.inf)  # [n]
        score = np.tile(score, (len(status), 1))  # [B, n]; allowed roots = untouched components
        for c, comp in enumerate(self.inference.components):
            local, open_ = status[:, comp.nodes], allowed[:, comp.nodes]
            rows = np.flatnonzero((local >= 0).any(1) & open_.any(1))
            todo = [r for r in rows if (c, local[r].tobytes()) not in self.cache]
            if todo:
                beliefs = comp.calibrate(local[todo])
                for k, r in enumerate(todo):
                    mine = [b[k : k + 1] for b in beliefs]
                    self.cache[(c, local[r].tobytes())] = self.frontier_scores(c, local[r], open_[r], mine)
            for r in rows:
                score[r, comp.nodes] = self.cache[(c, local[r].tobytes())]
        return one_hot_argmax(np.where(allowed, score, -np.inf))


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


POLICIES = {
    p.name: p for p in (GittinsPolicy, ReplanningGittinsPolicy, GreedyPolicy, RandomPolicy, OptimalPolicy)
}
