"""A budgeted RMAB batch as a gymnasium ``VectorEnv``: B independent copies ("replicas") of N arms.

Arms are independent given the budget: each copy's joint action must satisfy sum_i C[a_i] <= B,
and every dynamics/reward computation is one array op over [B, N]. ``step`` returns the TRUE
reward (summed over arms, per copy) as the gymnasium reward, and in ``info`` the per-arm
``true`` rewards and the ``observed`` ones (systematic errors on the noisy arms, see
:mod:`experiments.rmab_comm.noise`). Learners only ever see ``observed``; evaluation uses ``true``.

Subclasses define ``reset_states``, ``transition``, ``true_reward``, ``reward_bin`` and the
learner-facing state maps ``n_states`` / ``state_index`` (tabular) and ``scaled`` (networks).
"""

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv


def check_budget(n_arms: int, budget: int, costs: list[int]) -> None:
    """Raise ``ValueError`` when the budget or the action costs cannot define a budgeted RMAB."""
    if len(costs) < 2 or costs[0] != 0:
        raise ValueError(f"costs={costs}: need >= 2 actions and C[0] = 0 (the passive action is free)")
    if any(c < 0 for c in costs):
        raise ValueError(f"costs={costs}: action costs must be non-negative")
    if not 0 < budget <= n_arms:
        raise ValueError(
            f"budget={budget} must be in [1, n_arms={n_arms}] (a budget larger than the "
            "number of arms removes the coupling)"
        )


class BudgetedRMAB(VectorEnv):
    """Shared stepping logic; ``theta`` [B, N, P] are the arms' parameters."""

    n_params = 4

    def __init__(
        self,
        theta: np.ndarray,
        noisy: np.ndarray,
        costs: list[int],
        budget: int,
        rng: np.random.Generator,
        error=None,
    ):
        self.theta, self.noisy, self.error = theta, noisy, error  # noisy: [B, N] bool
        self.costs, self.budget = np.asarray(costs), budget
        self.num_envs, self.n_arms = theta.shape[:2]
        self.np_random = rng
        self.single_action_space = spaces.MultiDiscrete([len(costs)] * self.n_arms)
        self.action_space = spaces.MultiDiscrete(np.full((self.num_envs, self.n_arms), len(costs)))
        self.state = self.reset_states()

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self.state = self.reset_states()
        return self.state.copy(), {}

    def step(self, actions: np.ndarray):
        spent = self.costs[actions].sum(-1)  # [B]
        if np.any(spent > self.budget):
            raise ValueError(f"joint action costs {spent.max()} > budget {self.budget}")
        nxt = self.transition(self.state, actions)
        true = self.true_reward(nxt)
        observed = np.where(self.noisy, self.observe(nxt, true), true)
        self.state = nxt
        done = np.zeros(self.num_envs, dtype=bool)
        return nxt.copy(), true.sum(-1), done, done, {"true": true, "observed": observed}

    def observe(self, nxt: np.ndarray, true: np.ndarray) -> np.ndarray:
        """What a noisy arm sees: the systematic error of its reward bin."""
        return self.error.observe(true, self.reward_bin(nxt))

    # ---- per-environment parts ------------------------------------------------------------
    def reset_states(self) -> np.ndarray:
        raise NotImplementedError

    def transition(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def true_reward(self, nxt: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reward_bin(self, nxt: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    n_states: int = 0

    def state_index(self, state: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def scaled(self, state: np.ndarray) -> np.ndarray:
        raise NotImplementedError
