"""DARC-style domain classifiers (Eysenbach et al., "Off-Dynamics Reinforcement Learning", arXiv:2006.13916),
the KL-based gap CompFlow is compared with (and the score of the DARC/H2O-like filtering baseline).

Two classifiers q(tar | s, a, s') and q(tar | s, a), trained with balanced binary cross-entropy on
source vs target transitions, give the reward correction

    dr(s, a, s') = log q(tar|s,a,s')/q(src|s,a,s') - log q(tar|s,a)/q(src|s,a)  (logit difference),

and -dr scores how much a source transition is out of the target's support. With disjoint
supports (deterministic dynamics) the log-ratio is unbounded: its tail grows as noise vanishes.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modules.compflow.flows import Standardizer
from modules.nets import MLP


class DomainClassifiers(nn.Module):
    def __init__(self, state_dim: int, action_dim: int, hidden: int = 128):
        super().__init__()
        self.norm = Standardizer(2 * state_dim + action_dim)
        self.sas = MLP(2 * state_dim + action_dim, 1, hidden=(hidden, hidden))
        self.sa = MLP(state_dim + action_dim, 1, hidden=(hidden, hidden))
        self.sa_dims = state_dim + action_dim

    def logits(self, s, a, s2) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.norm(torch.cat([s, a, s2], 1))
        return self.sas(x)[:, 0], self.sa(x[:, : self.sa_dims])[:, 0]

    def fit(
        self,
        source: tuple,
        target: tuple,
        steps: int,
        batch: int,
        lr: float,
        generator: torch.Generator,
        input_noise: float = 0.1,
    ) -> None:
        """Balanced BCE, target = 1; Gaussian input noise (in normalised units) as in DARC."""
        self.norm.fit(torch.cat([torch.cat(source, 1), torch.cat(target, 1)]))
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        for _ in range(steps):
            rows = [torch.randint(len(d[0]), (batch,), generator=generator) for d in (source, target)]
            s, a, s2 = (torch.cat([source[k][rows[0]], target[k][rows[1]]]) for k in range(3))
            x = self.norm(torch.cat([s, a, s2], 1))
            label = torch.cat([torch.zeros(batch), torch.ones(batch)]).to(x)
            x = x + input_noise * torch.randn(x.shape, generator=generator).to(x)
            loss = sum(
                F.binary_cross_entropy_with_logits(net(inp)[:, 0], label)
                for net, inp in ((self.sas, x), (self.sa, x[:, : self.sa_dims]))
            )
            opt.zero_grad()
            loss.backward()
            opt.step()

    @torch.no_grad()
    def reward_correction(self, s, a, s2) -> np.ndarray:
        """dr(s, a, s') [n]; -dr is the DARC gap score."""
        sas, sa = self.logits(s, a, s2)
        return (sas - sa).double().cpu().numpy()
