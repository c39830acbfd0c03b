"""Speed of the explainer's reward path (Policy-to-Language, arXiv:2502.12530), as ratios.

Measured in one run, on one core:

* ``judge``: scoring (state, prefix) queries with the MiniLM judge, uncached vs the SQLite cache
  warm (the cache is what makes repeated prefixes free during RL);
* ``flow``: p_hat for a batch of prefixes with the cross-attention flow in one batched call vs one
  call per sentence prefix (the reference a naive reward loop would use).

Run: ``python benchmarks/bench_explainer.py`` (``make bench``).
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.explainer.grammar import PAD, context_tokens
from experiments.explainer.judges import CachedJudge, JudgeCache, MiniLMJudge
from experiments.explainer.task import ExplainerTask
from modules.explainer.flow import CrossAttentionVelocity, flow_probs
from modules.explainer.learner import Rollout
from modules.explainer.policy import TinyExplainer
from modules.llm import LanguageModel


def timed(fn, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    torch.set_num_threads(1)
    task = ExplainerTask(replicas=1)
    env, g = task.env, torch.Generator().manual_seed(0)
    explainer = TinyExplainer().eval()
    states = np.repeat(env.states, 6)
    prompts = torch.tensor([context_tokens(env, int(s)) for s in states])
    roll = Rollout(env, states, explainer.sample(prompts, 15, g))
    tokens, queries, _ = roll.prefixes()

    minilm = MiniLMJudge(env, LanguageModel().encoder(), task.minilm_temperature)
    with tempfile.TemporaryDirectory() as tmp:
        cached = CachedJudge(minilm, JudgeCache(Path(tmp) / "judgments.sqlite"))
        cached.probs(queries)  # warm the cache
        uncached_s, cached_s = timed(lambda: minilm.probs(queries)), timed(lambda: cached.probs(queries))

    flow = CrossAttentionVelocity(4, **explainer.attention(), hidden=128).eval()
    H, mask = explainer.last_layer(tokens), tokens != PAD

    def per_prefix():
        for i in range(len(tokens)):
            flow_probs(flow, (H[i : i + 1], mask[i : i + 1]), 1, 4, 0.1, 4, 4, g)

    batched_s = timed(lambda: flow_probs(flow, (H, mask), len(tokens), 4, 0.1, 4, 4, g))
    per_prefix_s = timed(per_prefix, repeat=1)
    print(f"{len(queries)} (state, prefix) queries; {len(tokens)} prefixes\n")
    print("| path | reference (s) | fast (s) | ratio |\n|---|---|---|---|")
    print(
        f"| MiniLM judge: uncached / SQLite cache | {uncached_s:.3f} | {cached_s:.3f} | "
        f"{uncached_s / cached_s:.1f}x |"
    )
    print(
        f"| flow p_hat: per prefix / batched | {per_prefix_s:.3f} | {batched_s:.3f} | "
        f"{per_prefix_s / batched_s:.1f}x |"
    )


if __name__ == "__main__":
    main()
