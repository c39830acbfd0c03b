"""PPO over token sequences (Schulman et al., arXiv:1707.06347) with GAE (arXiv:1506.02438).

Rewards arrive per token (sentence rewards on sentence ends, minus beta * (log pi - log pi_ref)
on every token: the KL penalty to the SFT reference). gamma = 1 within an explanation.
"""

from __future__ import annotations

import torch


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float):
    """Advantages and returns [B, L]; ``mask`` [B, L] marks each episode's tokens (a prefix of L)."""
    next_values = torch.cat([values[:, 1:] * mask[:, 1:], torch.zeros(len(values), 1)], 1)  # 0 after the end
    delta = (rewards + gamma * next_values - values) * mask
    advantages, running = torch.zeros_like(rewards), torch.zeros(len(rewards))
    for t in reversed(range(rewards.shape[1])):
        running = delta[:, t] + gamma * lam * running  # masked tail tokens contribute 0
        advantages[:, t] = running
    return advantages * mask, (advantages + values) * mask


def ppo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    values: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
    value_coef: float,
    entropy_coef: float,
) -> torch.Tensor:
    """Clipped surrogate + value MSE - entropy bonus, averaged over unmasked tokens."""
    ratio = (logp - old_logp).exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    per_token = -surrogate + value_coef * (values - returns) ** 2 - entropy_coef * entropy
    return (per_token * mask).sum() / mask.sum()
