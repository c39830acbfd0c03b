"""The continuous-state synthetic RMAB (Bandit Whisperer, synthetic experiments;
``ContinuousStateExampleEnv``).

s' = clip(s + N(mu_a, sigma_a), 0, 1) with mu_1 ~ U(-0.2, 0.2) (the pull effect, possibly harmful),
mu_0 = -mu_1, sigma_0 = sigma_1 ~ U(0.1, 0.2); true reward r = s'; reset s ~ U[0, 1]. Rewards are
binned into 51 bins for the systematic error (the top bin keeps r); tabular learners see
``state_bins`` bins of s, networks see s itself.
"""

import numpy as np

from experiments.rmab_comm.env import BudgetedRMAB

REWARD_BINS = 51


def sample_arms(n_arms: int, rng: np.random.Generator) -> np.ndarray:
    """theta = (mu_0, mu_1, sigma_0, sigma_1) per arm: [N, 4]."""
    mu1 = rng.uniform(-0.2, 0.2, n_arms)
    sigma = rng.uniform(0.1, 0.2, n_arms)
    return np.stack([-mu1, mu1, sigma, sigma], axis=1)


class SyntheticRMAB(BudgetedRMAB):
    def __init__(self, *args, state_bins: int = 20, **kwargs):
        self.n_states = state_bins
        super().__init__(*args, **kwargs)

    def reset_states(self) -> np.ndarray:
        return self.np_random.uniform(0.0, 1.0, (self.num_envs, self.n_arms))

    def transition(self, state, actions):
        mu = np.take_along_axis(self.theta[..., 0:2], actions[..., None], -1)[..., 0]  # [B, N]
        sigma = np.take_along_axis(self.theta[..., 2:4], actions[..., None], -1)[..., 0]
        return np.clip(state + mu + sigma * self.np_random.standard_normal(state.shape), 0.0, 1.0)

    def true_reward(self, nxt):
        return nxt

    def reward_bin(self, nxt):
        return np.minimum(np.rint(nxt * REWARD_BINS).astype(int), REWARD_BINS - 1)

    def state_index(self, state):
        return np.minimum((state * self.n_states).astype(int), self.n_states - 1)

    def scaled(self, state):
        return state
