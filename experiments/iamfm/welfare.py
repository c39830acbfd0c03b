"""Welfare models: the exact expected exposure mu(theta) and user satisfaction nu(theta) per configuration.

IAMFM (Liu, Wang, Gan, Wang, Xie, Guo, Conitzer, arXiv:2604.06263) steers one generated response with
a configuration theta of advertiser strengths; welfare is W(theta; b) = sum_i b_i mu_i(theta) +
lambda nu(theta). The paper's generation model is not available: the logistic crowding model below is
a reconstruction (ads crowd each other out, satisfaction falls with total ad strength). It is
pluggable: add a pydantic class with a ``kind`` literal and ``means(configs) -> [K, n + 1]`` to the
``WelfareModel`` union (discriminated by ``kind``) and name it in the task's ``welfare.kind``.
"""

from __future__ import annotations

from itertools import product
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.special import expit


def strength_grid(levels: list[float], n: int) -> np.ndarray:
    """Theta = levels^n, one configuration per row [K = len(levels)^n, n] (lexicographic order)."""
    return np.array(list(product(levels, repeat=n)), dtype=np.float64)


class LogisticCrowding(BaseModel):
    """p_i = sigma(slope theta_i - offset - crowding sum_{j != i} theta_j),
    q = sigma(sat_offset - sat_slope sum_j theta_j)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["logistic_crowding"] = "logistic_crowding"
    slope: float = 3.0
    offset: float = 1.5
    crowding: float = 0.8
    sat_offset: float = 1.5
    sat_slope: float = 1.2

    def means(self, configs: np.ndarray) -> np.ndarray:
        """[K, n + 1]: exposure probabilities of the n advertisers, then the satisfaction probability."""
        total = configs.sum(1, keepdims=True)  # [K, 1]
        exposure = expit(self.slope * configs - self.offset - self.crowding * (total - configs))  # [K, n]
        satisfaction = expit(self.sat_offset - self.sat_slope * total)  # [K, 1]
        return np.concatenate([exposure, satisfaction], axis=1)


WelfareModel = (
    LogisticCrowding  # the union of welfare models, e.g. Annotated[A | B, Field(discriminator="kind")]
)
