"""SIS epidemic arms with three actions of cost {0, 1, 2} (Bandit Whisperer, SIS experiments;
``SISRobustEnv``).

An arm is a population of P people; its state s is the number of uninfected. Next step each of the
s uninfected is infected with probability q = 1 - exp(-lambda (P - s) / P r_t) (action 0), the
exponent divided by ``effect_1`` (action 1) or ``effect_2`` (action 2); the infected recover, so
s' = P - Binomial(s, q). True reward s' / P. The systematic error uses the P + 1 states as bins
(s' = P keeps its reward). Parameters per arm: r_t ~ U[0.5, 0.99], lambda ~ U[1, 10],
effect_1 ~ U[0.25, 2], effect_2 ~ U[1, 8] (drawn directly from the ranges; the released code first
narrows each range at random, a detail we leave out).
"""

import numpy as np

from experiments.rmab_comm.env import BudgetedRMAB

RANGES = np.array([[0.5, 0.99], [1.0, 10.0], [0.25, 2.0], [1.0, 8.0]])  # r_t, lambda, effect_1, effect_2


def sample_arms(n_arms: int, rng: np.random.Generator) -> np.ndarray:
    """theta = (r_t, lambda, effect_1, effect_2) per arm: [N, 4]."""
    return rng.uniform(RANGES[:, 0], RANGES[:, 1], (n_arms, 4))


class SISRMAB(BudgetedRMAB):
    def __init__(self, *args, pop_size: int = 20, **kwargs):
        self.pop_size = pop_size
        self.n_states = pop_size + 1
        super().__init__(*args, **kwargs)

    def reset_states(self) -> np.ndarray:
        return self.np_random.integers(0, self.pop_size + 1, (self.num_envs, self.n_arms)).astype(float)

    def transition(self, state, actions):
        r_t, lam = self.theta[..., 0], self.theta[..., 1]
        effect = np.stack([np.ones_like(r_t), self.theta[..., 2], self.theta[..., 3]], -1)  # [B, N, 3]
        divisor = np.take_along_axis(effect, actions[..., None], -1)[..., 0]
        q = 1.0 - np.exp(-lam * (self.pop_size - state) / self.pop_size * r_t / divisor)
        return self.pop_size - self.np_random.binomial(state.astype(int), q).astype(float)

    def true_reward(self, nxt):
        return nxt / self.pop_size

    def reward_bin(self, nxt):
        return nxt.astype(int)

    def state_index(self, state):
        return state.astype(int)

    def scaled(self, state):
        return state / self.pop_size
