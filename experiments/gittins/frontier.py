"""The frontier rule of adaptive frontier exploration, and what a policy sees at each step.

Choo et al. (arXiv:2505.21671), problem AFEG: in each connected component the first test must be
the component's designated root; afterwards only untested neighbours of tested nodes may be
tested. Untouched components' roots stay available, so a policy also chooses which component to
open next. The paper's code designates the node with the largest marginal P(X_v = 1); we take the
largest expected reward E[r(X_v)], which is the same thing for binary labels with r = (0, 1) and
extends it to any label set. Exact ties go to the smallest node id by default, to the largest (as in
the paper's code) with ``ties="largest"`` [R]. Roots may also be given explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import networkx as nx
import numpy as np
import scipy.sparse as sp


@dataclass
class FrontierState:
    """A batch of B exploration states over the same graph."""

    status: np.ndarray  # [B, n] observed label, -1 while untested
    allowed: np.ndarray  # [B, n] the frontier: nodes that may be tested now
    posterior: Callable[[], np.ndarray]  # () -> [B, n, K] P(X_v = a | observed labels), on demand


class Policy(Protocol):
    """A (possibly randomised) frontier policy."""

    name: str

    def probs(self, state: FrontierState) -> np.ndarray:
        """Probability of testing each node next: [B, n], zero outside ``state.allowed``."""


class Frontier:
    """Adjacency, components and designated roots of one graph (nodes 0..n-1)."""

    def __init__(self, graph: nx.Graph, roots: np.ndarray):
        self.n = graph.number_of_nodes()
        self.adjacency = sp.csr_matrix(nx.to_scipy_sparse_array(graph, nodelist=range(self.n), format="csr"))
        self.adjacency.data[:] = 1.0
        self.component = np.empty(self.n, dtype=np.int64)
        comps = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
        for i, c in enumerate(comps):
            self.component[c] = i
        self.roots = np.asarray(roots, dtype=np.int64)
        self.is_root = np.zeros(self.n, dtype=bool)
        self.is_root[self.roots] = True

    @classmethod
    def designate(cls, graph: nx.Graph, expected_reward: np.ndarray, ties: str = "smallest") -> Frontier:
        """Roots = the node of largest expected reward in each component (ties: smallest or largest id)."""
        if ties not in ("smallest", "largest"):
            raise ValueError(f"root ties must be 'smallest' or 'largest', got {ties!r}")
        comps = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
        pick = (
            (lambda x: int(np.argmax(x)))
            if ties == "smallest"
            else (lambda x: len(x) - 1 - int(np.argmax(x[::-1])))
        )
        return cls(graph, np.array([c[pick(expected_reward[c])] for c in comps]))

    @classmethod
    def given(cls, graph: nx.Graph, roots: list[int]) -> Frontier:
        """Explicit roots: exactly one per connected component, each a node of the graph."""
        comps = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
        owner = {v: i for i, c in enumerate(comps) for v in c}
        claimed: dict[int, int] = {}
        for rho in roots:
            if rho not in owner:
                raise ValueError(f"root {rho} is not a node of the graph (nodes 0..{len(owner) - 1})")
            if owner[rho] in claimed:
                raise ValueError(
                    f"root {rho} lies outside its component: component of node "
                    f"{comps[owner[rho]][0]} already has root {claimed[owner[rho]]}"
                )
            claimed[owner[rho]] = rho
        missing = [c[0] for i, c in enumerate(comps) if i not in claimed]
        if missing:
            raise ValueError(
                f"{len(missing)} components have no root (e.g. the one holding node {missing[0]}); "
                f"give one root per connected component ({len(comps)} components)"
            )
        return cls(graph, np.array([claimed[i] for i in range(len(comps))]))

    def allowed(self, tested: np.ndarray) -> np.ndarray:
        """The frontier of tested-node masks ``tested`` [B, n] -> [B, n].

        A component's root is untested exactly while the component is untouched.
        """
        tested = np.atleast_2d(tested)
        near = (self.adjacency @ tested.T.astype(np.float64)).T > 0  # [B, n] has a tested neighbour
        return ~tested & (near | self.is_root)

    def advance(self, allowed: np.ndarray, chosen: np.ndarray, tested: np.ndarray) -> None:
        """In place: row b tested ``chosen[b]``; its untested neighbours join the frontier."""
        rows = np.arange(len(chosen))
        allowed[rows, chosen] = False
        starts, ends = self.adjacency.indptr[chosen], self.adjacency.indptr[chosen + 1]
        counts = ends - starts
        row_of = np.repeat(rows, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        nbrs = self.adjacency.indices[np.repeat(starts, counts) + offsets]
        allowed[row_of, nbrs] |= ~tested[row_of, nbrs]


def tree_parents(graph: nx.Graph, roots: np.ndarray) -> np.ndarray:
    """Parent of every node in the BFS tree of its component from its root (-1 for roots).

    On a forest this is the forest itself rooted at the designated roots.
    """
    parent = np.full(graph.number_of_nodes(), -1, dtype=np.int64)
    for rho in roots:
        for p, v in nx.bfs_edges(graph, int(rho)):
            parent[v] = p
    return parent


def one_hot_argmax(score: np.ndarray) -> np.ndarray:
    """[B, n] scores (-inf: not allowed) -> one-hot rows at the largest score (smallest id on ties)."""
    out = np.zeros(score.shape)
    out[np.arange(len(score)), np.argmax(score, axis=1)] = 1.0
    return out


class PriorityPolicy:
    """Test the eligible node of largest static priority (ties: smallest node id).

    A non-root v becomes eligible once its tree parent p(v) is tested, with priority
    ``priority[v, x_p(v)]``; an untouched component's root has ``root_priority[rho]``. With the BFS
    tree of a non-tree graph this is the paper's heuristic: only frontier nodes whose BFS parent has
    been tested are scored, so the tested set stays a rooted BFS subtree.
    """

    name = "priority"

    def __init__(self, tree_parent: np.ndarray, priority: np.ndarray, root_priority: np.ndarray):
        self.tree_parent = tree_parent  # [n], -1 at roots
        self.priority = priority  # [n, K]
        self.root_priority = root_priority  # [n]

    def probs(self, state: FrontierState) -> np.ndarray:
        status, n = state.status, self.tree_parent.shape[0]
        is_root = self.tree_parent < 0
        parent_label = status[:, np.where(is_root, 0, self.tree_parent)]  # [B, n]
        score = np.where(
            is_root, self.root_priority, self.priority[np.arange(n), np.maximum(parent_label, 0)]
        )
        eligible = state.allowed & (is_root | (parent_label >= 0))
        return one_hot_argmax(np.where(eligible, score, -np.inf))
