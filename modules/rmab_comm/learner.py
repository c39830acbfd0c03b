"""Communication learning for budgeted RMABs with systematic data errors.

Zhao, Wang, Nagaraj, Taneja, Tambe, "The Bandit Whisperer: Communication Learning for Restless
Bandits", AAAI 2025 (arXiv:2408.05686). Every listed method trains side by side on every replica
of the task, each on its own named random streams (adding a method never changes another's numbers):

* per-arm Q-learners (:mod:`modules.rmab_comm.qlearners`, tabular or C51) learn from OBSERVED
  rewards; the joint action is the budgeted index rule (:mod:`modules.rmab_comm.selection`),
  epsilon-greedy with random feasible joint actions (epsilon x ``epsilon_decay`` per epoch);
* a message from j to receiver i is j's Q-function, used as i's BEHAVIOUR policy while i keeps
  learning its own Q from the data it collects (``message=overwrite`` instead copies j's
  Q-function into i after each epoch, the released code's fixed-pattern baselines);
* methods: ``topline`` (no errors, no comm), ``no_comm``, ``oracle`` / ``worst`` / ``random_comm``
  (fixed patterns, :mod:`modules.rmab_comm.strategies`), ``learned`` (the VDN strategy) and
  ``random`` (random feasible actions);
* learned communication (reconstruction of the paper's multi-agent communication MDP, pluggable in
  :mod:`modules.rmab_comm.strategies`): after ``warmup`` epochs, every ``comm_every`` epochs a
  candidate receive vector c is chosen (Bernoulli(1/2) for the first half of the rounds, then
  epsilon-greedy in the VDN), its influence -- the change in summed OBSERVED return of
  ``influence_episodes`` greedy rollouts with the candidate's messages vs the current ones, common
  random numbers -- is measured, the VDN is regressed (MSE) on all (c, influence) pairs, and the
  agent acts with c unless its influence was negative (then without messages).

One ``training_step`` = one epoch of ``task.horizon`` environment steps for every method.
Evaluation (``test_step``, one replica per instance) rolls out each method's deployed greedy
policy on TRUE rewards from shared start states: the behaviour Q-functions with the end-of-training
messages (``eval_policy=behaviour``), or every arm's OWN Q-function (``eval_policy=own``). DDP: every rank
trains all replicas on its
own rank-seeded streams (independent repetitions); evaluation shards the replicas over ranks.
"""

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field, PositiveInt
from torch import nn
from torch.utils.data import DataLoader

from modules.base import AtlasModule
from modules.rmab_comm.qlearners import C51Q, TabularQ
from modules.rmab_comm.selection import budgeted_greedy, random_feasible
from modules.rmab_comm.strategies import VDN, fixed_pattern, senders_of

Method = Literal["topline", "no_comm", "oracle", "worst", "random_comm", "learned", "random"]
Probability = Annotated[float, Field(ge=0, le=1)]
FIXED = ("oracle", "worst", "random_comm")


class RMABComm(AtlasModule):
    needs = "budgeted_rmab"
    models = ("none",)
    stages = ("fit", "test")

    def __init__(
        self,
        task,
        model=None,
        methods: Annotated[list[Method], Field(min_length=1)] = ("topline", "no_comm", "oracle", "learned"),
        q_model: Literal["tabular", "c51"] = "tabular",
        epochs: PositiveInt = 3000,
        gamma: Annotated[float, Field(gt=0, lt=1)] = 0.9,
        lr: Annotated[float, Field(gt=0, le=1)] = 0.1,
        q_lr: Annotated[float, Field(gt=0)] = 5e-4,
        epsilon: Probability = 0.3,
        epsilon_decay: Annotated[float, Field(gt=0, le=1)] = 0.999,
        warmup: Annotated[int, Field(ge=0)] = 300,
        comm_every: PositiveInt = 10,
        message: Literal["behaviour", "overwrite"] = "behaviour",
        influence_episodes: PositiveInt = 10,
        comm_epsilon: Probability = 0.3,
        vdn_lr: Annotated[float, Field(gt=0)] = 5e-3,
        vdn_steps: PositiveInt = 20,
        hidden: PositiveInt = 16,
        atoms: Annotated[int, Field(ge=2)] = 51,
        batch_size: PositiveInt = 64,
        buffer_size: PositiveInt = 600,
        grad_steps: PositiveInt = 1,
        target_every: PositiveInt = 10,
        curve_every: PositiveInt = 100,
        curve_episodes: PositiveInt = 20,
        eval_policy: Literal["behaviour", "own"] = "behaviour",
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.automatic_optimization = False
        self.methods = list(dict.fromkeys(methods))
        R, N, A = task.replicas, task.n_arms, len(task.costs)
        self.R, self.N, self.A, self.costs = R, N, A, np.asarray(task.costs)
        self.own = np.arange(R * N).reshape(R, N)  # learner index of arm (r, n)
        self.z = np.stack([task.features(r) for r in range(R)])  # [R, N, 4] arm features
        v_max = task.reward_max / (1 - gamma)
        init = torch.Generator().manual_seed(task.seed)  # identical networks on every rank
        learners = {
            m: TabularQ(R * N, task.n_states, A, gamma)
            if q_model == "tabular"
            else C51Q(R * N, A, gamma, v_max, init, hidden, atoms, batch_size, buffer_size, target_every)
            for m in self.methods
            if m != "random"
        }
        if not learners and "fit" in self.stages:
            raise ValueError(
                f"methods={self.methods} train nothing; random actions alone: algorithm=rmab_comm_random"
            )
        self.learners = nn.ModuleDict(learners)
        self.vdn = VDN(R, N, init) if "learned" in self.methods else None
        self.vdn_opt = torch.optim.Adam(self.vdn.parameters(), lr=vdn_lr) if self.vdn is not None else None
        self.epoch, self.eps = 0, epsilon
        self.receive = {m: np.zeros((R, N), dtype=bool) for m in self.methods}
        self.sender = {m: np.full((R, N), -1) for m in self.methods}
        self.samples_c: list[np.ndarray] = []  # learned: receive vectors [R, N]
        self.samples_influence: list[np.ndarray] = []  # and their influence [R]
        self.history: list[np.ndarray] = []  # acting receive vector per round
        self.curves: dict[str, list[float]] = {m: [] for m in self.methods}
        self.envs: dict = {}

    def q(self, m: str):
        return self.learners[m]

    # ---- environments and streams (per rank: created in setup) ----------------------------
    def setup(self, stage: str) -> None:
        if self.envs:
            return
        for m in self.methods:
            self.envs[m] = self.task.make_env(list(range(self.R)), self.rng(f"{m}/env"), noisy=m != "topline")
            if m in FIXED:
                self.receive[m], self.sender[m] = fixed_pattern(
                    m, self.z, self.task.noisy, self.rng(f"{m}/pattern")
                )

        for m, q in self.learners.items():
            if isinstance(q, C51Q):
                q.sample_rng = self.rng(f"{m}/replay")

    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(self.hparams.epochs), batch_size=None)

    def configure_optimizers(self):
        """One optimizer over every method's learners (each arm's parameters get only its own loss's
        gradient): SGD of step ``lr`` for tables, Adam of step ``q_lr`` for C51 nets."""
        if not len(self.learners):
            return None
        if self.hparams.q_model == "tabular":
            return torch.optim.SGD(self.learners.parameters(), lr=self.hparams.lr)
        return torch.optim.Adam(self.learners.parameters(), lr=self.hparams.q_lr)

    def communicating(self) -> bool:
        return self.epoch >= self.hparams.warmup

    def owner(self, receive: np.ndarray, sender: np.ndarray) -> np.ndarray:
        """Learner used to act for each arm [R, N]: the sender's for receivers, else its own."""
        return np.where(receive, self.own[np.arange(self.R)[:, None], np.maximum(sender, 0)], self.own)

    def behaviour(self, m: str) -> np.ndarray:
        if not self.communicating() or self.hparams.message == "overwrite" and m in FIXED:
            return self.own
        return self.owner(self.receive[m], self.sender[m])

    # ---- acting ---------------------------------------------------------------------------
    def act(self, m: str, env, state: np.ndarray, owner: np.ndarray, rng, explore: float) -> np.ndarray:
        shape = state.shape
        if m == "random":
            return random_feasible(shape, self.A, self.costs, self.task.budget, rng)
        actions = budgeted_greedy(self.q(m).values(env, state, owner), self.costs, self.task.budget)
        if explore > 0:
            coin = rng.random(shape[0]) < explore
            if coin.any():
                actions[coin] = random_feasible(
                    (int(coin.sum()), shape[1]), self.A, self.costs, self.task.budget, rng
                )
        return actions

    def rollout(self, m: str, env, owner: np.ndarray, horizon: int, reward: str, rng=None) -> np.ndarray:
        """Greedy rollout from reset: per-row, per-arm discounted sum of ``info[reward]`` [B, N]."""
        state, _ = env.reset()
        total = np.zeros(state.shape)
        for t in range(horizon):
            state, _, _, _, info = env.step(self.act(m, env, state, owner, rng, 0.0))
            total += self.hparams.gamma**t * info[reward]
        return total

    # ---- training: one epoch of every method ----------------------------------------------
    def training_step(self, step, batch_idx):
        if self.epoch >= self.hparams.epochs:
            return
        for m in self.methods:
            self.train_epoch(m)
        optimizer = self.optimizers()
        for _ in range(self.hparams.grad_steps if self.hparams.q_model == "c51" else 1):
            loss = sum(q.loss() for q in self.learners.values())
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
        self.log("train/loss", loss.detach())
        for m, q in self.learners.items():
            q.after_update(self.epoch)
            if self.hparams.message == "overwrite" and m in FIXED and self.communicating():
                receive = self.receive[m]
                q.copy(self.own[receive], self.owner(receive, self.sender[m])[receive])
        if (
            "learned" in self.methods
            and self.communicating()
            and (self.epoch - self.hparams.warmup) % self.hparams.comm_every == 0
        ):
            self.comm_round()
        self.epoch += 1
        self.eps *= self.hparams.epsilon_decay
        if self.epoch % self.hparams.curve_every == 0:
            for m in self.methods:
                self.curves[m].append(self.curve_point(m))
        self.log("train/epsilon", self.eps)

    def train_epoch(self, m: str) -> None:
        env, rng = self.envs[m], self.rng(f"{m}/explore")
        owner = self.behaviour(m)
        state, _ = env.reset()
        for _ in range(self.task.horizon):
            actions = self.act(m, env, state, owner, rng, self.eps)
            nxt, _, _, _, info = env.step(actions)
            if m != "random":
                self.q(m).learn(env, self.own, state, actions, info["observed"], nxt)
            state = nxt

    def deployed(self, m: str) -> np.ndarray:
        """Learners that act for each arm [R, N] at evaluation: the arms' own (``eval_policy=own``) or
        the behaviour ones with the messages of the end of training (the learned method: its VDN's
        greedy receivers)."""
        if self.hparams.eval_policy == "own":
            return self.own
        if m == "learned":
            final = self.vdn.greedy()
            return self.owner(final, senders_of(final, self.z))
        return self.behaviour(m)

    def curve_point(self, m: str) -> float:
        """Mean true return over replicas of the deployed greedy policies (shared start states)."""
        E = self.hparams.curve_episodes
        env = self.task.make_env(list(range(self.R)), self.task.rng(0, "curve"), noisy=False, copies=E)
        ret = self.rollout(
            m,
            env,
            np.repeat(self.deployed(m), E, 0),
            self.task.eval_horizon,
            "true",
            self.task.rng(0, "curve/random policy"),
        )
        return float(ret.sum(-1).mean())

    # ---- learned communication --------------------------------------------------------------
    def comm_round(self) -> None:
        rng = self.rng("learned/comm")
        rounds = -(-(self.hparams.epochs - self.hparams.warmup) // self.hparams.comm_every)
        coin = rng.random((self.R, self.N)) < 0.5
        if len(self.history) < rounds / 2:
            candidate = coin
        else:
            explore = rng.random(self.R) < self.hparams.comm_epsilon
            candidate = np.where(explore[:, None], coin, self.vdn.greedy())
        current = self.receive["learned"]
        influence = self.influence(candidate, current)
        self.samples_c.append(candidate)
        self.samples_influence.append(influence)
        c = torch.as_tensor(np.stack(self.samples_c), dtype=torch.float32)  # [n, R, N]
        y = torch.as_tensor(np.stack(self.samples_influence), dtype=torch.float32)  # [n, R]
        for _ in range(self.hparams.vdn_steps):
            loss = ((self.vdn(c) - y) ** 2).mean()
            self.vdn_opt.zero_grad()
            loss.backward()
            self.vdn_opt.step()
        accepted = np.where((influence >= 0)[:, None], candidate, False)
        self.receive["learned"], self.sender["learned"] = accepted, senders_of(accepted, self.z)
        self.history.append(accepted)

    def influence(self, candidate: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Sum over arms of the mean change in observed return, candidate vs current messages: [R]."""
        E, seed = self.hparams.influence_episodes, int(self.rng("learned/influence").integers(2**63))
        returns = []
        for receive in (candidate, current):
            env = self.task.make_env(list(range(self.R)), np.random.default_rng(seed), copies=E)
            owner = np.repeat(self.owner(receive, senders_of(receive, self.z)), E, 0)  # [R * E, N]
            returns.append(self.rollout("learned", env, owner, self.task.horizon, "observed"))
        return (returns[0] - returns[1]).reshape(self.R, E, self.N).mean(1).sum(-1)

    # ---- evaluation: TRUE rewards, own greedy Q-functions, shared start states ---------------
    def test_step(self, batch, batch_idx):
        r, _ = batch
        E, H, noisy = self.task.eval_episodes, self.task.eval_horizon, self.task.noisy
        values = {}
        for m in self.methods:
            env = self.task.make_env([r], self.task.rng(r, "eval"), noisy=False, copies=E)
            ret = self.rollout(
                m,
                env,
                np.tile(self.deployed(m)[r], (E, 1)),
                H,
                "true",
                self.task.rng(r, "eval/random policy"),
            ).mean(0)  # [N]
            values[f"{m}_return"] = ret.sum()
            optimal = self.task.optimal_return(r, self.hparams.gamma, H)
            if optimal is not None and m != "random" and noisy.any():
                start = self.q(m).values(env, env.reset_states()[:1], self.deployed(m)[r][None])[0]  # [N, A]
                values[f"{m}_noisy_pulls"] = (start[noisy, 1] > start[noisy, 0]).mean()
                values[f"{m}_noisy_ratio"] = (ret[noisy] / optimal[noisy]).min()
        if self.vdn is not None:
            final = self.vdn.greedy()[r]
            sender = senders_of(final[None], self.z[r][None])[0]
            n = max(final.sum(), 1)
            values["learned_precision"] = (final & noisy).sum() / n
            values["learned_recall"] = (final & noisy).sum() / max(noisy.sum(), 1)
            values["learned_correct"] = (final & noisy & ~noisy[np.maximum(sender, 0)]).sum() / n
        self.record(r, **values)

    def summarize(self, rows):
        out = {"rmab_comm/replicas": float(len(rows["index"]))}
        mean = {m: rows[f"{m}_return"].mean() for m in self.methods}
        for m in self.methods:
            out[f"rmab_comm/{m}/return_mean"] = mean[m]
            out[f"rmab_comm/{m}/return_std"] = rows[f"{m}_return"].std()
            if f"{m}_noisy_pulls" in rows:
                out[f"rmab_comm/{m}/noisy_dont_pull_share"] = (rows[f"{m}_noisy_pulls"] == 0).mean()
                out[f"rmab_comm/{m}/reach95_share"] = (rows[f"{m}_noisy_ratio"] >= 0.95).mean()
                out[f"rmab_comm/{m}/noisy_ratio_mean"] = rows[f"{m}_noisy_ratio"].mean()
        if {"topline", "no_comm"} <= set(self.methods):
            gap = rows["topline_return"] - rows["no_comm_return"]  # per replica
            out["rmab_comm/gap_frac"] = (mean["topline"] - mean["no_comm"]) / mean["topline"]
            out["rmab_comm/gap_frac_std"] = (gap / rows["topline_return"]).std()
            for m in set(self.methods) - {"topline", "no_comm", "random"}:
                diff = rows[f"{m}_return"] - rows["no_comm_return"]
                out[f"rmab_comm/{m}/minus_no_comm"] = diff.mean()
                out[f"rmab_comm/{m}/minus_no_comm_std"] = diff.std()
                out[f"rmab_comm/{m}/beats_no_comm_share"] = (diff >= 0).mean()
                out[f"rmab_comm/{m}/recovered"] = (
                    diff.mean() / gap.mean() if gap.mean() != 0 else float("nan")
                )
                out[f"rmab_comm/{m}/recovered_half_share"] = (diff >= 0.5 * gap).mean()
        if self.vdn is not None:
            for key, bar in (("precision", 0.75), ("recall", None), ("correct", 0.6)):
                x = rows[f"learned_{key}"]
                out[f"rmab_comm/learned/{key}_mean"], out[f"rmab_comm/learned/{key}_std"] = x.mean(), x.std()
                if bar is not None:
                    out[f"rmab_comm/learned/{key}_share"] = (x >= bar).mean()
        self.plot()
        return out

    def plot(self) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for m, curve in self.curves.items():
            epochs = self.hparams.curve_every * np.arange(1, len(curve) + 1)
            ax.plot(epochs, curve, label=m)
        ax.set(xlabel="epoch", ylabel="true return (mean over replicas)", title="true-return curves")
        ax.legend()
        self.save_figure(fig, "rmab_comm_true_return")
        if self.history:
            fig, ax = plt.subplots(figsize=(6, 3))
            ax.imshow(np.stack(self.history)[:, 0].T, aspect="auto", interpolation="nearest", cmap="Greys")
            ax.set(
                xlabel="communication round",
                ylabel="arm (replica 0)",
                title=f"receivers over training (noisy arms: {np.flatnonzero(self.task.noisy).tolist()})",
            )
            self.save_figure(fig, "rmab_comm_receivers")

    # ---- exact resume -------------------------------------------------------------------------
    def learner_state(self) -> dict:
        return {
            "epoch": self.epoch,
            "eps": self.eps,
            "env_states": {m: env.state for m, env in self.envs.items()},
            "learners": {m: self.q(m).state() for m in self.methods if m != "random"},
            "receive": self.receive,
            "sender": self.sender,
            "samples_c": self.samples_c,
            "samples_influence": self.samples_influence,
            "history": self.history,
            "curves": self.curves,
            "vdn_opt": self.vdn_opt.state_dict() if self.vdn_opt is not None else {},
        }

    def load_learner_state(self, state: dict) -> None:
        arrays = {
            k: {m: np.asarray(v) for m, v in state[k].items()} for k in ("env_states", "receive", "sender")
        }
        self.epoch, self.eps = int(state["epoch"]), float(state["eps"])
        for m, env in self.envs.items():
            env.state = arrays["env_states"][m].astype(float)
        for m, s in state["learners"].items():
            self.q(m).load(s)
        self.receive = {m: v.astype(bool) for m, v in arrays["receive"].items()}
        self.sender = {m: v.astype(int) for m, v in arrays["sender"].items()}
        self.samples_c = [np.asarray(c).astype(bool) for c in state["samples_c"]]
        self.samples_influence = [np.asarray(x) for x in state["samples_influence"]]
        self.history = [np.asarray(h).astype(bool) for h in state["history"]]
        self.curves = {m: [float(x) for x in v] for m, v in state["curves"].items()}
        if self.vdn_opt is not None:
            self.vdn_opt.load_state_dict(state["vdn_opt"])


class RandomActions(RMABComm):
    """The ``random`` baseline alone: random budget-feasible joint actions, nothing to train (a solver)."""

    stages = ("test",)

    def __init__(self, task, model=None, gamma: Annotated[float, Field(gt=0, lt=1)] = 0.9):
        super().__init__(task, model, methods=["random"], gamma=gamma)

    def setup(self, stage: str) -> None:
        """Evaluation builds its own environments."""
