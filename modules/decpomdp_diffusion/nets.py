"""The conditional epsilon network ``eps_theta_i(x_k, k, h_i)``, ``h_i = enc(tau_i)`` (arXiv:2410.13953),
and an ensemble of them: one member per agent plus the centralized model, trained in one batched call.

Inputs travel packed as one tensor ``[x (d) | k (1) | history (C)]`` so that the shared
:class:`modules.nets.Ensemble` (vmap over stacked parameters) can evaluate every member at once.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from modules.nets import MLP, Ensemble


def timestep_embedding(k: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (float) steps ``k`` [...] -> [..., dim] (Vaswani et al. 2017)."""
    freqs = torch.exp(-math.log(1000.0) * torch.arange(dim // 2, device=k.device) / (dim // 2))
    angles = k.unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class EpsNet(nn.Module):
    """History encoder (MLP over the flattened window) + epsilon MLP over ``[x, emb(k), h]``."""

    def __init__(self, dim: int, history_dim: int, hidden: int, layers: int, time_dim: int = 16):
        super().__init__()
        self.dim, self.time_dim = dim, time_dim
        self.encoder = MLP(history_dim, hidden, hidden=(hidden,), activation=nn.SiLU)
        self.eps = MLP(dim + time_dim + hidden, dim, hidden=(hidden,) * layers, activation=nn.SiLU)

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        x, k, history = packed[..., : self.dim], packed[..., self.dim], packed[..., self.dim + 1 :]
        return self.eps(torch.cat([x, timestep_embedding(k, self.time_dim), self.encoder(history)], dim=-1))


def pack(x: torch.Tensor, k: torch.Tensor | int, history: torch.Tensor) -> torch.Tensor:
    """``[x | k | history]`` with ``k`` broadcast over the leading dimensions of ``x``."""
    k = torch.as_tensor(k, dtype=x.dtype, device=x.device).expand(x.shape[:-1])
    return torch.cat([x, k.unsqueeze(-1), history.expand(*x.shape[:-1], history.shape[-1])], dim=-1)


def member_forward(ensemble: Ensemble, m: int, packed: torch.Tensor) -> torch.Tensor:
    """Member ``m`` of the ensemble alone on ``packed`` [..., in] (no work for the other members)."""
    params = {name: p[m] for name, p in zip(ensemble.names, ensemble.stacked)}
    return functional_call(ensemble.base, params, (packed,))
