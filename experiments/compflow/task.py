"""CompFlow tasks (Kong et al., arXiv:2505.23062): estimator checks and shifted-dynamics RL.

* :class:`SyntheticGapTask` (offers ``transition_pairs``): the synthetic pair of
  ``experiments/compflow/synthetic.py`` on a grid of shift scales c x noise levels sigma x target
  budgets N_tar x ``replicas``; the instances of replica r draw their data from ``self.rng(r,
  <stream>)`` (common random numbers: settings are compared on the same draws).
* :class:`MujocoGapTask` (offers ``transition_pairs``): a MuJoCo robot and its shifted copy, source
  and target data from behaviour rollouts, true gaps by stepping both simulators from the same state.
* :class:`ShiftedRLTask` (offers ``shifted_dynamics_rl``): a source/target environment pair with an
  offline source dataset (generated locally, saved with a manifest, or a user's D4RL-layout file)
  for learners that interact online with the target only; instances are evaluation episodes.

Bad input fails before compute: an unknown robot or shift kind, a dataset whose manifest names
another environment or whose observation/action sizes are not the environment's, a D4RL source
type without the folder of the user's D4RL files.
"""

import itertools
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import DirectoryPath, Field, FilePath, NonNegativeFloat, PositiveFloat, PositiveInt

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
        # common random numbers: the settings of one replica share their (s, a) draws and unit noise,
        # so across c / sigma / N_tar only the setting changes, not the data
        source = synthetic.transitions(self.n_source, ds, da, 0.0, sigma, self.rng(replica, "source"))
        target = synthetic.transitions(n_target, ds, da, scale, sigma, self.rng(replica, "target"))
        rng = self.rng(replica, "eval")
        s, a = synthetic.sample_inputs(self.n_eval, ds, da, rng)
        mean = synthetic.target_mean(s, a, scale)
        s2 = (synthetic.mean_next(s, a) + sigma * rng.standard_normal(s.shape)).astype(np.float32)
        draws = mean[:, None] + sigma * rng.standard_normal((self.n_eval, self.draws, ds))
        labels = {"scale": scale, "sigma": sigma, "n_target": n_target, "replica": replica}
        ratio = np.abs(synthetic.log_ratio(s, a, s2, scale, sigma))  # at the eval pairs' source s'
        labels["true_tail99"] = np.percentile(ratio, 99) if sigma > 0 else np.nan  # sigma = 0: infinite
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
        d4rl_dir: DirectoryPath | None = None,
        source_type: Literal["generated", "random", "medium", "medium-replay", "medium-expert", "expert"] = (
            "generated"
        ),
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
        if (d4rl_dir is None) != (source_type == "generated"):
            raise ValueError(
                f"task.source_type={source_type} with task.d4rl_dir={d4rl_dir}: a D4RL source type needs "
                "the folder of the user's D4RL files (they cannot be generated here), 'generated' needs none"
            )
        if d4rl_dir is not None:
            dataset = Path(d4rl_dir) / f"{datasets.robot_name(env)}-{source_type}-v2.hdf5"
            if not dataset.exists():
                raise ValueError(f"task.d4rl_dir: no D4RL file {dataset.name} in {d4rl_dir}")
        self.path = (
            Path(dataset)
            if dataset
            else Path(data_dir) / f"{env}_src_n{n_source}_s{seed}_b{behaviour_noise}.npz"
        )
        self.n_source, self.user_data = n_source, dataset is not None
        if self.user_data:
            self.check(self.source_data())  # fail now, not mid-run

    def check(self, data: dict) -> None:
        """``ValueError`` unless a user's dataset has the environment's observation and action sizes."""
        env = self.make_env("source")
        want = {"observations": env.observation_space.shape, "actions": env.action_space.shape}
        want["next_observations"] = want["observations"]
        for key, shape in want.items():
            if data[key].shape[1:] != shape:
                raise ValueError(
                    f"dataset {self.path} does not match {self.env}: {key} rows have shape "
                    f"{data[key].shape[1:]}, the environment's are {shape}"
                )

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
        """The offline source dataset (D4RL keys; ``states`` too for generated MuJoCo data and D4RL
        files with ``infos/qpos``, for its true gaps)."""
        if self.user_data:
            robot = datasets.robot_name(self.env)
            return datasets.load(self.path, {"env": self.env, "source_physics": "unshifted", "robot": robot})
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

    def knows_source_gap(self, data: dict) -> bool:
        """Whether ``true_gap`` can score the source rows of ``data`` (a user's MuJoCo file without
        simulator states cannot be scored: its ground-truth diagnostics are left out)."""
        return self.env == "Pendulum-v1" or "states" in data

    def episode_seed(self, index: int) -> int:
        return int(self.rng(index, "evaluation").integers(2**31))

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.episodes, self.episode_seed)
