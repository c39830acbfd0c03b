"""Cost of the Gittins index computation: time, oracle calls and memory against tree size.

Choo et al. (arXiv:2505.21671) state O(n^2 |Sigma|^2) time, O(n |Sigma|^2) oracle calls and
O(n^2 |Sigma|) space for all indices of an n-node tree. One ``test_step`` = one tree: the index
recursion of :mod:`modules.gittins.index` is timed (best of ``repeats``) with an oracle that counts
the numbers it hands out (a K x K table P(X_v | X_p) per non-root, K marginals per root), and the
peak number of floats held by live piecewise-linear functions is recorded. The exact sum-product
that answers those queries for all edges is timed separately. On a non-tree graph the recursion
runs on the BFS trees from the roots, as the policy does. ``summarize`` fits the log-log slope
of time against n and reports calls / (n K^2) and peak floats / (n^2 K).

A solver: no training. Under DDP the trees shard over ranks (times stay per-process).
"""

import time
from typing import Annotated

import numpy as np
from matplotlib.figure import Figure
from pydantic import Field

from experiments.gittins.frontier import tree_parents
from experiments.gittins.inference import GraphInference
from modules.base import AtlasModule
from modules.gittins.index import ConditionalOracle, gittins_indices


class CountingOracle:
    """Forwards queries to ``oracle`` and counts the probabilities returned."""

    def __init__(self, oracle: ConditionalOracle):
        self.oracle, self.calls = oracle, 0

    def conditional(self, child: int, parent: int) -> np.ndarray:
        table = self.oracle.conditional(child, parent)
        self.calls += table.size
        return table

    def marginal(self, v: int) -> np.ndarray:
        p = self.oracle.marginal(v)
        self.calls += p.size
        return p


class IndexComplexity(AtlasModule):
    needs = "frontier_exploration"
    models = ("none",)
    stages = ("test",)

    def __init__(self, task, model=None, repeats: Annotated[int, Field(ge=1)] = 3):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.repeats = repeats

    def test_step(self, batch, batch_idx):
        index, inst = batch
        parent = tree_parents(inst.graph, inst.frontier.roots)  # the graph itself on forests, else BFS trees
        seconds, oracle = [], None
        for _ in range(self.repeats):
            oracle = CountingOracle(inst.inference)
            start = time.perf_counter()
            indices = gittins_indices(parent, oracle, inst.reward, inst.beta)
            seconds.append(time.perf_counter() - start)
        start = time.perf_counter()  # the oracle itself: a fresh sum-product, then every edge's table
        fresh = GraphInference(inst.mrf, inst.graph)
        for v in np.flatnonzero(parent >= 0):
            fresh.conditional(int(v), int(parent[v]))
        oracle_seconds = time.perf_counter() - start
        self.record(
            index,
            n=inst.n,
            K=inst.K,
            seconds=min(seconds),
            oracle_seconds=oracle_seconds,
            oracle_calls=oracle.calls,
            peak_floats=indices.peak_floats,
        )

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        n, K = rows["n"], rows["K"]
        log_n = np.log(n)
        out = {
            "complexity/slope": np.polyfit(log_n, np.log(rows["seconds"]), 1)[0],
            "complexity/oracle_slope": np.polyfit(log_n, np.log(rows["oracle_seconds"]), 1)[0],
            "complexity/max_oracle_ratio": np.max(rows["oracle_calls"] / (n * K**2)),
            "complexity/max_memory_ratio": np.max(rows["peak_floats"] / (n**2 * K)),
            "complexity/max_floats_per_node": np.max(rows["peak_floats"] / n),
        }
        for size, t in zip(n, rows["seconds"]):
            out[f"complexity/seconds_n{int(size)}"] = t
        fig = Figure(figsize=(5, 3.8))
        ax = fig.subplots()
        ax.loglog(n, rows["seconds"], "o-", label=f"indices (slope {out['complexity/slope']:.2f})")
        ax.loglog(
            n,
            rows["oracle_seconds"],
            "s--",
            label=f"sum-product oracle (slope {out['complexity/oracle_slope']:.2f})",
        )
        ax.set(xlabel="nodes n", ylabel="seconds", title="Gittins index computation on random trees")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        self.save_figure(fig, "gittins_complexity")
        return out
