"""Generative-advertising auctions with a stochastic generation simulator (IAMFM, arXiv:2604.06263).

One instance = one replica (a seed of a paired comparison): n advertisers with private per-exposure
values v_i, the configurations Theta = levels^n, and for every fidelity f the exact outcome means
[K, n + 1] (exposures, then satisfaction) that its generations are drawn from. Fidelities are a
reconstruction and pluggable (the ``fidelities`` list):

* type A (sample count): one fidelity; methods choose how many generations m each configuration gets;
* type B (cheap proxy): a low fidelity whose means carry a deterministic bias of +-``bias`` per
  (configuration, outcome), drawn from the instance's ``proxy_bias`` stream, at a lower cost.

The last fidelity is the target (bias 0): welfare, regret and payments are measured on its means.
Bad input fails before any compute: negative values, an empty level set, a non-positive cost
(pydantic), a biased target fidelity, duplicate fidelity names (here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task
from experiments.iamfm.welfare import LogisticCrowding, WelfareModel, strength_grid


class FidelitySpec(BaseModel):
    """One way of evaluating a configuration: cost per generation and proxy bias."""

    model_config = ConfigDict(extra="forbid")
    name: str
    cost: Annotated[float, Field(gt=0)]  # cost of one generation (tokens, seconds or units)
    bias: NonNegativeFloat = 0.0  # size of the deterministic +- bias of the proxy's means


@dataclass
class AdInstance:
    """One auction: values [n], lambda, configurations [K, n], means [F, K, n + 1], costs [F]."""

    index: int
    values: np.ndarray
    lam: float
    configs: np.ndarray
    means: np.ndarray
    costs: np.ndarray
    fidelities: tuple[str, ...]

    @property
    def n(self) -> int:
        return self.configs.shape[1]

    @property
    def target(self) -> int:
        """Index of the target (highest) fidelity."""
        return len(self.costs) - 1

    def weights(self, bids: np.ndarray, drop: int | None = None) -> np.ndarray:
        """[n + 1] welfare weights (b, lambda); ``drop`` zeroes advertiser i's bid: W_{-i}."""
        w = np.append(np.asarray(bids, dtype=np.float64), self.lam)
        if drop is not None:
            w[drop] = 0.0
        return w

    def welfare(self, weights: np.ndarray) -> np.ndarray:
        """Exact W(theta) [K] at the target fidelity for welfare weights [n + 1]."""
        return self.means[self.target] @ weights


DEFAULT_WELFARE = LogisticCrowding()
DEFAULT_FIDELITIES = (FidelitySpec(name="target", cost=1.0),)


class AdAuctionTask(Task):
    offers: ClassVar[tuple[str, ...]] = ("ad_configuration",)

    @validate_call
    def __init__(
        self,
        count: PositiveInt = 4,
        values: Annotated[list[NonNegativeFloat], Field(min_length=1)] = (3.0, 2.0, 1.5),
        value_spread: Annotated[float, Field(ge=0, lt=1)] = 0.0,
        lam: NonNegativeFloat = 2.0,
        levels: Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=1)] = (0.0, 0.5, 1.0),
        welfare: WelfareModel = DEFAULT_WELFARE,
        fidelities: Annotated[list[FidelitySpec], Field(min_length=1)] = DEFAULT_FIDELITIES,
        seed: int = 0,
    ):
        super().__init__(seed)
        if fidelities[-1].bias != 0:
            raise ValueError(
                f"fidelities: the last one ({fidelities[-1].name}) is the target and must have "
                f"bias 0, got {fidelities[-1].bias}"
            )
        names = [f.name for f in fidelities]
        if len(set(names)) != len(names):
            raise ValueError(f"fidelities: duplicate names {names}")
        if len(set(levels)) < len(levels):
            raise ValueError(f"levels: duplicate strengths {list(levels)}")
        self.count, self.values, self.value_spread, self.lam = count, np.asarray(values), value_spread, lam
        self.configs = strength_grid(list(levels), len(values))
        self.welfare_model, self.fidelities = welfare, list(fidelities)

    def make(self, index: int) -> AdInstance:
        rng = self.rng(index, "values")
        values = self.values * rng.uniform(1 - self.value_spread, 1 + self.value_spread, len(self.values))
        truth = self.welfare_model.means(self.configs)  # [K, n + 1]
        signs = self.rng(index, "proxy_bias").choice([-1.0, 1.0], size=(len(self.fidelities), *truth.shape))
        bias = np.array([f.bias for f in self.fidelities])[:, None, None]
        means = np.clip(truth[None] + bias * signs, 0.0, 1.0)  # [F, K, n + 1]
        return AdInstance(
            index,
            values,
            self.lam,
            self.configs,
            means,
            np.array([f.cost for f in self.fidelities]),
            tuple(f.name for f in self.fidelities),
        )

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.count, self.make)
