"""Scoring ad-embedded responses: embedding proxies and an LLM-as-judge per dimension.

NaiAD (arXiv 2605.09918) scores responses on q1 relevance, q2 coherence (user utility), q3 ad
effectiveness, q4 click-through intent (commercial utility) with an LLM judge, then calibrates
against humans. Both scorers below are our small-scale stand-ins [R]:

* :class:`Proxies` (NaiAD notes N4): user proxy = cos(MiniLM(query), MiniLM(response));
  commercial proxy = 1[ad name mentioned] + cos(MiniLM(ad_info), MiniLM(response)).
* :class:`LLMJudge`: for each dimension one rubric prompt; the score is the judge's *expected*
  rating E[k] under its next-token distribution over the digits 1..9, mapped to 0-100. One forward
  pass, no sampling; every score is cached on disk (the generation cache of ``modules/llm.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from experiments.naiad.seeds import Ad
from modules.llm import DEFAULT_ENCODER, GenerationCache, load_causal_lm, load_sentence_encoder

RUBRICS = {
    "q1": "How relevant is the response to the user's question?",
    "q2": "How clear, fluent and coherent is the response?",
    "q3": "How effectively does the response present the product?",
    "q4": "How likely is the user to click on the product after reading the response?",
}


def mentions(response: str, ad: Ad) -> bool:
    return ad.name.lower() in response.lower()


class Proxies:
    """Embedding proxies of user and commercial utility (MiniLM, offline)."""

    def __init__(self, encoder: str = DEFAULT_ENCODER):
        self.encoder = encoder

    def __call__(self, queries: list[str], ads: list[Ad], responses: list[str]) -> dict[str, np.ndarray]:
        m = len(responses)
        E = load_sentence_encoder(self.encoder).encode([*queries, *(a.info for a in ads), *responses],
                                                       normalize_embeddings=True)  # [3m, dim], one call
        q, i, r = E[:m], E[m:2 * m], E[2 * m:]
        mention = np.array([mentions(text, ad) for text, ad in zip(responses, ads)], dtype=float)
        return {"user": (q * r).sum(1), "commercial": mention + (i * r).sum(1), "mention": mention}


class LLMJudge:
    """Per-dimension expected rating (0-100) from the offline LLM's digit distribution, cached."""

    PROMPT = ("User question: {query}\nAdvertised product: {name} ({label}): {info}\nResponse: {response}\n\n"
              "{rubric} Rate it from 1 (worst) to 9 (best). Answer with one digit.")

    def __init__(self, name: str, cache_path: Path):
        self.name = name
        self.cache = GenerationCache(Path(cache_path))

    def prompt(self, query: str, ad: Ad, response: str, dimension: str) -> str:
        return self.PROMPT.format(query=query, name=ad.name, label=ad.label, info=ad.info, response=response,
                                  rubric=RUBRICS[dimension])

    def score(self, query: str, ad: Ad, response: str) -> np.ndarray:
        """Scores q1..q4 of one response [4]."""
        scores = []
        for dimension in RUBRICS:
            request = {"model": self.name, "judge": "expected-digit-1-9", "prompt": self.prompt(query, ad, response, dimension)}
            cached = self.cache.get(request)
            if cached is None:
                cached = repr(self.expected_rating(request["prompt"]))
                self.cache.put(request, cached)
            scores.append(float(cached))
        return np.array(scores)

    @torch.inference_mode()
    def expected_rating(self, prompt: str) -> float:
        model, tokenizer = load_causal_lm(self.name)
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        logits = model(**ids).logits[0, -1]                                        # [vocab]
        digits = [tokenizer.convert_tokens_to_ids(str(k)) for k in range(1, 10)]
        p = torch.softmax(logits[digits], dim=0)                                   # [9]
        expected = float((p * torch.arange(1, 10)).sum())
        return (expected - 1) / 8 * 100
