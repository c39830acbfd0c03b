"""Per-head access to any Hugging Face causal LM: caches, patterns, post-RoPE q/k and patching.

The transformer-circuits toolkit (Elhage et al., "A Mathematical Framework for Transformer
Circuits", 2021; activation patching as in Meng et al., arXiv:2202.05262, and Wang et al.,
arXiv:2211.00593) needs, per attention head h of layer l,

    z_h = A_h V_h                   (the head's output before o_proj, [T, d_head])
    write_h = z_h W_O[:, h]^T       (its additive write into the residual stream, [T, d_model])
    A_h = softmax(q_h k_h^T * scale + mask)   with q, k after RoPE.

Instead of wrapping module internals, :class:`HookedLM` registers one attention function with
transformers' ``AttentionInterface`` (the eager computation, written out so every intermediate is
reachable). Every model whose attention layers dispatch through that interface (Llama, SmolLM,
Gemma 2/3, Qwen 2/3, Mistral, OLMo 2, ...) gets, with no per-architecture code:

* captures of ``z`` [B, T, H, d_head], patterns [B, H, T, T], post-RoPE ``q`` [B, H, T, d_head]
  and ``k`` [B, H_kv, T, d_head] (GQA: ``kv_group(h) = h // (H / H_kv)``), and the normed input of
  each decoder layer [B, T, d_model] (what q, k and v are projected from);
* patches that overwrite, per batch row, one head's ``z`` (= its write) or its pattern at chosen
  positions: a batch can patch a different (layer, head, item) in every row, which is how
  :func:`patch_heads` sweeps all heads over all items in a few batched forwards;
* edits of a layer's normed input (steering, feature removal) and an additive attention bias
  (e.g. a mask that blocks some query -> key routes in every layer).

Models that do not dispatch through ``AttentionInterface`` raise a ``ValueError`` naming what is
missing. Nothing here knows any task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

IMPLEMENTATION = "atlas_hooks"
_ACTIVE: list[_Session] = []  # the session of the forward in flight (one at a time)


@dataclass
class HeadPatch:
    """Overwrite head ``head`` of layer ``layer`` in batch rows ``rows`` with ``value``.

    ``value``: ``z`` rows [n, T, d_head] (a :meth:`HookedLM.run` ``patch_z`` entry) or pattern
    rows [n, T, T] (a ``patch_pattern`` entry); ``where`` [n, T] bool selects query positions
    (None: all).
    """

    layer: int
    head: int
    rows: Tensor
    value: Tensor
    where: Tensor | None = None


@dataclass
class Run:
    """What one forward recorded. Dicts are keyed by layer index."""

    logits: Tensor  # [B, T, vocab]
    z: dict[int, Tensor] = field(default_factory=dict)  # [B, T, H, d_head]
    pattern: dict[int, Tensor] = field(default_factory=dict)  # [B, H, T, T]
    q: dict[int, Tensor] = field(default_factory=dict)  # [B, H, T, d_head], post-RoPE
    k: dict[int, Tensor] = field(default_factory=dict)  # [B, H_kv, T, d_head], post-RoPE
    normed: dict[int, Tensor] = field(default_factory=dict)  # [B, T, d_model], input of q/k/v


@dataclass
class _Session:
    capture: frozenset[str]
    layers: frozenset[int]
    patch_z: list[HeadPatch]
    patch_pattern: list[HeadPatch]
    attention_bias: Tensor | None
    run: Run


def _overwrite(x: Tensor, patches: list[HeadPatch], layer: int, head_dim: int) -> Tensor:
    """Apply the patches of ``layer`` to ``x`` ([B, H, T, ...] with heads on ``head_dim``)."""
    mine = [p for p in patches if p.layer == layer]
    if not mine:
        return x
    x = x.clone()
    for p in mine:
        index = (p.rows, p.head) if head_dim == 1 else (p.rows, slice(None), p.head)
        old = x[index]  # [n, T, ...]
        new = p.value.to(x.dtype)
        if p.where is not None:
            keep = p.where.view(*p.where.shape, *([1] * (old.dim() - 2)))
            new = torch.where(keep, new, old)
        x[index] = new
    return x


def _hooked_attention(
    module, query, key, value, attention_mask, scaling, dropout=0.0, softcap=None, **kwargs
):
    """Eager attention with capture and patch points (``query`` [B, H, T, d], ``key`` [B, H_kv, T, d])."""
    session, layer = (_ACTIVE[-1] if _ACTIVE else _PLAIN), module.layer_idx
    groups = query.shape[1] // key.shape[1]
    keys = key.repeat_interleave(groups, dim=1)  # [B, H, T, d] (GQA: shared)
    values = value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, keys.transpose(2, 3)) * scaling  # [B, H, T, T]
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        scores = scores + attention_mask[..., : keys.shape[-2]]
    if session.attention_bias is not None:
        scores = scores + session.attention_bias
    pattern = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    pattern = _overwrite(pattern, session.patch_pattern, layer, head_dim=1)
    pattern = torch.nn.functional.dropout(pattern, p=dropout, training=module.training)
    z = torch.matmul(pattern, values).transpose(1, 2)  # [B, T, H, d]
    z = _overwrite(z, session.patch_z, layer, head_dim=2)
    if layer in session.layers:
        run = session.run
        for name, x in (("z", z), ("pattern", pattern), ("q", query), ("k", key)):
            if name in session.capture:
                getattr(run, name)[layer] = x
    return z.contiguous(), pattern


_PLAIN = _Session(frozenset(), frozenset(), [], [], None, Run(logits=torch.empty(0)))  # a plain forward


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    AttentionInterface.register(IMPLEMENTATION, _hooked_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, eager_mask)


class HookedLM:
    """A causal LM whose heads can be read and patched. ``model`` is any transformers causal LM."""

    def __init__(self, model):
        config = getattr(model, "config", None)
        inner = getattr(model, "model", None)
        layers = getattr(inner, "layers", None)
        if config is None or layers is None or not hasattr(model, "set_attn_implementation"):
            raise ValueError(
                f"{type(model).__name__} is not a transformers causal LM with `.model.layers`: "
                "no attention hooks"
            )
        attn = getattr(layers[0], "self_attn", None)
        if attn is None or not all(hasattr(attn, n) for n in ("o_proj", "layer_idx", "head_dim")):
            raise ValueError(
                f"{type(model).__name__}: its attention has no o_proj/layer_idx/head_dim, "
                "so it does not dispatch through AttentionInterface (no attention hooks)"
            )
        _register()
        model.set_attn_implementation(IMPLEMENTATION)
        self.model, self.layers = model, layers
        self.n_layers = len(layers)
        self.n_heads = config.num_attention_heads
        self.n_kv_heads = getattr(config, "num_key_value_heads", None) or self.n_heads
        self.head_dim = attn.head_dim
        self.d_model = config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def kv_group(self, head: int) -> int:
        """The key/value head that query head ``head`` shares (GQA)."""
        return head // (self.n_heads // self.n_kv_heads)

    def W_O(self, layer: int) -> Tensor:
        """o_proj weight split by head: [H, d_head, d_model] (write_h = z_h @ W_O[h])."""
        w = self.layers[layer].self_attn.o_proj.weight  # [d_model, H * d_head]
        return w.T.reshape(self.n_heads, self.head_dim, self.d_model)

    def head_write(self, layer: int, z: Tensor) -> Tensor:
        """Per-head residual writes from ``z`` [..., H, d_head] -> [..., H, d_model] (no o_proj bias)."""
        return torch.einsum("...hd,hdm->...hm", z, self.W_O(layer))

    @contextlib.contextmanager
    def _edits(
        self, edits: dict[int, Callable[[Tensor], Tensor]], capture_normed: set[int], run: Run
    ) -> Iterator[None]:
        handles = []
        for layer in set(edits) | capture_normed:

            def hook(_module, _args, out, layer=layer):
                out = edits[layer](out) if layer in edits else out
                if layer in capture_normed:
                    run.normed[layer] = out
                return out

            handles.append(self.layers[layer].input_layernorm.register_forward_hook(hook))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def run(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        *,
        capture: tuple[str, ...] = (),
        layers: list[int] | None = None,
        patch_z: list[HeadPatch] = (),
        patch_pattern: list[HeadPatch] = (),
        edit_normed: dict[int, Callable[[Tensor], Tensor]] | None = None,
        attention_bias: Tensor | None = None,
        logits_to_keep: int = 0,
    ) -> Run:
        """One forward; ``capture`` names from {"z", "pattern", "q", "k", "normed"} for ``layers`` (all).

        ``logits_to_keep=k`` computes logits for the last k positions only (0: all; large vocabularies).
        Left padding is supported: positions restart at each row's first real token. Gradients flow
        when called outside ``torch.no_grad`` (captured tensors are the ones used downstream).
        """
        unknown = set(capture) - {"z", "pattern", "q", "k", "normed"}
        if unknown:
            raise ValueError(f"capture: unknown names {sorted(unknown)}")
        chosen = frozenset(range(self.n_layers) if layers is None else layers)
        run = Run(logits=torch.empty(0))
        session = _Session(
            frozenset(capture), chosen, list(patch_z), list(patch_pattern), attention_bias, run
        )
        position_ids = None
        if attention_mask is not None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        normed = set(chosen) if "normed" in capture else set()
        _ACTIVE.append(session)
        try:
            with self._edits(edit_normed or {}, normed, run):
                run.logits = self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    use_cache=False,
                    logits_to_keep=logits_to_keep,
                ).logits
        finally:
            _ACTIVE.pop()
        return run


def patch_heads(
    hooked: HookedLM,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    source: dict[int, Tensor],
    heads: list[tuple[int, int]],
    metric: Callable[[Run, Tensor], Tensor],
    where: Tensor | None = None,
    batch_size: int = 64,
    kind: str = "z",
    **run_kwargs,
) -> Tensor:
    """``metric`` after patching each head in ``heads`` alone, on every item: [n_items, n_heads].

    ``input_ids`` [N, T] is the run patched into; ``source[layer]`` holds the values patched in:
    ``z`` [N, T, H, d] (``kind="z"``) or patterns [N, H, T, T] (``kind="pattern"``); ``where``
    [N, T] picks query positions. Rows (item, head) are packed ``batch_size`` at a time, so one
    forward patches many heads of many items. ``metric(run, items [n]) -> [n]``; ``run_kwargs``
    (capture, layers, attention_bias, edit_normed) go to every :meth:`HookedLM.run`.
    """
    n = input_ids.shape[0]
    rows = [(i, j) for j in range(len(heads)) for i in range(n)]
    out = torch.empty(n, len(heads))
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        items = torch.tensor([i for i, _ in chunk])
        patches = []
        for j in sorted({j for _, j in chunk}):
            local = torch.tensor([r for r, (_, jj) in enumerate(chunk) if jj == j])
            layer, head = heads[j]
            src = items[local]
            value = source[layer][src, :, head] if kind == "z" else source[layer][src, head]  # [n, T, d|T]
            patches.append(HeadPatch(layer, head, local, value, None if where is None else where[src]))
        mask = None if attention_mask is None else attention_mask[items]
        kwargs = {"patch_z": patches} if kind == "z" else {"patch_pattern": patches}
        run = hooked.run(input_ids[items], mask, **kwargs, **run_kwargs)
        values = metric(run, items)
        for r, (i, j) in enumerate(chunk):
            out[i, j] = values[r]
    return out
