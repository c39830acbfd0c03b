"""Learning dynamics of the population game: the baselines and independent checks of the closed form.

LLM Active Alignment (arXiv:2602.06836) predicts a population through its NE; these are the dynamics
that reach it when it is unique (Rosen 1965: the pseudo-gradient Jacobian
-(beta I_K + gamma (1 1^T - I_K)) (x) I_D is negative definite iff beta > gamma):

* damped simultaneous best response: W <- (1 - eta) W + eta BR(W);
* projected gradient play: w_k <- Pi_Delta(w_k + t dU_k / dw_k).

Both run a batch of starts at once (W [R, K, D]) with any utility of
``experiments/population_ne/utilities.py``. Default steps are the optimal ones of the unconstrained
linear map of the quadratic game: its Jacobian has eigenvalues -(beta - gamma) and
-(beta + (K - 1) gamma), giving t = 2 / (2 beta + (K - 2) gamma) and eta = beta t.
"""

from typing import Literal

import numpy as np

from experiments.population_ne.game import Game
from experiments.population_ne.simplex import project_simplex

Dynamics = Literal["best_response", "projected_gradient"]


def default_step(game: Game) -> float:
    """t = 2 / (2 beta + (K - 2) gamma), capped so that the best-response damping eta = beta t <= 1."""
    return min(2.0 / (2 * game.beta + (game.K - 2) * game.gamma), 1.0 / game.beta)


def run_dynamics(
    game: Game,
    utility,
    W: np.ndarray,
    kind: Dynamics = "best_response",
    step: float | None = None,
    tol: float = 1e-14,
    max_iter: int = 100_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Iterate from the starts ``W`` [R, K, D] until no entry moves by more than ``tol``.

    Returns the end points [R, K, D], the iterations used [R] and whether each start converged [R].
    """
    t = default_step(game) if step is None else step
    W = W.copy()
    iterations = np.zeros(len(W), dtype=np.int64)
    active = np.ones(len(W), dtype=bool)
    for _ in range(max_iter):
        X = W[active]
        if kind == "best_response":
            new = (1 - game.beta * t) * X + game.beta * t * utility.best_response(game, X)
        else:
            new = project_simplex(X + t * utility.gradient(game, X))
        moved = np.abs(new - X).max((1, 2))
        W[active] = new
        iterations[active] += 1
        active[np.flatnonzero(active)[moved <= tol]] = False
        if not active.any():
            break
    return W, iterations, ~active
