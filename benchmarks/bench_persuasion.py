"""Speed of restoration patching (Sun et al., arXiv:2605.09314, Eq. 2): every attention head patched
alone at the last position on 32 items, batched over (item, head) rows by ``modules.hooks.patch_heads``
vs one forward per (item, head) -- the reference, timed in the same run on a random sample of rows
(its values must equal the batched ones) and reported per row.

The model is SmolLM2-135M-Instruct (270 heads, GQA) when its package is installed, else a small
random Llama. Run: ``python benchmarks/bench_persuasion.py [--sample N] [--tokens T]`` (``make bench``).
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modules.hooks import HeadPatch, HookedLM, patch_heads


def load_model():
    try:
        from modules.llm import LanguageModel

        model, _ = LanguageModel().load()
        return model, "SmolLM2-135M-Instruct"
    except (FileNotFoundError, ImportError, OSError):
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(
            vocab_size=512,
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=6,
            num_attention_heads=8,
            num_key_value_heads=4,
        )
        return LlamaForCausalLM._from_config(cfg, dtype=torch.float32).eval(), "random Llama (6 x 8 heads)"


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--sample", type=int, default=48, help="(item, head) rows timed one at a time")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, name = load_model()
    hooked = HookedLM(model)
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    pers = torch.randint(100, vocab, (args.items, args.tokens), generator=gen)
    clean = torch.randint(100, vocab, (args.items, args.tokens), generator=gen)
    source = hooked.run(clean, capture=("z",)).z
    heads = [(layer, h) for layer in range(hooked.n_layers) for h in range(hooked.n_heads)]
    where = torch.zeros(args.items, args.tokens, dtype=torch.bool)
    where[:, -1] = True

    def metric(run, items):
        return run.logits[:, -1].log_softmax(-1)[:, 0]

    start = time.perf_counter()
    batched = patch_heads(
        hooked, pers, None, source, heads, metric, where=where, batch_size=args.batch, logits_to_keep=1
    )
    t_batched = (time.perf_counter() - start) / batched.numel()
    pick = torch.randperm(batched.numel(), generator=gen)[: args.sample]
    start, err = time.perf_counter(), 0.0
    for flat in pick.tolist():
        i, j = divmod(flat, len(heads))
        layer, h = heads[j]
        patch = HeadPatch(layer, h, torch.tensor([0]), source[layer][i : i + 1, :, h], where[i : i + 1])
        value = metric(hooked.run(pers[i : i + 1], patch_z=[patch], logits_to_keep=1), None)[0]
        err = max(err, float((value - batched[i, j]).abs()))
    t_single = (time.perf_counter() - start) / len(pick)
    print(
        f"\nRestoration patching, {name}: {len(heads)} heads x {args.items} items, "
        f"{args.tokens} tokens, 1 thread\n"
    )
    print("| path | rows | s / row | ratio |\n| --- | --- | --- | --- |")
    print(
        f"| batched (patch_heads, {args.batch} rows / forward) | {batched.numel()} | {t_batched:.4f} | 1.0 |"
    )
    print(
        f"| one (item, head) per forward | {len(pick)} sampled | {t_single:.4f} | "
        f"{t_single / t_batched:.1f} |"
    )
    print(f"\nmax |batched - one at a time| on the sampled rows: {err:.2e}")


if __name__ == "__main__":
    main()
