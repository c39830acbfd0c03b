"""Scoring ad-embedded responses: embedding proxies and an LLM-as-judge per dimension.

NaiAD (arXiv 2605.09918) scores responses on q1 relevance, q2 coherence (user utility), q3 ad
effectiveness, q4 click-through intent (commercial utility) with an LLM judge, then calibrates
against humans. Both scorers below are our small-scale stand-ins [R]:

* :class:`Proxies` (NaiAD notes N4): user proxy = cos(MiniLM(query), MiniLM(response)) x (1 - copy);
  commercial proxy = 1[ad name mentioned] + cos(MiniLM(ad_info), MiniLM(response)) x (1 - copy),
  where copy is the share of the response's word trigrams found in the prompt (query, ad name,
  label and info): echoing the prompt back would otherwise score above a real answer.
* :class:`LLMJudge`: for each dimension one rubric prompt; the score is the judge's *expected*
  rating E[k] under its next-token distribution over the digits 1..9, mapped to 0-100. One forward
  pass, no sampling; every score is cached on disk (the generation cache of ``modules/llm.py``).
"""

from __future__ import annotations

import re

import numpy as np
import torch

from experiments.naiad.seeds import Ad
from modules.llm import LanguageModel

RUBRICS = {
    "q1": "How relevant is the response to the user's question?",
    "q2": "How clear, fluent and coherent is the response?",
    "q3": "How effectively does the response present the product?",
    "q4": "How likely is the user to click on the product after reading the response?",
}


def mentions(response: str, ad: Ad) -> bool:
    return ad.name.lower() in response.lower()


def trigrams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def copied_fraction(response: str, source: str) -> float:
    """Share of the response's word trigrams that occur in ``source`` (0 for responses under 3 words)."""
    grams = trigrams(response)
    return len(grams & trigrams(source)) / len(grams) if grams else 0.0


class Proxies:
    """Embedding proxies of user and commercial utility (the model group's sentence encoder, offline)."""

    def __init__(self, model: LanguageModel):
        self.model = model

    def __call__(self, queries: list[str], ads: list[Ad], responses: list[str]) -> dict[str, np.ndarray]:
        m = len(responses)
        E = self.model.encoder().encode(
            [*queries, *(a.info for a in ads), *responses], normalize_embeddings=True
        )  # [3m, dim], one call
        q, i, r = E[:m], E[m : 2 * m], E[2 * m :]
        mention = np.array([mentions(text, ad) for text, ad in zip(responses, ads)], dtype=float)
        copy = np.array(
            [
                copied_fraction(text, f"{query} {ad.name} {ad.label} {ad.info}")
                for text, query, ad in zip(responses, queries, ads)
            ]
        )
        return {
            "user": (q * r).sum(1) * (1 - copy),
            "commercial": mention + (i * r).sum(1) * (1 - copy),
            "mention": mention,
            "copy": copy,
        }


class LLMJudge:
    """Per-dimension expected rating (0-100) from the offline LLM's digit distribution, cached."""

    PROMPT = (
        "User question: {query}\nAdvertised product: {name} ({label}): {info}\nResponse: {response}\n\n"
        "{rubric} Rate it from 1 (worst) to 9 (best). Answer with one digit."
    )

    def __init__(self, model: LanguageModel):
        self.model = model

    def prompt(self, query: str, ad: Ad, response: str, dimension: str) -> str:
        return self.PROMPT.format(
            query=query,
            name=ad.name,
            label=ad.label,
            info=ad.info,
            response=response,
            rubric=RUBRICS[dimension],
        )

    def score(self, query: str, ad: Ad, response: str) -> np.ndarray:
        """Scores q1..q4 of one response [4]."""
        scores = []
        for dimension in RUBRICS:
            request = {
                "model": self.model.name,
                "weights": self.model.fingerprint,
                "judge": "expected-digit-1-9",
                "prompt": self.prompt(query, ad, response, dimension),
            }
            cached = self.model.generations.get(request)
            if cached is None:
                cached = repr(self.expected_rating(request["prompt"]))
                self.model.generations.put(request, cached)
            scores.append(float(cached))
        return np.array(scores)

    @torch.inference_mode()
    def expected_rating(self, prompt: str) -> float:
        model, tokenizer = self.model.load()
        ids = self.model.chat_ids(prompt)
        logits = model(**ids).logits[0, -1]  # [vocab]
        digits = [tokenizer.convert_tokens_to_ids(str(k)) for k in range(1, 10)]
        p = torch.softmax(logits[digits], dim=0)  # [9]
        expected = float((p * torch.arange(1, 10)).sum())
        return (expected - 1) / 8 * 100
