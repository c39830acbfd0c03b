"""Policy-to-Language (Yang et al., arXiv:2502.12530): PPO explainers on flow-matching rewards.

Per replica (task instance) the learner trains, in one fit loop:

1. ``sft_steps`` of supervised pre-training (``sft.py``): the SFT explainer, then frozen as the
   KL reference and as the "LLM" whose last layer the flow reads (``policy.TinyExplainer``);
2. ``ppo_steps`` of PPO (``ppo.py``), one explainer per arm, each starting from the SFT weights:

   * ``flow_dense``  per-sentence rewards r_j = p_hat_j[a*] - p_hat_{j-1}[a*] from the flow;
   * ``flow_sparse`` the same total reward on the last sentence (ablation);
   * ``proxy``       the same dense rewards from the proxies' p directly (ablation w/o Flow).

   Flow arms first fit ``flow_warmup`` steps on proxy judgments of ``warmup_batches`` batches of
   SFT explanations, then alternate: every ``flow_every`` PPO steps the current explanations'
   prefixes are judged by the training proxies (``proxies``: noisy_rule, minilm, smollm2, gemma3),
   the positive ones (argmax = a*, ``rejection``) join the arm's replay buffer and the flow (``flow.py``,
   ``conditioning``) takes ``flow_steps`` rectified-flow steps on it.

Evaluation (``test_step``, one replica each) samples ``eval_samples`` explanations per state from
the SFT explainer and every arm and scores them with the held-out evaluator (the skeptical reader,
never a training proxy), the training proxies, and the context alone. Learning curves of both
accuracies are taken every ``eval_every`` PPO steps.

[reconstruction] the PPO details (GAE, clipping, KL to SFT, entropy bonus), p_hat as the mean of
``reward_samples`` flow samples, the Gaussian flow source N(1/|A|, (sigma_factor sigma_r)^2) and
common random numbers for the flow's p_hat of one explanation's prefixes are ours;
``reward``, ``conditioning``, ``rejection``, ``common_noise`` and ``arms`` are the pluggable choices.

Manual optimisation: one Adam per role (SFT models, PPO explainers, flows); the per-replica and
per-arm losses are summed, so each network sees only its own gradient. DDP: data-parallel
actors -- every rank samples its own rollouts (streams seeded by rank) and the gradients are
all-reduced; flow buffers stay per rank; evaluation shards the replicas.
"""

from __future__ import annotations

import copy
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from scipy.stats import spearmanr
from torch import nn
from torch.utils.data import DataLoader

from experiments.explainer.grammar import PAD, context_tokens
from experiments.explainer.judges import JUDGES, Query, stable_hash
from experiments.explainer.readers import CredulousReader, accuracy
from modules.base import AtlasModule
from modules.buffers import ReplayBuffer
from modules.explainer.flow import CrossAttentionVelocity, PooledVelocity, flow_probs, init_
from modules.explainer.policy import TinyExplainer
from modules.explainer.ppo import gae, ppo_loss
from modules.explainer.rewards import segment, sentence_rewards, token_rewards
from modules.explainer.sft import PROMPT, sft_batch, sft_loss
from modules.flow_matching import cfm_loss
from modules.llm import LLM_MODELS
from modules.stats import mean_std

Arm = Literal["flow_dense", "flow_sparse", "proxy"]
Fraction = Annotated[float, Field(ge=0, le=1)]


class Rollout:
    """A batch of explanations: states, token ids, decoded words and sentence ends."""

    def __init__(self, env, states: np.ndarray, tokens: torch.Tensor):
        self.states, self.tokens = states, tokens  # [B], [B, PROMPT + L]
        self.actions = np.array([env.policy[s] for s in states])
        decoded = [segment(row[PROMPT:].tolist()) for row in tokens]
        self.words, self.ends = [w for w, _ in decoded], [e for _, e in decoded]
        self.mask = torch.zeros(len(states), tokens.shape[1] - PROMPT)  # generated tokens incl. <eos>
        for b, e in enumerate(self.ends):
            self.mask[b, : min(e[-1] + 2, self.mask.shape[1])] = 1.0

    def prefixes(self) -> tuple[torch.Tensor, list[Query], list[int]]:
        """Every prefix y_{1:j}, j = 0..J, of every explanation: right-padded tokens [N, T], their
        queries, and the explanation each belongs to."""
        rows, queries, owner = [], [], []
        for b, (words, ends) in enumerate(zip(self.words, self.ends)):
            for j in range(len(ends) + 1):
                cut = 0 if j == 0 else ends[j - 1] + 1
                row = self.tokens[b, : PROMPT + cut]
                rows.append(torch.cat([row, torch.full((self.tokens.shape[1] - len(row),), PAD)]))
                queries.append(Query(int(self.states[b]), tuple(words[:cut])))
                owner.append(b)
        return torch.stack(rows), queries, owner


class ExplainerPPO(AtlasModule):
    needs = "policy_explanation"
    models = ("none", *LLM_MODELS)
    stages = ("fit", "test")

    def __init__(
        self,
        task,
        model=None,
        arms: Annotated[list[Arm], Field(min_length=1)] = ("flow_dense", "flow_sparse", "proxy"),
        proxies: Annotated[list[Literal[JUDGES]], Field(min_length=1)] = ("noisy_rule",),
        conditioning: Literal["attention", "pooled"] = "attention",
        reward: Literal["probability", "logit"] = "probability",
        rejection: bool = True,
        sft_steps: PositiveInt = 150,
        ppo_steps: PositiveInt = 200,
        batch_size: PositiveInt = 32,
        length: PositiveInt = 15,
        sft_lr: PositiveFloat = 3e-3,
        lr: PositiveFloat = 1e-3,
        ppo_epochs: PositiveInt = 2,
        clip: PositiveFloat = 0.2,
        beta: NonNegativeFloat = 0.05,
        gae_lambda: Fraction = 0.95,
        value_coef: NonNegativeFloat = 0.5,
        entropy_coef: NonNegativeFloat = 0.01,
        flow_every: PositiveInt = 5,
        flow_warmup: NonNegativeInt = 1000,
        warmup_batches: PositiveInt = 8,
        flow_steps: PositiveInt = 50,
        flow_batch: PositiveInt = 128,
        flow_lr: PositiveFloat = 1e-3,
        buffer_size: PositiveInt = 4096,
        sigma_factor: PositiveFloat = 1.0,
        reward_samples: PositiveInt = 8,
        euler_steps: PositiveInt = 8,
        flow_tokens: PositiveInt = 4,
        flow_hidden: PositiveInt = 64,
        d_model: PositiveInt = 32,
        eval_every: PositiveInt = 20,
        eval_samples: PositiveInt = 8,
        common_noise: bool = True,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.automatic_optimization = False
        self.env, self.R, self.A = task.env, task.replicas, len(task.env.actions)
        self.arms = list(arms)
        self.flow_arms = [a for a in self.arms if a.startswith("flow")]
        self.sft = nn.ModuleList(
            init_(TinyExplainer(d_model, max_len=PROMPT + length + 1), self.init_generator(r, "sft"))
            for r in range(self.R)
        )
        self.policies = nn.ModuleList(
            nn.ModuleDict({a: copy.deepcopy(m) for a in self.arms}) for m in self.sft
        )
        self.flows = nn.ModuleList(
            nn.ModuleDict(
                {a: init_(self.make_flow(m), self.init_generator(r, f"flow/{a}")) for a in self.flow_arms}
            )
            for r, m in enumerate(self.sft)
        )
        self.buffers = {(r, a): ReplayBuffer(buffer_size) for r in range(self.R) for a in self.flow_arms}
        self.steps_done = 0
        self.points = sorted({*range(0, ppo_steps, eval_every), ppo_steps})  # PPO steps with a curve point
        self.curves: dict[str, list[float]] = {}
        self._judges = None

    def init_generator(self, replica: int, name: str) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.task.rng(replica, f"init/{name}").integers(2**62)))

    def make_flow(self, backbone: TinyExplainer) -> nn.Module:
        hp = self.hparams
        if hp.conditioning == "pooled":
            return PooledVelocity(self.A, hp.d_model, hp.flow_hidden)
        return CrossAttentionVelocity(
            self.A, **backbone.attention(), flow_tokens=hp.flow_tokens, hidden=hp.flow_hidden
        )

    @property
    def judges(self) -> list[list]:
        """judges[r] = the training proxies of replica r (built on first use: SQLite connections)."""
        if self._judges is None:
            self._judges = [
                [self.task.judge(name, r, self.model_factory) for name in self.hparams.proxies]
                for r in range(self.R)
            ]
        return self._judges

    # ---- schedule ---------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.hparams.sft_steps + self.hparams.ppo_steps

    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(self.total_steps), batch_size=None)

    def configure_optimizers(self):
        hp = self.hparams
        return [
            torch.optim.Adam(self.sft.parameters(), lr=hp.sft_lr),
            torch.optim.Adam(self.policies.parameters(), lr=hp.lr),
            torch.optim.Adam([p for p in self.flows.parameters() if p.requires_grad], lr=hp.flow_lr),
        ]

    def training_step(self, batch, batch_idx):
        if self.steps_done >= self.total_steps:  # a resumed epoch replays no step twice
            return
        hp, step = self.hparams, self.steps_done
        if step < hp.sft_steps:
            self.sft_step()
        else:
            k = step - hp.sft_steps
            if k == 0:
                self.start_ppo()
            if k in self.points:
                self.record_curves(k)
            if k == 0:
                self.warm_up_flows()
            self.ppo_step(refresh=k % hp.flow_every == 0)
            if k + 1 == hp.ppo_steps:
                self.record_curves(k + 1)
        self.steps_done += 1

    def step(self, index: int, loss: torch.Tensor) -> None:
        optimizer = self.optimizers()[index]
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()

    # ---- 1. SFT -------------------------------------------------------------------------------
    def sft_step(self) -> None:
        hp, task = self.hparams, self.task
        losses = [
            sft_loss(
                m,
                sft_batch(
                    self.env,
                    hp.batch_size,
                    hp.length,
                    task.p_accurate,
                    task.max_sentences,
                    self.rng(f"sft/{r}"),
                ).to(self.device),
            )
            for r, m in enumerate(self.sft)
        ]
        self.step(0, torch.stack(losses).sum())
        self.log("train/sft_loss", torch.stack(losses).mean().detach(), prog_bar=True)

    def start_ppo(self) -> None:
        """Freeze the SFT explainers; every arm starts from them; flows read their last layer."""
        for r, m in enumerate(self.sft):
            m.requires_grad_(False)
            for a in self.arms:
                self.policies[r][a].load_state_dict(m.state_dict())
            if self.hparams.conditioning == "attention":
                for a in self.flow_arms:
                    for name, w in m.attention().items():
                        if isinstance(w, torch.Tensor):
                            getattr(self.flows[r][a], name).copy_(w)

    # ---- 2. PPO with flow (or proxy) rewards ---------------------------------------------------
    def rollout(self, policy: TinyExplainer, n: int, rng: np.random.Generator, g: torch.Generator) -> Rollout:
        states = np.array(self.env.states)[rng.integers(len(self.env.states), size=n)]
        prompts = torch.tensor([context_tokens(self.env, int(s)) for s in states], device=self.device)
        return Rollout(self.env, states, policy.sample(prompts, self.hparams.length, g).cpu())

    def judge(self, r: int, queries: list[Query], rng: np.random.Generator) -> np.ndarray:
        """Every training proxy's p for every query (fresh noise draws): [K, N, |A|]."""
        queries = [
            Query(q.state, q.words, int(d)) for q, d in zip(queries, rng.integers(2**31, size=len(queries)))
        ]
        return np.stack([judge.probs(queries) for judge in self.judges[r]])

    def condition(self, r: int, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(H, mask): the frozen SFT explainer's last-layer input over right-padded ``tokens``."""
        tokens = tokens.to(self.device)
        return self.sft[r].last_layer(tokens), tokens != PAD

    def p_hat(
        self, r: int, arm: str, roll: Rollout, rng: np.random.Generator
    ) -> tuple[np.ndarray, list[int]]:
        """p_hat[a*] of every prefix of every explanation, and their owners."""
        tokens, queries, owner = roll.prefixes()
        a_star = roll.actions[owner]
        if arm == "proxy":
            p = self.judge(r, queries, rng).mean(0)
        else:
            with torch.no_grad():
                p = (
                    flow_probs(
                        self.flows[r][arm],
                        self.condition(r, tokens),
                        len(tokens),
                        self.A,
                        self.hparams.sigma_factor * self.task.sigma_r,
                        self.hparams.reward_samples,
                        self.hparams.euler_steps,
                        self.torch_generator(f"reward/{r}/{arm}"),
                        np.asarray(owner) if self.hparams.common_noise else None,
                    )
                    .cpu()
                    .numpy()
                )
        return p[np.arange(len(p)), a_star], owner

    def refresh_flow(self, r: int, arm: str, roll: Rollout, steps: int) -> None:
        """Judge the rollout's prefixes by the proxies; keep the positive ones; fit the flow."""
        hp = self.hparams
        tokens, queries, owner = roll.prefixes()
        probs = self.judge(r, queries, self.rng(f"judge/{r}/{arm}"))  # [K, N, |A|]
        a_star = roll.actions[owner]
        for p in probs:
            keep = p.argmax(1) == a_star if hp.rejection else np.ones(len(p), dtype=bool)
            if keep.any():
                self.buffers[r, arm].add(tokens=tokens.numpy()[keep], z1=p[keep].astype(np.float32))
        if len(self.buffers[r, arm]) == 0:
            return
        flow, rng, g = (
            self.flows[r][arm],
            self.rng(f"flow/{r}/{arm}"),
            self.torch_generator(f"flow/{r}/{arm}"),
        )
        buffer, sigma = self.buffers[r, arm], hp.sigma_factor * self.task.sigma_r
        H, mask = self.condition(r, torch.as_tensor(buffer.data["tokens"][: len(buffer)]))  # once per refresh
        z1_all = torch.as_tensor(buffer.data["z1"][: len(buffer)], device=self.device)
        for _ in range(steps):
            i = torch.as_tensor(rng.integers(0, len(buffer), hp.flow_batch), device=self.device)
            z0 = 1.0 / self.A + sigma * torch.randn(len(i), self.A, generator=g).to(self.device)
            self.step(2, cfm_loss(flow, z0, z1_all[i], (H[i], mask[i]), generator=g))

    def warm_up_flows(self) -> None:
        """Before the first PPO step: fit each flow on ``warmup_batches`` batches of SFT explanations."""
        hp = self.hparams
        for r in range(self.R):
            for arm in self.flow_arms:
                name = f"warmup/{r}/{arm}"
                n = hp.warmup_batches * hp.batch_size
                roll = self.rollout(self.sft[r], n, self.rng(name), self.torch_generator(name))
                self.refresh_flow(r, arm, roll, hp.flow_warmup)

    def ppo_step(self, refresh: bool) -> None:
        hp = self.hparams
        for r in range(self.R):
            for arm in self.arms:
                name = f"{r}/{arm}"
                roll = self.rollout(
                    self.policies[r][arm],
                    hp.batch_size,
                    self.rng(f"rollout/{name}"),
                    self.torch_generator(f"rollout/{name}"),
                )
                if refresh and arm in self.flow_arms:
                    self.refresh_flow(r, arm, roll, hp.flow_steps)
                p_true, owner = self.p_hat(r, arm, roll, self.rng(f"reward/{name}"))
                owner = np.asarray(owner)
                rewards = [sentence_rewards(p_true[owner == b], hp.reward) for b in range(len(roll.states))]
                task_reward = token_rewards(
                    rewards, roll.ends, roll.mask.shape[1], dense=arm != "flow_sparse"
                )
                self.ppo_update(r, arm, roll, task_reward)
                self.log(f"train/reward_{arm}", float(np.mean([x.sum() for x in rewards])) / self.R)

    def logprobs(self, policy: TinyExplainer, tokens: torch.Tensor):
        """log pi of each generated token, its entropy and the value before it: three [B, L]."""
        logits, values = policy(tokens[:, :-1].to(self.device))
        logits, values = logits[:, PROMPT - 1 :], values[:, PROMPT - 1 :]
        logp_all = logits.log_softmax(-1)
        target = tokens[:, PROMPT:].to(self.device)
        logp = logp_all.gather(-1, target[..., None])[..., 0]
        entropy = -(logp_all.exp() * logp_all.nan_to_num(neginf=0.0)).sum(-1)
        return logp.nan_to_num(neginf=0.0), entropy, values

    def ppo_update(self, r: int, arm: str, roll: Rollout, task_reward: torch.Tensor) -> None:
        hp, policy = self.hparams, self.policies[r][arm]
        mask = roll.mask.to(self.device)
        with torch.no_grad():
            old_logp, _, old_values = self.logprobs(policy, roll.tokens)
            ref_logp, _, _ = self.logprobs(self.sft[r], roll.tokens)
            rewards = task_reward.to(self.device) - hp.beta * (old_logp - ref_logp) * mask
            advantages, returns = gae(rewards.cpu(), old_values.cpu(), mask.cpu(), 1.0, hp.gae_lambda)
            advantages, returns = advantages.to(self.device), returns.to(self.device)
            live = advantages[mask.bool()]
            advantages = (advantages - live.mean()) / (live.std() + 1e-8) * mask
        for _ in range(hp.ppo_epochs):
            logp, entropy, values = self.logprobs(policy, roll.tokens)
            loss = ppo_loss(
                logp,
                old_logp,
                advantages,
                values,
                returns,
                entropy,
                mask,
                hp.clip,
                hp.value_coef,
                hp.entropy_coef,
            )
            self.step(1, loss)

    # ---- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, r: int, policy: TinyExplainer) -> dict[str, float]:
        """Held-out, proxy and oracle accuracy of ``policy``'s explanations (fixed eval streams)."""
        n = self.hparams.eval_samples
        states = np.repeat(self.env.states, n)
        g = torch.Generator().manual_seed(int(self.task.rng(r, "eval").integers(2**62)))
        prompts = torch.tensor([context_tokens(self.env, int(s)) for s in states], device=self.device)
        roll = Rollout(self.env, states, policy.sample(prompts, self.hparams.length, g).cpu())
        queries = [
            Query(int(s), tuple(w), stable_hash("eval", i))
            for i, (s, w) in enumerate(zip(states, roll.words))
        ]
        proxy = np.stack([judge.probs(queries) for judge in self.judges[r]]).mean(0)
        evaluator, oracle = self.task.evaluator, CredulousReader()
        out = {"heldout": [], "proxy": [], "oracle": [], "context": []}
        for s, a, w, p in zip(states, roll.actions, roll.words, proxy):
            facts = self.env.facts(int(s))
            out["heldout"].append(accuracy(evaluator.probs(facts, w), a))
            out["oracle"].append(accuracy(oracle.probs(facts, w), a))
            out["proxy"].append(accuracy(p, a))
            out["context"].append(accuracy(evaluator.probs(facts, []), a))
        return {k: float(np.mean(v)) for k, v in out.items()}

    def record_curves(self, k: int) -> None:
        for arm in self.arms:
            for r in range(self.R):
                acc = self.evaluate(r, self.policies[r][arm])
                for key in ("heldout", "proxy"):
                    self.curves.setdefault(f"{r}/{arm}/{key}", []).append(acc[key])
            self.log(
                f"train/heldout_{arm}",
                float(np.mean([self.curves[f"{r}/{arm}/heldout"][-1] for r in range(self.R)])),
            )

    def curve(self, r: int, arm: str, key: str) -> np.ndarray:
        """The curve at ``self.points`` (NaN where training has not reached a point yet)."""
        got = self.curves.get(f"{r}/{arm}/{key}", [])
        return np.array(got + [np.nan] * (len(self.points) - len(got)))

    def test_step(self, batch, batch_idx):
        index, _ = batch
        values = {f"{k}_sft": v for k, v in self.evaluate(index, self.sft[index]).items()}
        for arm in self.arms:
            values.update(
                {f"{k}_{arm}": v for k, v in self.evaluate(index, self.policies[index][arm]).items()}
            )
            values[f"curve_{arm}"] = self.curve(index, arm, "heldout")
            values[f"proxy_curve_{arm}"] = self.curve(index, arm, "proxy")
        if "flow_dense" in self.arms:
            values["nonzero_rewards"], values["reward_spearman"] = self.reward_quality(index)
        self.record(index, **values)

    @torch.no_grad()
    def reward_quality(self, r: int) -> tuple[float, float]:
        """On 64 fresh explanations of the trained flow_dense explainer: the fraction of sentences whose
        dense flow reward is non-zero (|r_j| > 1e-6), and the Spearman correlation of the flow's r_j
        with the noise-free oracle reader's change of p(a*) (a diagnostic of the reward model)."""
        g = torch.Generator().manual_seed(int(self.task.rng(r, "eval/rewards").integers(2**62)))
        roll = self.rollout(self.policies[r]["flow_dense"], 64, self.task.rng(r, "eval/states"), g)
        p_true, owner = self.p_hat(r, "flow_dense", roll, self.task.rng(r, "eval/judge"))
        _, queries, _ = roll.prefixes()
        oracle = CredulousReader()
        p_oracle = np.array(
            [
                oracle.probs(self.env.facts(q.state), list(q.words))[a]
                for q, a in zip(queries, roll.actions[owner])
            ]
        )
        owner = np.asarray(owner)
        flow_r, oracle_r = (
            np.concatenate([sentence_rewards(p[owner == b], "probability") for b in range(len(roll.states))])
            for p in (p_true, p_oracle)
        )
        return float(np.mean(np.abs(flow_r) > 1e-6)), float(spearmanr(flow_r, oracle_r).statistic)

    def summarize(self, rows):
        out = {"explainer/replicas": float(len(rows["index"]))}
        for name in ["sft", *self.arms]:
            for key in ("heldout", "proxy", "oracle"):
                out[f"explainer/{key}_{name}_mean"], out[f"explainer/{key}_{name}_std"] = mean_std(
                    rows[f"{key}_{name}"]
                )
        out["explainer/context_only_mean"] = float(rows["context_sft"].mean())
        best = "flow_dense" if "flow_dense" in self.arms else self.arms[0]
        acc = {name: rows[f"heldout_{name}"] for name in ["sft", *self.arms]}
        out[f"explainer/{best}_minus_sft_mean"] = float((acc[best] - acc["sft"]).mean())
        out[f"explainer/{best}_minus_context_mean"] = float((acc[best] - rows["context_sft"]).mean())
        if "proxy" in self.arms and best != "proxy":
            out[f"explainer/{best}_minus_proxy_mean"] = float((acc[best] - acc["proxy"]).mean())
            out[f"explainer/{best}_proxy_sd_gap"] = float(
                (acc[best].mean() - acc[best].std()) - (acc["proxy"].mean() + acc["proxy"].std())
            )
        if {"flow_dense", "flow_sparse"} <= set(self.arms):
            out.update(self.dense_vs_sparse(rows))
        # reward hacking: the proxy-minus-held-out gap, from the SFT start to the end of training
        gap_start = rows["proxy_sft"] - rows["heldout_sft"]
        gap_end = rows[f"proxy_{best}"] - rows[f"heldout_{best}"]
        out["explainer/gap_widening"] = float((gap_end - gap_start).mean())
        moves = (rows[f"proxy_{best}"] - rows["proxy_sft"]) * (rows[f"heldout_{best}"] - rows["heldout_sft"])
        out["explainer/same_direction_fraction"] = float(np.mean(moves > 0))
        if "nonzero_rewards" in rows:
            out["explainer/nonzero_reward_fraction"] = float(rows["nonzero_rewards"].mean())
            out["explainer/reward_spearman_flow_dense"] = float(rows["reward_spearman"].mean())
        self.plot_curves(rows)
        return out

    def dense_vs_sparse(self, rows) -> dict[str, float]:
        """Dense - sparse final accuracy, and the fraction of PPO steps dense needs to reach sparse's
        final accuracy (mean curves over replicas; inf if never, or if sparse did not improve on its
        start: reaching a level the SFT explainer already had is no speed-up)."""
        dense, sparse = rows["curve_flow_dense"].mean(0), rows["curve_flow_sparse"].mean(0)
        diff = float((rows["heldout_flow_dense"] - rows["heldout_flow_sparse"]).mean())
        improved = np.isfinite(sparse[-1]) and sparse[-1] > sparse[0]
        reached = np.flatnonzero(dense >= sparse[-1] - 1e-12) if improved else []
        ratio = self.points[reached[0]] / self.hparams.ppo_steps if len(reached) else np.inf
        return {
            "explainer/dense_minus_sparse_mean": diff,
            "explainer/dense_steps_to_sparse_final": float(ratio),
            "explainer/dense_criterion": float(diff >= 0.02 or ratio <= 0.6),
        }

    def plot_curves(self, rows) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        for arm in self.arms:
            mean = rows[f"curve_{arm}"].mean(0)
            ax.plot(self.points, mean, "o-", ms=3, label=f"{arm} (held-out)")
            ax.plot(self.points, rows[f"proxy_curve_{arm}"].mean(0), ":", alpha=0.6, label=f"{arm} (proxy)")
        ax.axhline(rows["heldout_sft"].mean(), color="k", ls="--", label="SFT")
        ax.axhline(rows["context_sft"].mean(), color="grey", ls="-.", label="context alone")
        ax.set(
            xlabel="PPO step", ylabel="decision-inference accuracy", title="learning curves per reward type"
        )
        ax.legend(fontsize=6)
        self.save_figure(fig, "learning_curves")

    # ---- exact resume ---------------------------------------------------------------------------
    def learner_state(self) -> dict:
        return {
            "steps_done": self.steps_done,
            "curves": self.curves,
            "buffers": {f"{r}/{a}": b.state_dict() for (r, a), b in self.buffers.items()},
        }

    def load_learner_state(self, state: dict) -> None:
        self.steps_done = int(state["steps_done"])
        self.curves = {k: [float(x) for x in v] for k, v in state["curves"].items()}
        for (r, a), b in self.buffers.items():
            b.load_state_dict(state["buffers"][f"{r}/{a}"])
