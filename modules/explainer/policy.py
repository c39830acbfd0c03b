"""The tiny explainer pi_e: a 2-layer causal transformer over the explanation grammar's words.

Decoder-only, pre-LayerNorm, grouped-query attention (``n_kv_heads`` KV heads shared by
``n_heads`` query heads, as in SmolLM2) with learned positions; a value head for PPO. Prompts are
``<bos> at row r col c <sep>`` (same length for every state), generations are explanation words
ending in ``<eos>``. ``last_layer`` exposes what the flow reward model attends to: the last
block's normalised input H [B, T, d] and its frozen W_Q / W_K / W_V.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from experiments.explainer.grammar import EOS, INDEX, PAD, VOCAB, WORDS

ALLOWED = torch.zeros(len(VOCAB), dtype=torch.bool)  # what the explainer may write
ALLOWED[[INDEX[w] for w in WORDS] + [EOS]] = True


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.d_head = n_heads, n_kv_heads, d_model // n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.q_proj = nn.Linear(d_model, n_heads * self.d_head, bias=False)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.d_head, bias=False)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.d_head, bias=False)
        self.o_proj = nn.Linear(n_heads * self.d_head, d_model, bias=False)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        h = self.ln1(x)
        q = self.q_proj(h).view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # [B, h, T, dh]
        k = self.k_proj(h).view(B, T, self.n_kv_heads, self.d_head).transpose(1, 2)  # [B, kv, T, dh]
        v = self.v_proj(h).view(B, T, self.n_kv_heads, self.d_head).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)  # [B, h, T, dh]
        x = x + self.o_proj(a.transpose(1, 2).reshape(B, T, -1))
        return x + self.mlp(self.ln2(x))


class TinyExplainer(nn.Module):
    def __init__(
        self, d_model: int = 32, n_layers: int = 2, n_heads: int = 4, n_kv_heads: int = 2, max_len: int = 32
    ):
        super().__init__()
        self.tok = nn.Embedding(len(VOCAB), d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, n_kv_heads) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, len(VOCAB))
        self.value = nn.Linear(d_model, 1)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B, T] -> next-token logits [B, T, V] (disallowed words masked), values [B, T]."""
        x = self.tok(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        for block in self.blocks:
            x = block(x)
        x = self.ln(x)
        logits = self.head(x).masked_fill(~ALLOWED.to(x.device), -torch.inf)
        return logits, self.value(x)[..., 0]

    @torch.no_grad()
    def last_layer(self, tokens: torch.Tensor) -> torch.Tensor:
        """H [B, T, d]: the last block's LayerNorm-ed input (what its W_Q / W_K / W_V read)."""
        x = self.tok(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        for block in self.blocks[:-1]:
            x = block(x)
        return self.blocks[-1].ln1(x)

    def attention(self) -> dict:
        """The last layer's attention weights and head layout, for ``CrossAttentionVelocity``."""
        last = self.blocks[-1]
        return {
            "W_Q": last.q_proj.weight,
            "W_K": last.k_proj.weight,
            "W_V": last.v_proj.weight,
            "n_heads": last.n_heads,
            "n_kv_heads": last.n_kv_heads,
        }

    @torch.no_grad()
    def sample(self, prompts: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
        """Sample ``length`` tokens after ``prompts`` [B, P]; after ``<eos>`` everything is ``<pad>``.

        The first word cannot be ``<eos>`` (an explanation has at least one sentence)."""
        tokens, done = prompts, torch.zeros(len(prompts), dtype=torch.bool, device=prompts.device)
        for step in range(length):
            logits = self(tokens)[0][:, -1]
            if step == 0:
                logits[:, EOS] = -torch.inf
            nxt = torch.multinomial(logits.softmax(-1).cpu(), 1, generator=generator)[:, 0].to(tokens.device)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], 1)
            done |= nxt == EOS
        return tokens
