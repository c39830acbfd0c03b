"""The LLM-grounded social-media task (claim 5): persona groups, their shares, and the incentive settings.

LLM Active Alignment (arXiv:2602.06836): in a social-media setting, LLM populations -- especially of
reasoning models -- show political exclusion, and the active alignment layer avoids it. An instance
is one replica: the personas (``experiments/population_ne/personas.py``), their shares ``rho``, K
agents with uniform base alignments, and three incentive settings -- ``plain`` (small alpha / beta),
``reasoning`` (large alpha / beta: strategic agents, weakly anchored) and ``steered`` (reasoning plus
the minimal subsidy, computed by the method). The approval matrix is NOT part of the task: the method
measures it from generated posts. Stream ``posts`` draws the uniforms that pick, for every setting,
agent and sample, the persona an agent posts as.
"""

from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task
from experiments.population_ne.game import check_simplex
from experiments.population_ne.personas import DEFAULT_PERSONAS, Persona, replica_id

SETTINGS = ("plain", "reasoning", "steered")


class SocialMedia(Task):
    offers: ClassVar[tuple[str, ...]] = ("persona_population",)

    @validate_call
    def __init__(
        self,
        personas: Annotated[list[Persona], Field(min_length=2)] = DEFAULT_PERSONAS,
        rho: Annotated[list[float], Field(min_length=2)] = (0.4, 0.3, 0.2, 0.1),
        K: PositiveInt = 4,
        calibration_posts: PositiveInt = 3,
        heldout_posts: PositiveInt = 3,
        samples_per_agent: PositiveInt = 8,
        alpha_plain: NonNegativeFloat = 1.0,
        alpha_reasoning: NonNegativeFloat = 10.0,
        beta: PositiveFloat = 1.0,
        gamma: NonNegativeFloat = 0.3,
        replicas: PositiveInt = 1,
        seed: int = 0,
    ):
        super().__init__(seed)
        if len(rho) != len(personas):
            raise ValueError(f"rho has {len(rho)} shares for {len(personas)} personas")
        check_simplex("shares rho", np.asarray(rho, dtype=np.float64))
        if not beta > gamma:
            raise ValueError(f"need beta > gamma for a unique NE, got beta={beta}, gamma={gamma}")
        self.personas, self.rho, self.K = list(personas), np.asarray(rho, dtype=np.float64), K
        self.calibration_posts, self.heldout_posts, self.samples_per_agent = (
            calibration_posts,
            heldout_posts,
            samples_per_agent,
        )
        self.alpha = {"plain": alpha_plain, "reasoning": alpha_reasoning, "steered": alpha_reasoning}
        self.beta, self.gamma, self.replicas = beta, gamma, replicas

    @property
    def D(self) -> int:
        return len(self.personas)

    def make(self, index: int) -> dict:
        uniforms = self.rng(index, "posts").uniform(size=(len(SETTINGS), self.K, self.samples_per_agent))
        return {
            "replica": replica_id(self.seed, index),
            "uniforms": uniforms,
            "w0": np.full((self.K, self.D), 1.0 / self.D),
        }

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.replicas, self.make)
