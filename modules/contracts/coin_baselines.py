"""Baselines of Ivanov et al., "Principal-Agent Reinforcement Learning: Orchestrating AI Agents with
Contracts" (arXiv 2407.18074), Sec. 5, on the Coin Game: independent selfish DQN learners without
contracts (``proportion = 0``), and the constant-proportion welfare-sharing heuristic (Christoffersen
et al. 2023): each agent is paid p·(r_1 + r_2)/2 on top of its own reward, so the budget is p × welfare
[R]. ``CoinContractDQN`` trains both inside its run at the budget its contracts used; this module
runs one on its own, at a given p.

Evaluation is exact (the greedy joint policy tabulated and evaluated by DP) against the DP
cooperative optimum. Replicas = the task's instances. DDP: each rank trains all replicas on its
own games (streams seeded by (seed, rank)); DDP averages gradients (data-parallel RL). Randomness:
the named streams ``self.rng("games")``, ``"exploration"`` and ``"replay"``; the games and the replay
buffer are the ``learner_state`` (exact resume after any step).
"""

from typing import Annotated

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch.utils.data import DataLoader

from experiments.contracts.coin_game_dp import build_model, cooperative, start_distribution
from modules.base import AtlasModule
from modules.contracts.coin_learners import Games, LearnerPhase
from modules.rl import LinearSchedule

Fraction = Annotated[float, Field(ge=0, le=1)]


class CoinSharingBaseline(AtlasModule):
    """Independent DQN learners paid a constant share of welfare (0 = plain selfish learners)."""

    needs = "coin_game"
    models = ("mlp",)
    stages = ("fit", "test")

    def __init__(
        self,
        task,
        model=None,
        proportion: Fraction = 0.0,
        updates: PositiveInt = 3000,
        games: PositiveInt = 16,
        batch_size: PositiveInt = 256,
        lr: PositiveFloat = 1e-3,
        lr_final: PositiveFloat = 1e-4,
        epsilon: Fraction = 0.4,
        epsilon_final: Fraction = 0.0,
        target_every: PositiveInt = 100,
        grad_clip: PositiveFloat = 10.0,
        buffer_size: PositiveInt = 100000,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.automatic_optimization = False
        self.spec, R = task.spec, task.n_instances
        self.dp, self.start = build_model(self.spec), start_distribution(self.spec)
        self.learners = LearnerPhase(
            "sharing" if proportion > 0 else "selfish", self.spec, model, R, buffer_size, share=proportion
        )
        self.games = Games(self.spec, R, games)
        self.epsilon = LinearSchedule(epsilon, epsilon_final, max(updates - 1, 1))

    def setup(self, stage: str) -> None:
        self.games.reset(seed=int(self.rng("games").integers(2**31)))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(self.hparams.updates), batch_size=None)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.Adam(self.learners.parameters(), lr=hp.lr)
        return [optimizer], [
            torch.optim.lr_scheduler.ExponentialLR(optimizer, (hp.lr_final / hp.lr) ** (1 / hp.updates))
        ]

    def training_step(self, batch, step):
        # ``step`` = Lightning's batch index, which continues across a resume (a restarted plain
        # dataloader yields its items from the start again, so the batch itself is not the step)
        hp = self.hparams
        loss = self.learners.step(
            self.games, self.epsilon(step), self.rng("exploration"), hp.batch_size, self.rng("replay")
        )
        if loss is not None:
            optimizer = self.optimizers()
            optimizer.zero_grad()
            self.manual_backward(loss)
            self.clip_gradients(optimizer, gradient_clip_val=hp.grad_clip, gradient_clip_algorithm="norm")
            optimizer.step()
            self.lr_schedulers().step()
            self.log("train/loss", loss.item(), prog_bar=True)
        if (step + 1) % hp.target_every == 0:
            self.learners.dqn.sync()

    def test_step(self, batch, batch_idx):
        index, _ = batch
        if batch_idx == 0:
            self.results = self.learners.evaluate(self.dp, self.start)
            self.coop = self.start @ cooperative(self.dp).welfare[0]  # the optimum's welfare (any tie rule)
        self.record(
            index,
            welfare=self.results["welfare"][index],
            payments=self.results["payments"][index],
            coop=self.coop,
        )

    def summarize(self, rows):
        return {
            "coin_baseline/welfare": rows["welfare"].mean(),
            "coin_baseline/welfare_ratio": rows["welfare"].mean() / rows["coop"][0],
            "coin_baseline/welfare_ratio_max": rows["welfare"].max() / rows["coop"][0],
            "coin_baseline/payment_share": self.hparams.proportion,
        }

    def learner_state(self) -> dict:
        return {"games": self.games.state_dict(), "buffer": self.learners.dqn.buffer.state_dict()}

    def load_learner_state(self, state: dict) -> None:
        self.games.load_state_dict(state["games"])
        self.learners.dqn.buffer.load_state_dict(state["buffer"])
