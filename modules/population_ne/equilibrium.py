"""The closed-form NE checked against learning dynamics and the KKT residual (claims 1 and 2).

LLM Active Alignment (arXiv:2602.06836): closed-form NE of LLM populations mixing over human
subpopulations, unique under standard concave utilities. One ``test_step`` = one game:

* beta > gamma: the closed form (``modules/population_ne/closed_form.py``) against damped
  best-response and projected-gradient dynamics from every random start (gap, spread of the end
  points, convergence), and the KKT residual of each (``experiments/population_ne/kkt.py``);
* every game: the numerical pseudo-gradient Jacobian against Rosen's condition beta > gamma;
* beta <= gamma (no uniqueness guarantee): what best-response dynamics do -- converge or not, and
  whether the starts end at different points.

Entries that do not apply to a game are NaN and skipped by ``summarize``. A solver: under DDP the
games shard over ranks.
"""

from typing import ClassVar

import numpy as np
from pydantic import PositiveFloat, PositiveInt

from experiments.population_ne.kkt import kkt_residual
from experiments.population_ne.rosen import (
    max_symmetric_eigenvalue,
    pseudo_jacobian,
    quadratic_max_eigenvalue,
)
from modules.base import AtlasModule
from modules.population_ne.closed_form import closed_form_ne
from modules.population_ne.dynamics import run_dynamics

NAN = float("nan")


def spread(W: np.ndarray) -> float:
    """Largest entry-wise distance of any end point [R, K, D] from the first one."""
    return float(np.abs(W - W[:1]).max())


class EquilibriumCheck(AtlasModule):
    needs: ClassVar[str] = "population_game"
    models = ("none",)
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        tol: PositiveFloat = 1e-14,
        max_iter: PositiveInt = 100_000,
        definite_margin: PositiveFloat = 1e-6,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        if task.utility_name != "quadratic":
            raise ValueError(
                f"algorithm=population_ne checks the closed form of utility=quadratic, not "
                f"task.utility={task.utility_name}; run the dynamics baselines instead"
            )
        self.tol, self.max_iter, self.margin = tol, max_iter, definite_margin

    def test_step(self, batch, batch_idx):
        index, inst = batch
        game, u = inst.game, self.task.utility
        br, _, br_ok = run_dynamics(
            game, u, inst.starts, "best_response", tol=self.tol, max_iter=self.max_iter
        )
        J = pseudo_jacobian(game, u, inst.starts[0])
        lam = max_symmetric_eigenvalue(J)
        row = dict(
            beta_gt_gamma=float(game.beta > game.gamma),
            negative_definite=float(lam < -self.margin),
            max_eig=lam,
            max_eig_error=abs(lam - quadratic_max_eigenvalue(game)) if u.name == "quadratic" else NAN,
            br_converged=float(br_ok.all()),
            br_spread=spread(br),
            gap_br=NAN,
            gap_pg=NAN,
            pg_spread=NAN,
            pg_converged=NAN,
            kkt_closed=NAN,
            kkt_br=float(kkt_residual(game, br, u).max()),
        )
        if game.beta > game.gamma:
            pg, _, pg_ok = run_dynamics(
                game, u, inst.starts, "projected_gradient", tol=self.tol, max_iter=self.max_iter
            )
            W = closed_form_ne(game, u)
            row.update(
                gap_br=float(np.abs(br - W).max()),
                gap_pg=float(np.abs(pg - W).max()),
                pg_spread=spread(pg),
                pg_converged=float(pg_ok.all()),
                kkt_closed=float(kkt_residual(game, W, u)),
            )
        self.record(index, **row)

    def summarize(self, rows):
        unique = rows["beta_gt_gamma"] == 1
        m = {
            "population_ne/games": len(unique),
            "population_ne/games_unique": int(unique.sum()),
            "rosen/mismatches": int((rows["negative_definite"] != rows["beta_gt_gamma"]).sum()),
            "rosen/max_eig_error": float(np.nanmax(rows["max_eig_error"], initial=0.0)),
        }
        if unique.any():
            m.update(
                {
                    "population_ne/max_gap_br": np.nanmax(rows["gap_br"]),
                    "population_ne/max_gap_pg": np.nanmax(rows["gap_pg"]),
                    "population_ne/max_start_spread": max(
                        rows["br_spread"][unique].max(), np.nanmax(rows["pg_spread"])
                    ),
                    "population_ne/max_kkt_closed": np.nanmax(rows["kkt_closed"]),
                    "population_ne/max_kkt_br": rows["kkt_br"][unique].max(),
                    "population_ne/unconverged": int(
                        (rows["br_converged"][unique] == 0).sum()
                        + (np.nan_to_num(rows["pg_converged"][unique]) == 0).sum()
                    ),
                }
            )
        if (~unique).any():  # beta <= gamma: informative, not pass/fail
            apart = (rows["br_spread"][~unique] > 1e-6) | (rows["br_converged"][~unique] == 0)
            m.update(
                {
                    "rosen/le_games": int((~unique).sum()),
                    "rosen/le_unconverged_frac": float((rows["br_converged"][~unique] == 0).mean()),
                    "rosen/le_starts_disagree_frac": float(apart.mean()),
                }
            )
        self.plot(rows)
        return m

    def plot(self, rows):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        unique = rows["beta_gt_gamma"] == 1
        floor = 1e-17  # zeros drawn at the floor of the log axis
        for key, label in (
            ("gap_br", "|closed - BR|"),
            ("gap_pg", "|closed - PG|"),
            ("kkt_closed", "KKT(closed)"),
        ):
            if unique.any():
                ax.scatter(np.flatnonzero(unique), np.maximum(rows[key][unique], floor), s=8, label=label)
        if (~unique).any():
            ax.scatter(
                np.flatnonzero(~unique),
                np.maximum(rows["br_spread"][~unique], floor),
                s=12,
                marker="x",
                label="BR start spread (beta <= gamma)",
            )
        ax.set(yscale="log", xlabel="game", ylabel="max abs difference", title="closed form vs dynamics")
        ax.axhline(1e-6, color="grey", ls="--", lw=0.8)
        ax.legend(fontsize=7)
        self.save_figure(fig, "closed_form_vs_dynamics")
