"""Per-sentence rewards of Policy-to-Language (Yang et al., arXiv:2502.12530, Fig. 1).

    r_j = p_hat_j[a*] - p_hat_{j-1}[a*]          (``kind="probability"``; p_hat_0: context alone)
    r_j = logit p_hat_j[a*] - logit p_hat_{j-1}[a*]   (``kind="logit"``)

placed on the last token of sentence j (dense) or summed onto the explanation's last sentence
(sparse ablation: the same total, one reward). p_hat comes from the flow or, for the w/o-Flow
ablation, from the proxies directly.
"""

from __future__ import annotations

import numpy as np
import torch

from experiments.explainer.grammar import EOS, PAD, VOCAB


def segment(generated: list[int]) -> tuple[list[str], list[int]]:
    """Generated token ids -> (words, index of each sentence's last token); stops at <eos>/<pad>.

    An unfinished tail counts as a sentence; no word at all is an error."""
    words, ends = [], []
    for i, tok in enumerate(generated):
        if tok in (EOS, PAD):
            break
        words.append(VOCAB[tok])
        if VOCAB[tok] == ".":
            ends.append(i)
    if not words:
        raise ValueError("the explanation has no sentences (an explanation needs at least one)")
    if words[-1] != ".":
        ends.append(len(words) - 1)
    return words, ends


def sentence_rewards(p_true: np.ndarray, kind: str) -> np.ndarray:
    """p_hat_j[a*] for j = 0..J -> r_1..r_J."""
    x = np.clip(p_true, 1e-6, 1 - 1e-6)
    if kind == "logit":
        x = np.log(x) - np.log1p(-x)
    return np.diff(x)


def token_rewards(rewards: list[np.ndarray], ends: list[list[int]], length: int, dense: bool) -> torch.Tensor:
    """Per-sequence sentence rewards -> [B, length] token rewards (dense: at each sentence end)."""
    out = torch.zeros(len(rewards), length)
    for b, (r, e) in enumerate(zip(rewards, ends)):
        if dense:
            out[b, e] = torch.as_tensor(r, dtype=torch.float32)
        else:
            out[b, e[-1]] = float(r.sum())
    return out
