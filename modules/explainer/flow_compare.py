"""Claim 2 of Policy-to-Language (Yang et al., arXiv:2502.12530, ablation table): the
language-conditioned (cross-attention) flow models the proxies' decision distributions better than
the w/o-Attn (pooled hidden states) and MLP-on-MiniLM flows, and its per-sentence rewards follow
the oracle's.

Per replica (instance): SFT a tiny explainer (the frozen "LLM"), sample ``explanations`` from it,
split them 80/20 into training and held-out explanations, and judge every prefix ``draws`` times by
each training proxy. Each conditioning (``flow.make_velocity`` choices) trains a flow on the
training prefixes with the same data, steps and source. On held-out prefixes: the energy distance
between flow samples and the proxies' judgments, and the Spearman correlation of the attention
flow's r_j with the oracle's change of p(a*) (the noise-free credulous reader; not a proxy).

Solver: one instance per ``test_step`` (training runs inside it); DDP shards the replicas.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt
from scipy.stats import spearmanr

from experiments.explainer.grammar import PAD, context_tokens
from experiments.explainer.judges import JUDGES, Query, text
from experiments.explainer.readers import CredulousReader
from modules.base import AtlasModule
from modules.explainer.flow import (
    CrossAttentionVelocity,
    EmbeddingVelocity,
    PooledVelocity,
    flow_probs,
    init_,
    repeat_cond,
    to_simplex,
)
from modules.explainer.learner import Rollout
from modules.explainer.policy import TinyExplainer
from modules.explainer.rewards import sentence_rewards
from modules.explainer.sft import PROMPT, sft_batch, sft_loss
from modules.flow_matching import cfm_loss, euler_sample
from modules.llm import LLM_MODELS
from modules.stats import mean_std

Conditioning = Literal["attention", "pooled", "minilm"]


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| between sample clouds [n, d] and [m, d] (V-statistic)."""
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


class FlowComparison(AtlasModule):
    needs = "policy_explanation"
    models = (*LLM_MODELS, "none")  # an LLM group first: the MiniLM / LLM judges need one

    def __init__(
        self,
        task,
        model=None,
        conditionings: Annotated[list[Conditioning], Field(min_length=2)] = ("attention", "pooled", "minilm"),
        proxies: Annotated[list[Literal[JUDGES]], Field(min_length=1)] = ("noisy_rule",),
        sft_steps: PositiveInt = 150,
        sft_lr: PositiveFloat = 3e-3,
        length: PositiveInt = 15,
        explanations: PositiveInt = 400,
        draws: PositiveInt = 8,
        flow_steps: PositiveInt = 1500,
        flow_batch: PositiveInt = 256,
        flow_lr: PositiveFloat = 1e-3,
        flow_tokens: PositiveInt = 4,
        flow_hidden: PositiveInt = 64,
        sigma_factor: PositiveFloat = 1.0,
        samples: PositiveInt = 32,
        euler_steps: PositiveInt = 8,
        d_model: PositiveInt = 32,
        common_noise: bool = True,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        if "minilm" in conditionings and model is None:
            raise ValueError(
                "conditioning 'minilm' needs the MiniLM encoder of an LLM model group: model=smollm2"
            )
        if conditionings[0] != "attention":
            raise ValueError(
                f"conditionings={list(conditionings)} must start with attention (the compared flow)"
            )

    def generator(self, index: int, name: str) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.task.rng(index, name).integers(2**62)))

    def sft(self, index: int) -> TinyExplainer:
        hp, task = self.hparams, self.task
        m = init_(
            TinyExplainer(hp.d_model, max_len=PROMPT + hp.length + 1), self.generator(index, "init/sft")
        )
        opt, rng = torch.optim.Adam(m.parameters(), lr=hp.sft_lr), task.rng(index, "sft")
        for _ in range(hp.sft_steps):
            loss = sft_loss(m, sft_batch(task.env, 32, hp.length, task.p_accurate, task.max_sentences, rng))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return m.requires_grad_(False)

    def conditions(self, name: str, backbone: TinyExplainer, tokens: torch.Tensor, queries: list[Query]):
        if name == "minilm":
            inputs = [f"{self.task.env.context(q.state)} {text(q.words)}" for q in queries]
            return torch.as_tensor(self.encoder.encode(inputs, normalize_embeddings=True, batch_size=128))
        return backbone.last_layer(tokens), tokens != PAD

    def make(self, name: str, backbone: TinyExplainer, g: torch.Generator):
        hp, A = self.hparams, len(self.task.env.actions)
        if name == "attention":
            v = CrossAttentionVelocity(
                A, **backbone.attention(), flow_tokens=hp.flow_tokens, hidden=hp.flow_hidden
            )
        elif name == "pooled":
            v = PooledVelocity(A, hp.d_model, hp.flow_hidden)
        else:
            v = EmbeddingVelocity(A, self.encoder.get_embedding_dimension(), hp.flow_hidden)
        return init_(v, g)

    def fit(self, v, cond, z1: torch.Tensor, sigma: float, g: torch.Generator) -> None:
        """Rectified-flow steps on (cond[i], z1[i]) pairs; cond rows are the judged prefixes."""
        hp = self.hparams
        opt = torch.optim.Adam([p for p in v.parameters() if p.requires_grad], lr=hp.flow_lr)
        for _ in range(hp.flow_steps):
            i = torch.randint(len(z1), (hp.flow_batch,), generator=g)
            c = tuple(x[i] for x in cond) if isinstance(cond, tuple) else cond[i]
            z0 = 1.0 / z1.shape[1] + sigma * torch.randn(len(i), z1.shape[1], generator=g)
            loss = cfm_loss(v, z0, z1[i], c, generator=g)
            opt.zero_grad()
            loss.backward()
            opt.step()

    @torch.inference_mode(False)
    @torch.enable_grad()
    def test_step(self, batch, batch_idx):
        """Everything of one replica; trains inside the test loop, hence outside inference mode."""
        index, _ = batch
        hp, env = self.hparams, self.task.env
        self.encoder = self.model_factory.encoder() if "minilm" in hp.conditionings else None
        backbone = self.sft(index)
        rng = self.task.rng(index, "explanations")
        states = np.array(env.states)[rng.integers(len(env.states), size=hp.explanations)]
        prompts = torch.tensor([context_tokens(env, int(s)) for s in states])
        roll = Rollout(env, states, backbone.sample(prompts, hp.length, self.generator(index, "sample")))
        tokens, queries, owner = roll.prefixes()
        owner = np.asarray(owner)
        held = owner >= int(0.8 * hp.explanations)  # the last 20% of explanations
        judges = [self.task.judge(name, index, self.model_factory) for name in hp.proxies]
        draws = [Query(q.state, q.words, d) for d in range(hp.draws) for q in queries]  # draw-major
        z1 = torch.as_tensor(np.stack([j.probs(draws) for j in judges]), dtype=torch.float32)  # [K, D N, |A|]
        z1 = z1.view(len(judges), hp.draws, len(queries), -1).transpose(0, 2)  # [N, D, K, |A|]
        z1 = z1.reshape(len(queries), -1, z1.shape[-1])  # [N, D K, |A|]
        sigma = hp.sigma_factor * self.task.sigma_r
        train = np.flatnonzero(~held)
        energies, g = {}, self.generator(index, "flows")
        for name in hp.conditionings:
            cond = self.conditions(name, backbone, tokens, queries)
            v = self.make(name, backbone, g)
            rows = np.repeat(train, z1.shape[1])  # every judgment of a train prefix
            self.fit(
                v,
                tuple(x[rows] for x in cond) if isinstance(cond, tuple) else cond[rows],
                z1[train].reshape(-1, z1.shape[-1]),
                sigma,
                g,
            )
            test = np.flatnonzero(held)
            c_test = tuple(x[test] for x in cond) if isinstance(cond, tuple) else cond[test]
            z0 = 1.0 / z1.shape[-1] + sigma * torch.randn(hp.samples * len(test), z1.shape[-1], generator=g)
            samples = to_simplex(euler_sample(v, z0, repeat_cond(c_test, hp.samples), hp.euler_steps))
            samples = samples.view(hp.samples, len(test), -1).transpose(0, 1)  # [N_test, S, |A|]
            energies[name] = float(np.mean([energy_distance(s, z) for s, z in zip(samples, z1[test])]))
            if name == "attention":
                shared = owner[test] if hp.common_noise else None
                p = flow_probs(
                    v, c_test, len(test), z1.shape[-1], sigma, hp.samples, hp.euler_steps, g, shared
                ).numpy()
                spearman = self.reward_correlation(roll, [queries[i] for i in test], owner[test], p)
        self.record(index, spearman=spearman, **{f"energy_{k}": e for k, e in energies.items()})

    def reward_correlation(
        self, roll: Rollout, queries: list[Query], owner: np.ndarray, p: np.ndarray
    ) -> float:
        """Spearman of the flow's r_j with the oracle's Delta p(a*) over held-out sentences.

        ``queries``/``owner``/``p`` list the held-out prefixes, each explanation's j = 0..J in a row."""
        oracle, env = CredulousReader(), self.task.env
        flow_r, oracle_r = [], []
        for b in np.unique(owner):
            rows = np.flatnonzero(owner == b)
            a, facts = roll.actions[b], env.facts(int(roll.states[b]))
            p_oracle = np.array([oracle.probs(facts, list(queries[i].words))[a] for i in rows])
            flow_r.append(sentence_rewards(p[rows, a], "probability"))
            oracle_r.append(sentence_rewards(p_oracle, "probability"))
        return float(spearmanr(np.concatenate(flow_r), np.concatenate(oracle_r)).statistic)

    def summarize(self, rows):
        names = list(self.hparams.conditionings)
        out = {"explainer/replicas": float(len(rows["index"]))}
        for name in names:
            out[f"explainer/energy_{name}_mean"], out[f"explainer/energy_{name}_std"] = mean_std(
                rows[f"energy_{name}"]
            )
        for name in names[1:]:
            out[f"explainer/energy_ratio_attention_vs_{name}"] = float(
                (rows["energy_attention"] / rows[f"energy_{name}"]).mean()
            )
        out["explainer/reward_spearman_mean"], out["explainer/reward_spearman_std"] = mean_std(
            rows["spearman"]
        )
        out["explainer/reward_spearman_min"] = float(rows["spearman"].min())
        return out
