"""The exclusion map: which groups every agent ignores, over alpha / beta x gamma / beta (claim 3).

LLM Active Alignment (arXiv:2602.06836): populations -- especially of strategic ("reasoning") agents,
modelled here by a large alpha / beta, i.e. weak anchoring to the base alignment -- exclude some
subpopulations (sum_k w_kd = 0), and exclusion occupies structured regions of the incentive space.
One ``test_step`` = one replica: at every grid cell the closed-form NE and, as ground truth,
best-response dynamics from random starts. Recorded per cell: the number of excluded groups
(closed form and dynamics), whether the dynamics' excluded set is exactly the m least-approved
groups (smallest a = M^T rho) -- and the m smallest (rho) -- and the gap between the two solutions.
A solver: under DDP the replicas shard over ranks.
"""

from dataclasses import replace
from typing import ClassVar

import numpy as np
from pydantic import PositiveFloat

from experiments.population_ne.game import excluded_groups
from modules.base import AtlasModule
from modules.population_ne.closed_form import closed_form_ne
from modules.population_ne.dynamics import run_dynamics


def lowest_first(excluded: np.ndarray, score: np.ndarray) -> bool:
    """Whether the excluded groups (bool [D]) are exactly the ``excluded.sum()`` lowest by ``score``."""
    return bool(set(np.flatnonzero(excluded)) == set(np.argsort(score, kind="stable")[: excluded.sum()]))


class ExclusionMap(AtlasModule):
    needs: ClassVar[str] = "exclusion_map"
    models = ("none",)
    stages = ("test",)

    def __init__(self, task, model=None, eps: PositiveFloat = 1e-9, tol: PositiveFloat = 1e-14):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.eps, self.tol = eps, tol

    def test_step(self, batch, batch_idx):
        index, inst = batch
        base, u = inst["game"], self.task.utility
        shape = (len(self.task.gamma_grid), len(self.task.alpha_grid))  # rows gamma, columns alpha
        closed, dynamic, by_a, by_rho, gap = (np.zeros(shape) for _ in range(5))
        for i, gamma in enumerate(self.task.gamma_grid):
            for j, alpha in enumerate(self.task.alpha_grid):
                game = replace(base, alpha=alpha, gamma=gamma)
                W = closed_form_ne(game, u)
                B, _, _ = run_dynamics(game, u, inst["starts"], "best_response", tol=self.tol)
                out = excluded_groups(B, self.eps)  # [R, D] per start
                closed[i, j] = excluded_groups(W, self.eps).sum()
                dynamic[i, j] = out.sum(1).max()
                by_a[i, j] = all(lowest_first(o, game.a) for o in out)
                by_rho[i, j] = all(lowest_first(o, game.rho) for o in out)
                gap[i, j] = np.abs(B - W).max()
        self.record(index, closed=closed, dynamic=dynamic, by_a=by_a, by_rho=by_rho, gap=gap)

    def summarize(self, rows):
        dyn = rows["dynamic"]  # [replicas, gamma, alpha]
        alpha, gamma = self.task.alpha_grid, self.task.gamma_grid
        m = {
            "exclusion/replicas": len(dyn),
            "exclusion/cells_excluded_min": int((dyn > 0).sum((1, 2)).min()),
            "exclusion/alpha_violations": int(
                (np.diff(dyn, axis=2) < 0).sum()
            ),  # fewer excluded at larger alpha
            "exclusion/gamma_violations": int(
                (np.diff(dyn, axis=1) > 0).sum()
            ),  # more excluded at larger gamma
            "exclusion/order_violations": int((rows["by_a"] == 0).sum()),
            "exclusion/rho_order_violations": int((rows["by_rho"] == 0).sum()),
            "exclusion/closed_vs_dynamics_mismatch": int((rows["closed"] != dyn).sum()),
            "exclusion/max_gap_br": float(rows["gap"].max()),
            "exclusion/max_excluded": int(dyn.max()),
        }
        for a, g in ((1.0, 0.3), (3.0, 0.3), (10.0, 0.3), (10.0, 0.8)):
            if a in alpha and g in gamma:
                m[f"exclusion/mean_excluded_a{a:g}_g{g:g}"] = float(
                    dyn[:, gamma.index(g), alpha.index(a)].mean()
                )
        self.plot(dyn.mean(0))
        return m

    def plot(self, mean_count: np.ndarray):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        image = ax.imshow(mean_count, origin="lower", aspect="auto", cmap="magma")
        ax.set_xticks(range(len(self.task.alpha_grid)), [f"{a:g}" for a in self.task.alpha_grid])
        ax.set_yticks(range(len(self.task.gamma_grid)), [f"{g:g}" for g in self.task.gamma_grid])
        ax.set(
            xlabel="alpha / beta (attractiveness)",
            ylabel="gamma / beta (diversity)",
            title="excluded groups at the NE (mean over replicas)",
        )
        fig.colorbar(image, ax=ax, label="excluded groups")
        self.save_figure(fig, "exclusion_map")
