"""Agent utilities of the population game: a RECONSTRUCTION, pluggable by name (``UTILITIES``).

The paper (arXiv:2602.06836) names three incentives -- attractiveness, consistency, diversity -- under
standard concave-utility assumptions, but its exact terms were not available. Two concrete forms:

* ``quadratic`` (the default, with a closed-form NE):
  U_k = alpha a^T w_k - beta/2 ||w_k - w0_k||^2 - gamma w_k^T s_{-k},   s_{-k} = sum_{j != k} w_j;
  BR_k = Pi_Delta(w0_k + (alpha a - gamma s_{-k}) / beta).
* ``kl`` (consistency as a KL anchor, full-support best responses):
  U_k = alpha a^T w_k - beta KL(w_k || w0_k) - gamma w_k^T s_{-k};
  BR_k = softmax(log w0_k + (alpha a - gamma s_{-k}) / beta), so exclusion means w_kd < eps.

Both are exact potential games (the diversity term is symmetric between agents). A utility gives
each agent's payoff, the pseudo-gradient (dU_k / dw_k for every k) and the simultaneous best
response, batched over leading axes: ``W`` is [..., K, D]. Replace the paper's exact form by adding
a class with these three methods to ``UTILITIES``.
"""

from typing import ClassVar

import numpy as np
from scipy.special import rel_entr, softmax

from experiments.population_ne.game import Game
from experiments.population_ne.simplex import project_simplex


def others(W: np.ndarray) -> np.ndarray:
    """s_{-k} = sum_{j != k} w_j for every k: [..., K, D]."""
    return W.sum(-2, keepdims=True) - W


class Quadratic:
    name: ClassVar[str] = "quadratic"

    def payoff(self, game: Game, W: np.ndarray) -> np.ndarray:
        """U_k(W) [..., K]."""
        return (
            game.alpha * W @ game.a
            - game.beta / 2 * ((W - game.w0) ** 2).sum(-1)
            - game.gamma * (W * others(W)).sum(-1)
        )

    def gradient(self, game: Game, W: np.ndarray) -> np.ndarray:
        """dU_k / dw_k [..., K, D]."""
        return game.alpha * game.a - game.beta * (W - game.w0) - game.gamma * others(W)

    def best_response(self, game: Game, W: np.ndarray) -> np.ndarray:
        return project_simplex(game.w0 + (game.alpha * game.a - game.gamma * others(W)) / game.beta)


class KL:
    name: ClassVar[str] = "kl"

    def payoff(self, game: Game, W: np.ndarray) -> np.ndarray:
        return (
            game.alpha * W @ game.a
            - game.beta * rel_entr(W, game.w0).sum(-1)
            - game.gamma * (W * others(W)).sum(-1)
        )

    def gradient(self, game: Game, W: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            log_ratio = np.log(W) - np.log(game.w0)
        return game.alpha * game.a - game.beta * (log_ratio + 1) - game.gamma * others(W)

    def best_response(self, game: Game, W: np.ndarray) -> np.ndarray:
        if np.any(game.w0 <= 0):
            raise ValueError("utility=kl needs base alignments w0 with full support (every entry > 0)")
        return softmax(np.log(game.w0) + (game.alpha * game.a - game.gamma * others(W)) / game.beta, axis=-1)


UTILITIES = {u.name: u for u in (Quadratic, KL)}


def utility(name: str):
    if name not in UTILITIES:
        raise ValueError(f"unknown utility {name!r}; choose one of {', '.join(UTILITIES)}")
    return UTILITIES[name]()
