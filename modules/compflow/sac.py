"""Soft actor-critic with an optional behaviour-cloning term (BC-SAC), the base learner of CompFlow
(Kong et al., arXiv:2505.23062, Sec. 4; the reference's ``VFlowPolicy.train``) and of its baselines.

Critic: double Q with the entropy backup, y = r + gamma (1 - d)(min Q'(s', a') - alpha log pi(a'|s')),
alpha fixed (0.2); loss MSE(Q1, y) + MSE(Q2, y) over the batch. Actor (BC-SAC):

    L_pi = (bc_weight / mean|min Q|) E[alpha log pi(a|s) - min Q(s, a)] + MSE(pi~(s_src), a_src),

pi~ a reparameterised sample, the BC term over (filtered) source states only; plain SAC drops the
BC term and the normalisation. Both losses are minimised by one Adam step per update (the actor
term reaches the critics only through a frozen copy of their parameters), so one optimizer step =
one gradient step. Actions live in [-1, 1] (tanh-squashed Gaussian); environments rescale.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from modules.nets import MLP
from modules.rl import soft_update, td_target

LOG_STD = (-5.0, 2.0)


class Actor(nn.Module):
    def __init__(self, state_dim: int, action_dim: int, hidden: int):
        super().__init__()
        self.net = MLP(state_dim, 2 * action_dim, hidden=(hidden, hidden))

    def forward(self, s: torch.Tensor, generator: torch.Generator | None = None, deterministic: bool = False):
        """(action in [-1, 1] [n, da], log pi(action | s) [n])."""
        mean, log_std = self.net(s).chunk(2, dim=-1)
        if deterministic:
            return torch.tanh(mean), torch.zeros(len(s), device=s.device)
        std = log_std.clamp(*LOG_STD).exp()
        u = mean + std * torch.randn(mean.shape, generator=generator).to(mean)  # CPU stream, any device
        log_prob = torch.distributions.Normal(mean, std).log_prob(u) - 2 * (
            torch.log(torch.tensor(2.0)) - u - F.softplus(-2 * u)
        )
        return torch.tanh(u), log_prob.sum(-1)


class SACAgent(nn.Module):
    """Actor, twin critics and their Polyak targets."""

    def __init__(self, state_dim: int, action_dim: int, hidden: int = 256):
        super().__init__()
        self.actor = Actor(state_dim, action_dim, hidden)
        self.q1 = MLP(state_dim + action_dim, 1, hidden=(hidden, hidden))
        self.q2 = MLP(state_dim + action_dim, 1, hidden=(hidden, hidden))
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        for net in (self.q1_target, self.q2_target):
            net.requires_grad_(False)

    def min_q(self, s, a, nets=None) -> torch.Tensor:
        q1, q2 = nets or (self.q1, self.q2)
        x = torch.cat([s, a], -1)
        return torch.minimum(q1(x), q2(x))[:, 0]

    def loss(self, batch: dict, gamma: float, alpha: float, bc_weight: float | None, generator) -> dict:
        """Critic + actor loss of one update. ``batch``: s, a, r, s2, d [n, .] and ``bc`` [n] (rows
        whose action is cloned: filtered source rows); ``bc_weight=None`` is plain SAC."""
        s, a, r, s2, d = batch["s"], batch["a"], batch["r"], batch["s2"], batch["d"]
        with torch.no_grad():
            a2, logp2 = self.actor(s2, generator)
            y = td_target(r, d, self.min_q(s2, a2, (self.q1_target, self.q2_target)) - alpha * logp2, gamma)
        x = torch.cat([s, a], -1)
        critic = F.mse_loss(self.q1(x)[:, 0], y) + F.mse_loss(self.q2(x)[:, 0], y)
        pi, logp = self.actor(s, generator)
        frozen = [{k: v.detach() for k, v in net.named_parameters()} for net in (self.q1, self.q2)]
        xp = torch.cat([s, pi], -1)
        q_pi = torch.minimum(*(functional_call(net, p, (xp,)) for net, p in zip((self.q1, self.q2), frozen)))[
            :, 0
        ]
        actor = (alpha * logp - q_pi).mean()
        out = {"critic": critic, "q": q_pi.mean().detach()}
        if bc_weight is not None:
            actor = bc_weight / q_pi.abs().mean().detach().clamp_min(1e-6) * actor
            bc = batch["bc"]
            out["bc"] = F.mse_loss(pi[bc], a[bc]) if bc.any() else torch.zeros((), device=s.device)
            actor = actor + out["bc"]
        out["actor"] = actor
        out["loss"] = critic + actor
        return out

    def update_targets(self, tau: float) -> None:
        soft_update(self.q1_target, self.q1, tau)
        soft_update(self.q2_target, self.q2, tau)
