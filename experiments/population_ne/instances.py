"""Random population games and the named RNG streams they are drawn from.

Stream ``game`` draws an instance's shares, approval matrix and base alignments; stream ``starts``
draws the starting profiles the dynamics run from, so adding a start or a baseline never changes
the game.
"""

from dataclasses import dataclass

import numpy as np

from experiments.population_ne.game import Game

STREAMS = {"game": 0, "starts": 1, "subsidies": 2, "posts": 3}   # named instance streams


@dataclass
class Instance:
    game: Game
    starts: np.ndarray   # [R, K, D] starting profiles of the dynamics
    label: str = ""


def approval_matrix(D: int, rng: np.random.Generator, diagonal: float) -> np.ndarray:
    """A near-diagonal approval matrix: ``diagonal`` on the diagonal plus U(0, 1) noise, rows summing to 1."""
    M = rng.uniform(0, 1, (D, D)) + diagonal * np.eye(D)
    return M / M.sum(1, keepdims=True)


def base_alignments(K: int, D: int, rng: np.random.Generator, concentration: float | None) -> np.ndarray:
    """w0 [K, D]: one shared Dirichlet(concentration) draw per agent, or uniform when ``concentration`` is None."""
    if concentration is None:
        return np.full((K, D), 1.0 / D)
    return rng.dirichlet(np.full(D, concentration), size=K)


def random_starts(K: int, D: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random profiles [count, K, D], each row uniform on the simplex."""
    return rng.dirichlet(np.ones(D), size=(count, K))
