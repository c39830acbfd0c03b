"""Exact inference in a pairwise MRF: sum-product on a tree decomposition, batched over evidence.

This is the "oracle" of Choo et al. (arXiv:2505.21671): exact conditional queries P(X_S | evidence).
The paper's code answers each query by variable elimination (min-fill order); here one two-pass
sum-product over a tree decomposition answers all node marginals at once, in O(n K^(w+1)) for
treewidth w (O(n K^2) on trees), for a whole batch of evidence vectors at a time.

Per connected component the decomposition is the tree itself when the component is a tree
(root bag {rho}, one bag {p(v), v} per other node) and networkx's min-fill tree decomposition
otherwise. Bags keep their variables in increasing node order, so a separator's variables appear
in the same relative order in both bags it joins. Messages are normalised (probability domain),
so no log-partition is tracked. Exact samples are drawn by the chain rule over the bag tree:
P(x) = P(x_root bag) prod_b P(x_{b \\ sep(b)} | x_sep(b)).
"""

from __future__ import annotations

from collections import deque

import networkx as nx
import numpy as np
from networkx.algorithms.approximation import treewidth_min_fill_in

from experiments.gittins.mrf import PairwiseMRF

MAX_BAG_ENTRIES = 2**16  # refuse decompositions whose bag tables exceed this many entries


def _normalise(t: np.ndarray) -> np.ndarray:
    """Divide each row (axis 0) by its total; all-zero rows (impossible evidence) stay zero."""
    z = t.reshape(t.shape[0], -1).sum(1).reshape((-1,) + (1,) * (t.ndim - 1))
    return t / np.where(z > 0, z, 1.0)


class ComponentTree:
    """Sum-product on a tree decomposition of one connected component (local node ids 0..n_c-1)."""

    def __init__(
        self,
        mrf: PairwiseMRF,
        nodes: np.ndarray,
        graph: nx.Graph,
        layout: tuple[list[tuple[int, ...]], list[int]] | None = None,
    ):
        self.nodes = np.asarray(nodes)  # [n_c] global ids, increasing
        self.K = mrf.K
        local = {int(v): i for i, v in enumerate(self.nodes)}
        if layout is None:
            layout = self._decompose(nx.relabel_nodes(graph.subgraph(self.nodes.tolist()), local))
        self.bags, self.parent = layout
        width = max(len(b) for b in self.bags)
        if self.K**width > MAX_BAG_ENTRIES:
            raise ValueError(
                f"component of {len(self.nodes)} nodes has a bag of {width} variables "
                f"({self.K}^{width} entries): too dense for exact inference"
            )
        # separator positions of bag b inside b and inside its parent
        self.sep_in_bag, self.sep_in_parent = [()], [()]
        for b in range(1, len(self.bags)):
            sep = sorted(set(self.bags[b]) & set(self.bags[self.parent[b]]))
            self.sep_in_bag.append(tuple(self.bags[b].index(s) for s in sep))
            self.sep_in_parent.append(tuple(self.bags[self.parent[b]].index(s) for s in sep))
        self.pair_bag = {}  # (u, v) with u < v -> (first bag holding both, position of u, position of v)
        for b, bag in enumerate(self.bags):
            for i in range(len(bag)):
                for j in range(i + 1, len(bag)):
                    self.pair_bag.setdefault((bag[i], bag[j]), (b, i, j))
        self.potentials = self._potentials(mrf, local)
        # first bag holding each node (where its marginal is read)
        self.node_bag = np.full(len(self.nodes), -1)
        for b in range(len(self.bags) - 1, -1, -1):
            self.node_bag[list(self.bags[b])] = b
        self._prior: list[np.ndarray] | None = None

    @staticmethod
    def _decompose(sub: nx.Graph) -> tuple[list[tuple[int, ...]], list[int]]:
        """Bags (sorted local ids) in BFS order from bag 0, and each bag's parent bag (-1 for bag 0)."""
        if nx.is_tree(sub) or sub.number_of_nodes() == 1:
            bags, parent, bag_of = [(0,)], [-1], {0: 0}
            for p, v in nx.bfs_edges(sub, 0):  # BFS order: a parent's bag exists before its children's
                bag_of[v] = len(bags)
                bags.append(tuple(sorted((p, v))))
                parent.append(bag_of[p])
            return bags, parent
        _, decomposition = treewidth_min_fill_in(sub)
        start = min(decomposition.nodes, key=lambda bag: (min(bag), len(bag)))
        order, parent_of = [start], {start: None}
        queue = deque([start])
        while queue:
            bag = queue.popleft()
            for nb in decomposition.neighbors(bag):
                if nb not in parent_of:
                    parent_of[nb] = bag
                    order.append(nb)
                    queue.append(nb)
        index = {bag: i for i, bag in enumerate(order)}
        return (
            [tuple(sorted(bag)) for bag in order],
            [-1 if parent_of[bag] is None else index[parent_of[bag]] for bag in order],
        )

    def _potentials(self, mrf: PairwiseMRF, local: dict[int, int]) -> list[np.ndarray]:
        """exp(sum of the factors assigned to each bag), each factor to the first bag holding its scope."""
        K = self.K
        logs = [np.zeros((K,) * len(b)) for b in self.bags]
        placed = set()
        for b, bag in enumerate(self.bags):
            for i, v in enumerate(bag):
                if v not in placed:
                    placed.add(v)
                    shape = [1] * len(bag)
                    shape[i] = K
                    logs[b] = logs[b] + mrf.unary[self.nodes[v]].reshape(shape)
        in_comp = np.isin(mrf.edges[:, 0], self.nodes)
        for e in np.flatnonzero(in_comp):
            u, v = local[int(mrf.edges[e, 0])], local[int(mrf.edges[e, 1])]  # u < v locally too
            b, i, j = self.pair_bag[(u, v)]
            shape = [1] * len(self.bags[b])
            shape[i] = shape[j] = K
            logs[b] = logs[b] + mrf.pairwise[e].reshape(shape)
        return [np.exp(t - t.max()) for t in logs]

    def _expand(self, msg: np.ndarray, positions: tuple[int, ...], size: int) -> np.ndarray:
        """Reshape a separator table [B, K..] so it broadcasts against a bag table [B] + [K]*size."""
        shape = [msg.shape[0]] + [1] * size
        for p in positions:
            shape[1 + p] = self.K
        return msg.reshape(shape)

    def calibrate(self, evidence: np.ndarray | None = None) -> list[np.ndarray]:
        """Normalised bag beliefs P(x_bag | evidence), each [B] + [K]*|bag|.

        ``evidence`` [B, n_c] holds observed labels and -1 for unobserved nodes (None: no evidence).
        """
        if evidence is None:
            if self._prior is None:
                self._prior = self._calibrate(None)
            return self._prior
        return self._calibrate(np.asarray(evidence))

    def _calibrate(self, evidence: np.ndarray | None) -> list[np.ndarray]:
        K, nb = self.K, len(self.bags)
        B = 1 if evidence is None else evidence.shape[0]
        if evidence is not None:  # indicator[B, n_c, K]: 1 where the label is compatible with evidence
            ind = ((evidence[:, :, None] == np.arange(K)) | (evidence[:, :, None] < 0)).astype(np.float64)
        inc = []
        for b, bag in enumerate(self.bags):
            t = np.broadcast_to(self.potentials[b], (B,) + self.potentials[b].shape)
            if evidence is not None:
                for i, v in enumerate(bag):
                    t = t * self._expand(ind[:, v], (i,), len(bag))
            inc.append(t)
        up = [None] * nb
        for b in range(nb - 1, 0, -1):  # upward: children come after parents in BFS order
            keep = self.sep_in_bag[b]
            msg = _normalise(inc[b].sum(axis=tuple(1 + i for i in range(len(self.bags[b])) if i not in keep)))
            up[b] = msg
            p = self.parent[b]
            inc[p] = inc[p] * self._expand(msg, self.sep_in_parent[b], len(self.bags[p]))
        belief = [None] * nb
        belief[0] = _normalise(inc[0])
        for b in range(1, nb):  # downward: parent belief / upward message = message from the rest
            p, keep = self.parent[b], self.sep_in_parent[b]
            parent_sep = belief[p].sum(axis=tuple(1 + i for i in range(len(self.bags[p])) if i not in keep))
            down = np.divide(parent_sep, up[b], out=np.zeros_like(parent_sep), where=up[b] > 0)
            belief[b] = _normalise(inc[b] * self._expand(down, self.sep_in_bag[b], len(self.bags[b])))
        return belief

    def marginals(self, beliefs: list[np.ndarray]) -> np.ndarray:
        """Node marginals [B, n_c, K] read from calibrated beliefs."""
        out = np.empty((beliefs[0].shape[0], len(self.nodes), self.K))
        for v, b in enumerate(self.node_bag):
            i = self.bags[b].index(v)
            out[:, v] = beliefs[b].sum(axis=tuple(1 + j for j in range(len(self.bags[b])) if j != i))
        return out

    def pair_table(self, beliefs: list[np.ndarray], u: int, v: int) -> np.ndarray:
        """P(X_u = a, X_v = b | evidence) [B, K, K] for adjacent local nodes u, v, from calibrated beliefs."""
        key = (min(u, v), max(u, v))
        if key not in self.pair_bag:
            raise ValueError(f"nodes {self.nodes[u]} and {self.nodes[v]} share no bag (not adjacent)")
        b, i, j = self.pair_bag[key]
        t = beliefs[b].sum(axis=tuple(1 + k for k in range(len(self.bags[b])) if k not in (i, j)))
        return t if u < v else t.transpose(0, 2, 1)

    def pair_marginal(self, u: int, v: int) -> np.ndarray:
        """Prior P(X_u = a, X_v = b) [K, K] for adjacent local nodes u, v."""
        return self.pair_table(self.calibrate(), u, v)[0]

    def sample(self, R: int, rng: np.random.Generator) -> np.ndarray:
        """R exact samples [R, n_c] by the chain rule over the bag tree."""
        K, beliefs = self.K, self.calibrate()
        x = np.empty((R, len(self.nodes)), dtype=np.int64)
        for b, bag in enumerate(self.bags):
            sep = self.sep_in_bag[b]
            new = [i for i in range(len(bag)) if i not in sep]
            if not new:  # a bag inside its separator adds no variable
                continue
            table = np.moveaxis(beliefs[b][0], list(sep), list(range(len(sep))))
            table = table.reshape(K ** len(sep), K ** len(new))  # [sep configs, new configs]
            s = (
                np.ravel_multi_index(tuple(x[:, bag[i]] for i in sep), (K,) * len(sep))
                if sep
                else np.zeros(R, dtype=np.int64)
            )
            cum = np.cumsum(table[s], axis=1)  # [R, K^new]
            pick = (cum < rng.random(R)[:, None] * cum[:, -1:]).sum(1)
            pick = np.minimum(pick, cum.shape[1] - 1)
            for i, labels in zip(new, np.unravel_index(pick, (K,) * len(new))):
                x[:, bag[i]] = labels
        return x


class GraphInference:
    """Exact queries on the whole graph: one :class:`ComponentTree` per connected component."""

    def __init__(self, mrf: PairwiseMRF, graph: nx.Graph, layouts: list | None = None):
        self.mrf, self.graph, self.n, self.K = mrf, graph, mrf.n, mrf.K
        comps = sorted((np.array(sorted(c)) for c in nx.connected_components(graph)), key=lambda c: c[0])
        layouts = layouts or [None] * len(comps)
        self.components = [ComponentTree(mrf, c, graph, layout) for c, layout in zip(comps, layouts)]
        self.component = np.empty(self.n, dtype=np.int64)  # component id of each node
        self.local = np.empty(self.n, dtype=np.int64)  # index of each node inside its component
        for i, c in enumerate(self.components):
            self.component[c.nodes] = i
            self.local[c.nodes] = np.arange(len(c.nodes))
        self._marginals: np.ndarray | None = None

    def marginals(self) -> np.ndarray:
        """Prior node marginals P(X_v = a): [n, K]."""
        if self._marginals is None:
            self._marginals = np.empty((self.n, self.K))
            for c in self.components:
                self._marginals[c.nodes] = c.marginals(c.calibrate())[0]
        return self._marginals

    def reweighted(self, mrf: PairwiseMRF) -> GraphInference:
        """The same decompositions with new potentials (same graph)."""
        return GraphInference(mrf, self.graph, [(c.bags, c.parent) for c in self.components])

    def marginal(self, v: int) -> np.ndarray:
        """Prior P(X_v = a): [K]."""
        return self.marginals()[v]

    def posterior(self, status: np.ndarray, component: int) -> np.ndarray:
        """P(X_v = a | observed labels) for the nodes of one component: [B, n_c, K].

        ``status`` [B, n] holds observed labels and -1 for untested nodes.
        """
        c = self.components[component]
        return c.marginals(c.calibrate(status[:, c.nodes]))

    def pair_marginal(self, u: int, v: int) -> np.ndarray:
        """Prior joint P(X_u = a, X_v = b) of adjacent nodes: [K, K]."""
        c = self.components[self.component[u]]
        return c.pair_marginal(int(self.local[u]), int(self.local[v]))

    def conditional(self, child: int, parent: int) -> np.ndarray:
        """Prior P(X_child = a | X_parent = sigma) as [sigma, a] for adjacent nodes (no other evidence)."""
        joint = self.pair_marginal(parent, child)  # [sigma, a]
        return joint / joint.sum(1, keepdims=True)

    def sample(self, R: int, rng: np.random.Generator) -> np.ndarray:
        """R exact joint samples [R, n] (components are independent)."""
        x = np.empty((R, self.n), dtype=np.int64)
        for c in self.components:
            x[:, c.nodes] = c.sample(R, rng)
        return x
