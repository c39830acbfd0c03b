"""Gymnasium MuJoCo robots (``Hopper-v5``, ``HalfCheetah-v5``, ``Walker2d-v5``) with shifted physics.

Shifts follow the off-dynamics benchmark's XML edits, applied in place on ``env.unwrapped.model``:
``gravity`` (gravity x level), ``friction`` (every geom's sliding friction x level), ``joint_range``
(every limited hinge's range x level) and ``body_size`` (every geom's size x level; the masses are
left as compiled). The true gap of a transition is measured by copying its simulator state
(qpos, qvel) into both simulators, stepping both with the same action and comparing observations.
"""

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

ROBOTS = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5")
SHIFTS = ("gravity", "friction", "joint_range", "body_size")


@dataclass(frozen=True)
class MujocoShift:
    robot: str = "Hopper-v5"
    kind: str = "gravity"
    level: float = 0.5

    def __post_init__(self):
        if self.robot not in ROBOTS:
            raise ValueError(f"unknown robot {self.robot!r}; known: {', '.join(ROBOTS)}")
        if self.kind not in SHIFTS:
            raise ValueError(f"unknown MuJoCo shift kind {self.kind!r}; known: {', '.join(SHIFTS)}")

    def make(self, domain: str) -> gym.Env:
        """The unshifted (``source``) or shifted (``target``) robot."""
        env = gym.make(self.robot)
        if domain == "target":
            model, k = env.unwrapped.model, self.level
            if self.kind == "gravity":
                model.opt.gravity[:] = model.opt.gravity * k
            elif self.kind == "friction":
                model.geom_friction[:, 0] *= k
            elif self.kind == "joint_range":
                model.jnt_range[model.jnt_limited.astype(bool)] *= k
            else:
                model.geom_size[:] = model.geom_size * k
        return env


def physics_state(env: gym.Env) -> np.ndarray:
    """(qpos, qvel) of the running simulator, concatenated [nq + nv]."""
    data = env.unwrapped.data
    return np.concatenate([data.qpos, data.qvel]).astype(np.float64)


def step_from(env: gym.Env, state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Observation after one step of ``env`` from simulator ``state`` with ``action``."""
    nq = env.unwrapped.model.nq
    env.unwrapped.set_state(state[:nq], state[nq:])
    obs, *_ = env.unwrapped.step(action)
    return obs


def true_gap(source: gym.Env, target: gym.Env, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """||obs_tar(x, a) - obs_src(x, a)|| with both simulators started at each state x [n, nq + nv]."""
    for env in (source, target):
        env.reset(seed=0)
    return np.array(
        [np.linalg.norm(step_from(target, x, a) - step_from(source, x, a)) for x, a in zip(states, actions)]
    )
