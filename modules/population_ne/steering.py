"""Steering: the minimal subsidy on attractiveness that removes political exclusion (claim 4).

LLM Active Alignment (arXiv:2602.06836) acts "as an active alignment layer on top of existing alignment
pipelines": a platform shifts the incentives so that the NE includes every group. Here it adds a
subsidy sigma >= 0 to the attractiveness (a <- a + sigma) and asks for sum_k w_kd >= eps for every d.
With every agent's support full, the NE is affine in sigma (the support-given linear KKT solve of
``closed_form.py``, differentiated exactly by solving at the unit subsidies), so the least-norm subsidy
is a QP (scipy SLSQP):

    min ||sigma||^2  s.t.  sum_k W(sigma)_kd >= eps (every d),  W(sigma) >= 0,  sigma >= 0.

For symmetric agents inclusion forces the full support, so this is the global minimum; for
heterogeneous agents it is the minimum over subsidies whose NE has full support. The subsidy is
verified by re-solving the game with best-response dynamics (not the closed form), and compared with
random feasible subsidies: the first ``random_subsidies`` of the task's random candidates whose NE
(closed form) includes every group, from two families on the groups that need help (excluded, or
subsidised by sigma*) -- Gaussian perturbations of sigma* (local) and uniform points of the box
[0, 2 max sigma*] (global). A solver: under DDP the replicas shard over ranks.
"""

from typing import ClassVar

import numpy as np
from pydantic import PositiveFloat
from scipy.optimize import minimize

from experiments.population_ne.game import Game
from modules.base import AtlasModule
from modules.population_ne.closed_form import closed_form_ne, support_solve, symmetric_row
from modules.population_ne.dynamics import run_dynamics


def minimal_subsidy(game: Game, eps: float) -> np.ndarray:
    """The least-norm sigma >= 0 whose full-support NE gives every group total weight >= eps [D]."""
    full = np.ones((game.K, game.D), dtype=bool)
    W0 = support_solve(game, full)[0]
    J = np.stack(
        [support_solve(game.subsidised(game.sigma + e), full)[0] - W0 for e in np.eye(game.D)]
    )  # [D, K, D]
    J_total = J.sum(1)  # [D (sigma), D (group)]
    constraints = [
        {"type": "ineq", "fun": lambda x: W0.sum(0) + x @ J_total - eps, "jac": lambda x: J_total.T},
        {
            "type": "ineq",
            "fun": lambda x: (W0 + np.tensordot(x, J, 1)).ravel(),
            "jac": lambda x: J.reshape(game.D, -1).T,
        },
    ]
    result = minimize(
        lambda x: x @ x,
        np.ones(game.D),
        jac=lambda x: 2 * x,
        method="SLSQP",
        bounds=[(0, None)] * game.D,
        constraints=constraints,
        options={"ftol": 1e-14, "maxiter": 500},
    )
    if not result.success:
        raise RuntimeError(f"steering QP failed: {result.message}")
    return np.maximum(result.x, 0.0)


def min_total(game: Game, utility) -> float:
    return float(closed_form_ne(game, utility).sum(0).min())


def attractiveness_welfare(game: Game, W: np.ndarray) -> float:
    """sum_k a^T w_k with the unsubsidised attractiveness a = M^T rho."""
    return float((W @ (game.M.T @ game.rho)).sum())


class Steering(AtlasModule):
    needs: ClassVar[str] = "steering"
    models = ("none",)
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        eps: PositiveFloat = 0.02,
        tol: PositiveFloat = 1e-14,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.eps, self.tol = eps, tol

    def test_step(self, batch, batch_idx):
        index, inst = batch
        game, u = inst["game"], self.task.utility
        before = closed_form_ne(game, u)
        sigma = minimal_subsidy(game, self.eps)
        steered = game.subsidised(sigma)
        after, _, converged = run_dynamics(steered, u, inst["starts"], "best_response", tol=self.tol)
        excluded = before.sum(0) <= 1e-9
        helped = excluded | (sigma > 0)  # random subsidies go to the groups that need them
        box = 2 * sigma.max() * inst["box"] * helped  # global: uniform in [0, 2 max sigma*] per helped group
        local = np.maximum(sigma + np.linalg.norm(sigma) * inst["local"], 0) * helped  # local: around sigma*
        norms = {name: self.feasible_norms(game, u, c) for name, c in (("box", box), ("local", local))}
        self.record(
            index,
            excluded_before=float(excluded.sum()),
            min_total_after=float(after.sum(1).min()),
            converged=float(converged.all()),
            sigma_norm=float(np.linalg.norm(sigma)),
            box_norms=norms["box"],
            local_norms=norms["local"],
            welfare_before=attractiveness_welfare(game, before),
            welfare_after=attractiveness_welfare(game, after[0]),
            sigma=sigma,
            totals_before=before.sum(0),
            totals_after=after[0].sum(0),
        )

    def feasible_norms(self, game: Game, utility, candidates: np.ndarray) -> np.ndarray:
        """||sigma|| of the first ``random_subsidies`` feasible candidates; inf-padded."""
        if game.symmetric:  # all candidates at once: group totals K * w_d of the symmetric NE
            ok = candidates[(game.K * symmetric_row(game, candidates)).min(1) >= self.eps]
        else:
            ok = np.array([c for c in candidates if min_total(game.subsidised(c), utility) >= self.eps])
        out = np.full(self.task.random_subsidies, np.inf)
        norms = np.linalg.norm(ok[: len(out)], axis=1) if len(ok) else []
        out[: len(norms)] = norms
        return out

    def summarize(self, rows):
        local, box = rows["local_norms"], rows["box_norms"]  # [replicas, random_subsidies]
        m = {
            "steering/replicas": len(local),
            "steering/excluded_before_min": rows["excluded_before"].min(),
            "steering/min_total_after_over_eps": rows["min_total_after"].min() / self.eps,
            "steering/unconverged": int((rows["converged"] == 0).sum()),
            "steering/sigma_norm_mean": rows["sigma_norm"].mean(),
            "steering/random_requested": self.task.random_subsidies,
            "steering/local_feasible_min": int(np.isfinite(local).sum(1).min()),
            "steering/best_local_over_qp_min": float((local.min(1) / rows["sigma_norm"]).min()),
            "steering/box_feasible_min": int(np.isfinite(box).sum(1).min()),
            "steering/best_box_over_qp_min": float((box.min(1) / rows["sigma_norm"]).min()),
            "steering/welfare_before_mean": rows["welfare_before"].mean(),
            "steering/welfare_after_mean": rows["welfare_after"].mean(),
            "steering/welfare_loss_mean": (rows["welfare_before"] - rows["welfare_after"]).mean(),
        }
        self.plot(rows)
        return m

    def plot(self, rows):
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
        D = rows["totals_before"].shape[1]
        x = np.arange(D)
        left.bar(x - 0.2, rows["totals_before"][0], 0.4, label="before")
        left.bar(x + 0.2, rows["totals_after"][0], 0.4, label="after (BR dynamics)")
        left.axhline(self.eps, color="grey", ls="--", lw=0.8)
        left.set(xlabel="group d", ylabel="sum_k w_kd", title="group weight, replica 0")
        left.legend(fontsize=7)
        for key, label in (("local_norms", "around sigma*"), ("box_norms", "uniform in a box")):
            norms = rows[key][np.isfinite(rows[key])]
            right.hist(norms, bins=30, alpha=0.6, label=label)
        for s in rows["sigma_norm"]:
            right.axvline(s, color="k", lw=1)
        right.set(xlabel="||sigma||", title="minimal subsidy (black) vs random")
        right.legend(fontsize=7)
        self.save_figure(fig, "steering")
