"""modules/hooks.py on a tiny randomly initialised Llama (GQA: 4 query heads, 2 KV heads); no download."""

import copy

import pytest
import torch

from modules.hooks import HeadPatch, HookedLM, patch_heads


@pytest.fixture(scope="module")
def tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    model = LlamaForCausalLM._from_config(
        copy.deepcopy(cfg), attn_implementation="eager", dtype=torch.float32
    )
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    model.eval()
    reference = LlamaForCausalLM._from_config(
        copy.deepcopy(cfg), attn_implementation="eager", dtype=torch.float32
    ).eval()
    reference.load_state_dict(model.state_dict())
    ids = torch.randint(0, 50, (3, 10), generator=torch.Generator().manual_seed(1))
    return HookedLM(model), reference, ids


@torch.no_grad()
def test_same_logits_as_eager_and_captures_shapes(tiny):
    hooked, reference, ids = tiny
    run = hooked.run(ids, capture=("z", "pattern", "q", "k", "normed"))
    assert torch.allclose(run.logits, reference(ids).logits, atol=1e-5)
    assert run.z[1].shape == (3, 10, 4, 8) and run.pattern[0].shape == (3, 4, 10, 10)
    assert run.q[0].shape == (3, 4, 10, 8) and run.k[0].shape == (3, 2, 10, 8)
    assert run.normed[1].shape == (3, 10, 32)
    assert torch.allclose(run.pattern[0].sum(-1), torch.ones(3, 4, 10), atol=1e-5)
    assert torch.all(run.pattern[0].triu(1) == 0)  # causal
    # post-RoPE q.k of head 3 (KV group 1) reproduces its pattern
    s = run.q[0][:, 3] @ run.k[0][:, hooked.kv_group(3)].transpose(1, 2) * hooked.head_dim**-0.5
    s = s + torch.full((10, 10), float("-inf")).triu(1)
    assert torch.allclose(torch.softmax(s, -1), run.pattern[0][:, 3], atol=1e-5)
    # the per-head writes sum to o_proj's output
    attn = hooked.layers[0].self_attn
    assert torch.allclose(
        hooked.head_write(0, run.z[0]).sum(-2), attn.o_proj(run.z[0].reshape(3, 10, -1)), atol=1e-5
    )


@torch.no_grad()
def test_patching_z_and_pattern_matches_a_manual_swap(tiny):
    hooked, _, ids = tiny
    other = torch.randint(0, 50, (3, 10), generator=torch.Generator().manual_seed(2))
    src = hooked.run(other, capture=("z", "pattern"))
    where = torch.zeros(1, 10, dtype=torch.bool)
    where[0, -1] = True
    patched = hooked.run(
        ids[:1], patch_z=[HeadPatch(1, 2, torch.tensor([0]), src.z[1][:1, :, 2], where)], capture=("z",)
    )
    assert torch.equal(patched.z[1][0, -1, 2], src.z[1][0, -1, 2])
    assert not torch.equal(patched.z[1][0, -2, 2], src.z[1][0, -2, 2])
    # patching every head's z at every layer with another input's values gives that input's logits
    everything = [
        HeadPatch(layer, h, torch.arange(3), src.z[layer][:, :, h]) for layer in (0, 1) for h in range(4)
    ]
    full = hooked.run(ids, patch_z=everything)
    mlp_only = hooked.run(ids)
    assert not torch.allclose(full.logits, mlp_only.logits)
    # pattern patch with the run's own pattern is the identity
    own = hooked.run(ids, capture=("pattern",))
    same = hooked.run(ids, patch_pattern=[HeadPatch(0, 1, torch.arange(3), own.pattern[0][:, 1])])
    assert torch.allclose(same.logits, own.logits, atol=1e-6)


@torch.no_grad()
def test_patch_heads_batched_equals_one_at_a_time(tiny):
    hooked, _, ids = tiny
    other = torch.randint(0, 50, (3, 10), generator=torch.Generator().manual_seed(3))
    src = hooked.run(other, capture=("z",)).z
    heads = [(layer, h) for layer in range(2) for h in range(4)]

    def metric(run, items):
        return run.logits[:, -1, 7]

    batched = patch_heads(hooked, ids, None, src, heads, metric, batch_size=7)
    single = torch.stack(
        [
            torch.stack(
                [
                    hooked.run(
                        ids[i : i + 1],
                        patch_z=[HeadPatch(layer, h, torch.tensor([0]), src[layer][i : i + 1, :, h])],
                    ).logits[0, -1, 7]
                    for (layer, h) in heads
                ]
            )
            for i in range(3)
        ]
    )
    assert torch.allclose(batched, single, atol=1e-5)


@torch.no_grad()
def test_left_padding_keeps_positions(tiny):
    hooked, _, ids = tiny
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids[:1]], 1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 10, dtype=torch.long)], 1)
    assert torch.allclose(
        hooked.run(padded, mask).logits[0, -1], hooked.run(ids[:1]).logits[0, -1], atol=1e-4
    )


def test_steering_edit_and_bias_and_gradients(tiny):
    hooked, _, ids = tiny
    base = hooked.run(ids).logits
    shifted = hooked.run(ids, edit_normed={1: lambda h: h + 1.0}).logits
    assert not torch.allclose(base, shifted)
    block = torch.zeros(10, 10)
    block[-1, :5] = float("-inf")  # last query never sees 0..4
    run = hooked.run(ids, attention_bias=block, capture=("pattern", "z"))
    assert torch.all(run.pattern[0][:, :, -1, :5] == 0)
    grad = torch.autograd.grad(run.logits[:, -1, 3].sum(), run.z[0])[0]
    assert grad.shape == run.z[0].shape and grad.abs().sum() > 0


def test_a_model_without_attention_hooks_is_refused():
    with pytest.raises(ValueError, match="no attention hooks"):
        HookedLM(torch.nn.Linear(2, 2))


@torch.no_grad()
def test_gemma3_architecture_is_hooked_too():
    """Gemma 3 (sliding-window layers, q/k norms, 4 query heads on 1 KV head) through the same hooks."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    cfg = Gemma3TextConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=8,
        sliding_window=4,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = Gemma3ForCausalLM._from_config(
        copy.deepcopy(cfg), attn_implementation="eager", dtype=torch.float32
    )
    reference = Gemma3ForCausalLM._from_config(
        copy.deepcopy(cfg), attn_implementation="eager", dtype=torch.float32
    )
    reference.load_state_dict(model.state_dict())
    model.eval(), reference.eval()
    ids = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(4))
    hooked = HookedLM(model)
    run = hooked.run(ids, capture=("z", "k"))
    assert torch.allclose(run.logits, reference(ids).logits, atol=1e-5)
    assert hooked.n_kv_heads == 1 and run.k[0].shape == (2, 1, 9, 8) and hooked.kv_group(3) == 0
