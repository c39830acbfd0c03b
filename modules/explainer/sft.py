"""Supervised pre-training of the tiny explainer on grammar explanations (the SFT explainer).

Each example is the context tokens (``grammar.context_tokens``) + an explanation from the grammar
(accurate and misleading sentences mixed, ``p_accurate``) + ``<eos>``; the loss is next-token
cross-entropy on the explanation tokens only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from experiments.explainer.grammar import EOS, INDEX, PAD, context_tokens, sample_explanation

PROMPT = 7  # len(context_tokens(...)): every prompt has the same length


def sft_batch(
    env, n: int, length: int, p_accurate: float, max_sentences: int, rng: np.random.Generator
) -> torch.Tensor:
    """[n, PROMPT + length + 1] token ids (explanations longer than ``length`` words are redrawn)."""
    rows = []
    while len(rows) < n:
        s = env.states[int(rng.integers(len(env.states)))]
        words = sample_explanation(env.facts(s), env.actions[env.policy[s]], rng, p_accurate, max_sentences)
        if len(words) <= length:
            ids = context_tokens(env, s) + [INDEX[w] for w in words] + [EOS]
            rows.append(ids + [PAD] * (PROMPT + length + 1 - len(ids)))
    return torch.tensor(rows)


def sft_loss(policy, tokens: torch.Tensor) -> torch.Tensor:
    logits = policy(tokens[:, :-1])[0][:, PROMPT - 1 :]  # predicts tokens[:, PROMPT:]
    target = tokens[:, PROMPT:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=PAD)
