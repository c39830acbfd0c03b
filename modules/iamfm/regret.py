"""Regret against budget: multi- vs single-fidelity, elimination vs model-based (IAMFM, claims 2-3).

IAMFM (arXiv:2604.06263). For every instance (a paired seed), method and budget B the optimiser runs
on a fresh cache (each method and budget its own named stream) and its simple regret
W(theta*) - W(theta_hat) is measured in true values. Methods:

* ``uniform``: the same number of target generations for every configuration;
* ``sh_single``: successive halving at the target fidelity only;
* ``sh``: multi-fidelity successive halving (cheap fidelities in the early rungs);
* ``gp_ucb``: MF-GP-UCB over AR(1) co-kriging (``modules/iamfm/cokriging.py``).

Every ``comparisons`` pair (a, b) reports the mean paired difference regret_a - regret_b per budget,
its one-sided upper 95% bound, and the number of sign changes of the mean over the budgets.
A solver; under DDP the seeds shard over ranks.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from modules.base import AtlasModule
from modules.iamfm.cache import EvaluationCache, simulator_caches
from modules.iamfm.cokriging import CoKriging, mf_gp_ucb
from modules.iamfm.elimination import sh_schedule, successive_halving, uniform_allocation
from modules.stats import mean_std, one_sided_upper

Method = Literal["uniform", "sh_single", "sh", "gp_ucb"]


class RegretCurves(AtlasModule):
    needs: ClassVar[str] = "ad_configuration"
    models = ("none",)
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        methods: Annotated[list[Method], Field(min_length=1)] = ("uniform", "sh"),
        budgets: Annotated[list[PositiveFloat], Field(min_length=1)] = (600.0,),
        comparisons: list[tuple[Method, Method]] = (("sh", "uniform"),),
        eta: Annotated[int, Field(ge=2)] = 3,
        gp_batch: PositiveInt = 10,
        gp_beta: PositiveFloat = 2.0,
        gp_gamma: PositiveFloat = 0.2,
        gp_length: PositiveFloat = 0.5,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        for a, b in comparisons:
            if a not in methods or b not in methods:
                raise ValueError(f"comparisons: ({a}, {b}) names a method not in methods={list(methods)}")
        self.methods, self.budgets, self.comparisons = list(methods), list(budgets), list(comparisons)
        self.eta, self.surrogate = eta, CoKriging(length=gp_length)
        self.gp = {"batch": gp_batch, "beta": gp_beta, "gamma": gp_gamma}

    def optimise(self, method: str, cache: EvaluationCache, inst, weights: np.ndarray, budget: float) -> int:
        K = len(inst.configs)
        if method == "uniform":
            return uniform_allocation(cache, weights, budget)
        if method == "gp_ucb":
            return mf_gp_ucb(cache, weights, inst.configs, budget, surrogate=self.surrogate, **self.gp)
        schedule = sh_schedule(K, inst.costs, budget, self.eta, multi_fidelity=method == "sh")
        return successive_halving(cache, weights, schedule, self.eta)

    def test_step(self, batch, batch_idx):
        index, inst = batch
        weights = inst.weights(inst.values)
        W = inst.welfare(weights)
        row = {}
        for method in self.methods:
            for B in self.budgets:
                cache = simulator_caches(inst, lambda name: self.task.rng(index, name))(f"{method}/B{B:g}")
                arm = self.optimise(method, cache, inst, weights, B)
                row[f"{method}/B{B:g}/regret"] = W.max() - W[arm]
                row[f"{method}/B{B:g}/cost"] = cache.cost
        self.record(index, **row)

    def summarize(self, rows):
        out = {"iamfm/instances": len(rows["index"])}
        for method in self.methods:
            for B in self.budgets:
                mean, std = mean_std(rows[f"{method}/B{B:g}/regret"])
                out |= {
                    f"iamfm/regret/{method}/B{B:g}": mean,
                    f"iamfm/regret_std/{method}/B{B:g}": std,
                    f"iamfm/cost/{method}/B{B:g}": rows[f"{method}/B{B:g}/cost"].mean(),
                }
        for a, b in self.comparisons:
            diffs = [rows[f"{a}/B{B:g}/regret"] - rows[f"{b}/B{B:g}/regret"] for B in self.budgets]
            uppers = [one_sided_upper(d) for d in diffs]
            means = np.array([d.mean() for d in diffs])
            for B, d, u in zip(self.budgets, diffs, uppers):
                out |= {f"iamfm/{a}_minus_{b}/B{B:g}": d.mean(), f"iamfm/{a}_minus_{b}_upper/B{B:g}": u}
            signs = np.sign(means[means != 0])
            out |= {
                f"claim/{a}_minus_{b}_upper_max": max(uppers),
                f"claim/{a}_vs_{b}_sign_changes": float(np.sum(signs[1:] != signs[:-1])),
            }
        self.plot(out)
        return out

    def plot(self, out):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for method in self.methods:
            mean = [out[f"iamfm/regret/{method}/B{B:g}"] for B in self.budgets]
            sem = [
                out[f"iamfm/regret_std/{method}/B{B:g}"] / np.sqrt(out["iamfm/instances"])
                for B in self.budgets
            ]
            ax.errorbar(self.budgets, mean, yerr=sem, marker="o", capsize=3, label=method)
        ax.set(
            xscale="log",
            xlabel="budget (generation cost)",
            ylabel="simple regret W(θ*) - W(θ̂)",
            title=f"IAMFM regret vs budget ({out['iamfm/instances']} seeds)",
        )
        ax.legend()
        self.save_figure(fig, "regret_vs_budget")
