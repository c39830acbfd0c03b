"""Gittins indices of frontier nodes on a rooted forest, by Whittle's retirement recursion.

Choo et al., *Adaptive Frontier Exploration on Graphs with Applications to Network-Based Disease
Testing* (NeurIPS 2025, arXiv:2505.21671): the index policy that is optimal on forests. Testing a
node v whose parent carries label sigma earns r(X_v) and "spawns" v's children as new arms that are
independent given X_v (Markov property on a tree) -- a branching bandit (Weiss 1988; Keller &
Oldale 2003). Its Gittins index is computed with Whittle's retirement option m in [0, B]:

    B              = max_a r(a) / (1 - beta)                               (any value is <= B)
    q_v(a | sigma) = P(X_v = a | X_p(v) = sigma)          (roots: the marginal P(X_rho = a))
    phi_v^sigma(m) = max{ m, h_v^sigma(m) },
    h_v^sigma(m)   = sum_a q_v(a | sigma) [ r(a) + beta Phi_v^a(m) ]                       (1)
    Phi_v^a(m)     = B - int_m^B prod_{c in C(v)} d phi_c^a(k) / dk  dk,   Phi with no child = m   (2)
    M_v^sigma      = min{ m : phi_v^sigma(m) = m }                  (the index, retirement units) (3)

(2) is Whittle's product formula for the independent arms C(v) spawned under X_v = a. Every
phi is piecewise linear, convex and non-decreasing with slopes in [0, 1], and phi(m) = m beyond its
index, so all functions are held *exactly* as breakpoints + slopes:

* a node's functions for every parent label sigma share one grid x (increasing, x_0 = 0, x_-1 = B)
  and are stored as slopes D[sigma, j] on [x_j, x_{j+1}];
* the product in (2) is piecewise constant on the union of the children's grids; (2) is then an
  exact reverse cumulative sum; (1) is a matrix product over labels (slopes: beta q G);
* h has slope <= beta < 1 and h(B) <= B, so h(m) - m is strictly decreasing and (3) is its only
  root, found on one linear segment; phi's grid is the old grid below max_sigma M^sigma, the
  indices M^sigma themselves, and B (slope 1 beyond each index).

The optimal value of the whole forest falls out of the same formula: V = Phi_roots(0) (roots are
independent arms), which tests check against dynamic programming. Rewards are shifted by min_a r(a)
first (every policy tests all n nodes, so a constant shift adds the same sum_t beta^t r_min to every
policy's value and changes no decision), which makes any real reward vector admissible.

Cost: a non-root's grid has at most 2 + K * |subtree| points, so the work (``work``: table entries
built) is O(n^2 K^2) in the worst case (a path) and O(n log n K^2) on random recursive trees; the
oracle is asked once per node (K^2 numbers per non-root, K per root). A child's function is dropped
once its parent is built, so the live functions belong to disjoint subtrees and hold at most
(K + 1)(K + 2) n floats (``memory_bound``) -- linear in n, within the paper's O(n^2 K) space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class ConditionalOracle(Protocol):
    """Exact conditional queries of the label distribution (no evidence)."""

    def conditional(self, child: int, parent: int) -> np.ndarray:
        """P(X_child = a | X_parent = sigma) as an array [sigma, a]."""

    def marginal(self, v: int) -> np.ndarray:
        """P(X_v = a) as an array [a]."""


@dataclass
class GittinsIndices:
    """Indices in retirement units (the reward-rate index is (1 - beta) M; the ranking is the same)."""

    by_parent_label: np.ndarray  # [n, K] M_v^sigma for non-roots (NaN on roots)
    root: np.ndarray  # [n] M_rho for roots (NaN elsewhere)
    value: float  # optimal expected discounted reward of the forest, V = Phi_roots(0)
    peak_floats: int  # most floats held by live piecewise-linear functions at any time
    work: int  # table entries built (union grids, slope products, h, phi): the operation count


def _check_distribution(q: np.ndarray, K: int, what: str) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1] != K or q.min() < 0 or np.abs(q.sum(-1) - 1.0).max() > 1e-9:
        raise ValueError(
            f"{what} must be a probability distribution over {K} labels "
            f"(non-negative, summing to 1); got {np.round(q, 6).tolist()}"
        )
    return q


def _bfs_order(parent: np.ndarray) -> tuple[list[int], list[list[int]]]:
    """Nodes in BFS order from the roots, and each node's children; refuses non-forests."""
    n = len(parent)
    children: list[list[int]] = [[] for _ in range(n)]
    for v, p in enumerate(parent):
        if p >= 0:
            children[p].append(v)
    order = [v for v in range(n) if parent[v] < 0]
    for v in order:  # appending while iterating walks the forest breadth first
        order.extend(children[v])
    if len(order) != n:
        raise ValueError("parent array has a cycle: the index recursion needs a rooted forest")
    return order, children


def _segment(grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Index of the grid segment [grid_i, grid_i+1) holding each point (repeated points: the last one)."""
    return np.searchsorted(grid[:-1], points, side="right") - 1


def memory_bound(n: int, K: int) -> int:
    """Most floats the live functions can hold: disjoint subtrees of total size <= n, each function
    (K + 1) rows of at most 2 + K * |subtree| numbers."""
    return (K + 1) * (K + 2) * n


def _retirement_functions(
    q: np.ndarray, kids: list[tuple[np.ndarray, np.ndarray]], r: np.ndarray, beta: float, B: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Build phi_v^sigma for every row sigma of ``q`` [S, K] from the children's (grid, slopes).

    Returns the indices M [S], phi's grid x [L] and slopes D [S, L-1], and the table entries built.
    """
    K = q.shape[1]
    # (2): G[a, j] = prod_c phi_c^a'(k) on the union grid; Phi^a(x_i) = B - sum_{j >= i} G[a, j] dx_j
    if len(kids) > 1:
        x = np.unique(np.concatenate([g for g, _ in kids]))
    else:  # a leaf (Phi = m) or a single child's grid
        x = kids[0][0] if kids else np.array([0.0, B])
    G = np.ones((K, len(x) - 1))
    for grid, slopes in kids:
        G *= slopes[:, _segment(grid, x[:-1])]
    tail = np.cumsum((G * np.diff(x))[:, ::-1], axis=1)[:, ::-1]  # [K, L-1] = int_{x_i}^B G
    Phi = B - np.concatenate([tail, np.zeros((K, 1))], axis=1)  # [K, L]
    # (1): h^sigma on the same grid, with slopes beta q G
    h = q @ (r[:, None] + beta * Phi)  # [S, L]
    dh = beta * (q @ G)  # [S, L-1]
    # (3): h(m) - m decreases strictly; its root lies on the segment ending at the first x with d <= 0
    d = h - x
    d[:, -1] = np.minimum(d[:, -1], 0.0)  # h(B) <= B up to rounding
    j = np.argmax(d <= 0, axis=1)
    seg = np.maximum(j - 1, 0)
    rows = np.arange(len(q))
    M = np.where(j == 0, 0.0, x[seg] + d[rows, seg] / (1.0 - dh[rows, seg]))
    M = np.clip(M, x[seg], x[j])
    # phi^sigma = h^sigma below M^sigma, identity above; breakpoints above max M are identity for all sigma
    xn = np.unique(np.concatenate([x[x < M.max()], M, [B]]))
    on = _segment(x, xn[:-1])  # segment of x holding each new segment
    D = np.where(xn[None, 1:] <= M[:, None], dh[:, on], 1.0)
    return M, xn, D, x.size + G.size * (len(kids) + 1) + 2 * h.size + xn.size + D.size


def _leaf_functions(q: np.ndarray, r: np.ndarray, beta: float, B: float) -> tuple[np.ndarray, ...]:
    """(1)-(3) in closed form for childless nodes, batched over L leaves with q [L, S, K].

    With no child Phi^a(m) = m, so h^sigma(m) = E[r | sigma] + beta m, M^sigma = E[r | sigma] / (1 - beta),
    and phi^sigma has slope beta below M^sigma and 1 above. Returns M [L, S], grids [L, S+2]
    (0, the sorted indices, B; repeated points are zero-length segments) and slopes [L, S, S+1].
    """
    M = np.minimum(q @ r / (1.0 - beta), B)  # <= B up to rounding
    x = np.concatenate([np.zeros((len(q), 1)), np.sort(M, axis=1), np.full((len(q), 1), B)], axis=1)
    return M, x, np.where(x[:, None, 1:] <= M[:, :, None], beta, 1.0)


def gittins_indices(
    parent: np.ndarray, oracle: ConditionalOracle, reward: np.ndarray, beta: float
) -> GittinsIndices:
    """All Gittins indices of a rooted forest (``parent[v] = -1`` marks the roots).

    Post-order dynamic programme: each node's phi_v^sigma (every parent label sigma at once) from
    its children's phi_c^a, asking the oracle for P(X_v | X_p(v)) once per node.
    """
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must lie in (0, 1) for the discounted objective, got {beta}")
    reward = np.asarray(reward, dtype=np.float64)
    if reward.ndim != 1 or not np.all(np.isfinite(reward)):
        raise ValueError(f"reward must be a finite vector over labels, got {reward}")
    parent = np.asarray(parent, dtype=np.int64)
    n, K = len(parent), len(reward)
    order, children = _bfs_order(parent)
    r = reward - reward.min()
    B = r.max() / (1.0 - beta)
    if B == 0.0:  # constant reward: any B > 0 works (every index comes out 0, every order is optimal)
        B = 1.0
    by_parent_label = np.full((n, K), np.nan)
    root = np.full(n, np.nan)
    live: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    leaves = [v for v in range(n) if parent[v] >= 0 and not children[v]]
    if leaves:  # about half the nodes of a random tree: all at once
        q = np.stack(
            [
                _check_distribution(oracle.conditional(v, parent[v]), K, f"P(X_{v} | X_{parent[v]})")
                for v in leaves
            ]
        )
        M, x, D = _leaf_functions(q, r, beta, B)
        by_parent_label[leaves] = M
        live = {v: (x[i], D[i]) for i, v in enumerate(leaves)}
    floats = peak = work = sum(g.size + s.size for g, s in live.values())
    for v in reversed(order):  # children before parents
        if v in live:
            continue
        if parent[v] < 0:
            q = _check_distribution(oracle.marginal(v), K, f"P(X_{v})")[None, :]
        else:
            q = _check_distribution(oracle.conditional(v, parent[v]), K, f"P(X_{v} | X_{parent[v]})")
        kids = [live.pop(c) for c in children[v]]
        M, x, D, built = _retirement_functions(q, kids, r, beta, B)
        work += built
        floats += x.size + D.size - sum(g.size + s.size for g, s in kids)
        peak = max(peak, floats)
        live[v] = (x, D)
        if parent[v] < 0:
            root[v] = M[0]
        else:
            by_parent_label[v] = M
    # V = Phi_roots(0) = B - int_0^B prod_rho phi_rho'(k) dk  (roots are independent arms)
    x = np.unique(np.concatenate([g for g, _ in live.values()]))
    G = np.ones(len(x) - 1)
    for grid, slopes in live.values():
        G *= slopes[0, _segment(grid, x[:-1])]
    shifted_value = B - float(np.sum(G * np.diff(x)))
    value = shifted_value + reward.min() * (1.0 - beta**n) / (1.0 - beta)
    return GittinsIndices(
        by_parent_label=by_parent_label, root=root, value=value, peak_floats=peak, work=work + G.size
    )
