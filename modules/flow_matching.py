"""Conditional flow matching: a time-conditioned velocity network, its loss and an Euler sampler.

Lipman et al., "Flow Matching for Generative Modeling" (arXiv:2210.02747) and Liu et al.,
"Rectified Flow" (arXiv:2209.03003), with the linear (rectified) path

    x_t = (1 - t) x0 + t x1,        u_t(x_t | x0, x1) = x1 - x0,

trained by ``E_t,(x0,x1) || v(x_t, t, c) - (x1 - x0) ||^2`` (``cfm_loss``) and integrated from
``x0`` at ``t = 0`` to ``t = 1`` by fixed-step Euler (``euler_sample``). ``x0`` need not be noise:
a composite flow starts from another flow's samples (compflow), a reward flow from a proxy
(explainer). ``ot_pair`` re-pairs a minibatch by the exact OT plan (POT), conditions moving with
their targets (Tong et al., arXiv:2302.00482). Written here rather than taken from ``torchcfm``:
the loss and sampler are a few lines each, and that package pins an older stack (torchdyn).
"""

from __future__ import annotations

import math

import numpy as np
import ot
import torch
from torch import nn

from modules.nets import MLP


class VelocityMLP(nn.Module):
    """``v(x, t, c)``: an MLP on ``[x, c, sinusoidal(t)]`` -> ``dim``."""

    def __init__(
        self, dim: int, cond_dim: int = 0, hidden: int = 128, layers: int = 3, time_features: int = 16
    ):
        super().__init__()
        self.dim, self.cond_dim, self.time_features = dim, cond_dim, time_features
        self.net = MLP(dim + cond_dim + time_features, dim, hidden=[hidden] * layers, activation=nn.SiLU)

    def embed_time(self, t: torch.Tensor) -> torch.Tensor:
        half = self.time_features // 2
        freq = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
        angle = t.reshape(-1, 1) * freq * 2 * math.pi  # [B, half]
        return torch.cat([angle.sin(), angle.cos()], dim=-1)  # [B, time_features]

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        t = t.expand(len(x)) if t.ndim == 0 else t
        parts = [x] + ([cond] if cond is not None else []) + [self.embed_time(t)]
        return self.net(torch.cat(parts, dim=-1))


def cfm_loss(
    v: nn.Module,
    x0: torch.Tensor,
    x1: torch.Tensor,
    cond: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean squared error of ``v(x_t, t, c)`` against ``x1 - x0`` at ``t ~ U[0, 1]`` (per-sample t)."""
    t = torch.rand(len(x0), 1, generator=generator).to(x0)  # [B, 1]
    xt = (1 - t) * x0 + t * x1
    return ((v(xt, t[:, 0], cond) - (x1 - x0)) ** 2).sum(-1).mean()


@torch.no_grad()
def euler_sample(
    v: nn.Module,
    x0: torch.Tensor,
    cond: torch.Tensor | None = None,
    steps: int = 32,
    return_path: bool = False,
) -> torch.Tensor:
    """Integrate ``dx/dt = v(x, t, c)`` from ``x0`` (t=0) to t=1 in ``steps`` Euler steps.

    Returns ``x1`` ``[B, dim]``, or the whole path ``[steps + 1, B, dim]`` with ``return_path``."""
    if steps < 1:
        raise ValueError(f"euler_sample needs steps >= 1, got {steps}")
    x, dt, path = x0, 1.0 / steps, [x0]
    for k in range(steps):
        t = torch.full((len(x),), k * dt, dtype=x.dtype, device=x.device)
        x = x + dt * v(x, t, cond)
        path.append(x)
    return torch.stack(path) if return_path else x


def ot_pair(x0: torch.Tensor, x1: torch.Tensor, cond: torch.Tensor | None = None):
    """Re-order ``x1`` (and its ``cond``) along the exact squared-Euclidean OT plan from ``x0``.

    Uniform weights on equal-size batches make the plan a permutation; returns ``(x0, x1, cond)``."""
    if len(x0) != len(x1):
        raise ValueError(f"ot_pair needs equal batch sizes, got {len(x0)} and {len(x1)}")
    cost = torch.cdist(x0.detach().double(), x1.detach().double()).pow(2).cpu().numpy()
    n = len(x0)
    plan = ot.emd(np.full(n, 1 / n), np.full(n, 1 / n), cost)
    j = torch.as_tensor(plan.argmax(axis=1), device=x1.device)
    return x0, x1[j], None if cond is None else cond[j]
