"""Budgeted-RMAB tasks with systematic data errors: synthetic, SIS and the chain counterexample.

An instance is a *replica*: one environment seed (its arms, drawn from ``self.rng(r, "arms")``, and
its systematic errors, from ``self.rng(r, "noise")``). Learners train every replica side by side
(arms batched over [replica, arm]) and are evaluated per replica, so a multi-seed claim is one run
whose instances are the seeds. The noisy arms are the last ``n_noisy`` indices (as in the released
code). Evaluation rollouts start from ``self.rng(r, "eval")``: the same for every policy
(common random numbers).

Bad input fails before compute: a budget outside [1, n_arms], negative or malformed costs, more
noisy arms than arms, noise parameters out of range (``ValueError`` naming the argument).
"""

from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveInt

from experiments.base import InstanceDataset, Task
from experiments.rmab_comm import chain, sis, synthetic
from experiments.rmab_comm.env import BudgetedRMAB, check_budget
from experiments.rmab_comm.features import arm_features
from experiments.rmab_comm.noise import Shape, SystematicError, check_noise


class RMABTask(Task):
    offers: ClassVar[tuple[str, ...]] = ("budgeted_rmab",)
    env_class: ClassVar[type[BudgetedRMAB]] = BudgetedRMAB
    reward_max: ClassVar[float] = 1.0  # largest true reward of a step

    def __init__(
        self,
        seed: int = 0,
        replicas: PositiveInt = 5,
        n_arms: PositiveInt = 12,
        budget: PositiveInt = 6,
        n_noisy: NonNegativeInt = 6,
        costs: list[int] = (0, 1),
        horizon: PositiveInt = 20,
        eval_horizon: PositiveInt = 10,
        eval_episodes: PositiveInt = 200,
        noise_shape: Shape = "gaussian",
        noise_level: NonNegativeFloat = 1.0,
        noise_width: float = 0.5,
        noise_mixture_p: float = 0.5,
    ):
        super().__init__(seed)
        check_budget(n_arms, budget, list(costs))
        if n_noisy > n_arms:
            raise ValueError(f"n_noisy={n_noisy} exceeds n_arms={n_arms}")
        check_noise(noise_shape, noise_level, noise_width, noise_mixture_p)
        self.replicas, self.n_arms, self.budget, self.n_noisy = replicas, n_arms, budget, n_noisy
        self.costs, self.horizon = list(costs), horizon
        self.eval_horizon, self.eval_episodes = eval_horizon, eval_episodes
        self.noise = {
            "shape": noise_shape,
            "level": noise_level,
            "width": noise_width,
            "mixture_p": noise_mixture_p,
        }
        self._arms: dict[int, np.ndarray] = {}  # replica -> theta, built on first use
        self._errors: dict[int, SystematicError | None] = {}
        self.noisy = np.arange(n_arms) >= n_arms - n_noisy  # [N] bool

    def instances(self):
        return InstanceDataset(self.replicas, lambda r: r)

    # ---- per replica ----------------------------------------------------------------------
    def sample_arms(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def arms(self, r: int) -> np.ndarray:
        """theta of replica r's arms: [N, 4]."""
        if r not in self._arms:
            self._arms[r] = self.sample_arms(self.rng(r, "arms"))
        return self._arms[r]

    def features(self, r: int) -> np.ndarray:
        return arm_features(self.arms(r))

    def error(self, r: int) -> SystematicError | None:
        """Replica r's systematic errors (None: the environment defines its own, e.g. the chain)."""
        if r not in self._errors:
            self._errors[r] = self.draw_error(r)
        return self._errors[r]

    def draw_error(self, r: int) -> SystematicError | None:
        return None

    def env_kwargs(self) -> dict:
        return {}

    def make_env(
        self, replicas: list[int], rng: np.random.Generator, noisy: bool = True, copies: int = 1
    ) -> BudgetedRMAB:
        """Replicas side by side, each repeated ``copies`` times: an env of B = len(replicas) * copies.
        ``noisy=False`` is the noise-free topline world."""
        theta = np.repeat(np.stack([self.arms(r) for r in replicas]), copies, axis=0)  # [B, N, 4]
        mask = np.broadcast_to(self.noisy & noisy, theta.shape[:2])
        errors = [self.error(r) for r in replicas]
        error = (
            None
            if errors[0] is None
            else SystematicError(np.repeat(SystematicError.stack(errors).eps, copies, axis=0))
        )
        return self.env_class(
            theta=theta,
            noisy=mask,
            costs=self.costs,
            budget=self.budget,
            rng=rng,
            error=error,
            **self.env_kwargs(),
        )

    def optimal_return(self, r: int, gamma: float, horizon: int) -> np.ndarray | None:
        """Exact optimal true return per arm where the task has one (the chain), else None."""
        return None


class SyntheticTask(RMABTask):
    """The continuous-state synthetic RMAB (N = 12, B = 6, 6 noisy arms by default)."""

    env_class = synthetic.SyntheticRMAB

    def __init__(self, seed: int = 0, state_bins: Annotated[int, Field(ge=2)] = 20, **kwargs):
        super().__init__(seed, **kwargs)
        self.state_bins = self.n_states = state_bins

    def sample_arms(self, rng):
        return synthetic.sample_arms(self.n_arms, rng)

    def draw_error(self, r):
        return SystematicError.draw(
            self.n_arms,
            synthetic.REWARD_BINS,
            synthetic.REWARD_BINS - 1,
            rng=self.rng(r, "noise"),
            **self.noise,
        )

    def env_kwargs(self):
        return {"state_bins": self.state_bins}


class SISTask(RMABTask):
    """SIS populations with action costs {0, 1, 2}."""

    env_class = sis.SISRMAB

    def __init__(self, seed: int = 0, pop_size: PositiveInt = 20, **kwargs):
        kwargs.setdefault("costs", [0, 1, 2])
        super().__init__(seed, **kwargs)
        self.pop_size, self.n_states = pop_size, pop_size + 1

    def sample_arms(self, rng):
        return sis.sample_arms(self.n_arms, rng)

    def draw_error(self, r):
        return SystematicError.draw(
            self.n_arms, self.pop_size + 1, self.pop_size, rng=self.rng(r, "noise"), **self.noise
        )

    def env_kwargs(self):
        return {"pop_size": self.pop_size}


class ChainTask(RMABTask):
    """The chain counterexample: a false optimum for the noisy arms, exact optimum as ground truth."""

    env_class = chain.ChainRMAB

    def __init__(
        self,
        seed: int = 0,
        levels: Annotated[list[Annotated[int, Field(ge=2)]], Field(min_length=1)] = (5,),
        optimal_reward: tuple[float, float] = (4.0, 4.0),
        **kwargs,
    ):
        super().__init__(seed, **kwargs)
        if not 2 < optimal_reward[0] <= optimal_reward[1]:
            raise ValueError(
                f"optimal_reward={list(optimal_reward)} must be a range [lo, hi] with 2 < lo <= hi "
                "(above the intermediate reward 2)"
            )
        self.levels, self.optimal_reward = list(levels), tuple(optimal_reward)
        self.n_states, self.reward_max = max(levels) + 1, optimal_reward[1]

    def sample_arms(self, rng):
        return chain.sample_arms(self.n_arms, self.levels, self.optimal_reward, rng)

    def optimal_return(self, r, gamma, horizon):
        return chain.optimal_return(self.arms(r), gamma, horizon)
