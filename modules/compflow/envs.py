"""A target-environment runner whose whole state checkpoints as arrays (exact resume).

Steps ``env.unwrapped`` with its own time limit (the wrappers' counters are not restorable),
rescales actions from [-1, 1], resets from seeds drawn by the caller's stream, and records the
return of every finished episode with the learner step it ended at.
"""

import numpy as np


class EnvRunner:
    def __init__(self, env, rng: np.random.Generator):
        self.env, self.high = env.unwrapped, env.action_space.high
        self.limit = env.spec.max_episode_steps
        self.mujoco = hasattr(self.env, "data")
        self.t, self.total, self.finished = 0, 0.0, []  # finished: (step, return)
        self.obs = self.env.reset(seed=int(rng.integers(2**31)))[0]

    def physics(self) -> np.ndarray:
        """The simulator state: (qpos, qvel) for MuJoCo, (theta, thetadot) for Pendulum."""
        if self.mujoco:
            return np.concatenate([self.env.data.qpos, self.env.data.qvel]).astype(np.float64)
        return np.asarray(self.env.state, dtype=np.float64)

    def step(self, action: np.ndarray, rng: np.random.Generator, step: int) -> dict:
        """One transition (action in [-1, 1]); resets at termination or the time limit."""
        x = self.physics()
        nxt, reward, terminated, _, _ = self.env.step((action * self.high).astype(np.float32))
        row = {
            "s": self.obs,
            "a": action.astype(np.float32),
            "r": np.float32(reward),
            "s2": nxt.astype(np.float32),
            "d": np.float32(terminated),
            "x": x,
        }
        self.t, self.total = self.t + 1, self.total + float(reward)
        if terminated or self.t >= self.limit:
            self.finished.append((step, self.total))
            self.t, self.total = 0, 0.0
            nxt = self.env.reset(seed=int(rng.integers(2**31)))[0]
        self.obs = nxt.astype(np.float32)
        return row

    def state_dict(self) -> dict:
        return {
            "physics": self.physics(),
            "obs": self.obs,
            "t": self.t,
            "total": self.total,
            "finished": np.asarray(self.finished, dtype=np.float64).reshape(-1, 2),
        }

    def load_state_dict(self, state: dict) -> None:
        physics = np.asarray(state["physics"])
        if self.mujoco:
            nq = self.env.model.nq
            self.env.set_state(physics[:nq], physics[nq:])
        else:
            self.env.state = physics.copy()
        self.obs, self.t, self.total = np.asarray(state["obs"]), int(state["t"]), float(state["total"])
        self.finished = [(int(s), float(r)) for s, r in np.asarray(state["finished"])]


def evaluate(env, actor_fn, seed: int) -> float:
    """Return of one deterministic episode of ``actor_fn(obs [1, ds]) -> action [1, da]`` in [-1, 1]."""
    raw, high = env.unwrapped, env.action_space.high
    obs, total = raw.reset(seed=seed)[0], 0.0
    for _ in range(env.spec.max_episode_steps):
        obs, reward, terminated, _, _ = raw.step((actor_fn(obs[None])[0] * high).astype(np.float32))
        total += float(reward)
        if terminated:
            break
    return total
