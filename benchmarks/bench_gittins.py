"""Speed of the Gittins frontier policy (Choo et al., arXiv:2505.21671) on random recursive trees.

Measured in one run, on one core:

* ``sum-product``: exact P(X_v | X_p(v)) for every edge (the oracle), O(n);
* ``indices``: every index by the exact piecewise-linear recursion (modules/gittins/index.py);
* ``rollout``: evaluating the policy on R realisations -- precomputed indices, then a heap lookup per step;
* ``naive``: the reference that re-solves at every step -- absorb the observed labels into the MRF,
  rerun sum-product and the index recursion on the untested forest, test the best frontier root --
  on one realisation (its decisions must equal the fast policy's).

Ratios are naive / fast per realisation (fast = oracle + indices + one rollout). Run:
``python benchmarks/bench_gittins.py`` (``make bench``).
"""

import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.gittins.frontier import tree_parents
from experiments.gittins.graphs import random_recursive_tree
from experiments.gittins.inference import GraphInference
from experiments.gittins.instance import Instance, build_instance
from experiments.gittins.mrf import PairwiseMRF, covariate_mrf, n_theta
from experiments.gittins.rollout import rollout_priority
from modules.gittins.index import gittins_indices
from modules.gittins.policies import GittinsPolicy

BETA, REWARD, D = 0.9, np.array([0.0, 1.0]), 5


def tree_instance(n: int, realisations: int, rng: np.random.Generator) -> Instance:
    graph = random_recursive_tree(n, rng)
    nu, npair = n_theta(2, D)
    mrf = covariate_mrf(graph, rng.integers(0, 2, (n, D)), rng.normal(size=nu), rng.normal(size=npair), 2)
    return build_instance(f"tree{n}", graph, mrf, REWARD, BETA, rng, realisations, exact=False)


def naive_rollout(inst: Instance, labels: np.ndarray) -> np.ndarray:
    """Re-solve at every step: condition on the observations, recompute the oracle and all indices."""
    mrf, status, order = inst.mrf, np.full(inst.n, -1), []
    for _ in range(inst.n):
        untested = np.flatnonzero(status < 0)
        local = {int(v): i for i, v in enumerate(untested)}
        unary = mrf.unary[untested].copy()  # evidence absorbed: psi_v(.) + psi_uv(x_u, .) for tested u
        keep, edges = [], []
        for e, (u, v) in enumerate(mrf.edges):
            if status[u] < 0 and status[v] < 0:
                keep.append(e)
                edges.append((local[u], local[v]))
            elif status[u] >= 0 and status[v] < 0:
                unary[local[v]] += mrf.pairwise[e, status[u], :]
            elif status[v] >= 0 and status[u] < 0:
                unary[local[u]] += mrf.pairwise[e, :, status[v]]
        residual = nx.empty_graph(len(untested))
        residual.add_edges_from(edges)
        inference = GraphInference(
            PairwiseMRF(unary, np.array(edges).reshape(-1, 2), mrf.pairwise[keep]), residual
        )
        tested = status >= 0
        allowed = np.flatnonzero(
            inst.frontier.allowed(tested[None])[0]
        )  # one frontier root per residual tree
        roots = np.array([local[int(v)] for v in allowed])
        index = gittins_indices(tree_parents(residual, roots), inference, inst.reward, inst.beta).root
        best = int(untested[roots[np.argmax(index[roots])]])
        order.append(best)
        status[best] = labels[best]
    return np.array(order)


def oracle_tables(inst: Instance) -> list[np.ndarray]:
    """A fresh sum-product, then P(X_v | X_p(v)) for every tree edge."""
    inference = GraphInference(inst.mrf, inst.graph)
    return [
        inference.conditional(v, int(p))
        for v, p in enumerate(tree_parents(inst.graph, inst.frontier.roots))
        if p >= 0
    ]


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    rng = np.random.default_rng(0)
    R = 100
    print(f"Gittins frontier policy on random recursive trees (binary labels, beta = {BETA}, one core)")
    header = (
        f"{'n':>6} {'sum-product s':>14} {'indices s':>10} {'rollout s':>10} {'per real. s':>12} "
        f"{'naive s':>9} {'naive/fast':>11} {'same tests':>11}"
    )
    print(header)
    print("-" * len(header))
    for n in (50, 100, 200, 1000, 3000, 10000):
        inst = tree_instance(n, R, rng)
        _, t_oracle = timed(oracle_tables, inst)
        policy, t_index = timed(GittinsPolicy, inst)
        order, t_roll = timed(rollout_priority, policy, inst.realisations, inst.frontier)
        fast = t_oracle + t_index + t_roll / R
        if n <= 200:
            naive, t_naive = timed(naive_rollout, inst, inst.realisations[0])
            same = "yes" if np.array_equal(naive, order[0]) else "NO"
            tail = f"{t_naive:>9.2f} {t_naive / fast:>10.0f}x {same:>11}"
        else:
            tail = f"{'-':>9} {'-':>11} {'-':>11}"
        print(f"{n:>6} {t_oracle:>14.3f} {t_index:>10.3f} {t_roll:>10.3f} {fast:>12.3f} {tail}")
    print(
        f"(rollout = {R} realisations; per real. = sum-product + indices + rollout / {R}; "
        f"naive = one realisation re-solved at every step)"
    )


if __name__ == "__main__":
    main()
