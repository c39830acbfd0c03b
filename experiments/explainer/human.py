"""The known "human" decision distribution of Theorem 1 (Yang et al., arXiv:2502.12530, v2).

For a decision context c and explanation y, humans do not share one judgment: each human's
decision distribution is p ~ Dirichlet(kappa * p_oracle(c, y)) (pluralistic noise around the
credulous reader's probabilities). The theorem's proxy is that distribution plus isotropic
Gaussian noise, q = p + N(0, sigma_r^2 I); using q directly costs W_2(q, p) ~ sqrt(|A|) sigma_r.
The true distribution is known here, so W_2 to it is measurable; it never trains anything.
"""

from __future__ import annotations

import numpy as np

from experiments.explainer.frozenlake import FrozenLake
from experiments.explainer.readers import CredulousReader


def human_samples(
    env: FrozenLake, state: int, words: list[str], kappa: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` human decision distributions for (state, words): [n, |A|] on the simplex."""
    mean = CredulousReader().probs(env.facts(state), words)
    return rng.dirichlet(kappa * mean, size=n)


def proxy_samples(human: np.ndarray, sigma_r: float, rng: np.random.Generator) -> np.ndarray:
    """The theorem's proxy: each human judgment plus N(0, sigma_r^2 I)."""
    if sigma_r <= 0:
        raise ValueError(f"sigma_r must be > 0, got {sigma_r}")
    return human + rng.normal(0.0, sigma_r, human.shape)
