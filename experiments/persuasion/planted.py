"""A planted persuasion circuit: an attention-only Llama with hand-set weights (ground truth known).

Built on the token task (``experiments/persuasion/tokens.py``, ``readout="value"``) so that every
analysis of ``modules/persuasion/analysis.py`` can be checked against known objects. Residual
coordinates: one per token (one-hot embeddings), a constant ``ONE`` of size M (every token), and the
features ``f_kw`` ("a keyword came before"), ``f_opt`` ("inside the options list"), ``is_value`` and
``r*`` (the evidence-routing direction). RoPE is switched off (zero frequencies), MLPs are zero and
every RMSNorm gain is M / sqrt(d), so a layer's normed input is its residual to within ~1e-4.

* layer 0, head 0 (keyword detector): attends to keywords (else BOS), writes ``f_kw``;
  head 1 (option detector): attends to OPT, writes ``f_opt``; head 2 (knowledge): a value token
  attends to the subject iff ``f(subject)`` is that value and writes ``a r*``;
* layer 1, head 0 (keyword head): an option value attends to the same value in the context when a
  keyword precedes it and writes ``b r*`` onto the option token (b > a: persuasion wins);
* layer 2, head 0 (decision head): ANS attends to the option token with the largest ``x . r*`` and
  copies its value into the unembedding direction of that value token.

Ground truth: decision head (2, 0); keyword heads {(0, 0), (1, 0)}; routing direction ``r*``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from experiments.persuasion import tokens as tk

M = 100.0  # size of the constant coordinate (keeps RMSNorm linear to ~1e-4)
L_SHARP = 40.0  # attention logit scale of the detector heads
A_KNOW, B_ROUTE = 1.0, 2.0  # r* written by knowledge (correct option) and by persuasion (target)
C_GATE, G_ROUTE, COPY = 20.0, 8.0, 15.0  # decision-head gate, routing gain, copy gain
ONE, F_KW, F_OPT, IS_VALUE, R_STAR = range(tk.VOCAB, tk.VOCAB + 5)
N_HEADS, HEAD_DIM = 4, 32
D_MODEL = -(-(tk.VOCAB + 5) // N_HEADS) * N_HEADS  # rounded up to a multiple of the heads
SINK, MATCH = 16, 17  # head-space coordinates for the BOS sink and feature matches


@dataclass
class PlantedTruth:
    decision_head: tuple[int, int] = (2, 0)
    keyword_heads: set = field(default_factory=lambda: {(0, 0), (1, 0)})

    @property
    def r_star(self) -> torch.Tensor:
        r = torch.zeros(D_MODEL)
        r[R_STAR] = 1.0
        return r


def _head(attn, h: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Views of head ``h``'s rows of q/k/v and columns of o (weights are [out, in])."""
    rows = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)
    return (
        attn.q_proj.weight[rows],
        attn.k_proj.weight[rows],
        attn.v_proj.weight[rows],
        attn.o_proj.weight[:, rows],
    )


def planted_model(seed: int):
    """The planted circuit for the knowledge map of ``seed``: a ``LlamaForCausalLM`` in eval mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=tk.VOCAB,
        hidden_size=D_MODEL,
        intermediate_size=4,
        num_hidden_layers=3,
        num_attention_heads=N_HEADS,
        num_key_value_heads=N_HEADS,
        head_dim=HEAD_DIM,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
    )
    model = LlamaForCausalLM._from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    f = tk.knowledge(seed)
    scale = HEAD_DIM**0.5 / M  # undo 1/sqrt(d_head) and read ONE as 1
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        emb = model.model.embed_tokens.weight  # [V, D] (tied with the unembedding)
        emb[torch.arange(tk.VOCAB), torch.arange(tk.VOCAB)] = 1.0
        emb[:, ONE] = M
        emb[tk.VALUES, IS_VALUE] = 1.0
        for norm in [model.model.norm] + [
            m for layer in model.model.layers for m in (layer.input_layernorm, layer.post_attention_layernorm)
        ]:
            norm.weight.fill_(M / D_MODEL**0.5)
        model.model.rotary_emb.inv_freq.zero_()  # no positions: the circuit is content-only

        def detector(attn, h, tokens, feature):
            q, k, v, o = _head(attn, h)
            q[SINK, ONE] = scale
            k[SINK, list(tokens)] = L_SHARP
            k[SINK, tk.BOS] = L_SHARP / 2
            v[0, list(tokens)] = 1.0
            o[feature, 0] = 1.0

        l0, l1, l2 = (layer.self_attn for layer in model.model.layers)
        detector(l0, 0, tk.KEYWORDS, F_KW)
        detector(l0, 1, [tk.OPT], F_OPT)
        q, k, v, o = _head(l0, 2)  # knowledge: value i attends to s with f(s) = i
        q[torch.arange(tk.N_VALUES), tk.VALUES] = scale * M
        q[SINK, ONE] = scale
        k[f, tk.SUBJECTS] = L_SHARP
        k[SINK, tk.BOS] = L_SHARP / 2
        v[0, tk.SUBJECTS] = 1.0
        o[R_STAR, 0] = A_KNOW
        q, k, v, o = _head(l1, 0)  # keyword head: same value, after a keyword
        q[torch.arange(tk.N_VALUES), tk.VALUES] = scale * M
        q[SINK, ONE] = scale
        q[MATCH, ONE] = scale
        k[torch.arange(tk.N_VALUES), tk.VALUES] = L_SHARP
        k[MATCH, F_KW] = L_SHARP
        k[MATCH, F_OPT] = -2 * L_SHARP
        k[SINK, tk.BOS] = 1.5 * L_SHARP
        v[0, IS_VALUE] = 1.0
        o[R_STAR, 0] = B_ROUTE
        q, k, v, o = _head(l2, 0)  # decision head: gate on option values, route by r*
        q[SINK, ONE] = scale
        q[MATCH, tk.ANS] = scale * M
        k[SINK, tk.BOS] = C_GATE
        k[MATCH, IS_VALUE] = C_GATE
        k[MATCH, F_OPT] = C_GATE
        k[MATCH, R_STAR] = G_ROUTE
        v[torch.arange(tk.N_VALUES), tk.VALUES] = 1.0
        o[tk.VALUES, torch.arange(tk.N_VALUES)] = COPY
    return model.eval()
