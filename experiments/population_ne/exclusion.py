"""Tasks of political exclusion: the exclusion map over incentive weights (claim 3) and excluded
configurations to steer (claim 4).

LLM Active Alignment (arXiv:2602.06836): "exclusion occupies structured regions of the incentive
space", shown as heatmaps over the incentive weights; the active alignment layer steers the population
out of it. Each instance is one replica: shares ``rho`` (default 0.35, 0.3, 0.2, 0.1, 0.05), a
near-diagonal approval matrix with fresh noise, and base alignments (uniform when
``w0_concentration`` is null, else one Dirichlet draw per agent -- or one shared draw for
``symmetric`` agents). ``ExclusionGrid`` sweeps alpha / beta x gamma / beta at beta = 1;
``SteeringGames`` fixes (alpha, gamma) at an excluded point and adds two families of random subsidies
to compare the minimal one with: uniform points of the box [0, 2 max sigma*]^D (global) and Gaussian
perturbations sigma* + spread ||sigma*|| z, clipped at 0 (local); the scales come from the method.
"""

from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task
from experiments.population_ne.game import Game
from experiments.population_ne.instances import approval_matrix, base_alignments, random_starts
from experiments.population_ne.random_games import UtilityName
from experiments.population_ne.utilities import utility

Shares = Annotated[list[float], Field(min_length=2)]
Grid = Annotated[list[NonNegativeFloat], Field(min_length=2)]


class Replicas(Task):
    """Replica i: the game at (alpha, gamma) with beta = 1 and random starts."""

    @validate_call
    def __init__(
        self,
        replicas: PositiveInt = 3,
        rho: Shares = (0.35, 0.3, 0.2, 0.1, 0.05),
        K: PositiveInt = 4,
        diagonal: NonNegativeFloat = 2.0,
        w0_concentration: PositiveFloat | None = None,
        symmetric: bool = False,
        alpha: NonNegativeFloat = 10.0,
        gamma: NonNegativeFloat = 0.3,
        starts: PositiveInt = 4,
        utility: UtilityName = "quadratic",
        seed: int = 0,
    ):
        super().__init__(seed)
        rho = np.asarray(rho, dtype=np.float64)
        Game(
            rho, np.eye(len(rho)), np.full((K, len(rho)), 1 / len(rho)), alpha, 1.0, gamma
        )  # bad input fails now
        self.replicas, self.rho, self.K, self.diagonal = replicas, rho, K, diagonal
        self.w0_concentration, self.symmetric, self.alpha, self.gamma = (
            w0_concentration,
            symmetric,
            alpha,
            gamma,
        )
        self.n_starts, self.utility_name = starts, utility

    @property
    def utility(self):
        return utility(self.utility_name)

    def game(self, index: int) -> Game:
        rng = self.rng(index, "game")
        D = len(self.rho)
        w0 = base_alignments(1 if self.symmetric else self.K, D, rng, self.w0_concentration)
        return Game(
            self.rho,
            approval_matrix(D, rng, self.diagonal),
            np.broadcast_to(w0, (self.K, D)),
            self.alpha,
            1.0,
            self.gamma,
        )

    def make(self, index: int) -> dict:
        return {
            "game": self.game(index),
            "starts": random_starts(self.K, len(self.rho), self.n_starts, self.rng(index, "starts")),
        }

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.replicas, self.make)


class ExclusionGrid(Replicas):
    offers: ClassVar[tuple[str, ...]] = ("exclusion_map",)

    @validate_call
    def __init__(
        self, alpha_over_beta: Grid = (0.5, 1, 3, 10, 20), gamma_over_beta: Grid = (0.0, 0.3, 0.8), **replica
    ):
        super().__init__(**replica)
        if any(np.diff(alpha_over_beta) <= 0) or any(np.diff(gamma_over_beta) <= 0):
            raise ValueError("alpha_over_beta and gamma_over_beta must be increasing grids")
        if max(gamma_over_beta) >= 1:
            raise ValueError(f"gamma_over_beta must stay below 1 (unique NE), got max {max(gamma_over_beta)}")
        self.alpha_grid, self.gamma_grid = list(alpha_over_beta), list(gamma_over_beta)


class SteeringGames(Replicas):
    offers: ClassVar[tuple[str, ...]] = ("steering",)

    @validate_call
    def __init__(
        self,
        random_subsidies: PositiveInt = 100,
        candidates: PositiveInt = 300,
        spread: PositiveFloat = 0.3,
        **replica,
    ):
        super().__init__(**replica)
        if candidates < random_subsidies:
            raise ValueError(f"candidates={candidates} < random_subsidies={random_subsidies}")
        self.random_subsidies, self.candidates = random_subsidies, candidates
        self.spread = spread

    def make(self, index: int) -> dict:
        rng = self.rng(index, "subsidies")
        D = len(self.rho)
        return {
            **super().make(index),
            "box": rng.uniform(size=(self.candidates, D)),  # global family, in units of max sigma*
            "local": self.spread
            * rng.normal(size=(self.candidates, D)),  # local family, in units of ||sigma*||
        }
