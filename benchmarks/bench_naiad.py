"""Speed of NaiAD's mean estimators (arXiv 2605.09918; ``modules/naiad/estimators.py``).

Measured in one run, on one core, on the same synthetic samples (n human labels, N judged items,
D = 4 dimensions): our PPI++ vectorised over the dimensions against the reference path, one
``ppi_py.ppi_mean_ci`` call per dimension. The intervals agree (largest difference printed); the
ratio is reference time / ours. Run: ``python benchmarks/bench_naiad.py`` (``make bench``).
"""

import sys
import time
from pathlib import Path

import numpy as np
from ppi_py import ppi_mean_ci
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modules.naiad.estimators import PPIpp  # noqa: E402

D, REPEATS = 4, 20


def timed(fn, *args):
    start = time.perf_counter()
    for _ in range(REPEATS):
        out = fn(*args)
    return (time.perf_counter() - start) / REPEATS, out


def ours(Y, S, S_unl):
    return PPIpp().estimate(Y, S, S_unl).interval(0.1)


def reference(Y, S, S_unl):
    return [ppi_mean_ci(Y[:, d], S[:, d], S_unl[:, d], alpha=0.1) for d in range(D)]


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for n, N in ((100, 5_000), (1_000, 50_000), (10_000, 500_000)):
        Y = rng.normal(50, 10, (n, D))
        S = 0.6 * Y + rng.normal(0, 5, (n, D))
        S_unl = 0.6 * rng.normal(50, 10, (N, D)) + rng.normal(0, 5, (N, D))
        ours_s, mine = timed(ours, Y, S, S_unl)
        ref_s, ref = timed(reference, Y, S, S_unl)
        gap = max(abs(mine[0][d] - float(np.ravel(ref[d][0])[0])) for d in range(D))
        rows.append(
            [n, N, f"{ours_s * 1e3:.2f}", f"{ref_s * 1e3:.2f}", f"{ref_s / ours_s:.1f}x", f"{gap:.1e}"]
        )
    print(
        tabulate(
            rows,
            headers=["n", "N", "ours ms", "ppi_py ms (per-dim loop)", "ratio", "max |diff|"],
            tablefmt="github",
        )
    )


if __name__ == "__main__":
    main()
