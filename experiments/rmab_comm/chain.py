"""The chain counterexample (Bandit Whisperer, released code ``CounterExampleEnv``).

Arm with K levels, state l in {0, 1, ..., K} (value l / K), start l = 1. Pulling climbs one level,
not pulling drops to the absorbing bad level 0; the top level K is absorbing too. True reward of the
level reached: 0 at 0, 2 in between, R_opt at K. A noisy arm observes a deliberate false optimum:
a reward U(1, 2) at level 0 (drawn once per arm: a systematic error), 0 in between, R_opt at K --
"do not pull" looks best to it, and epsilon-greedy exploration rarely climbs K - 1 levels in a row to
find out otherwise. :func:`optimal_return` is the exact finite-horizon optimum (backward induction),
the ground truth the learners are judged against.
"""

import numpy as np

from experiments.rmab_comm.env import BudgetedRMAB


def sample_arms(
    n_arms: int, levels: list[int], optimal_reward: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """theta = (K, R_opt, r_bad observed, 0) per arm: [N, 4]."""
    K = rng.choice(levels, n_arms).astype(float)
    r_opt = rng.uniform(*optimal_reward, n_arms)
    r_bad = rng.uniform(1.0, 2.0, n_arms)
    return np.stack([K, r_opt, r_bad, np.zeros(n_arms)], axis=1)


def level_rewards(
    K: np.ndarray, r_low: np.ndarray, r_mid: float | np.ndarray, r_top: np.ndarray, n_levels: int
) -> np.ndarray:
    """Reward table [..., n_levels] of each level reached (levels above K never occur)."""
    level = np.arange(n_levels)
    table = np.where(level == 0, r_low[..., None], r_mid)
    return np.where(level >= K[..., None], r_top[..., None], table)


def optimal_return(theta: np.ndarray, gamma: float, horizon: int) -> np.ndarray:
    """Exact optimal true discounted return from l = 1 over ``horizon`` steps, per arm: [N]."""
    K = theta[:, 0].astype(int)
    n = int(K.max()) + 1
    reward = level_rewards(K, np.zeros(len(K)), 2.0, theta[:, 1], n)  # [N, levels]
    level = np.arange(n)
    up = np.where((level > 0) & (level < K[:, None]), level + 1, level)  # pull
    down = np.where((level > 0) & (level < K[:, None]), 0, level)  # passive
    value = np.zeros((len(K), n))
    for _ in range(horizon):
        q_up = np.take_along_axis(reward + gamma * value, up, 1)
        q_down = np.take_along_axis(reward + gamma * value, down, 1)
        value = np.maximum(q_up, q_down)
    return value[:, 1]


class ChainRMAB(BudgetedRMAB):
    def __init__(self, theta: np.ndarray, **kwargs):
        self.n_states = int(theta[..., 0].max()) + 1
        super().__init__(theta, **kwargs)

    def reset_states(self) -> np.ndarray:
        return np.ones((self.num_envs, self.n_arms))

    def transition(self, state, actions):
        K = self.theta[..., 0]
        moving = (state > 0) & (state < K)
        return np.where(moving, np.where(actions > 0, state + 1, 0.0), state)

    def true_reward(self, nxt):
        table = level_rewards(self.theta[..., 0], np.zeros(nxt.shape), 2.0, self.theta[..., 1], self.n_states)
        return np.take_along_axis(table, nxt.astype(int)[..., None], -1)[..., 0]

    def observe(self, nxt, true):
        table = level_rewards(self.theta[..., 0], self.theta[..., 2], 0.0, self.theta[..., 1], self.n_states)
        return np.take_along_axis(table, nxt.astype(int)[..., None], -1)[..., 0]

    def state_index(self, state):
        return state.astype(int)

    def scaled(self, state):
        return state / self.theta[..., 0]
