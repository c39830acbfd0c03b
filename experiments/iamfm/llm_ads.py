"""The LLM instantiation of IAMFM (arXiv:2604.06263): an offline LLM writes the answer, the configuration
of advertiser strengths is in its prompt, exposure and satisfaction are measured on the text.

* configuration theta in levels^n (strength s of advertiser i = ``instructions[s]`` about its brand);
* exposure e_i(y) = 1 - (position of the brand's first mention) / len(y), 0 when not mentioned;
* satisfaction u(y) = max(0, cos(MiniLM(y), MiniLM(ad-free answer))), the ad-free answer written by the
  target model for the bare question.

Fidelities: the cheap model (``cheap_model``, a ``modules.llm.LanguageModel`` from the model group,
pulled in by the task config's defaults list) writes ``tokens[0]`` new tokens per generation, the
target model (the run's ``model=``) ``tokens[1]``; ``costs`` are per generation in
parameter x token units. The exact means are unknown here: the method estimates them from held-out
target generations (``reference_samples`` per configuration). Every generation is cached on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import ConfigDict, Field, NonNegativeFloat, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task
from experiments.iamfm.welfare import strength_grid

PositiveCost = Annotated[float, Field(gt=0)]


@dataclass
class LLMAuction:
    """One auction: values [n], lambda, configurations [K, n] (strength levels), one prompt each."""

    index: int
    values: np.ndarray
    lam: float
    configs: np.ndarray
    prompts: list[str]
    reference_prompt: str
    costs: np.ndarray


def exposure(text: str, brand: str) -> float:
    """1 at the very start, falling linearly to 0 at the end; 0 when the brand is absent."""
    at = text.lower().find(brand.lower())
    return 0.0 if at < 0 else 1.0 - at / max(len(text), 1)


def measure(texts: list[str], brands: list[str], encoder, reference: np.ndarray) -> np.ndarray:
    """Outcomes [len(texts), n + 1]: the exposure of each brand, then the satisfaction."""
    vectors = encoder.encode(texts, normalize_embeddings=True)  # [T, d]
    satisfaction = np.clip(vectors @ reference, 0.0, 1.0)  # reference: unit vector [d]
    return np.column_stack([[[exposure(t, b) for b in brands] for t in texts], satisfaction])


class LLMAdTask(Task):
    offers: ClassVar[tuple[str, ...]] = ("ad_configuration_llm",)

    @validate_call(config=ConfigDict(arbitrary_types_allowed=True))
    def __init__(
        self,
        cheap_model: Any,
        query: str = "What should I look for in a pair of running shoes?",
        brands: Annotated[list[str], Field(min_length=1)] = ("Stridex", "Vellora"),
        values: Annotated[list[NonNegativeFloat], Field(min_length=1)] = (2.0, 1.5),
        lam: NonNegativeFloat = 2.0,
        instructions: Annotated[list[str], Field(min_length=1)] = (
            "",
            "Mention the brand {brand} briefly.",
            "Recommend the brand {brand} prominently.",
        ),
        tokens: tuple[PositiveInt, PositiveInt] = (16, 24),
        costs: tuple[PositiveCost, PositiveCost] = (1.0, 3.0),
        reference_samples: PositiveInt = 2,
        seed: int = 0,
    ):
        super().__init__(seed)
        if len(values) != len(brands):
            raise ValueError(f"values has {len(values)} entries for {len(brands)} brands")
        self.cheap_model, self.query, self.brands = cheap_model, query, list(brands)
        self.values, self.lam, self.instructions = np.asarray(values), lam, list(instructions)
        self.tokens, self.costs, self.reference_samples = list(tokens), np.asarray(costs), reference_samples
        self.configs = strength_grid([float(s) for s in range(len(instructions))], len(brands))

    def prompt(self, config: np.ndarray) -> str:
        ads = [self.instructions[int(s)].format(brand=b) for s, b in zip(config, self.brands) if s > 0]
        return (
            " ".join(["Answer the question in two sentences.", *ads]) + f"\nQuestion: {self.query}\nAnswer:"
        )

    def make(self, index: int) -> LLMAuction:
        prompts = [self.prompt(c) for c in self.configs]
        return LLMAuction(
            index,
            self.values,
            self.lam,
            self.configs,
            prompts,
            self.prompt(np.zeros(len(self.brands))),
            self.costs,
        )

    def instances(self) -> InstanceDataset:
        return InstanceDataset(1, self.make)
