"""The LLM explainer pi_e of Policy-to-Language (Yang et al., arXiv:2502.12530): a chat LLM (SmolLM2
by default) with LoRA adapters (peft), writing an explanation of the agent's decision sentence by
sentence.

* ``prompt``: the decision context (the decision hidden) and a request for a short explanation;
* ``sample``: ancestral sampling with a KV cache from an explicit ``torch.Generator`` (exact
  resume; ``temperature=0`` is greedy), the end-of-turn token forbidden first (an explanation has
  at least one sentence);
* ``sentence_ends``: sentence segmentation of the generated tokens (a token whose text holds
  ``.``, ``!`` or ``?`` ends a sentence; an unfinished tail counts as one);
* ``words``: the generated text as the grammar's lower-case words (what the rule readers parse);
* ``token_logprobs``: log pi and the entropy of each generated token under the (adapted) model;
* ``last_layer``: what the flow reward model attends to, the frozen LLM's last-layer input
  (``input_layernorm`` of the last decoder layer) over (context, explanation prefix).
"""

from __future__ import annotations

import re

import torch

END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|endoftext|>")


def prompt(env, state: int) -> str:
    return f"{env.context(state)}\nIn one or two short sentences, say which way the agent moves next and why."


def stop_ids(tokenizer) -> list[int]:
    """Token ids that end a generation (end of turn / text)."""
    ids = {tokenizer.eos_token_id}
    ids |= {tokenizer.convert_tokens_to_ids(t) for t in END_OF_TURN if t in tokenizer.get_vocab()}
    return sorted(i for i in ids if i is not None)


@torch.no_grad()
def sample(
    model, prompt_ids: list[int], stop: list[int], max_new_tokens: int, temperature: float, generator
) -> list[int]:
    """Generated token ids (the stop token included when one was drawn)."""
    out = model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
    generated: list[int] = []
    for step in range(max_new_tokens):
        logits = out.logits[0, -1].float()
        if step == 0:
            logits[stop] = -torch.inf
        if temperature > 0:
            token = int(torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator))
        else:
            token = int(logits.argmax())
        generated.append(token)
        if token in stop:
            break
        out = model(input_ids=torch.tensor([[token]]), past_key_values=out.past_key_values, use_cache=True)
    return generated


def explanation(generated: list[int], stop: list[int]) -> list[int]:
    """The explanation's tokens: ``generated`` without its stop token."""
    return generated[:-1] if generated and generated[-1] in stop else generated


def sentence_ends(tokens: list[int], tokenizer) -> list[int]:
    """Index of each sentence's last token in ``tokens`` (the explanation, no stop token)."""
    if not tokens:
        raise ValueError("the explanation has no sentences (an explanation needs at least one)")
    ends = [i for i, t in enumerate(tokens) if re.search(r"[.!?]", tokenizer.decode([t]))]
    if not ends or ends[-1] != len(tokens) - 1:
        ends.append(len(tokens) - 1)
    return ends


def words(text: str) -> tuple[str, ...]:
    """Free text as the grammar's words: lower-case letter runs, sentence ends as ``.``."""
    return tuple("." if w in "!?" else w for w in re.findall(r"[a-z]+|[.!?]", text.lower()))


def pad(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, T] and their attention mask [B, T]."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), value)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)], mask[b, : len(r)] = torch.tensor(r), 1
    return ids, mask


def token_logprobs(
    model, prompts: list[list[int]], generated: list[list[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(token) and entropy of every generated token: two [B, L] (0 past each generation)."""
    ids, mask = pad([p + g for p, g in zip(prompts, generated)], pad_id)
    logp_all = model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)  # [B, T, V]
    L = max(len(g) for g in generated)
    logp, entropy = torch.zeros(len(ids), L), torch.zeros(len(ids), L)
    for b, (p, g) in enumerate(zip(prompts, generated)):
        rows = logp_all[b, len(p) - 1 : len(p) - 1 + len(g)]  # the positions that predict g
        logp[b, : len(g)] = rows.gather(-1, torch.tensor(g)[:, None])[:, 0]
        entropy[b, : len(g)] = -(rows.exp() * rows).sum(-1)
    return logp, entropy


@torch.no_grad()
def last_layer(
    model, rows: list[list[int]], pad_id: int, chunk: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """H [N, T, d] (the last decoder layer's normalised input) and its mask [N, T] over ``rows``."""
    ids, mask = pad(rows, pad_id)
    norm = model.get_decoder().layers[-1].input_layernorm
    H = [
        norm(model(input_ids=i, attention_mask=m, output_hidden_states=True).hidden_states[-2])
        for i, m in zip(ids.split(chunk), mask.split(chunk))
    ]
    return torch.cat(H), mask.bool()


def attention_weights(model) -> dict:
    """The last decoder layer's frozen W_Q / W_K / W_V and head layout (for ``CrossAttentionVelocity``)."""
    attn, config = model.get_decoder().layers[-1].self_attn, model.config
    return {
        "W_Q": attn.q_proj.weight,
        "W_K": attn.k_proj.weight,
        "W_V": attn.v_proj.weight,
        "n_heads": config.num_attention_heads,
        "n_kv_heads": config.num_key_value_heads,
    }
