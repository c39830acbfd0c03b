"""Speed of IAMFM's generation simulator (arXiv:2604.06263): 300 seeds x 27 configurations x m generations.

Measured in one run, on one core:

* ``vectorised``: one :func:`experiments.iamfm.simulator.draw` call over all seeds and configurations;
* ``loop``: the reference, one call per (seed, configuration) -- what a per-arm simulator does;
* ``scalar``: a Python loop over single generations, timed on one seed and scaled by 300.

Ratios are reference / vectorised. The empirical means of both agree with the exact means (last
column: largest |mean - exact| over all seeds, configurations and outcomes). Run:
``python benchmarks/bench_iamfm.py`` (``make bench``); prints a markdown table.
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.iamfm.simulator import draw
from experiments.iamfm.task import AdAuctionTask

SEEDS = 300


def loop(means: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    return np.array([[draw(means[s, k], m, rng) for k in range(means.shape[1])] for s in range(len(means))])


def scalar(means: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    counts = np.zeros(means.shape, dtype=np.int64)
    for k in range(means.shape[0]):
        for _ in range(m):
            for j in range(means.shape[1]):
                counts[k, j] += rng.random() < means[k, j]
    return counts


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    task = AdAuctionTask(
        count=SEEDS,
        fidelities=[{"name": "proxy", "cost": 1.0, "bias": 0.08}, {"name": "target", "cost": 5.0}],
    )
    means = np.stack(
        [task.make(s).means[0] for s in range(SEEDS)]
    )  # [300, 27, 4]: the proxy differs per seed
    rng = np.random.default_rng(0)
    print(f"IAMFM simulator: {SEEDS} seeds x {means.shape[1]} configurations x m generations (one core)\n")
    print("| m | vectorised s | loop s | loop / vect. | scalar s (x300) | scalar / vect. | max error |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for m in (100, 1000, 3000):
        fast, t_fast = timed(draw, means, m, rng)
        ref, t_loop = timed(loop, means, m, rng)
        _, t_scalar = timed(scalar, means[0], m, rng)
        t_scalar *= SEEDS
        error = max(np.abs(fast / m - means).max(), np.abs(ref / m - means).max())
        print(
            f"| {m} | {t_fast:.3f} | {t_loop:.3f} | {t_loop / t_fast:.1f}x | {t_scalar:.1f} | "
            f"{t_scalar / t_fast:.0f}x | {error:.3f} |"
        )


if __name__ == "__main__":
    main()
