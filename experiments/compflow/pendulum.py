"""Gymnasium ``Pendulum-v1`` with shifted physics and its closed-form true gap.

The simulator (gymnasium's own step) is, with dt = 0.05 and u clipped to [-2, 2],

    thdot' = clip(thdot + (3 g / (2 l) sin th + 3 / (m l^2) u) dt, -8, 8),   th' = th + thdot' dt,

observed as (cos th', sin th', thdot'). A shift multiplies one physical parameter of the target
copy: ``gravity`` (g; gap ~ |sin th|, zero at the top and bottom), ``mass`` or ``length``
(gap ~ |u| for mass). Both kernels are deterministic, so their supports are disjoint wherever the
gap is nonzero, and ``true_gap`` = ||obs_tar(s, a) - obs_src(s, a)|| exactly.
"""

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

DT, MAX_SPEED, MAX_TORQUE = 0.05, 8.0, 2.0
PARAMETER = {"gravity": "g", "mass": "m", "length": "length"}


@dataclass(frozen=True)
class PendulumPhysics:
    g: float = 10.0
    m: float = 1.0
    length: float = 1.0  # l

    def shifted(self, kind: str, level: float) -> "PendulumPhysics":
        if kind not in PARAMETER:
            raise ValueError(f"unknown Pendulum shift kind {kind!r}; known: {', '.join(PARAMETER)}")
        values = {"g": self.g, "m": self.m, "length": self.length}
        values[PARAMETER[kind]] *= level
        return PendulumPhysics(**values)

    def make(self) -> gym.Env:
        env = gym.make("Pendulum-v1", g=self.g)
        env.unwrapped.m, env.unwrapped.l = self.m, self.length
        return env

    def next_obs(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Closed-form gymnasium step on observations [n, 3] and actions [n, 1] -> [n, 3]."""
        th, thdot = np.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]
        u = np.clip(action[:, 0], -MAX_TORQUE, MAX_TORQUE)
        thdot2 = (
            thdot + (3 * self.g / (2 * self.length) * np.sin(th) + 3.0 / (self.m * self.length**2) * u) * DT
        )
        thdot2 = np.clip(thdot2, -MAX_SPEED, MAX_SPEED)
        th2 = th + thdot2 * DT
        return np.stack([np.cos(th2), np.sin(th2), thdot2], axis=1)


def true_gap(
    source: PendulumPhysics, target: PendulumPhysics, obs: np.ndarray, action: np.ndarray
) -> np.ndarray:
    return np.linalg.norm(target.next_obs(obs, action) - source.next_obs(obs, action), axis=1)


def swing_up_action(obs: np.ndarray, physics: PendulumPhysics) -> np.ndarray:
    """An energy-pumping swing-up controller with a PD catch near the top: the behaviour policy of
    the offline source data (a few lines of control, so no learner produced the data)."""
    th, thdot = np.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]
    energy = (
        0.5 * physics.m * physics.length** 2 * thdot** 2 / 3
        + physics.m * physics.g * physics.length / 2 * (np.cos(th) - 1)
    )
    pump = np.sign(thdot + 1e-6) * np.where(energy < 0, 1.0, -1.0) * MAX_TORQUE  # work u * thdot
    catch = -10.0 * np.sin(th) - 2.0 * thdot
    u = np.where(np.cos(th) > 0.8, catch, pump)
    return np.clip(u, -MAX_TORQUE, MAX_TORQUE)[:, None]
