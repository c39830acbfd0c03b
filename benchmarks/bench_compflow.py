"""Speed of CompFlow's gap estimate (Kong et al., arXiv:2505.23062): caching between refits vs the
reference code's recomputation for every batch.

Between two adaptation-flow refits the flows are frozen, so gap(s, a) of every source transition
can be computed once per refit (``cached``: N rows x K draws, then a lookup per batch); the
reference recomputes it for each sampled batch (``recomputed``: B rows x K draws at each of the
``refit_every`` gradient steps). Both are timed here in one run, on one core, with the same flows;
recomputation is timed on ``probe`` batches and scaled to the refit interval. The estimates agree
up to Monte-Carlo noise (reported: relative difference of the mean gap over the dataset).
Run: ``python benchmarks/bench_compflow.py`` (``make bench``).
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.compflow import synthetic
from modules.compflow.flows import CompositeFlow

REFIT_EVERY, BATCH, K, PROBE = 1000, 128, 8, 50


def main() -> None:
    torch.set_num_threads(1)
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    rows = []
    for n in (5000, 20000):
        data = synthetic.transitions(n, 3, 2, 0.0, 0.02, rng)
        target = synthetic.transitions(2000, 3, 2, 1.0, 0.02, rng)
        flow = CompositeFlow(3, 2, hidden=64)
        s, a, s2 = (torch.as_tensor(x) for x in (data.s, data.a, data.s2))
        flow.fit_source(s, a, s2, g, steps=50, batch=512, lr=1e-3)
        flow.fit_target(
            *(torch.as_tensor(x) for x in (target.s, target.a, target.s2)), g, steps=50, batch=512, lr=1e-3
        )
        start = time.perf_counter()
        cache = flow.gap(s, a, K, g)[0]
        lookups = rng.integers(0, n, (REFIT_EVERY, BATCH))
        _ = [cache[idx] for idx in lookups]
        cached = time.perf_counter() - start
        start = time.perf_counter()
        fresh = [flow.gap(s[idx], a[idx], K, g)[0] for idx in lookups[:PROBE]]
        recomputed = (time.perf_counter() - start) * REFIT_EVERY / PROBE
        agree = abs(np.concatenate(fresh).mean() - cache[lookups[:PROBE]].mean()) / cache.mean()
        rows.append([n, f"{cached:.2f}", f"{recomputed:.2f}", f"{recomputed / cached:.1f}x", f"{agree:.3f}"])
    print(f"Gap estimate per refit interval ({REFIT_EVERY} steps, batch {BATCH}, K = {K}, one core)\n")
    print(
        tabulate(
            rows,
            headers=["source rows N", "cached s", "recomputed s", "speed-up", "rel. diff of mean gap"],
            tablefmt="github",
        )
    )


if __name__ == "__main__":
    main()
