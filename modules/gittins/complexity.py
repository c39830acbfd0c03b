"""Cost of the Gittins index computation against tree size: counted operations, oracle calls, memory.

Choo et al. (arXiv:2505.21671) state O(n^2 |Sigma|^2) time, O(n |Sigma|^2) oracle calls and
O(n^2 |Sigma|) space for all indices of an n-node tree. One ``test_step`` = one tree: the index
recursion of :mod:`modules.gittins.index` runs with an oracle that counts the conditional queries it
answers and the numbers it hands out, and reports its work (table entries built) and the peak
number of floats held by live piecewise-linear functions. Counts, not seconds: ``metrics.json`` is
the same on every machine (wall-clock times are in ``benchmarks/bench_gittins.py``).

``summarize`` reports, per graph family (``task.blocks``; e.g. random trees and paths), the log-log
slope of work against n, the oracle's numbers / (n K^2) and the peak floats
against the structural bound :func:`~modules.gittins.index.memory_bound` = (K + 1)(K + 2) n and
against the paper's n^2 K. On a non-tree graph the recursion runs on the BFS trees from the roots,
as the policy does.

A solver: no training. Under DDP the trees shard over ranks.
"""

import numpy as np
from matplotlib.figure import Figure

from experiments.gittins.frontier import tree_parents
from modules.base import AtlasModule
from modules.gittins.index import ConditionalOracle, gittins_indices, memory_bound


class CountingOracle:
    """Forwards queries to ``oracle``; counts the queries and the probabilities returned."""

    def __init__(self, oracle: ConditionalOracle):
        self.oracle, self.queries, self.numbers = oracle, 0, 0

    def conditional(self, child: int, parent: int) -> np.ndarray:
        table = self.oracle.conditional(child, parent)
        self.queries, self.numbers = self.queries + 1, self.numbers + table.size
        return table

    def marginal(self, v: int) -> np.ndarray:
        p = self.oracle.marginal(v)
        self.queries, self.numbers = self.queries + 1, self.numbers + p.size
        return p


class IndexComplexity(AtlasModule):
    needs = "frontier_exploration"
    models = ("none",)
    stages = ("test",)

    def __init__(self, task, model=None):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])

    def test_step(self, batch, batch_idx):
        index, inst = batch
        parent = tree_parents(inst.graph, inst.frontier.roots)  # the graph itself on forests, else BFS trees
        oracle = CountingOracle(inst.inference)
        indices = gittins_indices(parent, oracle, inst.reward, inst.beta)
        self.record(
            index,
            n=inst.n,
            K=inst.K,
            family=self.task.family(index),
            work=indices.work,
            oracle_queries=oracle.queries,
            oracle_numbers=oracle.numbers,
            peak_floats=indices.peak_floats,
            memory_bound=memory_bound(inst.n, inst.K),
        )

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        n, K = rows["n"], rows["K"]
        out = {
            "complexity/max_oracle_numbers_ratio": np.max(rows["oracle_numbers"] / (n * K**2)),
            "complexity/max_oracle_queries_per_node": np.max(rows["oracle_queries"] / n),
            "complexity/max_memory_vs_bound": np.max(rows["peak_floats"] / rows["memory_bound"]),
            "complexity/min_memory_vs_bound": np.min(rows["peak_floats"] / rows["memory_bound"]),
            "complexity/max_memory_vs_paper": np.max(rows["peak_floats"] / (n**2 * K)),
        }
        fig = Figure(figsize=(10, 3.8))
        axes = fig.subplots(1, 2)
        for b in np.unique(rows["family"]).astype(int):
            keep = rows["family"] == b
            log_n = np.log(n[keep])
            name = self.task.blocks[b].graph
            out[f"complexity/family{b}/work_slope"] = np.polyfit(log_n, np.log(rows["work"][keep]), 1)[0]
            out[f"complexity/family{b}/memory_slope"] = np.polyfit(
                log_n, np.log(rows["peak_floats"][keep]), 1
            )[0]
            out[f"complexity/family{b}/max_work_per_n2K2"] = np.max(
                rows["work"][keep] / (n[keep] ** 2 * K[keep] ** 2)
            )
            ratio = rows["peak_floats"][keep] / rows["memory_bound"][keep]
            out[f"complexity/family{b}/min_memory_vs_bound"] = ratio.min()
            out[f"complexity/family{b}/max_memory_vs_bound"] = ratio.max()
            slope = out[f"complexity/family{b}/work_slope"]
            axes[0].loglog(n[keep], rows["work"][keep], "o-", label=f"{name} (slope {slope:.2f})")
            axes[1].loglog(n[keep], rows["peak_floats"][keep], "o-", label=f"{name}: peak floats")
            axes[1].loglog(n[keep], rows["memory_bound"][keep], "k--", lw=0.8)
        axes[0].set(xlabel="nodes n", ylabel="table entries built", title="work of the index recursion")
        axes[1].set(xlabel="nodes n", ylabel="floats", title="peak memory (dashed: (K+1)(K+2) n)")
        for ax in axes:
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
        self.save_figure(fig, "gittins_complexity")
        return out
