"""CompFlow tasks (Kong et al., arXiv:2505.23062): estimator checks and shifted-dynamics RL.

* :class:`SyntheticGapTask` (offers ``transition_pairs``): the synthetic pair of
  ``experiments/compflow/synthetic.py`` on a grid of shift scales c x noise levels sigma x target
  budgets N_tar x ``replicas``; instance i draws everything from ``self.rng(i, <stream>)``.
* :class:`MujocoGapTask` (offers ``transition_pairs``): a MuJoCo robot and its shifted copy, source
  and target data from behaviour rollouts, true gaps by stepping both simulators from the same state.
* :class:`ShiftedRLTask` (offers ``shifted_dynamics_rl``): a source/target environment pair with an
  offline source dataset (generated locally, saved with a manifest, or a user's D4RL-layout file)
  for learners that interact online with the target only; instances are evaluation episodes.

Bad input fails before compute: an unknown robot or shift kind, a dataset whose manifest names
another environment, an evaluation split larger than the source data.
"""

import itertools
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, FilePath, NonNegativeFloat, PositiveFloat, PositiveInt

from experiments.base import InstanceDataset, Task
from experiments.compflow import datasets, mujoco_shift, pendulum, synthetic
from experiments.compflow.transitions import TransitionPair, Transitions

Shift = Literal["gravity", "mass", "length", "friction", "joint_range", "body_size"]


class SyntheticGapTask(Task):
    offers: ClassVar[tuple[str, ...]] = ("transition_pairs",)

    def __init__(
        self,
        seed: int = 0,
        state_dim: Annotated[int, Field(ge=2)] = 3,
        action_dim: PositiveInt = 2,
        n_source: PositiveInt = 20000,
        n_eval: PositiveInt = 1000,
        scales: Annotated[list[PositiveFloat], Field(min_length=1)] = (1.0,),
        sigmas: Annotated[list[NonNegativeFloat], Field(min_length=1)] = (0.02,),
        n_targets: Annotated[list[PositiveInt], Field(min_length=1)] = (2000,),
        replicas: PositiveInt = 3,
        target_draws: PositiveInt = 64,
    ):
        super().__init__(seed)
        self.ds, self.da, self.n_source, self.n_eval, self.draws = (
            state_dim,
            action_dim,
            n_source,
            n_eval,
            target_draws,
        )
        self.grid = list(itertools.product(scales, sigmas, n_targets, range(replicas)))

    def make(self, index: int) -> TransitionPair:
        scale, sigma, n_target, replica = self.grid[index]
        ds, da = self.ds, self.da
        source = synthetic.transitions(self.n_source, ds, da, 0.0, sigma, self.rng(index, "source"))
        target = synthetic.transitions(n_target, ds, da, scale, sigma, self.rng(index, "target"))
        rng = self.rng(index, "eval")
        s, a = synthetic.sample_inputs(self.n_eval, ds, da, rng)
        mean = synthetic.target_mean(s, a, scale)
        s2 = (synthetic.mean_next(s, a) + sigma * rng.standard_normal(s.shape)).astype(np.float32)
        draws = mean[:, None] + sigma * rng.standard_normal((self.n_eval, self.draws, ds))
        labels = {"scale": scale, "sigma": sigma, "n_target": n_target, "replica": replica}
        return TransitionPair(
            source,
            target,
            s,
            a,
            s2,
            synthetic.true_gap(s, a, scale),
            s[:, 0] > 0,
            mean.astype(np.float32),
            draws.astype(np.float32),
            labels,
        )

    def instances(self) -> InstanceDataset:
        return InstanceDataset(len(self.grid), self.make)


def uniform_policy(env):
    low, high = env.action_space.low, env.action_space.high
    return lambda obs, rng: rng.uniform(low, high, (len(obs), len(low)))


class MujocoGapTask(Task):
    offers: ClassVar[tuple[str, ...]] = ("transition_pairs",)

    def __init__(
        self,
        seed: int = 0,
        robot: Literal["Hopper-v5", "HalfCheetah-v5", "Walker2d-v5"] = "Hopper-v5",
        shift: Shift = "gravity",
        level: PositiveFloat = 0.5,
        n_source: PositiveInt = 20000,
        n_target: PositiveInt = 2000,
        n_eval: PositiveInt = 1000,
        replicas: PositiveInt = 3,
    ):
        super().__init__(seed)
        self.pair = mujoco_shift.MujocoShift(robot, shift, level)
        self.n_source, self.n_target, self.n_eval, self.replicas = n_source, n_target, n_eval, replicas

    def make(self, index: int) -> TransitionPair:
        src_env, tar_env = self.pair.make("source"), self.pair.make("target")
        data = {}
        for domain, env, n in (
            ("source", src_env, self.n_source + self.n_eval),
            ("target", tar_env, self.n_target),
        ):
            data[domain] = datasets.rollouts(
                env, uniform_policy(env), n, self.rng(index, domain), mujoco_shift.physics_state
            )
        src = data["source"]
        fit, held = np.arange(self.n_source), np.arange(self.n_source, self.n_source + self.n_eval)
        gap = mujoco_shift.true_gap(src_env, tar_env, src["states"][held], src["actions"][held])
        source = Transitions(src["observations"], src["actions"], src["next_observations"]).take(fit)
        tar = data["target"]
        target = Transitions(tar["observations"], tar["actions"], tar["next_observations"])
        return TransitionPair(
            source,
            target,
            src["observations"][held],
            src["actions"][held],
            src["next_observations"][held],
            gap,
            np.ones(self.n_eval, bool),
            labels={"replica": index},
        )

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.replicas, self.make)


class ShiftedRLTask(Task):
    offers: ClassVar[tuple[str, ...]] = ("shifted_dynamics_rl",)

    def __init__(
        self,
        seed: int = 0,
        env: Literal["Pendulum-v1", "Hopper-v5", "HalfCheetah-v5", "Walker2d-v5"] = "Pendulum-v1",
        shift: Shift = "gravity",
        level: PositiveFloat = 1.5,
        n_source: PositiveInt = 20000,
        behaviour_noise: NonNegativeFloat = 0.5,
        dataset: FilePath | None = None,
        data_dir: str = ".cache/compflow",
        episodes: PositiveInt = 5,
    ):
        super().__init__(seed)
        self.env, self.episodes, self.noise = env, episodes, behaviour_noise
        if env == "Pendulum-v1":
            self.source_physics = pendulum.PendulumPhysics()
            self.target_physics = self.source_physics.shifted(shift, level)
        else:
            self.mujoco = mujoco_shift.MujocoShift(env, shift, level)
        self.manifest = {
            "env": env,
            "source_physics": "unshifted",
            "n": n_source,
            "seed": seed,
            "policy": "swing_up+noise" if env == "Pendulum-v1" else "uniform",
            "behaviour_noise": behaviour_noise,
        }
        self.path = (
            Path(dataset)
            if dataset
            else Path(data_dir) / f"{env}_src_n{n_source}_s{seed}_b{behaviour_noise}.npz"
        )
        self.n_source = n_source
        if dataset:
            datasets.load(self.path, {"env": env, "source_physics": "unshifted"})  # fail now, not mid-run

    def make_env(self, domain: Literal["source", "target"]):
        if self.env == "Pendulum-v1":
            return (self.source_physics if domain == "source" else self.target_physics).make()
        return self.mujoco.make(domain)

    def behaviour(self):
        """The source data's behaviour policy: the swing-up controller with Gaussian action noise
        (Pendulum) or uniform random actions (MuJoCo)."""
        if self.env != "Pendulum-v1":
            return uniform_policy(self.make_env("source"))
        physics, noise = self.source_physics, self.noise
        return lambda obs, rng: np.clip(
            pendulum.swing_up_action(obs, physics) + noise * rng.standard_normal((len(obs), 1)),
            -pendulum.MAX_TORQUE,
            pendulum.MAX_TORQUE,
        )

    def source_data(self) -> dict:
        """The offline source dataset (D4RL keys; ``states`` too for MuJoCo, for its true gaps)."""
        record = None if self.env == "Pendulum-v1" else mujoco_shift.physics_state
        return datasets.cached(
            self.path,
            self.manifest,
            lambda: datasets.rollouts(
                self.make_env("source"),
                self.behaviour(),
                self.n_source,
                self.rng(0, "source_dataset"),
                record,
            ),
        )

    def true_gap(self, obs: np.ndarray, action: np.ndarray, states: np.ndarray | None = None) -> np.ndarray:
        """Closed form (Pendulum) or both simulators stepped from ``states`` (MuJoCo)."""
        if self.env == "Pendulum-v1":
            return pendulum.true_gap(self.source_physics, self.target_physics, obs, action)
        if states is None:
            raise ValueError(f"the true gap of {self.env} needs the simulator states of the transitions")
        return mujoco_shift.true_gap(self.make_env("source"), self.make_env("target"), states, action)

    def episode_seed(self, index: int) -> int:
        return int(self.rng(index, "evaluation").integers(2**31))

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.episodes, self.episode_seed)
