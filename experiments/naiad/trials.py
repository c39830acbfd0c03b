"""Synthetic PPI trials: human labels on a small subset, LLM-judge scores on everything.

One instance = one trial: for every system a labelled sample (human labels Y and judge scores S,
n items) and an unlabelled sample (judge scores S_unl, N items), plus the closed-form estimand
theta = sum_s contrast[s] E[Y | system s] (one system and contrast [1]: a mean, NaiAD notes N1;
two systems and contrast [1, -1]: the A - B difference under a halo that favours B, N2).
Trial i is built from ``self.rng(i)`` only, so trials shard over devices.
"""

from typing import Annotated

import numpy as np
from pydantic import Field, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task
from experiments.naiad.simulator import Judge, Population, System


class PPITrials(Task):
    offers = ("ppi_trials",)

    @validate_call
    def __init__(
        self,
        n_trials: PositiveInt,
        n_labelled: Annotated[int, Field(ge=2)],
        n_unlabelled: PositiveInt,
        systems: dict[str, System],
        contrast: list[float],
        judge: Judge,
        truth_sd: Annotated[float, Field(gt=0)],
        truth_corr: Annotated[float, Field(ge=0, lt=1)],
        polish_sd: Annotated[float, Field(ge=0)],
        rater_sd: Annotated[float, Field(ge=0)],
        seed: int = 0,
    ):
        super().__init__(seed)
        if len(contrast) != len(systems):
            raise ValueError(
                f"contrast has {len(contrast)} weights for {len(systems)} systems ({', '.join(systems)})"
            )
        widths = {name: len(s.mean) for name, s in systems.items()}
        if len(set(widths.values())) != 1:
            raise ValueError(f"every system needs the same number of dimensions, got {widths}")
        self.n_trials, self.n_labelled, self.n_unlabelled = n_trials, n_labelled, n_unlabelled
        self.contrast = np.asarray(contrast, float)
        self.populations = [
            Population(s, judge, truth_sd, truth_corr, polish_sd, rater_sd) for s in systems.values()
        ]

    @property
    def is_contrast(self) -> bool:
        return len(self.populations) > 1

    @property
    def theta(self) -> np.ndarray:
        """The true contrast of the human-label means, per dimension [D] (closed form)."""
        return sum(c * p.true_mean for c, p in zip(self.contrast, self.populations))

    def make(self, index: int) -> dict[str, np.ndarray]:
        rng = self.rng(index)
        labelled = [p.sample(rng, self.n_labelled) for p in self.populations]
        unlabelled = [p.sample(rng, self.n_unlabelled)[1] for p in self.populations]
        return {
            "Y": np.stack([y for y, _ in labelled]),  # [systems, n, D]
            "S": np.stack([s for _, s in labelled]),  # [systems, n, D]
            "S_unl": np.stack(unlabelled),  # [systems, N, D]
            "true_mean": np.stack([p.true_mean for p in self.populations]),  # [systems, D]
            "human_sd": np.stack([p.human_sd for p in self.populations]),  # [systems, D]
            "contrast": self.contrast,  # [systems]
            "theta": self.theta,  # [D]
        }

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.n_trials, self.make)
