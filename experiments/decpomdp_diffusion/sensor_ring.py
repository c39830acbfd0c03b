"""A nonlinear sensor-network Dec-POMDP: a target on a ring watched by range-limited sensors (Wang, Dong
et al., "On Diffusion Models for Multi-Agent Partial Observability", arXiv:2410.13953, whose second
benchmark is a sensor network; this is our small stand-in with an exact Bayes filter as ground truth).

The target's angle moves with a known drift and Gaussian jitter (wrapped to [0, 2 pi)):

    theta_{t+1} = theta_t + omega + w_t,   w_t ~ N(0, q^2),   theta_0 ~ Uniform[0, 2 pi)

Sensor j sits at angle ``c_j`` and sees the target only within radius ``r_j``:

    detected_j^t = 1[ |theta_t - c_j|_circ < r_j ],   reading_j^t = detected_j^t (wrap(theta_t - c_j) + v),
    v ~ N(0, sigma^2)

Agent i owns the sensors ``owners[i]`` (its observation mask over the network) and has no actions; its
history is the window of its sensors' (detected, reading) pairs over ``K`` steps. The state to
reconstruct is the final position as the point ``(cos theta_{K-1}, sin theta_{K-1})``. Coverage gaps of
one agent's sensors make its posterior multimodal ("the target is in one of my blind spots"); the
layout is *collectively observable* iff the union of all sensors covers the whole ring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TAU = 2 * np.pi


def wrap(angle: np.ndarray) -> np.ndarray:
    """Angles to (-pi, pi]."""
    return np.pi - np.mod(np.pi - angle, TAU)


@dataclass(frozen=True)
class SensorRing:
    centers: np.ndarray  # [J] sensor angles (rad)
    radii: np.ndarray  # [J] sensing radii (rad)
    owners: tuple[tuple[int, ...], ...]  # per agent, the sensors it reads
    drift: float  # omega (rad per step)
    process_std: float  # q (rad)
    obs_std: float  # sigma (rad)
    window: int  # K

    @property
    def n_agents(self) -> int:
        return len(self.owners)

    def covered(self, theta: np.ndarray) -> np.ndarray:
        """Which sensors see a target at ``theta`` [...]: bool [..., J]."""
        return np.abs(wrap(theta[..., None] - self.centers)) < self.radii

    def simulate(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` windows: angles [n, K], detected [n, K, J] (0/1), readings [n, K, J] (0 if not detected)."""
        steps = self.drift + rng.normal(0.0, self.process_std, (n, self.window - 1))
        theta0 = rng.uniform(0.0, TAU, (n, 1))
        theta = np.mod(np.cumsum(np.concatenate([theta0, steps], axis=1), axis=1), TAU)
        detected = self.covered(theta).astype(float)
        noise = rng.normal(0.0, self.obs_std, detected.shape)
        reading = detected * (wrap(theta[..., None] - self.centers) + noise)
        return {"theta": theta, "detected": detected, "reading": reading}

    def likelihood(self, grid: np.ndarray, detected: np.ndarray, reading: np.ndarray, sensors) -> np.ndarray:
        """``p(readings of ``sensors`` at one step | theta = grid)``: [n, G] for detected/reading [n, J]."""
        out = np.ones((detected.shape[0], grid.size))
        seen = self.covered(grid)  # [G, J]
        for j in sensors:
            offset = wrap(grid - self.centers[j])  # [G]
            gauss = np.exp(-0.5 * ((reading[:, j, None] - offset) / self.obs_std) ** 2)  # [n, G]
            hit = detected[:, j, None] > 0.5
            out *= np.where(hit, seen[:, j] * gauss, ~seen[:, j])
        return out
