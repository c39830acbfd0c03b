"""Paired evaluation of frontier policies: Gittins against greedy, random and the exact optimum.

Choo et al., *Adaptive Frontier Exploration on Graphs with Applications to Network-Based Disease
Testing* (NeurIPS 2025, arXiv:2505.21671), experiments 1-3. One ``test_step`` = one instance:
every policy in ``policies`` is evaluated on it -- exactly by enumeration when the instance is small
(:func:`experiments.gittins.exact.evaluate_exact`), otherwise on the instance's shared Monte-Carlo
realisations (:func:`experiments.gittins.rollout.rollout`) -- so differences are paired. Recorded
per instance and policy: expected discounted and undiscounted reward after k tests for every k
(curves), the final values, values at budgets k < n, and the fraction of the expected total
reward ("positives" for binary labels) found with half the nodes tested.

Every policy draws its coin flips from its own named stream ``task.rng(index, "policy/<name>")``, so
adding or removing a policy never changes another's numbers. Paired comparisons are reported per
graph family (``task.blocks``) with a 95% Student-t interval (:func:`modules.stats.paired_ci`):
over instances when the family is evaluated exactly, over the pooled shared realisations
otherwise. An instance *discriminates* when greedy and the Gittins policy (or greedy and the exact
optimum, when it is computed) earn different values; the share of such instances is reported,
since an instance on which greedy is already optimal cannot tell the policies apart.

A solver: no training. Under DDP the instances shard over ranks; ``summarize`` sees all of them.
"""

from typing import Annotated, ClassVar, Literal

import numpy as np
from matplotlib.figure import Figure
from pydantic import Field

from experiments.gittins.exact import evaluate_exact
from experiments.gittins.instance import Instance
from experiments.gittins.rollout import rollout
from modules.base import AtlasModule
from modules.gittins.policies import POLICIES
from modules.stats import paired_ci

PolicyName = Literal["gittins", "gittins_replan", "greedy", "random", "optimal"]
TIE = 1e-9  # values closer than this (relative to max(1, V)) count as equal


def policy_steps(
    policy, instance: Instance, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Expected reward of each step [n], and the per-realisation rewards [R, n] (None when exact)."""
    if instance.exact:
        return evaluate_exact(policy, instance.joint, instance.frontier, instance.reward), None
    labels = instance.realisations
    order = rollout(policy, labels, instance.frontier, instance.inference, rng)
    rewards = instance.reward[np.take_along_axis(labels, order, axis=1)]  # [R, n]
    return rewards.mean(0), rewards


class FrontierPolicies(AtlasModule):
    needs: ClassVar[str] = "frontier_exploration"
    models = ("none",)
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        policies: Annotated[list[PolicyName], Field(min_length=1)] = ("gittins", "greedy", "random"),
        budgets: list[Annotated[float, Field(gt=0, le=1)]] = (0.1, 0.25, 0.5),
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.policies, self.budgets = list(policies), list(budgets)

    def make_policy(self, name: str, instance: Instance):
        return POLICIES[name](instance)

    def test_step(self, batch, batch_idx):
        index, inst = batch
        n, width = inst.n, self.task.max_nodes
        discount = inst.beta ** np.arange(n)
        half = int(np.ceil(n / 2))
        row = {
            "n": n,
            "beta": inst.beta,
            "labels": inst.K,
            "exact": float(inst.exact),
            "forest": float(inst.is_forest),
            "family": self.task.family(index),
        }
        for name in self.policies:
            policy = self.make_policy(name, inst)
            steps, rewards = policy_steps(policy, inst, self.task.rng(index, f"policy/{name}"))
            disc, undisc = np.cumsum(steps * discount), np.cumsum(steps)
            row |= {
                f"{name}/discounted": disc[-1],
                f"{name}/undiscounted": undisc[-1],
                f"{name}/found_at_half": undisc[half - 1] / undisc[-1] if undisc[-1] > 0 else 1.0,
                f"{name}/positives_at_half": undisc[half - 1],
                f"{name}/curve_discounted": np.pad(disc, (0, width - n), mode="edge"),
                f"{name}/curve_undiscounted": np.pad(undisc, (0, width - n), mode="edge"),
                # [R] discounted reward per shared realisation (exact instances: the exact value R times)
                f"{name}/samples": np.full(self.task.samples, disc[-1])
                if rewards is None
                else rewards @ discount,
            }
            for f in self.budgets:
                k = max(1, int(np.ceil(f * n)))
                row |= {
                    f"{name}/discounted_at_{round(100 * f)}pct": disc[k - 1],
                    f"{name}/undiscounted_at_{round(100 * f)}pct": undisc[k - 1],
                }
            if name == "gittins":
                row["gittins/index_value"] = policy.indices.value
            if name == "optimal":
                row["optimal/dp_value"] = policy.solution.value
        self.record(index, **row)

    def comparisons(self) -> list[tuple[str, str]]:
        """(Gittins variant, baseline) pairs reported as paired differences."""
        ours = [p for p in self.policies if p.startswith("gittins")]
        return [(g, other) for g in ours for other in self.policies if other not in ours]

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        out = {"instances": len(rows["n"]), "instances/exact": rows["exact"].sum()}
        budget_keys = [
            f"{kind}_at_{round(100 * f)}pct" for f in self.budgets for kind in ("discounted", "undiscounted")
        ]
        for name in self.policies:
            out[f"{name}/final_discounted"] = rows[f"{name}/discounted"].mean()
            out[f"{name}/final_undiscounted"] = rows[f"{name}/undiscounted"].mean()
            for key in ("found_at_half", "positives_at_half", *budget_keys):
                out[f"{name}/{key}"] = rows[f"{name}/{key}"].mean()
        if "optimal" in self.policies:
            out |= self._gaps_to_optimal(rows)
        out |= self._discriminating(rows)
        out |= self._paired(rows, np.ones(len(rows["n"]), dtype=bool), "paired")
        families = np.unique(rows["family"]).astype(int)
        if len(families) > 1:
            for b in families:
                out |= self._paired(rows, rows["family"] == b, f"paired/family{b}")
            for ours, other in self.comparisons():  # the family where ours does worst
                key = f"{ours}_minus_{other}"
                out[f"paired/worst_family/{key}"] = min(out[f"paired/family{b}/{key}"] for b in families)
        if "gittins" in self.policies:
            forest = (rows["forest"] > 0) & (rows["exact"] > 0)
            if forest.any():  # Whittle's V = Phi_roots(0) against exact evaluation of the index policy
                v = rows["gittins/discounted"][forest]
                out["gittins/index_value_gap"] = np.max(
                    np.abs(rows["gittins/index_value"][forest] - v) / np.maximum(1.0, v)
                )
        self._plot(rows)
        return out

    def _discriminating(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        """Share of instances on which greedy's value differs from the optimum's (or Gittins')."""
        if "greedy" not in self.policies:
            return {}
        best = next((p for p in ("optimal", "gittins") if p in self.policies), None)
        if best is None:
            return {}
        v, g = rows[f"{best}/discounted"], rows["greedy/discounted"]
        return {"instances/discriminating": np.mean(np.abs(v - g) > TIE * np.maximum(1.0, np.abs(v)))}

    def _gaps_to_optimal(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        """|V_pi - V_DP| / max(1, V_DP) (max) and (V_DP - V_pi) / V_DP (mean, max) per policy."""
        dp, out = rows["optimal/dp_value"], {}
        for name in self.policies:
            v = rows[f"{name}/discounted"]
            rel = np.abs(v - dp) / np.maximum(1.0, dp)
            out[f"{name}/max_abs_gap"] = rel.max()
            out[f"{name}/mean_rel_gap"] = np.mean((dp - v) / dp)
            out[f"{name}/max_rel_gap"] = np.max((dp - v) / dp)
            multi = rows["labels"] > 2
            if multi.any():
                out[f"{name}/max_abs_gap_multilabel"] = rel[multi].max()
        return out

    def _paired(self, rows: dict[str, np.ndarray], keep: np.ndarray, prefix: str) -> dict[str, float]:
        """Gittins variant minus baseline on the instances ``keep``: mean, worst instance and a 95%
        paired interval -- over instances when all are exact, over pooled realisations otherwise."""
        out, exact = {}, bool(rows["exact"][keep].all())
        for ours, other in self.comparisons():
            a, b = rows[f"{ours}/discounted"][keep], rows[f"{other}/discounted"][keep]
            key = f"{prefix}/{ours}_minus_{other}"
            out[key], out[f"{key}_min"] = float(np.mean(a - b)), float(np.min(a - b))
            if not exact:
                a, b = rows[f"{ours}/samples"][keep].ravel(), rows[f"{other}/samples"][keep].ravel()
            if len(a) > 1:
                ci = paired_ci(a, b)
                out[f"{key}_lower"], out[f"{key}_upper"] = ci.lower, ci.upper
        return out

    def _plot(self, rows: dict[str, np.ndarray]) -> None:
        """Mean reward after k tests per policy (smaller instances' curves hold their final value)."""
        fig = Figure(figsize=(10, 3.8))
        axes = fig.subplots(1, 2)
        k = np.arange(1, self.task.max_nodes + 1)
        for name in self.policies:
            for ax, kind in zip(axes, ("discounted", "undiscounted")):
                style = "--" if name == "optimal" else "-"  # it coincides with Gittins on forests
                ax.plot(k, rows[f"{name}/curve_{kind}"].mean(0), style, label=name)
        for ax, kind in zip(axes, ("discounted", "undiscounted")):
            ax.set(xlabel="tests k", ylabel=f"expected {kind} reward", title=f"{kind} reward after k tests")
            ax.grid(alpha=0.3)
        axes[0].legend()
        fig.suptitle(f"{len(rows['n'])} instances, mean over instances")
        self.save_figure(fig, "gittins_curves")


class ExactFrontierPolicies(FrontierPolicies):
    """The same evaluation with the exact optimum (``optimal``) among the policies: it runs on tasks
    whose instances can all be enumerated (``ExactGittinsTask``), and reports gaps to the optimum."""

    needs = "frontier_exploration_exact"
