"""The sensor-ring reconstruction task: simulate windows of the sensor network, serve training batches and
evaluation instances with the exact grid posteriors of every agent and of everyone (arXiv:2410.13953,
sensor-network benchmark; see :mod:`experiments.decpomdp_diffusion.sensor_ring`).

Angles in the config are degrees. Histories are laid out jointly, agent by agent:
``[agent i: detected (K x J_i) | readings (K x J_i)]``; agent i's view zeroes the other agents' blocks,
the centralized view keeps them all (:meth:`SensorRingTask.views`).

RNG streams: training batch ``step`` on rank ``r`` from ``(seed, "train", step, r)``; evaluation instance
``i`` from ``(seed, i, "test")``; the exact posterior samples that calibrate the distribution claims (the
held-out reference) from ``(seed, i, "reference")``.

Bad input fails here, before any compute: an empty agent set, an agent without sensors, an agent reading
a sensor the network does not have, a sensor row that is not ``[center, radius]`` or has a radius outside
(0, 180) degrees, a window < 1, a grid too coarse for the noise it must resolve.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task, stream_id
from experiments.decpomdp_diffusion.grid_filter import cell_centers, grid_posterior, sample_grid
from experiments.decpomdp_diffusion.sensor_ring import SensorRing
from experiments.decpomdp_diffusion.task import agent_views


class SensorRingTask(Task):
    offers: ClassVar[tuple[str, ...]] = ("decpomdp_sensor_reconstruction",)
    state_dim: ClassVar[int] = 2  # (cos theta, sin theta)

    @validate_call
    def __init__(
        self,
        sensors: Annotated[list[list[float]], Field(min_length=1)],
        agents: Annotated[list[list[int]], Field(min_length=1)],
        drift: float = 8.0,
        process_std: PositiveFloat = 1.0,
        obs_std: PositiveFloat = 3.0,
        window: Annotated[int, Field(ge=1)] = 4,
        cells: Annotated[int, Field(ge=8)] = 1440,
        instances: PositiveInt = 5,
        histories_per_instance: PositiveInt = 100,
        samples_per_history: Annotated[int, Field(ge=2)] = 32,
        seed: int = 0,
    ):
        super().__init__(seed)
        for j, row in enumerate(sensors):
            if len(row) != 2:
                raise ValueError(f"sensors.{j} must be [center_deg, radius_deg], got {row}")
            if not 0 < row[1] < 180:
                raise ValueError(f"sensors.{j} has radius {row[1]}; radii are in (0, 180) degrees")
        for i, owned in enumerate(agents):
            if not owned:
                raise ValueError(f"agents.{i} is empty: agent {i} would observe nothing")
            bad = [j for j in owned if not 0 <= j < len(sensors)]
            if bad:
                raise ValueError(
                    f"agents.{i} references sensors {bad}; the network has sensors 0..{len(sensors) - 1}"
                )
        width = 360.0 / cells
        if width > min(obs_std, process_std) / 2:
            raise ValueError(
                f"cells={cells} gives {width:g}-degree cells, coarser than half the smallest noise std "
                f"({min(obs_std, process_std) / 2:g} degrees): the grid filter would not resolve it"
            )
        rad = np.deg2rad
        self.ring = SensorRing(
            centers=rad(np.array([c for c, _ in sensors])),
            radii=rad(np.array([r for _, r in sensors])),
            owners=tuple(tuple(a) for a in agents),
            drift=float(rad(drift)),
            process_std=float(rad(process_std)),
            obs_std=float(rad(obs_std)),
            window=window,
        )
        self.cells, self.n_instances = cells, instances
        self.histories, self.samples = histories_per_instance, samples_per_history
        sizes = [2 * window * len(a) for a in agents]  # detected + readings per agent
        edges = np.cumsum([0, *sizes])
        self.blocks = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
        self.history_dim = int(edges[-1])
        self.grid = cell_centers(cells)
        self.collectively_observable = bool(self.ring.covered(self.grid).any(-1).all())

    @property
    def n_agents(self) -> int:
        return self.ring.n_agents

    def history(self, sim: dict[str, np.ndarray]) -> np.ndarray:
        """Joint history features [n, history_dim] (layout in the module docstring)."""
        n = sim["theta"].shape[0]
        parts = [
            np.concatenate([sim[key][:, :, list(a)].reshape(n, -1) for key in ("detected", "reading")], 1)
            for a in self.ring.owners
        ]  # agent i: [n, 2 K J_i]
        return np.concatenate(parts, axis=1)

    def views(self) -> np.ndarray:
        """0/1 masks [n_agents + 1, history_dim]: agent i's view of the joint history; last = centralized."""
        return agent_views(self.blocks, self.history_dim)

    @staticmethod
    def point(theta: np.ndarray) -> np.ndarray:
        """The state ``(cos theta, sin theta)`` [..., 2]."""
        return np.stack([np.cos(theta), np.sin(theta)], axis=-1)

    def train_batch(self, step: int, rank: int, size: int) -> dict[str, np.ndarray]:
        """Fresh simulator draws for one training step: final states [size, 2], joint histories, and a
        seed for the step's diffusion noise."""
        rng = np.random.default_rng([self.seed, step, rank, stream_id("train")])
        sim = self.ring.simulate(size, rng)
        return {
            "state": self.point(sim["theta"][:, -1]),
            "history": self.history(sim),
            "noise_seed": int(rng.integers(2**62)),
        }

    def make(self, index: int) -> dict[str, np.ndarray]:
        """One evaluation instance: true states, histories, exact grid posteriors (agents, then everyone),
        held-out exact posterior samples, which states nobody covers, and the methods' noise seed."""
        rng = self.rng(index, "test")
        sim = self.ring.simulate(self.histories, rng)
        groups = [list(a) for a in self.ring.owners] + [sorted({j for a in self.ring.owners for j in a})]
        posterior = np.stack(
            [grid_posterior(self.ring, g, sim["detected"], sim["reading"], self.cells) for g in groups]
        )  # [n_agents + 1, B, G]
        theta = sim["theta"][:, -1]
        return {
            "theta": theta,  # [B] the truth
            "state": self.point(theta),  # [B, 2]
            "history": self.history(sim),  # [B, history_dim]
            "posterior": posterior,
            "reference": sample_grid(posterior, self.samples, self.rng(index, "reference")),  # [n + 1, B, M]
            "uncovered": ~self.ring.covered(theta).any(-1),  # [B] nobody's sensor sees the target
            "noise_seed": int(rng.integers(2**62)),  # the evaluation's sampling noise
        }

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.n_instances, self.make)
