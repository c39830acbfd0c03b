"""Monte-Carlo evaluation of frontier policies on sampled realisations.

Choo et al. (arXiv:2505.21671) evaluate large instances on realisations x ~ P sampled by the chain
rule, shared by all policies (paired comparison). A rollout runs a policy on R realisations at once
and returns the reward earned at every step, ``rewards[r, t] = r(x^r_{v_t})``.

Two execution paths, same decisions:

* any :class:`~experiments.gittins.frontier.Policy`: all R rows advance in lock-step; the policy
  sees a :class:`FrontierState` and, when it asks, the exact posterior of every node given the
  row's observations (recomputed only in the component where the row's last test happened);
* a :class:`PriorityPolicy` (static priorities, e.g. Gittins): a heap per row, O(n log n) per
  realisation instead of O(n^2) -- the table lookup the paper's online policy is.
"""

from __future__ import annotations

import heapq

import numpy as np

from experiments.gittins.frontier import Frontier, FrontierState, Policy, PriorityPolicy
from experiments.gittins.inference import GraphInference


def rollout_priority(policy: PriorityPolicy, labels: np.ndarray, frontier: Frontier) -> np.ndarray:
    """Tested node sequence of a static-priority policy on each realisation: [R, n] node ids."""
    n = labels.shape[1]
    children: list[list[int]] = [[] for _ in range(n)]
    for v, p in enumerate(policy.tree_parent):
        if p >= 0:
            children[p].append(v)
    order = np.empty(labels.shape, dtype=np.int64)
    start = [(-float(policy.root_priority[rho]), int(rho)) for rho in frontier.roots]
    heapq.heapify(start)
    for r, x in enumerate(labels):
        heap, t = list(start), 0
        while heap:
            _, v = heapq.heappop(heap)
            order[r, t], t = v, t + 1
            for c in children[v]:
                heapq.heappush(heap, (-float(policy.priority[c, x[v]]), c))
    return order


def rollout(
    policy: Policy,
    labels: np.ndarray,
    frontier: Frontier,
    inference: GraphInference,
    rng: np.random.Generator,
) -> np.ndarray:
    """Tested node sequence of ``policy`` on realisations ``labels`` [R, n] -> [R, n] node ids."""
    if isinstance(policy, PriorityPolicy):
        return rollout_priority(policy, labels, frontier)
    R, n = labels.shape
    rows = np.arange(R)
    status = np.full((R, n), -1, dtype=np.int64)
    allowed = np.tile(frontier.is_root, (R, 1))
    post = np.tile(inference.marginals(), (R, 1, 1))  # [R, n, K] exact posterior cache
    stale = np.zeros((R, len(inference.components)), dtype=bool)  # row's component changed since

    def posterior() -> np.ndarray:
        for c in np.flatnonzero(stale.any(0)):
            r = np.flatnonzero(stale[:, c])
            post[np.ix_(r, inference.components[c].nodes)] = inference.posterior(status[r], c)
        stale[:] = False
        return post

    order = np.empty((R, n), dtype=np.int64)
    for t in range(n):
        pi = policy.probs(FrontierState(status=status, allowed=allowed, posterior=posterior))
        cum = np.cumsum(pi, axis=1)
        chosen = np.minimum((cum < rng.random(R)[:, None] * cum[:, -1:]).sum(1), n - 1)
        if not np.all(allowed[rows, chosen]):
            raise RuntimeError(f"policy {policy.name} chose a node outside the frontier")
        order[:, t] = chosen
        status[rows, chosen] = labels[rows, chosen]
        frontier.advance(allowed, chosen, status >= 0)
        stale[rows, inference.component[chosen]] = True
    return order
