"""Tasks of random population games: the closed form vs dynamics (claim 1) and the Rosen grid (claim 2).

LLM Active Alignment (arXiv:2602.06836). ``RandomGames``: instance i has K and D uniform in their
ranges, beta uniform, gamma = beta * U(gamma_over_beta), alpha = beta * U(alpha_over_beta), Dirichlet
shares, a near-diagonal approval matrix, and base alignments that are shared (symmetric agents) for
a ``symmetric_fraction`` of the instances and drawn per agent otherwise. ``RosenGrid``: one instance
per (K, gamma / beta) grid point, beta = 1, the rest random as above. Both carry random starting
profiles for the dynamics and the utility chosen by ``utility`` (a reconstruction; see utilities.py).
"""

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task
from experiments.population_ne.game import Game
from experiments.population_ne.instances import Instance, approval_matrix, base_alignments, random_starts
from experiments.population_ne.utilities import UTILITIES, utility

UtilityName = Literal[tuple(UTILITIES)]
Range = tuple[float, float]


def _range(name: str, r) -> None:
    if r[0] > r[1]:
        raise ValueError(f"{name} range {list(r)} is empty")


class RandomGames(Task):
    offers: ClassVar[tuple[str, ...]] = ("population_game",)

    @validate_call
    def __init__(
        self,
        count: PositiveInt = 100,
        K: tuple[PositiveInt, PositiveInt] = (2, 6),
        D: tuple[Annotated[int, Field(ge=2)], Annotated[int, Field(ge=2)]] = (3, 8),
        beta: tuple[PositiveFloat, PositiveFloat] = (0.5, 2.0),
        gamma_over_beta: tuple[NonNegativeFloat, NonNegativeFloat] = (0.0, 0.9),
        alpha_over_beta: tuple[NonNegativeFloat, NonNegativeFloat] = (0.5, 10.0),
        diagonal: NonNegativeFloat = 2.0,
        symmetric_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5,
        w0_concentration: PositiveFloat = 1.0,
        starts: PositiveInt = 10,
        utility: UtilityName = "quadratic",
        seed: int = 0,
    ):
        super().__init__(seed)
        for name, r in (
            ("K", K),
            ("D", D),
            ("beta", beta),
            ("gamma_over_beta", gamma_over_beta),
            ("alpha_over_beta", alpha_over_beta),
        ):
            _range(name, r)
        self.count, self.K, self.D, self.beta = count, K, D, beta
        self.gamma_over_beta, self.alpha_over_beta, self.diagonal = gamma_over_beta, alpha_over_beta, diagonal
        self.symmetric_fraction, self.w0_concentration, self.n_starts = (
            symmetric_fraction,
            w0_concentration,
            starts,
        )
        self.utility_name = utility

    @property
    def utility(self):
        return utility(self.utility_name)

    def make(self, index: int) -> Instance:
        rng = self.rng(index, "game")
        K, D = (int(rng.integers(lo, hi + 1)) for lo, hi in (self.K, self.D))
        beta = rng.uniform(*self.beta)
        gamma, alpha = beta * rng.uniform(*self.gamma_over_beta), beta * rng.uniform(*self.alpha_over_beta)
        symmetric = rng.uniform() < self.symmetric_fraction
        w0 = base_alignments(1 if symmetric else K, D, rng, self.w0_concentration)
        game = Game(
            rng.dirichlet(np.ones(D)),
            approval_matrix(D, rng, self.diagonal),
            np.broadcast_to(w0, (K, D)),
            alpha,
            beta,
            gamma,
        )
        starts = random_starts(K, D, self.n_starts, self.rng(index, "starts"))
        return Instance(game, starts, f"K={K} D={D} {'symmetric' if symmetric else 'heterogeneous'}")

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.count, self.make)


class RosenGrid(RandomGames):
    """One random game per (K, gamma / beta) grid point, beta = 1 (claim 2: uniqueness iff beta > gamma)."""

    @validate_call
    def __init__(
        self,
        Ks: Annotated[list[Annotated[int, Field(ge=2)]], Field(min_length=1)] = (2, 3, 5),
        gamma_over_beta_grid: Annotated[list[NonNegativeFloat], Field(min_length=1)] = (0.0, 0.5, 1.0, 2.0),
        D: Annotated[int, Field(ge=2)] = 4,
        alpha_over_beta: NonNegativeFloat = 3.0,
        diagonal: NonNegativeFloat = 2.0,
        starts: PositiveInt = 10,
        utility: UtilityName = "quadratic",
        seed: int = 0,
    ):
        super().__init__(
            count=len(Ks) * len(gamma_over_beta_grid),
            D=(D, D),
            diagonal=diagonal,
            starts=starts,
            utility=utility,
            seed=seed,
        )
        self.grid = [(K, r) for K in Ks for r in gamma_over_beta_grid]
        self.alpha = alpha_over_beta

    def make(self, index: int) -> Instance:
        K, ratio = self.grid[index]
        D = self.D[0]
        rng = self.rng(index, "game")
        game = Game(
            rng.dirichlet(np.ones(D)),
            approval_matrix(D, rng, self.diagonal),
            base_alignments(K, D, rng, self.w0_concentration),
            self.alpha,
            1.0,
            ratio,
        )
        return Instance(
            game, random_starts(K, D, self.n_starts, self.rng(index, "starts")), f"K={K} gamma/beta={ratio}"
        )
