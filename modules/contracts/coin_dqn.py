"""Multi-agent contractual Q-learning (Alg. 3) of Ivanov et al., "Principal-Agent Reinforcement
Learning: Orchestrating AI Agents with Contracts" (arXiv 2407.18074), Sec. 5, on the Coin Game.

The principal recommends an action to each agent and pays agent i only if it follows (observed
actions: the outcome is the action). One run has consecutive phases (steps of one fit loop):

1. **Training** (Alg. 3): both agents follow the principal's ε-greedy recommendations. The principal's
   contractual Q is a VDN sum over agents, q_θ(s, a) = Σ_i q_θ(o_i, a_i), with shared agent-centric
   parameters; the agents' truncated Q̄_φ(o_i, a_i | a_-i) (own reward, the other plays a_-i now and
   everyone follows later) is shared too. With targets θ', φ' and the observed-action min-pay
   contract b_i = max_a Q̄_φ'(o_i, a | a_-i) + ξ - Q̄_φ'(o_i, a_i | a_-i) (clipped at 0):

       y_p = Σ_i (r_i - α b_i) + γ Σ_i q_θ'(o'_i, a'_i),     a'_i = argmax q_θ(o'_i, ·)
       y_a,i = r_i + γ [Q̄_φ'(o'_i, a'_i | a'_-i) + b'_i]     (following a'_i, paid b'_i)

   α weighs payments against welfare (the paper's r_p = (1/α) Σ r_i - b, rescaled). [R] Instead
   of the paper's per-episode follow bits f_-i, Q̄ is conditioned on the other's current action,
   which is exact off-policy (exploring recommendations stay correct data) and gives the "other
   follows" IC of the exact reference; ξ > 0 nudges every contract.
2. **Validation**: fresh selfish DQN agents (``IndependentDQN``) trained from scratch see the
   greedy recommendation, get r_i + b_i iff they follow; the principal is frozen and never sees
   their parameters.
3. **Baselines** (``baselines: true``): the same learners without recommendations and payments
   (selfish), and with a constant share p of the step's welfare paid to each agent, p·(r_1 + r_2)/2,
   where p is the validation phase's payments / welfare (the same budget) [R].

Evaluation is exact: each phase's greedy policy is tabulated over every (t, s) and evaluated by the
DP of ``experiments/contracts/coin_game_dp.py`` (welfare, payments, follow rate under the exact
state occupancy), against the DP cooperative optimum and selfish equilibrium.
Replicas: the task's instances are independent replicas (own networks, games and RNG streams),
trained in lockstep as :class:`modules.nets.Ensemble` members.
Randomness: the named streams ``self.rng("games")`` (seeds the games), ``"exploration"``
(ε-greedy recommendations) and ``"replay"`` (minibatches); replay buffers, games, the validation
learners' frozen recommendation and payments, the sharing budget and the learning curves are the
``learner_state``, so a run stopped after any step resumes exactly. A run stopped before a phase
begins evaluates that phase's untrained learners (with the principal's current recommendation), so
metrics exist after any number of steps.
DDP: every rank trains all replicas on its own games (streams seeded by (seed, rank)); DDP averages
gradients (data-parallel RL); evaluation shards the replicas over ranks.
"""

import copy
from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt
from torch.utils.data import DataLoader

from experiments.contracts.coin_game_dp import (
    build_model,
    cooperative,
    evaluate,
    iterated_best_responses,
    start_distribution,
)
from experiments.contracts.contract import observed_action_payments
from modules.base import AtlasModule
from modules.buffers import ReplayBuffer
from modules.contracts.coin_learners import (
    Games,
    LearnerPhase,
    exact_play,
    feature_size,
    features,
    greedy_tables,
    one_hot,
    store,
    unpack,
)
from modules.nets import Ensemble
from modules.rl import LinearSchedule, hard_update

Fraction = Annotated[float, Field(ge=0, le=1)]
PHASES = {
    "train": None,
    "validation": "contract",
    "selfish": "selfish",
    "sharing": "sharing",
}  # phase -> world


def other(x: torch.Tensor) -> torch.Tensor:
    """Swap the agent axis (-1 for actions [..., 2]) so agent i sees the other's entry."""
    return x.flip(-1)


class CoinContractDQN(AtlasModule):
    """Alg. 3 (principal + agent Q) with validation by fresh selfish learners and in-run baselines."""

    needs = "coin_game"
    models = ("mlp",)
    stages = ("fit", "test")

    def __init__(
        self,
        task,
        model=None,
        updates: PositiveInt = 3000,
        validation_updates: PositiveInt = 3000,
        baselines: bool = True,
        games: PositiveInt = 16,
        batch_size: PositiveInt = 256,
        lr: PositiveFloat = 1e-3,
        lr_final: PositiveFloat = 1e-4,
        epsilon: Fraction = 0.4,
        epsilon_final: Fraction = 0.0,
        target_every: PositiveInt = 100,
        alpha: PositiveFloat = 0.1,
        xi: NonNegativeFloat = 0.05,
        grad_clip: PositiveFloat = 10.0,
        buffer_size: PositiveInt = 100000,
        eval_every: PositiveInt = 500,
        tie: Literal["min_payment", "first"] = "min_payment",
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.automatic_optimization = False
        self.spec, self.n_replicas = task.spec, task.n_instances
        R, F_in = self.n_replicas, feature_size(self.spec)
        self.dp, self.start = build_model(self.spec), start_distribution(self.spec)
        self.principal = Ensemble(lambda: model(in_features=F_in, out_features=4), R)  # q_θ(o_i, ·)
        self.agent = Ensemble(lambda: model(in_features=F_in + 4, out_features=4), R)  # Q̄_φ(o_i, · | a_-i)
        self.principal_target = copy.deepcopy(self.principal).requires_grad_(False)
        self.agent_target = copy.deepcopy(self.agent).requires_grad_(False)
        self.buffer = ReplayBuffer(buffer_size)
        self.learners = torch.nn.ModuleDict(
            {
                phase: LearnerPhase(
                    world, self.spec, model, R, buffer_size, share=None if world == "sharing" else 0.0
                )
                for phase, world in PHASES.items()
                if world == "contract" or (world and baselines)
            }
        )
        self.games = Games(self.spec, R, games)
        self.curves: dict[str, list] = {phase: [] for phase in PHASES}

    # ---- schedule: the phases follow each other inside one fit loop ------------------------------
    @property
    def phases(self) -> list[tuple[str, int]]:
        return [
            ("train", self.hparams.updates),
            *[(name, self.hparams.validation_updates) for name in self.learners],
        ]

    def phase_of(self, step: int) -> tuple[int, str, int, int]:
        """(phase number, name, step within the phase, its length)."""
        for k, (name, length) in enumerate(self.phases):
            if step < length:
                return k, name, step, length
            step -= length
        raise IndexError(step)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(sum(length for _, length in self.phases)), batch_size=None)

    def setup(self, stage: str) -> None:
        self.games.reset(seed=int(self.rng("games").integers(2**31)))  # own games per rank

    def configure_optimizers(self):
        hp = self.hparams
        groups = [
            [*self.principal.parameters(), *self.agent.parameters()],
            *[list(learner.parameters()) for learner in self.learners.values()],
        ]
        optimizers = [torch.optim.Adam(g, lr=hp.lr) for g in groups]
        return optimizers, [
            torch.optim.lr_scheduler.ExponentialLR(o, (hp.lr_final / hp.lr) ** (1 / n))
            for o, (_, n) in zip(optimizers, self.phases)
        ]

    def epsilon(self, step: int, length: int) -> float:
        return LinearSchedule(self.hparams.epsilon, self.hparams.epsilon_final, max(length - 1, 1))(step)

    def training_step(self, batch, step):
        # ``step`` = Lightning's batch index, which continues across a resume (a restarted plain
        # dataloader yields its items from the start again, so the batch itself is not the step)
        hp = self.hparams
        k, phase, i, length = self.phase_of(int(step))
        if i == 0:
            self.start_phase(phase)
        if phase == "train":
            s, t = self.games.observe()
            with torch.no_grad():
                greedy = self.principal_q(features(self.spec, s, t)).argmax(-1).cpu().numpy()
            rng = self.rng("exploration")
            explore = rng.random(greedy.shape) < self.epsilon(i, length)
            a = np.where(explore, rng.integers(0, 4, greedy.shape), greedy)  # recommended = played
            r, s2, done = self.games.play(a)
            store(self.buffer, s, t, a, r, s2, done)
            full = len(self.buffer) >= hp.batch_size
            loss = (
                self.principal_loss(self.buffer.sample(hp.batch_size, self.rng("replay"))) if full else None
            )
        else:
            loss = self.learners[phase].step(
                self.games,
                self.epsilon(i, length),
                self.rng("exploration"),
                hp.batch_size,
                self.rng("replay"),
            )
        if loss is not None:
            self.update(k, phase, loss)
        if (i + 1) % hp.target_every == 0:
            self.sync_targets(phase)
        if (i + 1) % hp.eval_every == 0 or i + 1 == length:
            welfare = self.evaluate_phase(phase)["welfare"]
            self.curves[phase].append(welfare)
            self.log(f"train/welfare_{phase}", float(welfare.mean()), prog_bar=True)

    def start_phase(self, phase: str) -> None:
        """Validation freezes the principal; sharing pays the validation phase's budget share."""
        self.prepare(phase)
        self.games.reset()

    def prepare(self, phase: str) -> None:
        if phase == "validation":
            learner = self.learners[phase]
            learner.rec, learner.pay = self.principal_tables()
        if phase == "sharing":
            result = self.learners["validation"].evaluate(self.dp, self.start)
            self.learners[phase].share = float(np.mean(result["payments"] / result["welfare"]))

    def update(self, k: int, phase: str, loss: torch.Tensor) -> None:
        optimizer = self.optimizers()[k]
        optimizer.zero_grad()
        self.manual_backward(loss)
        self.clip_gradients(
            optimizer, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm"
        )
        optimizer.step()
        self.lr_schedulers()[k].step()
        self.log(f"train/loss_{phase}", loss.item() / self.n_replicas, prog_bar=True)

    def sync_targets(self, phase: str) -> None:
        if phase == "train":
            hard_update(self.principal_target, self.principal)
            hard_update(self.agent_target, self.agent)
        else:
            self.learners[phase].dqn.sync()

    # ---- the principal (Alg. 3) -----------------------------------------------------------------------
    def principal_q(self, x: torch.Tensor, target: bool = False) -> torch.Tensor:
        """q(o_i, ·) for inputs [R, N, 2, F]   -> [R, N, 2, 4]."""
        R, N = x.shape[:2]
        net = self.principal_target if target else self.principal
        return net(x.to(self.device).reshape(R, 2 * N, -1)).reshape(R, N, 2, 4)

    def agent_q(self, x: torch.Tensor, others: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Q̄(o_i, · | a_-i) for inputs [R, N, 2, F] and the others' actions [R, N, 2]   -> [R, N, 2, 4]."""
        R, N = x.shape[:2]
        inputs = torch.cat([x.to(self.device), one_hot(others, self.device)], -1).reshape(R, 2 * N, -1)
        return (self.agent_target if target else self.agent)(inputs).reshape(R, N, 2, 4)

    def principal_loss(self, batch: dict[str, np.ndarray]) -> torch.Tensor:
        hp, gamma = self.hparams, self.spec.gamma
        s, t, a, r, s2, live = unpack(batch, self.device)  # [R, B], [R, B, 2]
        x, x2 = features(self.spec, s, t), features(self.spec, s2, t + 1)
        with torch.no_grad():
            a2 = self.principal_q(x2).argmax(-1)  # a'    [R, B, 2]
            q2 = self.principal_q(x2, target=True).gather(-1, a2[..., None]).squeeze(-1).sum(-1)
            pay = observed_action_payments(self.agent_q(x, other(a), target=True), hp.xi)
            pay = pay.gather(-1, a[..., None]).squeeze(-1)  # b_i   [R, B, 2]
            Qbar2 = self.agent_q(x2, other(a2), target=True)
            follow2 = (Qbar2 + observed_action_payments(Qbar2, hp.xi)).gather(-1, a2[..., None]).squeeze(-1)
            y_p = (r - hp.alpha * pay).sum(-1) + gamma * live * q2
            y_a = r + gamma * live[..., None] * follow2
        q = self.principal_q(x).gather(-1, a[..., None]).squeeze(-1).sum(-1)  # VDN
        Qbar = self.agent_q(x, other(a)).gather(-1, a[..., None]).squeeze(-1)
        return (
            F.smooth_l1_loss(q, y_p, reduction="none").mean(1).sum()
            + F.smooth_l1_loss(Qbar, y_a, reduction="none").mean((1, 2)).sum()
        )

    @torch.no_grad()
    def principal_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The greedy recommendation [R, H, S, 2] and what following it pays [R, H, S, 2], at every (t, s)."""
        R = self.n_replicas
        rec = greedy_tables(self.spec, lambda x, t, s: self.principal_q(x.expand(R, *x.shape)))
        H, S = rec.shape[1:3]
        t, s = np.divmod(np.arange(H * S), S)
        x = features(self.spec, s, t).expand(R, -1, -1, -1)
        a = torch.as_tensor(rec.reshape(R, H * S, 2).astype(np.int64), device=self.device)
        pay = observed_action_payments(self.agent_q(x, other(a)), self.hparams.xi).gather(-1, a[..., None])
        return rec, pay.squeeze(-1).reshape(R, H, S, 2).cpu().numpy()

    # ---- exact evaluation -----------------------------------------------------------------------------
    def evaluate_phase(self, phase: str) -> dict[str, np.ndarray]:
        if phase != "train":
            return self.learners[phase].evaluate(self.dp, self.start)
        rec, pay = self.principal_tables()
        results = [
            exact_play(self.dp, self.start, rec[r, ..., 0] * 4 + rec[r, ..., 1], pay[r])
            for r in range(self.n_replicas)
        ]
        return {key: np.array([x[key] for x in results]) for key in ("welfare", "payments")}

    def test_step(self, batch, batch_idx):
        index, _ = batch
        if batch_idx == 0:
            for phase, _ in self.phases:  # phases a short run never reached
                if (
                    phase == "validation"
                    and self.learners[phase].rec is None
                    or phase == "sharing"
                    and self.learners[phase].share is None
                ):
                    self.prepare(phase)
            coop = cooperative(self.dp, self.hparams.tie)
            selfish, _, _ = iterated_best_responses(self.dp, coop.policy)
            self.references = {
                "coop": self.start @ coop.welfare[0],
                "selfish": self.start @ evaluate(self.dp, selfish)[0].sum(-1),
            }
            self.results = {phase: self.evaluate_phase(phase) for phase, _ in self.phases}
        values = {
            f"{phase}_{key}": v[index] for phase, result in self.results.items() for key, v in result.items()
        }
        self.record(index, **values, coop=self.references["coop"], selfish=self.references["selfish"])

    def summarize(self, rows):
        self.plot(rows)
        coop, selfish = rows["coop"][0], rows["selfish"][0]
        share = rows["train_payments"] / rows["train_welfare"]
        metrics = {
            "coin_rl/coop_welfare_dp": coop,
            "coin_rl/selfish_welfare_dp": selfish,
            "coin_rl/welfare": rows["train_welfare"].mean(),
            "coin_rl/welfare_ratio": rows["train_welfare"].mean() / coop,
            "coin_rl/welfare_ratio_min": rows["train_welfare"].min() / coop,
            "coin_rl/payment_share": share.mean(),
            "coin_rl/payment_share_max": share.max(),
            "coin_rl/validation_welfare": rows["validation_welfare"].mean(),
            "coin_rl/validation_vs_selfish": rows["validation_welfare"].mean() / selfish,
            "coin_rl/validation_vs_selfish_min": rows["validation_welfare"].min() / selfish,
            "coin_rl/validation_followed": rows["validation_followed"].mean(),
            "coin_rl/validation_followed_min": rows["validation_followed"].min(),
            "coin_rl/validation_payment_share": np.mean(
                rows["validation_payments"] / rows["validation_welfare"]
            ),
        }
        if "selfish" in self.learners:
            metrics |= {
                "coin_rl/selfish_learners_ratio": rows["selfish_welfare"].mean() / coop,
                "coin_rl/selfish_learners_vs_selfish": rows["selfish_welfare"].mean() / selfish,
                "coin_rl/sharing_vs_selfish": rows["sharing_welfare"].mean() / selfish,
                "coin_rl/selfish_learners_ratio_max": rows["selfish_welfare"].max() / coop,
                "coin_rl/sharing_welfare": rows["sharing_welfare"].mean(),
                "coin_rl/sharing_ratio": rows["sharing_welfare"].mean() / coop,
                "coin_rl/sharing_proportion": self.learners["sharing"].share,
            }
        return metrics

    def plot(self, rows) -> None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        lengths = dict(self.phases)
        for phase, curve in self.curves.items():
            if curve:
                curve = np.array(curve)  # [evals, R]
                x = np.minimum(np.arange(1, len(curve) + 1) * self.hparams.eval_every, lengths[phase])
                axes[0].plot(x, curve.mean(1), marker="o", label=phase)
        axes[0].axhline(rows["coop"][0], c="k", ls="--", lw=0.8, label="cooperative optimum (DP)")
        axes[0].axhline(rows["selfish"][0], c="gray", ls=":", lw=0.8, label="selfish equilibrium (DP)")
        axes[0].set(
            xlabel="update (within the phase)", ylabel="welfare (exact)", title="Coin Game learning curves"
        )
        axes[0].legend(fontsize=7)
        names = [phase for phase, _ in self.phases]
        x = np.arange(len(names))
        axes[1].bar(x - 0.2, [rows[f"{p}_welfare"].mean() for p in names], 0.4, label="welfare")
        axes[1].bar(x + 0.2, [rows[f"{p}_payments"].mean() for p in names], 0.4, label="payments")
        axes[1].set_xticks(x, ["principal\n(followed)" if p == "train" else p for p in names])
        axes[1].set(title="Payments vs welfare (exact)")
        axes[1].legend(fontsize=7)
        self.save_figure(fig, "coin_learning")

    # ---- exact resume -----------------------------------------------------------------------------------
    def learner_state(self) -> dict:
        return {
            "buffer": self.buffer.state_dict(),
            "games": self.games.state_dict(),
            "curves": self.curves,
            "learners": {
                k: {"buffer": v.dqn.buffer.state_dict(), "rec": v.rec, "pay": v.pay, "share": v.share}
                for k, v in self.learners.items()
            },
        }

    def load_learner_state(self, state: dict) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.games.load_state_dict(state["games"])
        self.curves = {k: [np.asarray(x) for x in v] for k, v in state["curves"].items()}
        for k, saved in state["learners"].items():
            learner = self.learners[k]
            learner.dqn.buffer.load_state_dict(saved["buffer"])
            learner.rec, learner.pay = (
                None if saved[x] is None else saved[x].numpy() for x in ("rec", "pay")
            )
            learner.share = saved["share"]
