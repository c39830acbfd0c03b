"""Denoising diffusion building blocks (DDPM: Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic
Models", arXiv:2006.11239; DDIM: Song, Meng & Ermon, arXiv:2010.02502).

Generic: nothing here knows what is being modelled. ``eps_fn(x_k, k)`` is any epsilon predictor
(conditioning bound in a closure), so a sampler can switch predictors from step to step.

* :class:`DDPMSchedule` -- linear beta schedule, ``alpha_bar_k = prod_{j<=k} (1 - beta_j)`` (Ho et al. eq. 4),
  forward noising ``x_k = sqrt(alpha_bar_k) x_0 + sqrt(1 - alpha_bar_k) eps``;
* :func:`epsilon_loss` -- the simplified objective ``E || eps - eps_theta(x_k, k) ||^2`` (eq. 14);
* :func:`tweedie` -- the clean estimate ``x_0_hat = (x_k - sqrt(1 - alpha_bar_k) eps) / sqrt(alpha_bar_k)``;
* :func:`denoise` -- the denoising map on clean-scale inputs, ``F(x) = x_0_hat(sqrt(alpha_bar_k) x)``;
* :func:`ancestral_sample` (Algorithm 2) and :func:`ddim_sample` (eta = 0 deterministic);
* :class:`EMA` -- an exponential moving average of a network's weights.

Steps are 0-based: ``k = 0 .. T-1``, ``k = T-1`` the noisiest.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]


class DDPMSchedule(nn.Module):
    """Linear ``beta_k`` from ``beta_start`` to ``beta_end`` over ``T`` steps (buffers follow the module)."""

    def __init__(self, T: int, beta_start: float = 1e-4, beta_end: float = 0.02):
        super().__init__()
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        self.T = T
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0).float(), persistent=False)

    def q_sample(self, x0: torch.Tensor, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``x_k`` for per-row steps ``k`` [...] and noise ``eps`` shaped like ``x0`` [..., d]."""
        ab = self.alpha_bar[k].unsqueeze(-1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def clean_noise_std(self, k: int) -> float:
        """Noise std in clean-state units at step ``k``: ``sqrt((1 - alpha_bar_k) / alpha_bar_k)``."""
        ab = float(self.alpha_bar[k])
        return ((1 - ab) / ab) ** 0.5


def epsilon_loss(
    eps_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    schedule: DDPMSchedule,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Ho et al. eq. 14: uniform ``k``, Gaussian ``eps``; ``eps_model(x_k [..., d], k [...]) -> [..., d]``."""
    k = torch.randint(0, schedule.T, x0.shape[:-1], generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    return (eps_model(schedule.q_sample(x0, k, eps), k) - eps).square().sum(-1).mean()


def tweedie(eps: torch.Tensor, x_k: torch.Tensor, k: int, schedule: DDPMSchedule) -> torch.Tensor:
    """Posterior-mean estimate of ``x_0`` given ``x_k`` and the predicted noise."""
    ab = schedule.alpha_bar[k]
    return (x_k - (1 - ab).sqrt() * eps) / ab.sqrt()


def denoise(eps_fn: EpsFn, x: torch.Tensor, k: int, schedule: DDPMSchedule) -> torch.Tensor:
    """The denoising map ``F(x) = E[x_0 | x_k = sqrt(alpha_bar_k) x]`` (input and output in clean units)."""
    x_k = schedule.alpha_bar[k].sqrt() * x
    return tweedie(eps_fn(x_k, k), x_k, k, schedule)


def ancestral_sample(
    eps_fn: EpsFn, x_T: torch.Tensor, schedule: DDPMSchedule, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Ho et al. Algorithm 2 with ``sigma_k^2 = beta_k``, from ``x_T`` (e.g. standard normal) to ``x_0``."""
    x = x_T
    for k in reversed(range(schedule.T)):
        beta, ab = schedule.betas[k], schedule.alpha_bar[k]
        x = (x - beta / (1 - ab).sqrt() * eps_fn(x, k)) / (1 - beta).sqrt()
        if k > 0:
            x = x + beta.sqrt() * torch.randn(x.shape, generator=generator).to(x.device)
    return x


def ddim_sample(
    eps_fn: EpsFn,
    x_T: torch.Tensor,
    schedule: DDPMSchedule,
    steps: int | None = None,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Song et al. eq. 12 on ``steps`` evenly spaced steps (default all ``T``); ``eta = 0``: deterministic."""
    ks = torch.linspace(schedule.T - 1, 0, steps or schedule.T).round().long().tolist()
    x = x_T
    for k, k_prev in zip(ks, [*ks[1:], None]):
        ab = schedule.alpha_bar[k]
        ab_prev = schedule.alpha_bar[k_prev] if k_prev is not None else torch.ones_like(ab)
        eps = eps_fn(x, k)
        x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
        x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0 and k_prev is not None:
            x = x + sigma * torch.randn(x.shape, generator=generator).to(x.device)
    return x


class EMA(nn.Module):
    """``module`` = EMA of ``model``'s parameters (buffers copied), starting from its current weights:
    call ``update_parameters(model)`` after each optimizer step. Written here rather than using
    ``torch.optim.swa_utils.AveragedModel``, whose EMA closure cannot be pickled for ``ddp_spawn``."""

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        for average, p in zip(self.module.parameters(), model.parameters(), strict=True):
            average.lerp_(p, 1 - self.decay)
        for average, b in zip(self.module.buffers(), model.buffers(), strict=True):
            average.copy_(b)
