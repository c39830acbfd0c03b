"""Reinforcement-learning helpers shared by the value-based and actor-critic learners.

Schedules, target-network synchronisation and the one-step TD target/loss, written once so every
learner (contracts' DQNs, gittins' frontier DQN, rmab_comm's per-arm learners, compflow's SAC)
explores, bootstraps and syncs the same way. Replay lives in :mod:`modules.buffers`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LinearSchedule:
    """``start`` -> ``end`` linearly over ``steps`` steps, then constant (epsilon, learning rates)."""

    def __init__(self, start: float, end: float, steps: int):
        if steps < 1:
            raise ValueError(f"a schedule needs steps >= 1, got {steps}")
        self.start, self.end, self.steps = start, end, steps

    def __call__(self, step: int) -> float:
        frac = min(max(step, 0), self.steps) / self.steps
        return self.start + frac * (self.end - self.start)


@torch.no_grad()
def hard_update(target: nn.Module, source: nn.Module) -> None:
    """Copy ``source``'s parameters and buffers into ``target`` (the periodic DQN target sync)."""
    target.load_state_dict(source.state_dict())


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging ``target <- (1 - tau) target + tau source`` (SAC/TD3 targets)."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)


def td_target(reward: torch.Tensor, done: torch.Tensor, next_value: torch.Tensor, gamma) -> torch.Tensor:
    """One-step bootstrapped target ``r + gamma (1 - done) V(s')``; ``gamma`` a float or a tensor."""
    return reward + gamma * (1.0 - done.to(reward.dtype)) * next_value


def dqn_loss(
    q: torch.Tensor, action: torch.Tensor, target: torch.Tensor, huber: bool = False
) -> torch.Tensor:
    """Mean TD error of ``Q(s, a)`` (``q``: ``[B, A]``, ``action``: ``[B]``) against a detached target."""
    q_sa = q.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)  # [B]
    loss = F.smooth_l1_loss if huber else F.mse_loss
    return loss(q_sa, target.detach())
