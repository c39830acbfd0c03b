"""The state-reconstruction task: simulate linear-Gaussian Dec-POMDP windows, serve training batches
and evaluation instances with their exact Kalman posteriors (arXiv:2410.13953, synthetic benchmark).

Observation model: either coordinate ``masks`` (agent i observes ``s[masks[i]]``) or general
``observation_matrices`` (agent i observes ``H_i s``), not both. Histories are laid out jointly:
``[agent 0: o^0..o^{K-1}, a^0..a^{K-2} | agent 1: ... ]``; agent i's view zeroes the other blocks,
the centralized view keeps them all (see :meth:`DecPOMDPTask.views`).

RNG streams: training batch ``step`` on rank ``r`` draws from ``(seed, "train", step, r)`` and
evaluation instance ``i`` from ``(seed, i, "test")``, so evaluation never overlaps training and
every instance is the same on any device count and after any resume.

Bad input fails here, before any compute: an empty agent set, an empty mask, a mask or action
referencing a coordinate the state does not have, a window < 1, matrices of the wrong width.
"""

from __future__ import annotations

import itertools
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task, stream_id
from experiments.decpomdp_diffusion.kalman import kalman_posterior
from experiments.decpomdp_diffusion.linear_gaussian import build_system


def agent_views(blocks: list[slice], history_dim: int) -> np.ndarray:
    """0/1 masks [n_agents + 1, history_dim]: agent i sees its own ``blocks[i]``; the last row (centralized)
    sees the whole joint history."""
    views = np.zeros((len(blocks) + 1, history_dim))
    for i, block in enumerate(blocks):
        views[i, block] = 1.0
    views[-1] = 1.0
    return views


class DecPOMDPTask(Task):
    offers: ClassVar[tuple[str, ...]] = ("decpomdp_reconstruction",)

    @validate_call
    def __init__(
        self,
        dim: PositiveInt = 6,
        oscillators: NonNegativeInt = 0,
        theta: float = 0.7,
        process_noise: Annotated[float, Field(ge=0, lt=1)] = 0.01,
        masks: Annotated[list[list[int]], Field(min_length=1)] | None = None,
        observation_matrices: Annotated[list[list[list[float]]], Field(min_length=1)] | None = None,
        obs_std: PositiveFloat = 0.05,
        action_coords: list[int] | None = None,
        action_std: NonNegativeFloat = 0.3,
        window: Annotated[int, Field(ge=1)] = 1,
        instances: PositiveInt = 5,
        states_per_instance: PositiveInt = 200,
        seed: int = 0,
    ):
        super().__init__(seed)
        if 2 * oscillators > dim:
            raise ValueError(f"oscillators={oscillators} need {2 * oscillators} coordinates; dim={dim}")
        if (masks is None) == (observation_matrices is None):
            raise ValueError("give exactly one of masks (coordinates per agent) or observation_matrices")
        H = (
            [self._mask_matrix(i, m, dim) for i, m in enumerate(masks)]
            if masks is not None
            else [self._matrix(i, h, dim) for i, h in enumerate(observation_matrices)]
        )
        if action_coords is not None:
            if len(action_coords) != len(H):
                raise ValueError(f"action_coords has {len(action_coords)} entries for {len(H)} agents")
            bad = [c for c in action_coords if not 0 <= c < dim]
            if bad:
                raise ValueError(f"action_coords reference coordinates {bad} outside 0..{dim - 1}")
        self.system = build_system(
            dim, oscillators, theta, process_noise, H, obs_std, action_coords, action_std, window
        )
        self.n_instances, self.states_per_instance = instances, states_per_instance
        sizes = [window * p + window - 1 for p in self.system.obs_dims]  # obs + own actions per agent
        edges = np.cumsum([0, *sizes])
        self.blocks = [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
        self.history_dim = int(edges[-1])

    @staticmethod
    def _mask_matrix(i: int, mask: list[int], dim: int) -> np.ndarray:
        if not mask:
            raise ValueError(f"masks.{i} is empty: agent {i} would observe nothing")
        bad = [c for c in mask if not 0 <= c < dim]
        if bad:
            raise ValueError(
                f"masks.{i} references coordinates {bad}; the state has coordinates 0..{dim - 1}"
            )
        return np.eye(dim)[mask]

    @staticmethod
    def _matrix(i: int, rows: list[list[float]], dim: int) -> np.ndarray:
        H = np.asarray(rows, dtype=np.float64)
        if H.ndim != 2 or H.shape[1] != dim:
            raise ValueError(
                f"observation_matrices.{i} must be [p, {dim}] (dim={dim}), got shape {list(H.shape)}"
            )
        return H

    @property
    def n_agents(self) -> int:
        return self.system.n_agents

    @property
    def state_dim(self) -> int:
        return self.system.dim

    def history(self, sim: dict[str, np.ndarray]) -> np.ndarray:
        """Joint history features [n, history_dim] of simulated windows (layout in the module docstring)."""
        n = sim["actions"].shape[0]
        parts = [
            np.concatenate([sim["obs"][i].reshape(n, -1), sim["actions"][:, :, i]], axis=1)
            for i in range(self.n_agents)
        ]  # agent i: [n, K * p_i + K - 1]
        return np.concatenate(parts, axis=1)

    def views(self) -> np.ndarray:
        """0/1 masks [n_agents + 1, history_dim]: agent i's view of the joint history; last = centralized."""
        return agent_views(self.blocks, self.history_dim)

    def train_batch(self, step: int, rank: int, size: int) -> dict[str, np.ndarray]:
        """Fresh simulator draws for one training step: final states [size, d], joint histories, and a
        seed for the step's diffusion noise."""
        rng = np.random.default_rng([self.seed, step, rank, stream_id("train")])
        sim = self.system.simulate(size, rng)
        return {
            "state": sim["states"][:, -1],
            "history": self.history(sim),
            "noise_seed": int(rng.integers(2**62)),
        }

    def make(self, index: int) -> dict[str, np.ndarray]:
        """One evaluation instance: states, histories, last observations, exact posteriors (agents, then
        everyone) and a seed for the methods' sampling noise."""
        rng = self.rng(index, "test")
        sim = self.system.simulate(self.states_per_instance, rng)
        groups = [[i] for i in range(self.n_agents)] + [list(range(self.n_agents))]
        posteriors = [kalman_posterior(self.system, g, sim["actions"], sim["obs"]) for g in groups]
        return {
            "state": sim["states"][:, -1],  # [n, d] the truth
            "history": self.history(sim),  # [n, history_dim]
            "last_obs": [o[:, -1] for o in sim["obs"]],  # per agent [n, p_i]
            "post_mean": np.stack([m for m, _ in posteriors]),  # [n_agents + 1, n, d]
            "post_cov": np.stack([c for _, c in posteriors]),  # [n_agents + 1, d, d]
            "noise_seed": int(rng.integers(2**62)),  # the evaluation's sampling noise
        }

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.n_instances, self.make)
