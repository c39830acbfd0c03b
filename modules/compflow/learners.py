"""CompFlow and its baselines as learners on a shifted-dynamics pair (Kong et al., "Composite Flow
Matching for Reinforcement Learning with Shifted-Dynamics Data", arXiv:2505.23062, Algorithm 1 in
the reference code's form: offline source data + online target interaction).

Every learner trains one or more *agents* (BC-)SAC agents (``modules/compflow/sac.py``), each on its
own named random streams, one gradient step per agent per ``training_step``:

* ``sac``: target data only (SAC target-only);
* ``bc_sac``: all source data + target data, BC on source (BC-SAC);
* ``compflow``: BC-SAC whose source batches keep the lowest ``filter_percent`` by the W-gap and
  whose rewards get the optimistic bonus ``r + lambda gap(s, a)`` on source and target rows;
* ``darc_filter``: BC-SAC whose source batches keep the lowest ``filter_percent`` by the DARC
  score -dr (a DARC/H2O-like classifier filter).

Schedule (reference): one target step every ``tar_env_interact_interval`` gradient steps (after
``warmup`` random target steps); from ``start_gate`` on, the adaptation flow (or the classifiers)
is refitted from scratch every ``refit_every`` steps, and the gaps of every source transition and
of the target buffer are cached until the next refit (new target rows get theirs on insertion).
The source flow is fitted once, at the first step, and shared by the CompFlow agents.
Reconstructions are pluggable: the coupling (``coupling``), and the filter score (``filter``).

Evaluation (``test_step``, one instance = one target episode seed): deterministic return of every
agent; ground-truth diagnostics of every filtering agent's cached gaps against the task's true gap
(closed form or simulator-stepped): Spearman, whole-dataset filter precision, kept-vs-dropped true
gap, and the share of collected target data in the true top-quartile-gap region. Agents without
gaps yet (a run shorter than the gate) are refitted once at test time, so metrics exist after any
number of steps. DDP: data-parallel actors -- every rank trains its own agents on its own streams
(seeded from (seed, rank, name)) and Lightning averages their gradients; evaluation shards episodes.
"""

from typing import Annotated, ClassVar, Literal

import numpy as np
import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)
from scipy import stats
from torch import nn
from torch.utils.data import DataLoader

from modules.base import AtlasModule
from modules.buffers import ReplayBuffer
from modules.compflow.darc import DomainClassifiers
from modules.compflow.envs import EnvRunner, evaluate
from modules.compflow.estimator import filter_scores
from modules.compflow.flows import CompositeFlow, Coupling, init_from
from modules.compflow.sac import SACAgent
from modules.stats import mean_std

Fraction = Annotated[float, Field(gt=0, lt=1)]


class AgentSpec(BaseModel):
    """One compared agent: its data, its source filter and its gap bonus."""

    model_config = ConfigDict(extra="forbid")
    name: str
    data: Literal["target", "all"] = "all"  # target only (SAC) or source + target (BC-SAC)
    filter: Literal["none", "wgap", "darc"] = "none"  # source filter score after the gate
    bonus: NonNegativeFloat = 0.0  # lambda of r + lambda gap(s, a) (wgap only)


class ShiftedDynamicsLearner(AtlasModule):
    needs = "shifted_dynamics_rl"
    models = ("none",)
    stages = ("fit", "test")
    fixed_agents: ClassVar[tuple[dict, ...]] = ()  # single-method subclasses fix their agent

    def __init__(
        self,
        task,
        model=None,
        agents: list[AgentSpec] = (),
        replicas: PositiveInt = 1,
        updates: PositiveInt = 5000,
        batch_size: PositiveInt = 128,
        hidden: PositiveInt = 128,
        lr: PositiveFloat = 3e-4,
        gamma: Annotated[float, Field(gt=0, lt=1)] = 0.99,
        tau: Fraction = 0.005,
        alpha: PositiveFloat = 0.2,
        bc_weight: PositiveFloat = 2.5,
        tar_env_interact_interval: PositiveInt = 5,
        warmup: NonNegativeInt = 200,
        start_gate: NonNegativeInt = 1000,
        refit_every: PositiveInt = 1000,
        filter_percent: Fraction = 0.8,
        n_samples: PositiveInt = 4,
        flow_hidden: PositiveInt = 64,
        flow_layers: PositiveInt = 3,
        euler_steps: PositiveInt = 10,
        source_flow_steps: PositiveInt = 1000,
        adaptation_flow_steps: PositiveInt = 500,
        flow_batch: PositiveInt = 512,
        flow_lr: PositiveFloat = 1e-3,
        coupling: Coupling = "identity",
        eta: PositiveFloat = 0.05,
        darc_steps: PositiveInt = 500,
        diagnostic_rows: PositiveInt = 2000,
        predict: Literal["next_state", "delta"] = "next_state",
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        specs = [AgentSpec.model_validate(a) for a in (self.fixed_agents or agents)]
        if not specs:
            raise ValueError("agents: name at least one agent to train")
        if len({s.name for s in specs}) != len(specs):
            raise ValueError(f"agents: names must be distinct, got {[s.name for s in specs]}")
        data = task.source_data()
        env = task.make_env("target")
        self.high = env.action_space.high
        self.source = {
            "s": data["observations"],
            "a": (data["actions"] / self.high).astype(np.float32),
            "r": data["rewards"],
            "s2": data["next_observations"],
            "d": data["terminals"].astype(np.float32),
        }
        self.source_states = data.get("states")
        self.source_gap_known = task.knows_source_gap(data)
        ds, da = self.source["s"].shape[1], self.source["a"].shape[1]
        self.specs = [(f"{s.name}/{r}", s) for s in specs for r in range(replicas)]

        def make(net, key):  # each agent's networks from its own stream
            return init_from(net, self.torch_generator(f"{key}/init"))

        self.agents = nn.ModuleDict(
            {key.replace("/", "_"): make(SACAgent(ds, da, hidden), key) for key, _ in self.specs}
        )
        for agent in self.agents.values():
            agent.update_targets(1.0)
        self.flows = nn.ModuleDict(
            {
                key.replace("/", "_"): make(
                    CompositeFlow(ds, da, flow_hidden, flow_layers, euler_steps, predict), key
                )
                for key, s in self.specs
                if s.filter == "wgap"
            }
        )
        self.classifiers = nn.ModuleDict(
            {
                key.replace("/", "_"): make(DomainClassifiers(ds, da), key)
                for key, s in self.specs
                if s.filter == "darc"
            }
        )
        self.buffers = {
            key: ReplayBuffer(updates // tar_env_interact_interval + warmup + 1) for key, _ in self.specs
        }
        self.gaps: dict[str, np.ndarray] = {}  # cached score of every source transition
        self.step, self.source_fitted = 0, False
        self.runners: dict[str, EnvRunner] = {}
        self.automatic_optimization = False

    # ---- Lightning plumbing -----------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if not self.runners:
            self.runners = {
                key: EnvRunner(self.task.make_env("target"), self.rng(f"{key}/env")) for key, _ in self.specs
            }

    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(self.hparams.updates), batch_size=None)

    def configure_optimizers(self):
        return torch.optim.Adam(
            [p for a in self.agents.values() for p in a.parameters() if p.requires_grad], lr=self.hparams.lr
        )

    def tensor(self, x) -> torch.Tensor:
        """float32 tensor on the module's device (numpy state stays on the CPU)."""
        return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self.device)

    def net(self, modules: nn.ModuleDict, key: str):
        return modules[key.replace("/", "_")]

    # ---- data collection ---------------------------------------------------------------------
    def collect(self, key: str, random: bool) -> None:
        agent, runner, rng = self.net(self.agents, key), self.runners[key], self.rng(f"{key}/env")
        if random:
            action = rng.uniform(-1, 1, self.source["a"].shape[1])
        else:
            with torch.no_grad():
                action = (
                    agent.actor(self.tensor(runner.obs[None]), self.torch_generator(f"{key}/act"))[0][0]
                    .cpu()
                    .numpy()
                )
        row = runner.step(action, rng, self.step)
        row["gap"] = np.float32(self.row_gap(key, row))
        self.buffers[key].add(**{k: np.asarray(v)[None] for k, v in row.items()})

    def row_gap(self, key: str, row: dict) -> float:
        if key not in self.gaps or key.replace("/", "_") not in self.flows:
            return 0.0
        gap, _ = self.net(self.flows, key).gap(
            self.tensor(row["s"][None]),
            self.tensor(row["a"][None]),
            self.hparams.n_samples,
            self.torch_generator(f"{key}/gap"),
        )
        return float(gap[0])

    # ---- gap machinery ------------------------------------------------------------------------
    def fit_source_flows(self) -> None:
        hp, keys = self.hparams, [k for k, s in self.specs if s.filter == "wgap"]
        if keys:
            first = self.net(self.flows, keys[0])
            first.fit_source(
                self.tensor(self.source["s"]),
                self.tensor(self.source["a"]),
                self.tensor(self.source["s2"]),
                self.torch_generator("source_flow"),
                steps=hp.source_flow_steps,
                batch=hp.flow_batch,
                lr=hp.flow_lr,
            )
            for key in keys[1:]:
                self.net(self.flows, key).source.load_state_dict(first.source.state_dict())
        self.source_fitted = True

    def refit(self, key: str, spec: AgentSpec) -> None:
        """Refit the agent's gap model from scratch on its target buffer; recache every gap."""
        hp, buf, g = self.hparams, self.buffers[key].data, self.torch_generator(f"{key}/gap")
        n = len(self.buffers[key])
        tar = [self.tensor(buf[k][:n]) for k in ("s", "a", "s2")]
        src = [self.tensor(self.source[k]) for k in ("s", "a", "s2")]
        if spec.filter == "wgap":
            flow = self.net(self.flows, key)
            flow.fit_target(
                *tar,
                g,
                coupling=hp.coupling,
                eta=hp.eta,
                steps=hp.adaptation_flow_steps,
                batch=hp.flow_batch,
                lr=hp.flow_lr,
            )
            self.gaps[key] = flow.gap(src[0], src[1], hp.n_samples, g)[0].astype(np.float32)
            buf["gap"][:n] = flow.gap(tar[0], tar[1], hp.n_samples, g)[0]
        else:
            darc = self.net(self.classifiers, key)
            darc.fit(src, tar, hp.darc_steps, hp.batch_size, hp.flow_lr, g)
            self.gaps[key] = (-darc.reward_correction(*src)).astype(np.float32)

    # ---- one gradient step per agent ---------------------------------------------------------
    def batch(self, key: str, spec: AgentSpec) -> dict:
        hp, rng = self.hparams, self.rng(f"{key}/batch")
        tar = self.buffers[key].sample(hp.batch_size, rng)
        gated = key in self.gaps and self.step >= hp.start_gate
        bonus = spec.bonus if gated and spec.filter == "wgap" else 0.0
        rows = {k: tar[k] for k in ("s", "a", "r", "s2", "d")}
        rows["r"] = rows["r"] + bonus * tar["gap"]
        bc = np.zeros(len(rows["s"]), bool)
        if spec.data == "all":
            idx = rng.integers(0, len(self.source["s"]), hp.batch_size)
            if gated:
                score = self.gaps[key][idx]
                idx = idx[score <= np.quantile(score, hp.filter_percent)]  # keep the lowest filter_percent
            src = {k: self.source[k][idx] for k in rows}
            if bonus:
                src["r"] = src["r"] + bonus * self.gaps[key][idx]
            rows = {k: np.concatenate([src[k], rows[k]]) for k in rows}
            bc = np.concatenate([np.ones(len(idx), bool), bc])
        out = {k: self.tensor(v) for k, v in rows.items()}
        out["bc"] = torch.as_tensor(bc, device=self.device)
        return out

    def training_step(self, step, batch_idx):
        hp = self.hparams
        if self.step >= hp.updates:  # a resumed epoch may replay finished steps
            return
        if not self.source_fitted:
            self.fit_source_flows()
        for key, spec in self.specs:
            while len(self.buffers[key]) < hp.warmup:
                self.collect(key, random=True)
            if self.step % hp.tar_env_interact_interval == 0:
                self.collect(key, random=len(self.buffers[key]) < hp.warmup)
            if (
                spec.filter != "none"
                and self.step >= hp.start_gate
                and (self.step - hp.start_gate) % hp.refit_every == 0
            ):
                self.refit(key, spec)
        opt = self.optimizers()
        opt.zero_grad()
        total, logs = 0.0, {}
        for key, spec in self.specs:
            out = self.net(self.agents, key).loss(
                self.batch(key, spec),
                hp.gamma,
                hp.alpha,
                hp.bc_weight if spec.data == "all" else None,
                self.torch_generator(f"{key}/update"),
            )
            total = total + out["loss"]
            logs[f"train/{key}_critic"] = out["critic"].detach()
        self.manual_backward(total)
        opt.step()
        for agent in self.agents.values():
            agent.update_targets(hp.tau)
        self.step += 1
        self.log_dict(logs, prog_bar=False)

    # ---- exact resume ------------------------------------------------------------------------
    def learner_state(self) -> dict:
        return {
            "step": self.step,
            "source_fitted": self.source_fitted,
            "gaps": dict(self.gaps),
            "buffers": {k: b.state_dict() for k, b in self.buffers.items()},
            "runners": {k: r.state_dict() for k, r in self.runners.items()},
        }

    def load_learner_state(self, state: dict) -> None:
        self.step, self.source_fitted = int(state["step"]), bool(state["source_fitted"])
        self.gaps = {k: np.asarray(v) for k, v in state["gaps"].items()}
        for k, b in state["buffers"].items():
            self.buffers[k].load_state_dict(b)
        self.setup("fit")
        for k, r in state["runners"].items():
            self.runners[k].load_state_dict(r)

    # ---- evaluation ----------------------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self.diagnostics = {}
        with torch.inference_mode(False), torch.enable_grad():
            if not self.source_fitted:
                self.fit_source_flows()
            for key, spec in self.specs:
                if spec.filter != "none" and key not in self.gaps:
                    self.refit(key, spec)
        self.diagnostics = self.gap_diagnostics()

    def gap_diagnostics(self) -> dict[str, float]:
        """Each agent's cached source gaps and collected target data against the true gap."""
        hp, n = self.hparams, len(self.source["s"])
        rows = np.random.default_rng(0).choice(n, min(n, hp.diagnostic_rows), replace=False)
        states = None if self.source_states is None else self.source_states[rows]
        if self.source_gap_known:
            true = self.task.true_gap(self.source["s"][rows], self.source["a"][rows] * self.high, states)
        collected = {}
        for key, _ in self.specs:
            buf, m = self.buffers[key].data, len(self.buffers[key])
            live = slice(min(hp.warmup, m - 1), m)  # the agent's own choices, not the random warmup
            x = buf["x"][live]  # simulator states (MuJoCo's true gap steps both simulators from them)
            collected[key] = self.task.true_gap(buf["s"][live], buf["a"][live] * self.high, x)
        top_quartile = np.quantile(np.concatenate(list(collected.values())), 0.75)  # pooled over agents
        out = {}
        for key, _ in self.specs:
            out[f"{key}/top_quartile_share"] = float(np.mean(collected[key] >= top_quartile))
            if key in self.gaps and self.source_gap_known:
                est = self.gaps[key][rows]
                scores = filter_scores(est, true, hp.filter_percent)
                out |= {
                    f"{key}/gap_spearman": stats.spearmanr(est, true)[0],
                    f"{key}/gap_pearson": stats.pearsonr(est, true)[0],
                    f"{key}/filter_precision": scores["precision"],
                    f"{key}/dropped_over_kept": scores["dropped_over_kept"],
                }
        return out

    def test_step(self, batch, batch_idx):
        index, seed = batch
        env = self.task.make_env("target")
        returns = {}
        for key, _ in self.specs:
            actor = self.net(self.agents, key).actor
            returns[f"{key}/return"] = evaluate(
                env, lambda o, actor=actor: actor(self.tensor(o), deterministic=True)[0].cpu().numpy(), seed
            )
        self.record(index, **returns, **self.diagnostics)

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        names = list(dict.fromkeys(spec.name for _, spec in self.specs))
        out, per_agent = {"instances": len(rows["index"])}, {}
        fields = sorted(
            {k.split("/", 2)[2] for k in rows if k.count("/") == 2} - {"return"}
        )  # per-agent scalars
        for name in names:
            keys = [key for key, spec in self.specs if spec.name == name]
            per_agent[name] = np.array([rows[f"{key}/return"].mean() for key in keys])  # [replicas]
            out[f"return/{name}_mean"], out[f"return/{name}_std"] = mean_std(per_agent[name])
            for field in fields:
                values = [rows[f"{key}/{field}"][0] for key in keys if f"{key}/{field}" in rows]
                if values:
                    out[f"{field}/{name}_mean"], out[f"{field}/{name}_std"] = mean_std(values)
                    out[f"{field}/{name}_min"] = float(np.min(values))
        for a in names:
            for b in names:
                if a != b:
                    out[f"return/{a}_minus_{b}"] = float(np.mean(per_agent[a] - per_agent[b]))
                    if f"top_quartile_share/{a}_mean" in out:
                        out[f"top_quartile_share/{a}_minus_{b}"] = (
                            out[f"top_quartile_share/{a}_mean"] - out[f"top_quartile_share/{b}_mean"]
                        )
        self.plot_curves()
        return out

    def plot_curves(self) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for i, (key, _) in enumerate(self.specs):
            done = np.asarray(self.runners[key].finished).reshape(-1, 2)
            if len(done):
                ax.plot(done[:, 0], done[:, 1], color=f"C{i % 10}", label=key, lw=1)
        ax.set(
            xlabel="gradient step", ylabel="target episode return (training)", title="CompFlow vs baselines"
        )
        ax.legend(fontsize=6)
        self.save_figure(fig, "return_curves")


class SAC(ShiftedDynamicsLearner):
    """SAC on target data only."""

    fixed_agents = ({"name": "sac", "data": "target"},)


class BCSAC(ShiftedDynamicsLearner):
    """BC-SAC on all source data plus target data."""

    fixed_agents = ({"name": "bc_sac", "data": "all"},)


class CompFlow(ShiftedDynamicsLearner):
    """BC-SAC + W-gap filter on source batches + optimistic gap bonus (lambda = 0.1)."""

    fixed_agents = ({"name": "compflow", "data": "all", "filter": "wgap", "bonus": 0.1},)


class DARCFilter(ShiftedDynamicsLearner):
    """BC-SAC + DARC-classifier filter on source batches (DARC/H2O-like baseline)."""

    fixed_agents = ({"name": "darc_filter", "data": "all", "filter": "darc"},)
