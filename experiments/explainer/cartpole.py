"""CartPole-v1 and a PD controller: the second agent to explain (|A| = 2).

The controller pushes right when K . (x, x_dot, theta, theta_dot) > 0 with K = ``GAINS`` (a PD law
on the pole angle plus a weak cart-centring term; it balances for the full 500 steps). The
decision contexts are states visited by the controller under epsilon-random pushes (so that
leaning, drifting and off-centre states appear), bucketed for caching: one discrete state per
bucket of (theta, theta_dot, x, x_dot), represented by the mean of its visited raw states. The
agent's decision in a discrete state is the controller's action at that mean, hidden from the
context. ``facts(s)`` reads the grammar's claim kinds for the pole [reconstruction]:

    closer  pushing d turns the pole back upright (d is the side the pole falls toward)
    hole    pushing d tips a strongly leaning pole over (the side away from its lean)
    wall    pushing d drives the cart on towards the track edge it is near
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from experiments.explainer.frozenlake import Facts

ACTIONS = ("left", "right")  # gymnasium's CartPole action order: 0 pushes left, 1 pushes right
GAINS = np.array([0.1, 0.2, 1.0, 0.5])  # K over (x, x_dot, theta, theta_dot)
EDGES = {  # bucket edges per state variable (radians for the pole)
    "theta": np.deg2rad([-2.0, 0.0, 2.0]),
    "theta_dot": np.array([-0.3, 0.0, 0.3]),
    "x": np.array([-0.5, 0.5]),
    "x_dot": np.array([-0.3, 0.3]),
}


def controller(state: np.ndarray) -> int:
    """The PD controller's action for a raw state (x, x_dot, theta, theta_dot)."""
    return int(GAINS @ state > 0)


def side(value: float) -> str:
    return "right" if value > 0 else "left"


class CartPole:
    """Discrete decision contexts of the controlled cart-pole; ``states``/``policy`` as FrozenLake's."""

    actions = ACTIONS
    question = "So the agent pushes the cart"  # the LLM continuation judges' prompt end

    def __init__(self, episodes: int = 4, steps: int = 200, epsilon: float = 0.3, seed: int = 0):
        env, rng = gym.make("CartPole-v1"), np.random.default_rng(seed)
        visited: dict[int, list[np.ndarray]] = {}
        for episode in range(episodes):
            state, _ = env.reset(seed=seed * 1000 + episode)
            for _ in range(steps):
                visited.setdefault(self.bucket(state), []).append(state)
                action = int(rng.integers(2)) if rng.random() < epsilon else controller(state)
                state, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    break
        self.raw = {s: np.mean(v, 0) for s, v in sorted(visited.items())}  # s -> mean raw state
        self.states = list(self.raw)
        self.policy = {s: controller(x) for s, x in self.raw.items()}

    @staticmethod
    def digits(state: np.ndarray) -> tuple[int, int, int, int]:
        """Bucket index of (theta, theta_dot, x, x_dot): digits 0..3, 0..3, 0..2, 0..2."""
        x, x_dot, theta, theta_dot = state
        return tuple(
            int(np.searchsorted(EDGES[k], v))
            for k, v in (("theta", theta), ("theta_dot", theta_dot), ("x", x), ("x_dot", x_dot))
        )

    def bucket(self, state: np.ndarray) -> int:
        a, b, c, d = self.digits(state)
        return ((a * 4 + b) * 3 + c) * 3 + d

    def token_words(self, s: int) -> list[str]:
        """The tiny explainer's view of the context: the bucket digits."""
        return ["at", *(str(d) for d in self.digits(self.raw[s]))]

    def context(self, s: int) -> str:
        """The decision context as text (the agent's push is not in it)."""
        x, x_dot, theta, theta_dot = self.raw[s]
        return (
            f"A cart balances a pole on a track from -2.4 to 2.4. The cart is at {x:+.2f}, "
            f"moving {side(x_dot)} at {abs(x_dot):.2f}. The pole leans {side(theta)} by "
            f"{abs(np.rad2deg(theta)):.1f} degrees and turns {side(theta_dot)} at {abs(theta_dot):.2f}."
        )

    def facts(self, s: int) -> Facts:
        x, _, theta, theta_dot = self.raw[s]
        falling = side(theta + 0.5 * theta_dot)
        strong = abs(theta) > EDGES["theta"][-1]
        closer = {a: a == falling for a in ACTIONS}
        hole = {a: bool(strong and a != side(theta)) for a in ACTIONS}
        wall = {a: bool(abs(x) > EDGES["x"][-1] and a == side(x)) for a in ACTIONS}
        return Facts(wall, hole, closer)
