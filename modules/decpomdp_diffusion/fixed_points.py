"""Fixed points of the per-agent denoising maps, their Jacobian rank and the linear surrogate bound
(arXiv:2410.13953, reconstructed: the paper's exact definitions are not available).

* Denoising map of agent i at step ``k0`` (Tweedie): ``F_i(x) = E_theta_i[s | x_{k0} = sqrt(abar) x, tau_i]``.
  States consistent with agent i's evidence are (near-)fixed and attracting.
* Fixed-point iteration ``x <- F_i(x)`` until ``||Delta x|| < tol`` (per start, frozen once converged).
* Jacobian ``J_i = dF_i/dx`` at the fixed point by ``torch.func.jacrev`` (vmapped over points); its rank
  is a :class:`RankRule`: singular values above a threshold (default), or the entropy (effective) rank.
* Surrogate ``F_i(x) ~ W x + b`` by least squares on Gaussian perturbations around ``x*``. With ``P`` the
  projection onto the directions agent i resolves, ``x_bar = x* - P (x* - mu)`` the nearest consistent
  state and ``e = P (F_i(x_bar) - x_bar)`` the map's error there, the deviation obeys

      ||P (x* - mu)|| <= (||e|| + rho) / (1 - ||P W P||_2)          (rho: RMS regression residual)

  whenever the surrogate describes ``F_i`` between ``x*`` and ``x_bar`` (and ``||P W P|| < 1``); it is
  checked, not assumed, against the exact Kalman mean ``mu``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch.func import jacrev, vmap

Map = Callable[[torch.Tensor], torch.Tensor]


def iterate_to_fixed_point(
    F: Map, x0: torch.Tensor, iters: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Iterate ``F`` on every row of ``x0`` [..., d]; returns the points and whether each converged."""
    x, done = x0, torch.zeros(x0.shape[:-1], dtype=torch.bool, device=x0.device)
    for _ in range(iters):
        nxt = F(x)
        done = done | ((nxt - x).norm(dim=-1) < tol)
        x = torch.where(done.unsqueeze(-1), x, nxt)
        if bool(done.all()):
            break
    return x, done


def jacobians(
    F_single: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, context: torch.Tensor
) -> torch.Tensor:
    """``dF/dx`` [B, d, d] at points ``x`` [B, d], ``F_single(x [d], context_row) -> [d]``."""
    return vmap(jacrev(F_single), in_dims=(0, 0))(x, context)


@dataclass(frozen=True)
class RankRule:
    """How many directions a Jacobian leaves free: ``threshold`` counts singular values > ``level``;
    ``entropy`` is exp(entropy of the normalised singular values) (Roy & Vetterli 2007)."""

    kind: Literal["threshold", "entropy"] = "threshold"
    level: float = 0.5

    def __call__(self, J: torch.Tensor) -> torch.Tensor:
        sv = torch.linalg.svdvals(J)  # [..., d]
        if self.kind == "threshold":
            return (sv > self.level).sum(-1).to(J.dtype)
        p = sv / sv.sum(-1, keepdim=True).clamp(min=1e-12)
        return torch.exp(-(p * p.clamp(min=1e-12).log()).sum(-1))


def linear_surrogate(
    F: Map, x_star: torch.Tensor, radius: float, samples: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares ``F(x) ~ W x + b`` on ``samples`` perturbations ``x* + radius z`` of each point.

    ``x_star`` [S, d] -> W [S, d, d], b [S, d], RMS residual norm [S]. ``F`` maps [S, n, d] row-wise.
    """
    S, d = x_star.shape
    x = x_star.unsqueeze(1) + radius * torch.randn((S, samples, d), generator=generator).to(
        x_star
    )  # [S, n, d]
    y = F(x)
    design = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)  # [S, n, d + 1]
    coef = torch.linalg.lstsq(design, y).solution  # [S, d + 1, d]
    residual = (design @ coef - y).norm(dim=-1).square().mean(-1).sqrt()
    return coef[:, :d].transpose(1, 2), coef[:, d], residual


def deviation_bound(
    F: Map, x_star: torch.Tensor, mu: torch.Tensor, P: torch.Tensor, W: torch.Tensor, residual: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Measured deviation ``||P (x* - mu)||`` and the surrogate bound (inf where ``||P W P|| >= 1``)."""
    offset = (x_star - mu) @ P.T  # [S, d]
    x_bar = x_star - offset
    error = ((F(x_bar) - x_bar) @ P.T).norm(dim=-1)
    contraction = torch.linalg.matrix_norm(P @ W @ P, ord=2)
    bound = torch.where(
        contraction < 1,
        (error + residual) / (1 - contraction).clamp(min=1e-12),
        torch.full_like(error, torch.inf),
    )
    return offset.norm(dim=-1), bound
