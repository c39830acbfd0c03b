"""IAMFM on an offline LLM pair (arXiv:2604.06263, claim 6): MF-SH + ACO payments over real generations.

The target LLM is the run's ``model=`` (a ``modules.llm.LanguageModel``, e.g. ``model=gemma3_270m``);
the cheap fidelity is the task's ``cheap_model`` (SmolLM2-135M by default), a model-group config too.
Generation j of configuration theta at fidelity f uses the seed of stream ``<prefix>/f<f>/theta<k>``
plus j, so every generation is a cache hit on a rerun and misreports replay the same generations.

Ground truth is estimated: ``reference_samples`` held-out target generations per configuration give
the means mu_hat(theta) against which theta* (exact VCG on them), eps_opt, eps_est, eps_cf and the IR
slack are measured, as in claim 5. Reported: how well the cheap fidelity's welfare (its SH rung over
every configuration) predicts the target's (Pearson correlation over configurations, mean absolute
gap), and the generations and cost spent per fidelity. One instance; DDP brings nothing here.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveFloat

from experiments.base import stream_id
from experiments.iamfm.llm_ads import measure
from experiments.iamfm.task import AdInstance
from modules.base import AtlasModule
from modules.iamfm.cache import EvaluationCache
from modules.iamfm.elimination import sh_schedule
from modules.iamfm.payments import audit
from modules.llm import LLM_MODELS


class LLMMechanism(AtlasModule):
    needs: ClassVar[str] = "ad_configuration_llm"
    models = LLM_MODELS
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        budget: PositiveFloat = 36.0,
        eta: Annotated[int, Field(ge=2)] = 3,
        fresh: NonNegativeInt = 2,
        temperature: PositiveFloat = 0.9,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.lm, self.budget, self.eta, self.fresh, self.temperature = model, budget, eta, fresh, temperature
        self.generated = np.zeros(2, dtype=np.int64)  # generations requested per fidelity (cache hits too)

    def outcomes(self, auction, f: int, k: int, seeds: range, reference: np.ndarray) -> np.ndarray:
        """Outcomes [len(seeds), n + 1] of generations ``seeds`` of configuration k at fidelity f."""
        lm = (self.task.cheap_model, self.lm)[f]
        texts = [
            lm.generate(
                [auction.prompts[k]], seed=s, max_new_tokens=self.task.tokens[f], temperature=self.temperature
            )[0]
            for s in seeds
        ]
        self.generated[f] += len(texts)
        return measure(texts, self.task.brands, self.lm.encoder(), reference)

    def caches(self, auction, reference: np.ndarray):
        K, n = len(auction.configs), len(auction.values)

        def caches(prefix: str) -> EvaluationCache:
            drawn: dict[tuple[int, int], int] = {}

            def sample(f: int, k: int, m: int) -> np.ndarray:
                start, base = drawn.get((f, k), 0), stream_id(f"{self.task.seed}/{prefix}/f{f}/theta{k}")
                drawn[f, k] = start + m
                return self.outcomes(auction, f, k, range(base + start, base + start + m), reference).sum(0)

            return EvaluationCache(auction.costs, K, n + 1, sample)

        return caches

    def test_step(self, batch, batch_idx):
        index, auction = batch
        t, K = 1, len(auction.configs)
        answer = self.lm.generate(
            [auction.reference_prompt],
            seed=self.task.seed,
            max_new_tokens=self.task.tokens[t],
            temperature=self.temperature,
        )
        reference = self.lm.encoder().encode(answer, normalize_embeddings=True)[0]  # [d]
        caches = self.caches(auction, reference)
        held_out = caches("reference")
        held_out.ensure(np.arange(K), t, self.task.reference_samples)
        mu_hat = held_out.sums[t] / held_out.counts[t, :, None]  # [K, n + 1]
        inst = AdInstance(
            index,
            auction.values,
            auction.lam,
            auction.configs,
            np.stack([np.full_like(mu_hat, np.nan), mu_hat]),
            auction.costs,
            ("cheap", "target"),
        )
        row = audit(inst, self.budget, caches, "warm", [], self.eta, self.fresh)
        generated = self.generated.copy()
        main = caches("main")  # the main run's cheap rung over every configuration, from the on-disk cache
        main.ensure(np.arange(K), 0, sh_schedule(K, auction.costs, self.budget, self.eta, True)[0][1])
        w = inst.weights(inst.values)
        cheap, target = main.estimate(np.arange(K), 0, w), inst.welfare(w)
        self.record(
            index,
            **row,
            cheap_target_corr=np.corrcoef(cheap, target)[0, 1],
            cheap_target_gap=np.abs(cheap - target).mean(),
            target_welfare_spread=target.std(),
            generations_cheap=generated[0],
            generations_target=generated[1],
            mentions=(mu_hat[:, :-1] > 0).mean(),
        )

    def summarize(self, rows):
        out = {
            f"iamfm/llm/{k}": float(np.mean(rows[k]))
            for k in (
                "regret",
                "eps_est",
                "eps_cf",
                "payment_error",
                "new_cost",
                "cheap_target_corr",
                "cheap_target_gap",
                "target_welfare_spread",
                "generations_cheap",
                "generations_target",
                "mentions",
            )
        }
        out["claim/llm_ir_slack_min"] = float(rows["ir_slack"].min())
        out["iamfm/llm/utility_min"] = float(rows["utility"].min())
        return out
