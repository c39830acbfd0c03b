"""Ground truth for small graphs: the joint by enumeration, the optimal policy by dynamic programming,
and exact evaluation of any frontier policy.

Choo et al. (arXiv:2505.21671) compare against an exact DP over status vectors (n <= 12) and
evaluate policies exactly by enumerating all realisations. Both are organised here around the
*tested set* T: under the frontier rule the allowed actions depend on T only, so every quantity is
an array over the labels x_T of T (axes in increasing node order) and one numpy operation handles
all label histories of a tested set at once.

* Optimal value. With W_T(x_T) = P(x_T) E[sum_{s >= 0} beta^s r_{|T|+s} | x_T] under the optimal
  policy (unnormalised, so no division is needed),

      W_T(x_T) = max_{v allowed by T} sum_a [ P(x_T, X_v = a) r(a) + beta W_{T+v}(x_T, a) ],  W_V = 0,

  and V_DP = W_{} . The maximising v is the optimal action.
* Exact evaluation of a policy pi(v | T, x_T). With lambda_T(x_T) = P(the policy tests exactly T
  first | x_T), lambda_{} = 1 and lambda_{T+v}(x_T, a) = sum over paths of lambda_T(x_T) pi(v | T, x_T);
  the expected reward of step t is E[r_t] = sum_{|T|=t} sum_v sum_{x_T, a} lambda_T pi P(x_T, a) r(a).
  Randomised policies (uniform random) are evaluated exactly too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.gittins.frontier import Frontier, FrontierState, Policy
from experiments.gittins.mrf import PairwiseMRF

MAX_JOINT_ENTRIES = 8192  # K^n limit of enumeration (2^12 binary, 3^8 ternary)
MAX_EXACT_NODES = 12


def nodes_of(mask: int) -> list[int]:
    return [v for v in range(mask.bit_length()) if mask >> v & 1]


class JointTable:
    """P(x) over all K^n label vectors and its marginal tables P(x_T), cached by bitmask of T."""

    def __init__(self, mrf: PairwiseMRF):
        if mrf.n > MAX_EXACT_NODES or mrf.K**mrf.n > MAX_JOINT_ENTRIES:
            raise ValueError(
                f"exact enumeration needs n <= {MAX_EXACT_NODES} and K^n <= {MAX_JOINT_ENTRIES}, "
                f"got n={mrf.n}, K={mrf.K}"
            )
        self.n, self.K = mrf.n, mrf.K
        self.joint = mrf.joint_table()
        self._cache: dict[int, np.ndarray] = {}

    def table(self, mask: int) -> np.ndarray:
        """P(x_T) with axes in increasing node order, shape [K]*|T|."""
        if mask not in self._cache:
            out = tuple(v for v in range(self.n) if not mask >> v & 1)
            self._cache[mask] = self.joint.sum(axis=out)
        return self._cache[mask]

    def with_node(self, mask: int, v: int) -> np.ndarray:
        """P(x_T, X_v = a) as a matrix [K^|T|, K] (rows: x_T flattened in increasing node order)."""
        t = self.table(mask | 1 << v)
        pos = sum(1 for u in nodes_of(mask) if u < v)
        return np.moveaxis(t, pos, -1).reshape(-1, self.K)

    def status_rows(self, mask: int) -> np.ndarray:
        """Every label history of T as status vectors [K^|T|, n] (-1 outside T)."""
        nodes = nodes_of(mask)
        status = np.full((self.K ** len(nodes), self.n), -1, dtype=np.int64)
        if nodes:
            labels = np.unravel_index(np.arange(self.K ** len(nodes)), (self.K,) * len(nodes))
            status[:, nodes] = np.stack(labels, axis=1)
        return status

    def posterior(self, mask: int) -> np.ndarray:
        """P(X_u = a | x_T) for every history of T and every node: [K^|T|, n, K] (observed: one-hot)."""
        status = self.status_rows(mask)
        post = np.zeros(status.shape + (self.K,))
        for u in range(self.n):
            if mask >> u & 1:
                post[np.arange(len(status)), u, status[:, u]] = 1.0
            else:
                joint = self.with_node(mask, u)
                post[:, u] = joint / joint.sum(1, keepdims=True)
        return post


def _mask_allowed(frontier: Frontier, mask: int) -> np.ndarray:
    tested = np.zeros(frontier.n, dtype=bool)
    tested[nodes_of(mask)] = True
    return np.flatnonzero(frontier.allowed(tested[None])[0])


def _extend(values: np.ndarray, mask: int, v: int, K: int) -> np.ndarray:
    """Array over x_T [K^|T|, K] (new label last) -> flat array over x_{T+v} in node order."""
    nodes = nodes_of(mask)
    pos = sum(1 for u in nodes if u < v)
    return np.moveaxis(values.reshape((K,) * len(nodes) + (K,)), -1, pos).reshape(-1)


@dataclass
class DPSolution:
    value: float  # optimal expected discounted reward V_DP
    action: dict[int, np.ndarray]  # tested-set mask -> optimal next node for each history [K^|T|]


def solve_optimal(joint: JointTable, frontier: Frontier, reward: np.ndarray, beta: float) -> DPSolution:
    """Backward DP over the tested sets reachable under the frontier rule."""
    K, n = joint.K, joint.n
    layers: list[set[int]] = [{0}]
    for _ in range(n):  # reachable tested sets, layer by size
        layers.append({m | 1 << int(v) for m in layers[-1] for v in _mask_allowed(frontier, m)})
    W = {m: np.zeros(K**n) for m in layers[n]}
    action: dict[int, np.ndarray] = {}
    for size in range(n - 1, -1, -1):
        for mask in layers[size]:
            best = np.full(K**size, -np.inf)
            arg = np.zeros(K**size, dtype=np.int64)
            for v in _mask_allowed(frontier, mask):
                nxt = mask | 1 << int(v)
                pos = sum(1 for u in nodes_of(mask) if u < v)
                w_next = np.moveaxis(W[nxt].reshape((K,) * (size + 1)), pos, -1).reshape(-1, K)
                q = joint.with_node(mask, int(v)) @ reward + beta * w_next.sum(1)
                better = q > best
                best[better], arg[better] = q[better], v
            W[mask], action[mask] = best, arg
    return DPSolution(value=float(W[0][0]), action=action)


def evaluate_exact(policy: Policy, joint: JointTable, frontier: Frontier, reward: np.ndarray) -> np.ndarray:
    """Exact expected reward of each step, E[r_t] for t = 0..n-1 (forward pass over tested sets)."""
    K, n = joint.K, joint.n
    expected = np.zeros(n)
    lam = {0: np.ones(1)}
    for t in range(n):
        nxt: dict[int, np.ndarray] = {}
        for mask, lam_T in lam.items():
            status = joint.status_rows(mask)
            allowed = np.zeros((len(status), n), dtype=bool)
            allowed[:, _mask_allowed(frontier, mask)] = True
            state = FrontierState(status=status, allowed=allowed, posterior=lambda m=mask: joint.posterior(m))
            pi = policy.probs(state)  # [K^|T|, n]
            for v in np.flatnonzero(pi.any(0)):
                w = lam_T * pi[:, v]
                expected[t] += w @ joint.with_node(mask, int(v)) @ reward
                grown = _extend(np.repeat(w[:, None], K, axis=1), mask, int(v), K)
                key = mask | 1 << int(v)
                nxt[key] = nxt[key] + grown if key in nxt else grown
        lam = nxt
    return expected
