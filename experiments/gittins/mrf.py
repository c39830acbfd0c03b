"""Pairwise Markov random fields over node labels, and the covariate parameterisation of the paper.

Choo et al., *Adaptive Frontier Exploration on Graphs with Applications to Network-Based Disease
Testing* (NeurIPS 2025, arXiv:2505.21671), section "problem setup": labels X_v in Sigma = {0..K-1}
are jointly distributed by an MRF that is Markov w.r.t. the graph G,

    log P(x) = sum_v psi_v(x_v) + sum_{(u,v) in E} psi_uv(x_u, x_v) - log Z.

The paper's code parameterises the log-potentials by binary node covariates c_v in {0,1}^d
(notes 6.2): psi_v(x) = theta_u . f_u(x, c_v), psi_uv(x, y) = theta_p . f_p(x, y, c_u, c_v). We
generalise the binary features to any K so that K = 2 reproduces them exactly (order included):

    f_u(x, c)          = [1, e_1(x)..e_{K-1}(x)] then, per covariate k, [c_k, e_1(x) c_k .. e_{K-1}(x) c_k]
    f_p(x, y, c, c')   = [1, pos, dis, neg] then, per covariate k,
                         [s_k, pos s_k, [x>y] c_k + [y>x] c'_k, [x<y] c_k + [y<x] c'_k, neg s_k]

with e_a(x) = [x = a], s_k = c_k + c'_k, pos = [x = y != 0], dis = [x != y], neg = [x = y = 0].
For K = 2, pos = x y, dis = x(1-y) + (1-x)y, neg = (1-x)(1-y), and [x>y] c_k + [y>x] c'_k =
x(1-y) c_k + (1-x) y c'_k -- the paper's 2+2d unary and 4+5d pairwise features. [R] for K > 2.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx
import numpy as np


@dataclass
class PairwiseMRF:
    """Log-potentials of a pairwise MRF on nodes 0..n-1 with labels 0..K-1.

    ``edges[e] = (u, v)`` with u < v and ``pairwise[e, x_u, x_v] = psi_uv(x_u, x_v)``.
    """

    unary: np.ndarray  # [n, K]
    edges: np.ndarray  # [m, 2] int
    pairwise: np.ndarray  # [m, K, K]

    def __post_init__(self):
        self.unary = np.asarray(self.unary, dtype=np.float64)
        self.edges = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        self.pairwise = np.asarray(self.pairwise, dtype=np.float64).reshape(-1, self.K, self.K)
        if self.K < 2:
            raise ValueError(f"an MRF needs at least 2 labels, got K={self.K}")
        if len(self.edges) != len(self.pairwise):
            raise ValueError(f"{len(self.edges)} edges but {len(self.pairwise)} pairwise tables")
        loops = self.edges[self.edges[:, 0] == self.edges[:, 1]]
        if len(loops):
            raise ValueError(f"self-loop on node {int(loops[0, 0])}: a pairwise MRF has no self-loops")
        if len(self.edges) and (self.edges.min() < 0 or self.edges.max() >= self.n):
            raise ValueError(f"edge endpoint outside nodes 0..{self.n - 1}")
        if not (np.all(np.isfinite(self.unary)) and np.all(np.isfinite(self.pairwise))):
            raise ValueError("MRF log-potentials must be finite")
        swap = self.edges[:, 0] > self.edges[:, 1]  # store u < v, transposing those tables
        self.edges[swap] = self.edges[swap][:, ::-1]
        self.pairwise[swap] = self.pairwise[swap].transpose(0, 2, 1)

    @property
    def n(self) -> int:
        return self.unary.shape[0]

    @property
    def K(self) -> int:
        return self.unary.shape[1]

    def log_potential(self, x: np.ndarray) -> np.ndarray:
        """Unnormalised log P of label vectors ``x`` [B, n] -> [B]."""
        x = np.asarray(x)
        rows = np.arange(self.n)
        pair = self.pairwise[np.arange(len(self.edges)), x[:, self.edges[:, 0]], x[:, self.edges[:, 1]]]
        return self.unary[rows, x].sum(1) + pair.sum(1)

    def joint_table(self) -> np.ndarray:
        """The normalised joint P(x) as an array of shape [K]*n, by enumeration (tiny n only)."""
        x = np.array(list(itertools.product(range(self.K), repeat=self.n)), dtype=np.int64).reshape(
            -1, self.n
        )
        logp = self.log_potential(x)
        p = np.exp(logp - logp.max())
        return (p / p.sum()).reshape((self.K,) * self.n)


def unary_features(K: int, c: np.ndarray) -> np.ndarray:
    """f_u(x, c_v) for every node and label: [n, K, (1+d) K]."""
    e = np.eye(K)[:, 1:]  # [K, K-1]: e_a(x) for a >= 1
    base = np.concatenate([np.ones((K, 1)), e], axis=1)  # [K, K] = [1, e_1(x)..]
    per_cov = base[None, :, None, :] * c[:, None, :, None]  # [n, K, d, K]
    n = c.shape[0]
    return np.concatenate([np.broadcast_to(base, (n, K, K)), per_cov.reshape(n, K, -1)], axis=2)


def pairwise_features(K: int, cu: np.ndarray, cv: np.ndarray) -> np.ndarray:
    """f_p(x, y, c_u, c_v) for every edge and label pair: [m, K, K, 4 + 5d]."""
    x, y = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")  # [K, K]
    pos, dis, neg = ((x == y) & (x != 0)) * 1.0, (x != y) * 1.0, ((x == 0) & (y == 0)) * 1.0
    m = cu.shape[0]
    head = np.broadcast_to(np.stack([np.ones((K, K)), pos, dis, neg], -1), (m, K, K, 4))
    s = (cu + cv)[:, None, None, :]  # [m, 1, 1, d]
    hi = (x > y)[None, :, :, None] * cu[:, None, None, :] + (y > x)[None, :, :, None] * cv[:, None, None, :]
    lo = (x < y)[None, :, :, None] * cu[:, None, None, :] + (y < x)[None, :, :, None] * cv[:, None, None, :]
    per_cov = np.stack(
        [np.broadcast_to(s, hi.shape), pos[None, :, :, None] * s, hi, lo, neg[None, :, :, None] * s], axis=-1
    )  # [m, K, K, d, 5]
    return np.concatenate([head, per_cov.reshape(m, K, K, 5 * cu.shape[1])], axis=-1)


def n_theta(K: int, d: int) -> tuple[int, int]:
    """Lengths of theta_u and theta_p."""
    return (1 + d) * K, 4 + 5 * d


def covariate_mrf(
    graph: nx.Graph, covariates: np.ndarray, theta_u: np.ndarray, theta_p: np.ndarray, K: int
) -> PairwiseMRF:
    """The covariate-parameterised MRF on ``graph`` (nodes 0..n-1, covariates [n, d])."""
    c = np.asarray(covariates, dtype=np.float64)
    edges = np.array(sorted((min(u, v), max(u, v)) for u, v in graph.edges()), dtype=np.int64).reshape(-1, 2)
    unary = unary_features(K, c) @ theta_u
    pairwise = pairwise_features(K, c[edges[:, 0]], c[edges[:, 1]]) @ theta_p
    return PairwiseMRF(unary=unary, edges=edges, pairwise=pairwise)
