"""Closed-form Nash equilibrium of the quadratic population game (LLM Active Alignment, arXiv:2602.06836,
"closed-form NE characterizations under concave utilities"; the utility is the ``quadratic``
reconstruction of ``experiments/population_ne/utilities.py``).

* Symmetric agents (w0_k = w0): w* = Pi_Delta((beta w0 + alpha a) / (beta + gamma (K - 1))).
* Heterogeneous agents: on a support S (A[k, d] = 1 iff (k, d) in S) the KKT conditions
  beta (w_kd - w0_kd) - alpha a_d + gamma sum_{j != k} w_jd + beta tau_k = 0 and sum_d w_kd = 1 are
  linear. With c = beta w0 + alpha a and the group totals s_d = sum_{k in S_d} w_kd they reduce to a
  D x D system (never the K D x K D one):
      [(beta - gamma) I + gamma diag(|S_d|) - gamma A^T diag(1/n) A] s = A^T-sum of (c - r),
      r_k = (sum_{d in S_k} c_kd - (beta - gamma)) / n_k,   n_k = |S_k|,
  and then w_kd = (c_kd - gamma s_d - beta tau_k) / (beta - gamma) on S, with
  beta tau_k = r_k - gamma (A s)_k / n_k. Cost O(K D + D^3).
* The support comes from a primal-dual active-set search (Hintermueller, Ito & Kunisch 2002): solve on
  S, then S <- {w_kd > 0 on S} + {g_kd > lambda_k off S}, until S repeats; should the full update cycle
  (near beta = gamma), Murty's least-index rule flips one violated entry at a time.

Needs beta > gamma (the uniqueness condition); the closed form is judged against best-response and
projected-gradient dynamics and the KKT residual, never against itself.
"""

import numpy as np

from experiments.population_ne.game import Game
from experiments.population_ne.simplex import project_simplex
from experiments.population_ne.utilities import Quadratic, others

SLACK = 1e-12  # a group joins a support only if it beats the multiplier by more than rounding


def _check(game: Game, utility) -> None:
    if not isinstance(utility, Quadratic):
        raise ValueError(
            f"the closed form is for utility=quadratic, not utility={utility.name}; "
            "use the best-response or projected-gradient dynamics"
        )
    if not game.beta > game.gamma:
        raise ValueError(
            f"the closed form needs beta > gamma (unique NE), got beta={game.beta}, gamma={game.gamma}"
        )


def symmetric_row(game: Game, extra: np.ndarray | float = 0.0) -> np.ndarray:
    """Every agent's NE mixture for symmetric agents, with ``extra`` subsidies [..., D] -> [..., D]."""
    v = game.beta * game.w0[0] + game.alpha * (game.a + extra)
    return project_simplex(v / (game.beta + game.gamma * (game.K - 1)))


def symmetric_ne(game: Game) -> np.ndarray:
    """The NE of symmetric agents [K, D]."""
    return np.tile(symmetric_row(game), (game.K, 1))


def support_solve(game: Game, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W [K, D], lambda [K]) solving the KKT equalities on the support ``A`` (bool [K, D], no empty row)."""
    beta, gamma = game.beta, game.gamma
    A = A.astype(np.float64)
    n = A.sum(1)  # [K] support sizes
    c = beta * game.w0 + game.alpha * game.a  # [K, D]
    r = ((A * c).sum(1) - (beta - gamma)) / n  # [K]
    L = (beta - gamma) * np.eye(game.D) + gamma * np.diag(A.sum(0)) - gamma * (A.T / n) @ A  # [D, D]
    s = np.linalg.solve(L, (A * (c - r[:, None])).sum(0))  # [D] group totals
    beta_tau = r - gamma * (A @ s) / n  # [K]
    W = A * (c - gamma * s - beta_tau[:, None]) / (beta - gamma)
    return W, beta_tau


def active_set_ne(game: Game, max_iter: int = 10_000) -> tuple[np.ndarray, int]:
    """(the NE [K, D], active-set iterations) for heterogeneous agents."""
    # start from each agent's best response to the symmetric NE of the mean base alignment
    mean = Game(
        game.rho, game.M, np.tile(game.w0.mean(0), (game.K, 1)), game.alpha, game.beta, game.gamma, game.sigma
    )
    A = Quadratic().best_response(game, symmetric_ne(mean)) > 0
    seen, single = set(), False
    for it in range(1, max_iter + 1):
        W, lam = support_solve(game, A)
        g = game.alpha * game.a - game.beta * (W - game.w0) - game.gamma * others(W)
        new = np.where(A, W > 0, g > lam[:, None] + SLACK * (1 + np.abs(lam[:, None])))
        empty = ~new.any(1)  # keep every agent's best group
        new[empty, np.argmax(g[empty], 1)] = True
        if np.array_equal(new, A):
            return W, it
        seen.add(A.tobytes())
        single = single or new.tobytes() in seen
        if single:  # the full update cycled: Murty's least-index rule, one flip at a time (finite)
            flip = np.flatnonzero(new != A)[0]
            new = A.copy()
            new.flat[flip] = ~A.flat[flip]
        A = new
    raise RuntimeError(
        f"active-set search did not settle the support in {max_iter} iterations "
        f"(K={game.K}, D={game.D}, beta={game.beta}, gamma={game.gamma})"
    )


def closed_form_ne(game: Game, utility) -> np.ndarray:
    """The NE [K, D]: the symmetric formula when all w0_k agree, else the active-set linear solve."""
    _check(game, utility)
    return symmetric_ne(game) if game.symmetric else active_set_ne(game)[0]
