"""Source flow, composite target flow and the Wasserstein dynamics gap (CompFlow, Kong et al.,
"Composite Flow Matching for Reinforcement Learning with Shifted-Dynamics Data", arXiv:2505.23062).

* Source flow psi_src(. | s, a): conditional flow matching from N(0, I) to P_src(s' | s, a), linear
  path, sigma = 0, trained on the offline source data (z-scored with source statistics).
* Target ("adaptation") flow psi_tar(. | s, a): started from the source flow's samples at the same
  (s, a) -- x0 = psi_src(z; s, a), re-normalised with target statistics -- and trained on the
  target transitions. ``start="gaussian"`` trains the same network from N(0, I) instead (the direct
  baseline of the composite-generalisation claim).
* ``predict="delta"`` models s' - s instead of s' (a reconstruction option, off by default: the
  reference models s'); the gap is the same quantity either way.
* Gap: gap(s, a) = (1/K) sum_k ||psi_tar(psi_src(z_k)) - psi_src(z_k)|| in raw state units, the
  transport cost of the learned target flow (the W1-like cost the reference code uses);
  ``gap_w2`` is the squared-cost version sqrt((1/K) sum_k ||.||^2).

The coupling of the target flow is pluggable (reconstruction; the reference's own coupling fails
silently): ``identity`` pairs x0 = psi_src(z; s_i, a_i) with s'_i (default; conditional OT with one
sample per condition), ``ot_conditioned`` solves exact minibatch OT on [x, sqrt(eta) cond] and
moves the conditions along the plan, ``ot_uncoupled`` is OT on next states with the conditions
left in place (the reference's behaviour). Conditioning is always the source-normalised [s, a].
"""

import copy
import math
from typing import Literal

import numpy as np
import torch
from torch import nn

from modules.flow_matching import VelocityMLP, cfm_loss, euler_sample, ot_pair

Coupling = Literal["identity", "ot_conditioned", "ot_uncoupled"]


@torch.no_grad()
def init_from(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every ``nn.Linear`` of ``module`` with PyTorch's default initialisation, from a named
    stream (not the global RNG, which data loaders also draw from, so resumed runs stay exact);
    drawn on the CPU generator, then copied to the module's device."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            weight, bias = torch.empty(layer.weight.shape), torch.empty(layer.bias.shape)
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(bias, -bound, bound, generator=generator)
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
    return module


class Standardizer(nn.Module):
    """z-scoring with statistics from data (std + 1e-6), kept as buffers so they checkpoint."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> "Standardizer":
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0) + 1e-6)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


class ConditionalFlow(nn.Module):
    """A velocity field over next states conditioned on [s, a], with its normalisers."""

    def __init__(self, state_dim: int, action_dim: int, hidden: int, layers: int, euler_steps: int):
        super().__init__()
        self.v = VelocityMLP(state_dim, state_dim + action_dim, hidden, layers)
        self.cond = Standardizer(state_dim + action_dim)  # source statistics, for both flows
        self.out = Standardizer(state_dim)  # this flow's own next-state statistics
        self.euler_steps = euler_steps

    def transport(self, x0: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Normalised start points [n, ds] -> raw next states [n, ds] (10 Euler steps by default)."""
        return self.out.inverse(euler_sample(self.v, x0, cond, self.euler_steps))


def couple(kind: Coupling, x0: torch.Tensor, x1: torch.Tensor, cond: torch.Tensor, eta: float):
    """The (x0, x1, cond) triples the target flow regresses on, under coupling ``kind``."""
    if kind == "identity":
        return x0, x1, cond
    if kind == "ot_uncoupled":
        x0, x1, _ = ot_pair(x0, x1, cond)
        return x0, x1, cond
    w = eta**0.5
    a, b, cond = ot_pair(torch.cat([x0, w * cond], 1), torch.cat([x1, w * cond], 1), cond)
    return a[:, : x0.shape[1]], b[:, : x0.shape[1]], cond


def fit(
    flow: ConditionalFlow,
    start,
    x1: torch.Tensor,
    cond: torch.Tensor,
    steps: int,
    batch: int,
    lr: float,
    generator: torch.Generator,
    coupling: Coupling = "identity",
    eta: float = 0.05,
    holdout: float = 0.1,
    patience: int = 5,
    eval_every: int = 100,
) -> list[float]:
    """Adam on the CFM loss of ``flow`` (in place); ``start(index) -> x0`` [b, ds] gives the normalised
    start points of rows ``index``. A proper (disjoint) holdout split scores the loss every
    ``eval_every`` steps on fixed draws; training stops after ``patience`` scores without a 1%
    improvement and keeps the best weights. Returns the validation curve."""
    n = len(x1)
    order = torch.randperm(n, generator=generator)
    n_val = min(max(int(holdout * n), 1), n - 1) if n > 1 else 0
    val, train = order[:n_val], order[n_val:]
    opt = torch.optim.Adam(flow.v.parameters(), lr=lr)
    val_x0 = start(val) if n_val else None
    val_draws = generator.get_state()  # the same t-draws at every score
    best, best_state, waited, curve = np.inf, copy.deepcopy(flow.v.state_dict()), 0, []
    for step in range(1, steps + 1):
        rows = train[torch.randint(len(train), (min(batch, len(train)),), generator=generator)]
        a, b, c = couple(coupling, start(rows), x1[rows], cond[rows], eta)
        loss = cfm_loss(flow.v, a, b, c, generator=generator)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if n_val and (step % eval_every == 0 or step == steps):
            with torch.no_grad():
                fixed = torch.Generator().set_state(val_draws)
                score = float(
                    cfm_loss(flow.v, *couple(coupling, val_x0, x1[val], cond[val], eta), generator=fixed)
                )
            curve.append(score)
            if score < best * 0.99:
                best, best_state, waited = score, copy.deepcopy(flow.v.state_dict()), 0
            else:
                waited += 1
                if waited >= patience:
                    break
    if n_val:
        flow.v.load_state_dict(best_state)
    return curve


class CompositeFlow(nn.Module):
    """psi_src and psi_tar over one environment pair, and the gap between them."""

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        hidden: int = 128,
        layers: int = 3,
        euler_steps: int = 10,
        predict: Literal["next_state", "delta"] = "next_state",
    ):
        super().__init__()
        self.dims = (state_dim, action_dim, hidden, layers, euler_steps)
        self.delta = predict == "delta"  # model s' - s (the gap is unchanged: both flows share the offset)
        self.source = ConditionalFlow(*self.dims)
        self.target = ConditionalFlow(*self.dims)

    def condition(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.source.cond(torch.cat([s, a], 1))

    def source_sample(self, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One draw of psi_src(z; s, a) per row, raw units [n, ds]."""
        z = torch.randn(len(cond), self.dims[0], generator=generator).to(cond)
        return self.source.transport(z, cond)

    def fit_source(self, s, a, s2, generator: torch.Generator, **kw) -> list[float]:
        s2 = s2 - s if self.delta else s2
        self.source.cond.fit(torch.cat([s, a], 1))
        self.source.out.fit(s2)
        cond, x1 = self.condition(s, a), self.source.out(s2)
        return fit(
            self.source,
            lambda rows: torch.randn(len(rows), self.dims[0], generator=generator).to(x1),
            x1,
            cond,
            generator=generator,
            **kw,
        )

    def fit_target(
        self,
        s,
        a,
        s2,
        generator: torch.Generator,
        start: Literal["composite", "gaussian"] = "composite",
        **kw,
    ) -> list[float]:
        """Re-initialise psi_tar and train it from scratch on target transitions."""
        init_from(self.target.v, generator)
        s2 = s2 - s if self.delta else s2
        self.target.out.fit(s2)
        cond, x1 = self.condition(s, a), self.target.out(s2)
        if start == "gaussian":

            def x0(rows):
                return torch.randn(len(rows), self.dims[0], generator=generator).to(x1)
        else:

            def x0(rows):
                return self.target.out(self.source_sample(cond[rows], generator))

        return fit(self.target, x0, x1, cond, generator=generator, **kw)

    @torch.no_grad()
    def target_sample(
        self, s, a, n: int, generator: torch.Generator, start: str = "composite"
    ) -> torch.Tensor:
        """``n`` draws of the learned P_tar(. | s, a): [m, n, ds]."""
        cond = self.condition(s, a).repeat_interleave(n, 0)  # [m n, ds + da]
        if start == "gaussian":
            x0 = torch.randn(len(cond), self.dims[0], generator=generator).to(cond)
        else:
            x0 = self.target.out(self.source_sample(cond, generator))
        draws = self.target.transport(x0, cond).reshape(len(s), n, -1)
        return draws + s[:, None] if self.delta else draws

    @torch.no_grad()
    def gap(
        self, s, a, n_samples: int, generator: torch.Generator, chunk: int = 4096
    ) -> tuple[np.ndarray, np.ndarray]:
        """(gap, gap_w2) [m] at the pairs (s, a): mean and root-mean-square transport distance."""
        out = []
        for i in range(0, len(s), chunk):
            cond = self.condition(s[i : i + chunk], a[i : i + chunk]).repeat_interleave(
                n_samples, 0
            )  # [c K, .]
            x_src = self.source_sample(cond, generator)
            x_tar = self.target.transport(self.target.out(x_src), cond)
            dist = (x_tar - x_src).norm(dim=1).reshape(-1, n_samples)  # [c, K]
            out.append(torch.stack([dist.mean(1), dist.pow(2).mean(1).sqrt()], 1))
        both = torch.cat(out).double().cpu().numpy()
        return both[:, 0], both[:, 1]
