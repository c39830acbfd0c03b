"""The composite diffusion process that cycles over agents (arXiv:2410.13953, reconstructed).

Two strategies, chosen by the ``composite`` config key (both are reconstructions of the paper's
"composite diffusion process that iterates over agents"):

* :class:`RoundRobin` -- reverse diffusion where step ``k`` uses agent ``group[k mod |group|]``'s
  epsilon network: a sampler; on directions nobody resolves it keeps the prior's spread.
* :class:`FixedPoint` -- starting from the round-robin sample, ``rounds`` sweeps of
  ``x <- F_{g_m} o ... o F_{g_1}(x)``: alternating (von Neumann/Halperin) projections onto the agents'
  consistent sets, converging to their intersection -- the true state when collectively observable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from modules.diffusion import DDPMSchedule, ancestral_sample, denoise

AgentEps = Callable[[int, torch.Tensor, int], torch.Tensor]  # (agent, x_k [B, d], k) -> eps [B, d]


@dataclass(frozen=True)
class RoundRobin:
    name = "round_robin"

    def __call__(
        self,
        eps: AgentEps,
        group: list[int],
        x_T: torch.Tensor,
        schedule: DDPMSchedule,
        generator: torch.Generator,
    ) -> torch.Tensor:
        return ancestral_sample(lambda x, k: eps(group[k % len(group)], x, k), x_T, schedule, generator)


@dataclass(frozen=True)
class FixedPoint:
    k0: int
    rounds: int
    name = "fixed_point"

    def __call__(
        self,
        eps: AgentEps,
        group: list[int],
        x_T: torch.Tensor,
        schedule: DDPMSchedule,
        generator: torch.Generator,
    ) -> torch.Tensor:
        x = RoundRobin()(eps, group, x_T, schedule, generator)
        for _ in range(self.rounds):
            for i in group:
                x = denoise(lambda x_k, k, i=i: eps(i, x_k, k), x, self.k0, schedule)
        return x
