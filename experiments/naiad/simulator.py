"""A synthetic human/LLM-judge population with known ground truth and a halo effect.

NaiAD (arXiv 2605.09918) scores every response on four dimensions q1..q4 (relevance, coherence,
ad effectiveness, click-through intent) and calibrates LLM-judge scores against a human subset
with VC-PPI. Its judge shows *dimensional collinearity*: all dimensions move with one overall
impression. This simulator reproduces that on a 0-100 scale (the scale is our assumption [R]):

    truth      t ~ N(mu_system, Sigma)              Sigma = sd^2 [(1 - rho) I + rho 11^T]
    polish     p ~ N(pi_system, tau^2)              the shared "overall impression" (halo source)
    human      Y_d = t_d + eps_h,   eps_h ~ N(0, sigma_h^2)
    judge      S_d = b + c t_d + h p + eps_j,   eps_j ~ N(0, sigma_j^2)

so the estimand E[Y_d] = mu_d and the human spread sd(Y_d) = sqrt(sd^2 + sigma_h^2) are closed
forms. Scores are not clipped to [0, 100] (clipping would move the true mean off the closed form);
the default parameters keep them inside it with overwhelming probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIMENSIONS = ("q1", "q2", "q3", "q4")


@dataclass(frozen=True)
class Judge:
    """S_d = bias + compression * t_d + halo * polish + N(0, noise^2)."""

    bias: float
    compression: float
    halo: float
    noise: float

    def score(self, rng: np.random.Generator, truth: np.ndarray, polish: np.ndarray) -> np.ndarray:
        # truth [m, D], polish [m] -> scores [m, D]
        noise = rng.normal(0.0, self.noise, truth.shape)
        return self.bias + self.compression * truth + self.halo * polish[:, None] + noise


@dataclass(frozen=True)
class System:
    """A response generator: its mean true quality per dimension and its mean polish."""

    mean: tuple[float, ...]
    polish: float


@dataclass(frozen=True)
class Population:
    """Items of one system, judged by ``judge`` and (on a subset) labelled by humans."""

    system: System
    judge: Judge
    truth_sd: float
    truth_corr: float
    polish_sd: float
    rater_sd: float

    @property
    def covariance(self) -> np.ndarray:
        d = len(self.system.mean)
        corr = (1 - self.truth_corr) * np.eye(d) + self.truth_corr * np.ones((d, d))
        return self.truth_sd**2 * corr

    @property
    def true_mean(self) -> np.ndarray:
        """E[Y_d]: the estimand (closed form)."""
        return np.asarray(self.system.mean, dtype=float)

    @property
    def human_sd(self) -> np.ndarray:
        """sd(Y_d) in the population (closed form)."""
        return np.full(len(self.system.mean), np.hypot(self.truth_sd, self.rater_sd))

    def sample(self, rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
        """``m`` items: human labels Y [m, D] and judge scores S [m, D]."""
        truth = rng.multivariate_normal(self.true_mean, self.covariance, size=m)
        polish = rng.normal(self.system.polish, self.polish_sd, m)
        human = truth + rng.normal(0.0, self.rater_sd, truth.shape)
        return human, self.judge.score(rng, truth, polish)
