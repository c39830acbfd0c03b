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
random feasible subsidies: random non-negative mixes of the excluded groups (the task's candidate
directions restricted to them), the first ``random_subsidies`` for which some multiple includes every
group, each scaled to its least such multiple. A solver: under DDP the replicas shard over ranks.
"""

from typing import ClassVar

import numpy as np
from pydantic import PositiveFloat, PositiveInt
from scipy.optimize import minimize

from experiments.population_ne.game import Game
from modules.base import AtlasModule
from modules.population_ne.closed_form import closed_form_ne, support_solve
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


def least_feasible_scale(
    game: Game, utility, direction: np.ndarray, eps: float, grid: np.ndarray, steps: int = 60
) -> float:
    """The least t with min_d sum_k w_kd >= eps at sigma = t * direction (bisection); inf if none on grid."""
    feasible = [t for t in grid if min_total(game.subsidised(t * direction), utility) >= eps]
    if not feasible:
        return np.inf
    hi = feasible[0]
    lo = grid[np.searchsorted(grid, hi) - 1] if hi > grid[0] else 0.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if min_total(game.subsidised(mid * direction), utility) >= eps else (mid, hi)
    return hi


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
        scale_grid: PositiveInt = 40,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.eps, self.tol, self.scale_grid = eps, tol, scale_grid

    def test_step(self, batch, batch_idx):
        index, inst = batch
        game, u = inst["game"], self.task.utility
        before = closed_form_ne(game, u)
        sigma = minimal_subsidy(game, self.eps)
        steered = game.subsidised(sigma)
        after, _, converged = run_dynamics(steered, u, inst["starts"], "best_response", tol=self.tol)
        excluded = before.sum(0) <= 1e-9
        directions = inst["directions"] * excluded  # subsidise the excluded groups only
        directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
        grid = np.geomspace(1e-3, 1e3, self.scale_grid) * max(np.linalg.norm(sigma), 1e-6)
        norms = []  # the first n feasible candidates
        for d in directions:
            t = least_feasible_scale(game, u, d, self.eps, grid)
            if np.isfinite(t):
                norms.append(t)
            if len(norms) == self.task.random_subsidies:
                break
        scales = np.full(self.task.random_subsidies, np.inf)
        scales[: len(norms)] = norms
        self.record(
            index,
            excluded_before=float(excluded.sum()),
            min_total_after=float(after.sum(1).min()),
            converged=float(converged.all()),
            sigma_norm=float(np.linalg.norm(sigma)),
            random_norms=scales,
            welfare_before=attractiveness_welfare(game, before),
            welfare_after=attractiveness_welfare(game, after[0]),
            sigma=sigma,
            totals_before=before.sum(0),
            totals_after=after[0].sum(0),
        )

    def summarize(self, rows):
        random = rows["random_norms"]  # [replicas, n_random]
        feasible = np.isfinite(random)
        best_random = np.where(feasible, random, np.inf).min(1)
        m = {
            "steering/replicas": len(random),
            "steering/excluded_before_min": rows["excluded_before"].min(),
            "steering/min_total_after_over_eps": rows["min_total_after"].min() / self.eps,
            "steering/unconverged": int((rows["converged"] == 0).sum()),
            "steering/sigma_norm_mean": rows["sigma_norm"].mean(),
            "steering/random_feasible_min": int(feasible.sum(1).min()),
            "steering/random_requested": self.task.random_subsidies,
            "steering/best_random_over_qp_min": float((best_random / rows["sigma_norm"]).min()),
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
        norms = rows["random_norms"][np.isfinite(rows["random_norms"])]
        right.hist(norms, bins=30, color="tab:orange", label="random feasible")
        for s in rows["sigma_norm"]:
            right.axvline(s, color="k", lw=1)
        right.set(xlabel="||sigma||", title="minimal subsidy (black) vs random")
        right.legend(fontsize=7)
        self.save_figure(fig, "steering")
