"""Policy-to-Language (Yang et al., arXiv:2502.12530), the LLM setting at smoke scale: a SmolLM2 +
LoRA explainer trained by PPO over sentence-segmented generations on flow-matching rewards.

One explainer (``llm_policy``: LoRA on q/v of the ``model=`` LLM, a copy; the cached base stays
untouched) and one rectified-flow reward model (``flow.CrossAttentionVelocity``: flow tokens that
cross-attend to the frozen LLM's last-layer input through that layer's own W_Q / W_K / W_V, GQA
expanded; only phi_Emb / phi_Proj train). Step 0 fits the flow for ``flow_warmup`` steps on proxy
judgments of ``warmup_batches`` batches of base-model explanations; then every PPO step samples
``batch_size`` explanations, every ``flow_every`` steps refreshes the flow on the training proxies'
positive judgments (argmax = a*) of their prefixes, and takes ``ppo_epochs`` clipped PPO epochs on

    r_j = p_hat_j[a*] - p_hat_{j-1}[a*]      on the last token of sentence j (p_hat: mean flow sample)
    - beta * (log pi - log pi_ref)           on every token (KL to the base model, adapters off)

Evaluation (``test_step``): greedy explanations of the base model (adapters off: "before") and of
the trained explainer ("after") for the instance's share of the states, scored by the held-out
evaluator (the skeptical reader on the explanation's words; never a training proxy), next to the
training proxies' accuracy and the context alone.

[reconstruction] critic-free PPO (advantages: reward-to-go normalised over the batch; no value
head), p_hat as the mean of ``reward_samples`` flow samples, the source N(1/|A|, sigma^2), the
prompt wording and the sentence segmentation at ``.!?`` are ours.

Checkpoints hold the LoRA weights and the flow's two trained MLPs (``saved_parameters``), never
the frozen LLM or the W_Q / W_K / W_V copies (they are rebuilt from the ``model=`` package);
buffer, step counter and learning curve ride in ``learner_state``. DDP: data-parallel actors
(each rank samples its own rollouts, gradients all-reduced); evaluation shards the states over
the instances.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Annotated, Literal

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from torch.utils.data import DataLoader

from experiments.explainer.judges import JUDGES, Query, stable_hash
from experiments.explainer.readers import accuracy
from modules.base import AtlasModule
from modules.buffers import ReplayBuffer
from modules.explainer import llm_policy as llm
from modules.explainer.flow import CrossAttentionVelocity, flow_probs, init_
from modules.explainer.ppo import gae, ppo_loss
from modules.explainer.rewards import sentence_rewards, token_rewards
from modules.flow_matching import cfm_loss
from modules.llm import LLM_MODELS


class Explanations:
    """A batch of LLM explanations: states, prompt / generated ids, words, sentence ends."""

    def __init__(self, env, states: np.ndarray, prompts: list[list[int]], generated: list[list[int]], lm):
        self.states, self.prompts, self.generated = states, prompts, generated
        self.actions = np.array([env.policy[int(s)] for s in states])
        tokens = [llm.explanation(g, lm.stop) for g in generated]
        self.ends = [llm.sentence_ends(t, lm.tokenizer) for t in tokens]
        self.tokens = tokens
        self.words = [llm.words(lm.tokenizer.decode(t)) for t in tokens]
        self.mask = torch.zeros(len(states), max(len(g) for g in generated))  # generated tokens
        for b, g in enumerate(generated):
            self.mask[b, : len(g)] = 1.0

    def prefixes(self, tokenizer) -> tuple[list[list[int]], list[Query], np.ndarray]:
        """Every prefix y_{1:j}, j = 0..J: prompt + explanation ids, its query, its owner."""
        rows, queries, owner = [], [], []
        for b, (tokens, ends) in enumerate(zip(self.tokens, self.ends)):
            for j in range(len(ends) + 1):
                cut = 0 if j == 0 else ends[j - 1] + 1
                rows.append(self.prompts[b] + tokens[:cut])
                queries.append(Query(int(self.states[b]), llm.words(tokenizer.decode(tokens[:cut]))))
                owner.append(b)
        return rows, queries, np.array(owner)


class LoRAExplainerPPO(AtlasModule):
    needs = "policy_explanation"
    models = LLM_MODELS
    stages = ("fit", "test")
    saved_parameters = r"lora_|^flow\.(emb|proj)\."  # LoRA + the flow's phi_Emb / phi_Proj only

    def __init__(
        self,
        task,
        model=None,
        proxies: Annotated[list[Literal[JUDGES]], Field(min_length=1)] = ("smollm2",),
        lora_r: PositiveInt = 8,
        lora_alpha: PositiveInt = 16,
        ppo_steps: PositiveInt = 4,
        batch_size: PositiveInt = 4,
        max_new_tokens: PositiveInt = 24,
        temperature: PositiveFloat = 0.7,
        lr: PositiveFloat = 1e-4,
        ppo_epochs: PositiveInt = 2,
        clip: PositiveFloat = 0.2,
        beta: NonNegativeFloat = 0.05,
        entropy_coef: NonNegativeFloat = 0.0,
        reward: Literal["probability", "logit"] = "probability",
        flow_every: PositiveInt = 2,
        flow_warmup: NonNegativeInt = 200,
        warmup_batches: PositiveInt = 1,
        flow_steps: PositiveInt = 50,
        flow_batch: PositiveInt = 32,
        flow_lr: PositiveFloat = 3e-3,
        buffer_size: PositiveInt = 256,
        sigma_factor: PositiveFloat = 1.0,
        reward_samples: PositiveInt = 4,
        euler_steps: PositiveInt = 4,
        flow_tokens: PositiveInt = 4,
        flow_hidden: PositiveInt = 64,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        if model is None:
            raise ValueError("the LoRA explainer needs an LLM: choose model=smollm2 or model=gemma3_270m")
        self.automatic_optimization = False
        self.strict_loading = False  # checkpoints hold only the trained adapters (saved_parameters)
        self.env, self.A = task.env, len(task.env.actions)
        base, self.tokenizer = model.load()
        lora = LoraConfig(
            r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]
        )
        self.net = get_peft_model(copy.deepcopy(base), lora)  # a copy: the cached base stays untouched
        self.flow = CrossAttentionVelocity(
            self.A, **llm.attention_weights(base), flow_tokens=flow_tokens, hidden=flow_hidden
        )
        init_(self.flow, torch.Generator().manual_seed(int(task.rng(0, "init/flow").integers(2**62))))
        self.stop, self.pad_id = llm.stop_ids(self.tokenizer), self.tokenizer.pad_token_id
        self.prompt_ids = {
            s: model.chat_ids(llm.prompt(self.env, s))["input_ids"][0].tolist() for s in self.env.states
        }
        self.width = max(map(len, self.prompt_ids.values())) + max_new_tokens  # buffer row width
        self.buffer = ReplayBuffer(buffer_size)
        self.steps_done = 0
        self.curve: list[float] = []  # held-out accuracy of each PPO step's training explanations
        self._judges = None

    @property
    def judges(self) -> list:
        if self._judges is None:
            self._judges = [self.task.judge(name, 0, self.model_factory) for name in self.hparams.proxies]
        return self._judges

    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(self.hparams.ppo_steps), batch_size=None)

    def configure_optimizers(self):
        hp = self.hparams
        return [
            torch.optim.Adam([p for p in self.net.parameters() if p.requires_grad], lr=hp.lr),
            torch.optim.Adam([p for p in self.flow.parameters() if p.requires_grad], lr=hp.flow_lr),
        ]

    def step(self, index: int, loss: torch.Tensor) -> None:
        optimizer = self.optimizers()[index]
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()

    # ---- rollouts ------------------------------------------------------------------------------
    def explain(self, states: np.ndarray, temperature: float, generator=None, adapted: bool = True):
        self.net.eval()
        with contextlib.nullcontext() if adapted else self.net.disable_adapter():
            generated = [
                llm.sample(
                    self.net,
                    self.prompt_ids[int(s)],
                    self.stop,
                    self.hparams.max_new_tokens,
                    temperature,
                    generator,
                )
                for s in states
            ]
        return Explanations(self.env, states, [self.prompt_ids[int(s)] for s in states], generated, self)

    def rollout(self, n: int, name: str) -> Explanations:
        states = np.array(self.env.states)[self.rng(f"states/{name}").integers(len(self.env.states), size=n)]
        return self.explain(states, self.hparams.temperature, self.torch_generator(f"sample/{name}"))

    def condition(self, rows: list[list[int]]):
        with self.net.disable_adapter():
            return llm.last_layer(self.net, rows, self.pad_id)

    def judge(self, queries: list[Query], rng: np.random.Generator) -> np.ndarray:
        """Every training proxy's p for every query (fresh draws): [K, N, |A|]."""
        draws = rng.integers(2**31, size=len(queries))
        queries = [Query(q.state, q.words, int(d)) for q, d in zip(queries, draws)]
        return np.stack([judge.probs(queries) for judge in self.judges])

    # ---- the flow reward model -----------------------------------------------------------------
    def refresh_flow(self, batch: Explanations, steps: int) -> None:
        hp = self.hparams
        rows, queries, owner = batch.prefixes(self.tokenizer)
        probs, a_star = self.judge(queries, self.rng("judge")), batch.actions[owner]
        ids, _ = llm.pad(rows, self.pad_id)
        ids = torch.nn.functional.pad(ids, (0, self.width - ids.shape[1]), value=self.pad_id).numpy()
        lengths = np.array([len(r) for r in rows])
        for p in probs:
            keep = p.argmax(1) == a_star  # rejection sampling: positive judgments only
            if keep.any():
                self.buffer.add(ids=ids[keep], length=lengths[keep], z1=p[keep].astype(np.float32))
        if len(self.buffer) == 0:
            return
        n = len(self.buffer)
        stored = [
            row[:length].tolist()
            for row, length in zip(self.buffer.data["ids"][:n], self.buffer.data["length"][:n])
        ]
        H, mask = self.condition(stored)  # once per refresh
        z1 = torch.as_tensor(self.buffer.data["z1"][:n])
        rng, g = self.rng("flow"), self.torch_generator("flow")
        sigma = hp.sigma_factor * self.task.sigma_r
        for _ in range(steps):
            i = torch.as_tensor(rng.integers(0, n, hp.flow_batch))
            z0 = 1.0 / self.A + sigma * torch.randn(len(i), self.A, generator=g)
            self.step(1, cfm_loss(self.flow, z0, z1[i], (H[i], mask[i]), generator=g))

    @torch.no_grad()
    def p_true(self, batch: Explanations) -> tuple[np.ndarray, np.ndarray]:
        """p_hat[a*] of every prefix of every explanation, and their owners."""
        hp = self.hparams
        rows, _, owner = batch.prefixes(self.tokenizer)
        p = flow_probs(
            self.flow,
            self.condition(rows),
            len(rows),
            self.A,
            hp.sigma_factor * self.task.sigma_r,
            hp.reward_samples,
            hp.euler_steps,
            self.torch_generator("reward"),
            owner,
        ).numpy()
        return p[np.arange(len(p)), batch.actions[owner]], owner

    # ---- PPO -------------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        if self.steps_done >= self.hparams.ppo_steps:  # a resumed epoch replays no step twice
            return
        hp, k = self.hparams, self.steps_done
        if k == 0:
            self.refresh_flow(self.rollout(hp.warmup_batches * hp.batch_size, "warmup"), hp.flow_warmup)
        roll = self.rollout(hp.batch_size, "ppo")
        if k > 0 and k % hp.flow_every == 0:
            self.refresh_flow(roll, hp.flow_steps)
        p_true, owner = self.p_true(roll)
        rewards = [sentence_rewards(p_true[owner == b], hp.reward) for b in range(len(roll.states))]
        task_reward = token_rewards(rewards, roll.ends, roll.mask.shape[1], dense=True)
        self.ppo_update(roll, task_reward)
        evaluator = self.task.evaluator
        self.curve.append(
            float(
                np.mean(
                    [
                        accuracy(evaluator.probs(self.env.facts(int(s)), list(w)), a)
                        for s, w, a in zip(roll.states, roll.words, roll.actions)
                    ]
                )
            )
        )
        self.log("train/reward", float(np.mean([r.sum() for r in rewards])), prog_bar=True)
        self.log("train/heldout_rollout", self.curve[-1])
        self.steps_done += 1

    def ppo_update(self, roll: Explanations, task_reward: torch.Tensor) -> None:
        hp, mask = self.hparams, roll.mask
        with torch.no_grad():
            self.net.eval()
            old_logp, _ = llm.token_logprobs(self.net, roll.prompts, roll.generated, self.pad_id)
            with self.net.disable_adapter():
                ref_logp, _ = llm.token_logprobs(self.net, roll.prompts, roll.generated, self.pad_id)
            rewards = task_reward - hp.beta * (old_logp - ref_logp) * mask
            _, returns = gae(rewards, torch.zeros_like(rewards), mask, 1.0, 1.0)  # reward-to-go [B, L]
            live = returns[mask.bool()]
            advantages = (returns - live.mean()) / (live.std() + 1e-8) * mask
        self.net.train()
        zeros = torch.zeros_like(mask)
        for _ in range(hp.ppo_epochs):
            logp, entropy = llm.token_logprobs(self.net, roll.prompts, roll.generated, self.pad_id)
            loss = ppo_loss(
                logp, old_logp, advantages, zeros, zeros, entropy, mask, hp.clip, 0.0, hp.entropy_coef
            )
            self.step(0, loss)
        self.net.eval()

    # ---- evaluation ------------------------------------------------------------------------------
    def test_step(self, batch, batch_idx):
        index, _ = batch
        states = np.array(self.env.states[index :: self.task.replicas])  # this instance's share
        evaluator, out = self.task.evaluator, {}
        for name, adapted in (("before", False), ("after", True)):
            roll = self.explain(states, 0.0, adapted=adapted)
            facts = [self.env.facts(int(s)) for s in states]
            out[f"heldout_{name}"] = [
                accuracy(evaluator.probs(f, list(w)), a) for f, w, a in zip(facts, roll.words, roll.actions)
            ]
            queries = [Query(int(s), w, stable_hash("eval", int(s))) for s, w in zip(states, roll.words)]
            proxy = np.stack([judge.probs(queries) for judge in self.judges]).mean(0)
            out[f"proxy_{name}"] = [accuracy(p, a) for p, a in zip(proxy, roll.actions)]
            out[f"sentences_{name}"] = [len(e) for e in roll.ends]
        out["context"] = [
            accuracy(evaluator.probs(self.env.facts(int(s)), []), self.env.policy[int(s)]) for s in states
        ]
        self.record(index, n=len(states), **{k: float(np.sum(v)) for k, v in out.items()})

    def summarize(self, rows):
        n = rows["n"].sum()
        out = {f"explainer/lora_{k}": float(rows[k].sum() / n) for k in rows if k not in ("index", "n")}
        out["explainer/lora_heldout_gain"] = (
            out["explainer/lora_heldout_after"] - out["explainer/lora_heldout_before"]
        )
        out["explainer/lora_proxy_gain"] = (
            out["explainer/lora_proxy_after"] - out["explainer/lora_proxy_before"]
        )
        out["explainer/lora_steps"] = float(self.steps_done)
        self.plot_curve(out)
        return out

    def plot_curve(self, out: dict) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(range(len(self.curve)), self.curve, "o-", ms=3, label="training explanations (sampled)")
        ax.axhline(out["explainer/lora_heldout_before"], color="k", ls="--", label="base, greedy (before)")
        ax.axhline(
            out["explainer/lora_heldout_after"], color="tab:blue", ls="-", label="trained, greedy (after)"
        )
        ax.set(xlabel="PPO step", ylabel="held-out evaluator accuracy", title="SmolLM2 + LoRA explainer")
        ax.legend(fontsize=6)
        self.save_figure(fig, "lora_learning_curve")

    # ---- exact resume ---------------------------------------------------------------------------
    def learner_state(self) -> dict:
        return {"steps_done": self.steps_done, "curve": self.curve, "buffer": self.buffer.state_dict()}

    def load_learner_state(self, state: dict) -> None:
        self.steps_done = int(state["steps_done"])
        self.curve = [float(x) for x in state["curve"]]
        self.buffer.load_state_dict(state["buffer"])
