"""The per-agent conditional DDPMs of a Dec-POMDP, trained together (Wang, Dong et al., arXiv:2410.13953):
the part every task of this method shares. Subclasses add their evaluation.

Agent i's DDPM ``eps_theta_i(x_k, k, enc(tau_i))`` minimises Ho et al.'s eq. 14 on fresh simulator draws of
(final state, history); the centralized model, conditioned on the joint history, is the upper bound. All
``n + 1`` models are members of one :class:`modules.nets.Ensemble` trained by one batched call
(independent parameters: a summed loss under Adam is independent training). Evaluation uses EMA weights.

The task provides ``state_dim``, ``history_dim``, ``n_agents``, ``views()`` (0/1 masks [n + 1, history_dim]:
each agent's part of the joint history, then everything) and ``train_batch(step, rank, size)``.

Lightning: one ``training_step`` = one Adam step of every model on batch ``global_step``, drawn from the
task's ``(seed, "train", step, rank)`` stream; the torch noise comes from a generator seeded by the same
draw, so a resumed run sees exactly the batches an uninterrupted one would, and the checkpoint needs
nothing but weights, EMA and optimizer state. DDP: every rank holds all models (agents are not sharded
over ranks) and draws its own batches; DDP averages gradients (data-parallel).
"""

from __future__ import annotations

import torch

from modules.base import AtlasModule
from modules.decpomdp_diffusion.nets import EpsNet, member_forward, pack
from modules.diffusion import EMA, DDPMSchedule, epsilon_loss
from modules.nets import Ensemble


class AgentDDPMs(AtlasModule):
    """Subclasses call ``super().__init__(task, model)``, ``save_hyperparameters`` and then
    :meth:`build_models`, which reads ``hidden, layers, T, beta_start, beta_end, ema_decay`` from the
    hyper-parameters (``steps, batch_size, lr`` are read in training)."""

    stages = ("fit", "test")

    def build_models(self) -> None:
        hp, task = self.hparams, self.task
        self.schedule = DDPMSchedule(hp.T, hp.beta_start, hp.beta_end)
        self.net = Ensemble(
            lambda: EpsNet(task.state_dim, task.history_dim, hp.hidden, hp.layers), task.n_agents + 1
        )
        self.ema = EMA(self.net, hp.ema_decay)
        self.register_buffer("views", torch.tensor(task.views(), dtype=torch.float32), persistent=False)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(range(self.hparams.steps), batch_size=None)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)

    def training_step(self, batch, batch_idx):
        data = self.task.train_batch(self.global_step, self.global_rank, self.hparams.batch_size)
        state = torch.tensor(data["state"], dtype=torch.float32, device=self.device)
        history = torch.tensor(data["history"], dtype=torch.float32, device=self.device)
        generator = torch.Generator().manual_seed(int(data["noise_seed"]))
        views = self.views.unsqueeze(1) * history  # [n + 1, B, C]
        loss = epsilon_loss(
            lambda x_k, k: self.net(pack(x_k, k.float(), views)),
            state.expand(len(views), -1, -1),
            self.schedule,
            generator,
        )
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def optimizer_step(self, *args, **kwargs):
        super().optimizer_step(*args, **kwargs)
        self.ema.update_parameters(self.net)  # in the same step: a checkpoint never splits the two

    def eps(self, m: int, x: torch.Tensor, k: int, history: torch.Tensor) -> torch.Tensor:
        """Model ``m``'s (EMA) epsilon on ``x`` [..., d] paired with ``history`` [..., C]."""
        return member_forward(self.ema.module, m, pack(x, k, history))

    def all_eps(self, x: torch.Tensor, k: int, views: torch.Tensor) -> torch.Tensor:
        """Every model at once: ``x`` [n + 1, B, d] with its views of the histories [n + 1, B, C]."""
        return self.ema.module(pack(x, k, views))
