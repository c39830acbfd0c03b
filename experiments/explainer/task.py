"""The explanation task: explain a gymnasium policy so a reader infers its action.

``env``: FrozenLake 4x4 with its value-iteration policy (|A| = 4) or CartPole-v1 with a PD
controller (|A| = 2); both give ``states``, ``policy``, ``context``, ``facts``, ``token_words``.

Instance i is replica i (an independent seed of the whole experiment: its own SFT data, judges'
noise, explainer and flow initialisation), built from ``self.rng(i, "<stream>")`` by the methods.
The task owns everything on the environment side: the agent, the decision contexts, the
explanation grammar, the proxy judges (``judge``) and the held-out evaluator (``evaluator``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from experiments.base import InstanceDataset, Task
from experiments.explainer.cartpole import CartPole
from experiments.explainer.frozenlake import FrozenLake
from experiments.explainer.judges import CachedJudge, Judge, JudgeCache, make_judge
from experiments.explainer.readers import SkepticalReader
from modules.llm import DEFAULT_CACHE

Probability = Annotated[float, Field(ge=0, le=1)]
ENVS = {"frozenlake": FrozenLake, "cartpole": CartPole}


class ExplainerTask(Task):
    offers = ("policy_explanation",)

    def __init__(
        self,
        seed: int = 0,
        env: Literal["frozenlake", "cartpole"] = "frozenlake",
        actions: Annotated[list[str], Field(min_length=2)] = ("left", "down", "right", "up"),
        replicas: PositiveInt = 3,
        sigma_r: Annotated[float, Field(gt=0)] = 0.1,
        kappa: Annotated[float, Field(gt=0)] = 12.0,
        p_accurate: Probability = 0.5,
        max_sentences: PositiveInt = 3,
        minilm_temperature: Annotated[float, Field(gt=0)] = 0.05,
    ):
        super().__init__(seed)
        self.env = ENVS[env]()
        if tuple(actions) != self.env.actions:
            raise ValueError(
                f"actions={list(actions)} do not match the {env} environment's action set "
                f"{list(self.env.actions)} (same names, same order)"
            )
        if sigma_r <= 0:
            raise ValueError(f"sigma_r must be > 0, got {sigma_r}")
        self.replicas, self.sigma_r, self.kappa = replicas, sigma_r, kappa
        self.p_accurate, self.max_sentences, self.minilm_temperature = (
            p_accurate,
            max_sentences,
            minilm_temperature,
        )

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.replicas, lambda i: {"replica": i})

    def judge(self, name: str, replica: int, model=None, cache_dir: Path = DEFAULT_CACHE) -> Judge:
        """Proxy judge ``name`` of ``replica`` (its noise seeded by (seed, replica)), cached on disk."""
        seed = self.seed * 1000 + replica
        judge = make_judge(name, self.env, seed, self.sigma_r, self.minilm_temperature, model)
        return CachedJudge(judge, JudgeCache(Path(cache_dir) / "explainer_judgments.sqlite"))

    @property
    def evaluator(self) -> SkepticalReader:
        """The held-out evaluator: never a training proxy."""
        return SkepticalReader()
