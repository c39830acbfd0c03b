"""The IAMFM mechanism: multi-fidelity SH for theta_hat, VCG payments by cold or warm counterfactuals.

Liu et al., *Incentive-Aware Multi-Fidelity Optimization for Generative Advertising in Large Language
Models* (arXiv:2604.06263): VCG with Clarke pivot on an estimated optimum, payments by Active
Counterfactual Optimisation (``modules/iamfm/payments.py``). Per instance, budget and payment rule the
run is audited against the simulator's exact means and exact VCG
(``modules/iamfm/vcg.py`` on the true means): payment error |p_hat - p|, new generation cost per
payment, eps_opt / eps_est / eps_cf, the IR slack u_i + eps_opt + eps_est,i + eps_cf,i, and for the
``audited`` rule the largest misreport gain on the grid with its bound
eps_opt + eps_est(v) + eps_est(b') + 2 eps_cf (common random numbers: the misreport reruns the
mechanism on the same streams).

Claims 4 (ACO cost and error ratios) and 5 (approximate IR and SP shrinking with the budget) are
summarised here. A solver; under DDP the instances shard over ranks.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat

from modules.base import AtlasModule
from modules.iamfm.cache import simulator_caches
from modules.iamfm.payments import audit
from modules.stats import mean_std

Rule = Literal["warm", "cold"]


class IAMFMMechanism(AtlasModule):
    needs: ClassVar[str] = "ad_configuration"
    models = ("none",)
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        budgets: Annotated[list[PositiveFloat], Field(min_length=1)] = (1000.0,),
        rules: Annotated[list[Rule], Field(min_length=1)] = ("warm", "cold"),
        audited: Rule = "warm",
        misreports: list[NonNegativeFloat] = (0.0, 0.5, 1.5, 3.0),
        eta: Annotated[int, Field(ge=2)] = 3,
        fresh: Annotated[float, Field(ge=0, lt=1)] = 0.1,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        if audited not in rules:
            raise ValueError(f"audited={audited} is not one of rules={list(rules)}")
        self.budgets, self.rules, self.audited = list(budgets), list(rules), audited
        self.misreports, self.eta, self.fresh = [c for c in misreports if c != 1.0], eta, fresh

    def test_step(self, batch, batch_idx):
        index, inst = batch
        row = {}
        for B in self.budgets:
            for rule in self.rules:
                caches = simulator_caches(inst, lambda name, s=f"B{B:g}": self.task.rng(index, f"{s}/{name}"))
                grid = self.misreports if rule == self.audited else []
                fresh = max(1, int(self.fresh * B / inst.costs[inst.target])) if self.fresh else 0
                result = audit(inst, B, caches, rule, grid, self.eta, fresh)
                row |= {f"B{B:g}/{rule}/{k}": v for k, v in result.items()}
        self.record(index, **row)

    def summarize(self, rows):
        out = {"iamfm/instances": len(rows["index"])}
        gains, negative = [], []
        for B in self.budgets:
            for rule in self.rules:
                key = f"B{B:g}/{rule}"
                out |= {
                    f"iamfm/{key}/{name}": mean_std(rows[f"{key}/{name}"].ravel())[0]
                    for name in ("payment_error", "new_cost", "regret", "eps_est", "eps_cf")
                }
                out[f"iamfm/{key}/payment_error_std"] = mean_std(rows[f"{key}/payment_error"].ravel())[1]
            if {"warm", "cold"} <= set(self.rules):
                for name in ("new_cost", "payment_error"):
                    out[f"iamfm/B{B:g}/aco_{name}_ratio"] = (
                        out[f"iamfm/B{B:g}/warm/{name}"] / out[f"iamfm/B{B:g}/cold/{name}"]
                    )
            key = f"B{B:g}/{self.audited}"
            utility, slack = rows[f"{key}/utility"], rows[f"{key}/ir_slack"]
            out |= {
                f"iamfm/{key}/ir_slack_min": slack.min(),
                f"iamfm/{key}/negative_utility_frac": (utility < 0).mean(),
            }
            negative.append(out[f"iamfm/{key}/negative_utility_frac"])
            if self.misreports:
                gain, bound = rows[f"{key}/misreport_gain"], rows[f"{key}/misreport_bound"]
                exact = rows[f"{key}/misreport_bound_exact"]
                out |= {
                    f"iamfm/{key}/within_exact_bound_frac": (gain <= exact + 1e-9).mean(),
                    f"iamfm/{key}/misreport_gain": gain.mean(),
                    f"iamfm/{key}/misreport_gain_max": gain.max(),
                    f"iamfm/{key}/within_bound_frac": (gain <= bound + 1e-9).mean(),
                }
                gains.append(out[f"iamfm/{key}/misreport_gain"])
        out["claim/ir_slack_min"] = min(
            out[f"iamfm/B{B:g}/{self.audited}/ir_slack_min"] for B in self.budgets
        )
        if {"warm", "cold"} <= set(self.rules):
            for name in ("new_cost", "payment_error"):
                out[f"claim/aco_{name}_ratio"] = max(
                    out[f"iamfm/B{B:g}/aco_{name}_ratio"] for B in self.budgets
                )
        if gains:
            out["claim/within_bound_frac_min"] = min(
                out[f"iamfm/B{B:g}/{self.audited}/within_bound_frac"] for B in self.budgets
            )
            out["claim/within_exact_bound_frac_min"] = min(
                out[f"iamfm/B{B:g}/{self.audited}/within_exact_bound_frac"] for B in self.budgets
            )
            if len(self.budgets) > 1:
                out["claim/misreport_gain_increase_max"] = float(np.max(np.diff(gains)))
                out["claim/negative_utility_frac_drop"] = negative[0] - negative[-1]
        self.plot(out)
        return out

    def plot(self, out):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for rule in self.rules:
            cost = [out[f"iamfm/B{B:g}/{rule}/new_cost"] for B in self.budgets]
            error = [out[f"iamfm/B{B:g}/{rule}/payment_error"] for B in self.budgets]
            ax.plot(cost, error, marker="o", label=rule)
            for B, c, e in zip(self.budgets, cost, error):
                ax.annotate(f"B={B:g}", (c, e), fontsize=7)
        ax.set(
            xlabel="new generation cost per payment",
            ylabel="mean |p_hat - p|",
            title=f"VCG payments: warm (ACO) vs cold ({out['iamfm/instances']} seeds)",
        )
        ax.legend()
        self.save_figure(fig, "payment_error_vs_cost")
