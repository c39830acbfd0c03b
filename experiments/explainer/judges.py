"""Proxy judges: each reads (context, explanation prefix) and returns p(a | c, y_{1:j}) over actions.

The paper uses K = 3 proxy LLMs of different families; each family here is a separate pluggable
:class:`Judge` (``make_judge(name, ...)``):

* ``noisy_rule``   the credulous reader's p plus N(0, sigma_r^2) noise, clipped and renormalised
                   (noise drawn from (seed, state, prefix, draw): deterministic, cache-friendly);
* ``minilm``       softmax(cos(MiniLM(c, y), MiniLM(action description_a)) / temperature);
* ``smollm2`` / ``gemma3``  an LLM continuation judge: ``{context}\\nExplanation: {y}\\n{question}``
                   scored on each action word (FrozenLake ``So the agent moves`` + " left" / " down" /
                   " right" / " up", CartPole ``So the agent pushes the cart`` + " left" / " right":
                   the copy-friendly format that carries signal on SmolLM2), through
                   ``model.continuation_logprobs``.

The held-out evaluator (:class:`~experiments.explainer.readers.SkepticalReader`) is not a judge
here: it can never be chosen as a training proxy. ``CachedJudge`` memoises any judge on disk by
(judge key, rendered state, prefix, draw) in SQLite, committed per batch, so an interrupted run keeps every
judgment it paid for.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import softmax

from experiments.explainer.frozenlake import FrozenLake
from experiments.explainer.readers import CredulousReader


@dataclass(frozen=True)
class Query:
    state: int
    words: tuple[str, ...]  # the explanation prefix y_{1:j} (empty: the context alone)
    draw: int = 0  # independent judgments of the same (state, prefix)


def text(words: tuple[str, ...] | list[str]) -> str:
    """Explanation words as prose: ``the agent moves down .`` -> ``The agent moves down.``"""
    out = " ".join(words).replace(" .", ".")
    return ". ".join(s.strip().capitalize() for s in out.split(".")).strip() if out else ""


def stable_hash(*parts) -> int:
    return int(hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:15], 16)


class Judge:
    """``probs(queries) -> [len(queries), |A|]``; ``key`` names the judge and everything it depends on."""

    key: str = ""

    def __init__(self, env: FrozenLake):
        self.env = env

    def probs(self, queries: list[Query]) -> np.ndarray:
        raise NotImplementedError


class NoisyRuleJudge(Judge):
    def __init__(self, env: FrozenLake, sigma_r: float, seed: int):
        super().__init__(env)
        self.sigma_r, self.seed, self.reader = sigma_r, seed, CredulousReader()
        self.key = f"noisy_rule(sigma_r={sigma_r},seed={seed})"

    def probs(self, queries: list[Query]) -> np.ndarray:
        out = []
        for q in queries:
            p = self.reader.probs(self.env.facts(q.state), list(q.words))
            rng = np.random.default_rng(stable_hash(self.seed, q.state, q.words, q.draw))
            p = np.clip(p + rng.normal(0.0, self.sigma_r, p.shape), 1e-6, None)
            out.append(p / p.sum())
        return np.array(out)


class MiniLMJudge(Judge):
    def __init__(self, env: FrozenLake, encoder, temperature: float):
        super().__init__(env)
        self.encoder, self.temperature = encoder, temperature
        self.key = f"minilm(temperature={temperature})"
        self.actions = encoder.encode(
            [f"The agent moves {a}." for a in env.actions], normalize_embeddings=True
        )

    def probs(self, queries: list[Query]) -> np.ndarray:
        inputs = [f"{self.env.context(q.state)} {text(q.words)}" for q in queries]
        E = self.encoder.encode(inputs, normalize_embeddings=True, batch_size=64)  # [B, dim]
        return softmax(E @ self.actions.T / self.temperature, axis=1)


class ContinuationJudge(Judge):
    """An LLM proxy: the log-probabilities of the four one-token action continuations."""

    def __init__(self, env: FrozenLake, model):
        super().__init__(env)
        self.model = model
        self.key = f"continuation({model.name},{model.fingerprint})"

    def prompt(self, q: Query) -> str:
        explanation = text(q.words) or "(none)"
        return f"{self.env.context(q.state)}\nExplanation: {explanation}\n{self.env.question}"

    def probs(self, queries: list[Query]) -> np.ndarray:
        prompts = [self.prompt(q) for q in queries for _ in self.env.actions]
        continuations = [f" {a}" for _ in queries for a in self.env.actions]
        logp = np.asarray(self.model.continuation_logprobs(prompts, continuations)).reshape(len(queries), -1)
        return softmax(logp, axis=1)


class JudgeCache:
    """(judge key, state, prefix, draw) -> probabilities, in SQLite."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS judgments (key TEXT PRIMARY KEY, probs TEXT)")

    @staticmethod
    def key(judge: str, context: str, q: Query) -> str:
        # the state's rendered context, not its index: the indices of two environments collide
        return hashlib.sha256(json.dumps([judge, context, q.words, q.draw]).encode()).hexdigest()

    def get(self, keys: list[str]) -> dict[str, list[float]]:
        found = {}
        for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            chunk = keys[start : start + 500]
            rows = self.db.execute(
                f"SELECT key, probs FROM judgments WHERE key IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
            found.update({k: json.loads(p) for k, p in rows})
        return found

    def put(self, items: dict[str, list[float]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO judgments VALUES (?, ?)", [(k, json.dumps(v)) for k, v in items.items()]
        )
        self.db.commit()


class CachedJudge(Judge):
    """``judge`` memoised in ``cache``: only the missing (state, prefix, draw) are judged."""

    def __init__(self, judge: Judge, cache: JudgeCache):
        super().__init__(judge.env)
        self.judge, self.cache, self.key = judge, cache, judge.key

    def probs(self, queries: list[Query]) -> np.ndarray:
        keys = [self.cache.key(self.key, self.env.context(q.state), q) for q in queries]
        found = self.cache.get(list(set(keys)))
        missing = list({k: q for k, q in zip(keys, queries) if k not in found}.items())
        if missing:
            fresh = self.judge.probs([q for _, q in missing])
            new = {k: p.tolist() for (k, _), p in zip(missing, fresh)}
            self.cache.put(new)
            found.update(new)
        return np.array([found[k] for k in keys])


JUDGES = ("noisy_rule", "minilm", "smollm2", "gemma3")


def make_judge(
    name: str, env: FrozenLake, seed: int, sigma_r: float, temperature: float, model=None
) -> Judge:
    """The proxy judge ``name``; the MiniLM and LLM judges need the ``model=`` group's language model."""
    if name == "noisy_rule":
        return NoisyRuleJudge(env, sigma_r, seed)
    if model is None:
        raise ValueError(f"judge {name!r} needs a language model: choose model=smollm2 or model=gemma3_270m")
    if name == "minilm":
        return MiniLMJudge(env, model.encoder(), temperature)
    family = {"smollm2": "smollm2", "gemma3": "gemma"}[name]
    if family not in model.name.lower():
        raise ValueError(
            f"judge {name!r} needs model={'smollm2' if name == 'smollm2' else 'gemma3_270m'}, "
            f"got model.name={model.name!r}"
        )
    return ContinuationJudge(env, model)
