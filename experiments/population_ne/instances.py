"""Random population games: the building blocks of every task of this method.

Tasks draw from named instance streams (``Task.rng(index, name)``): ``game`` for the shares, approval
matrix and base alignments, ``starts`` for the starting profiles of the dynamics, ``subsidies`` for
random subsidy directions, ``posts`` for the personas agents post as -- so adding a start, a baseline
or a subsidy never changes the game.
"""

from dataclasses import dataclass

import numpy as np

from experiments.population_ne.game import Game


@dataclass
class Instance:
    game: Game
    starts: np.ndarray  # [R, K, D] starting profiles of the dynamics
    label: str = ""


def approval_matrix(D: int, rng: np.random.Generator, diagonal: float) -> np.ndarray:
    """A near-diagonal approval matrix: ``diagonal`` on the diagonal plus U(0, 1) noise, rows summing to 1."""
    M = rng.uniform(0, 1, (D, D)) + diagonal * np.eye(D)
    return M / M.sum(1, keepdims=True)


def base_alignments(K: int, D: int, rng: np.random.Generator, concentration: float | None) -> np.ndarray:
    """w0 [K, D]: a Dirichlet(concentration) draw per agent, or uniform when ``concentration`` is None."""
    if concentration is None:
        return np.full((K, D), 1.0 / D)
    return rng.dirichlet(np.full(D, concentration), size=K)


def random_starts(K: int, D: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random profiles [count, K, D], each row uniform on the simplex."""
    return rng.dirichlet(np.ones(D), size=(count, K))
