"""The stochastic generation simulator: one generation = one Bernoulli draw per outcome.

A generation under configuration theta at fidelity f shows advertiser i (e_i ~ Bernoulli(p_{f,i}))
and satisfies the user (u ~ Bernoulli(q_f)), so E[e] and E[u] are known exactly (the ground truth of
every estimate). :func:`draw` is vectorised over any leading shape (seeds x configurations x ...) and
returns sufficient statistics: welfare is linear in the bids, so outcome sums re-score any bid profile.
Generation k of a stream is the k-th block of ``rng.random`` whatever the chunking of the requests,
which makes common random numbers across reruns exact.
"""

from __future__ import annotations

import numpy as np

CHUNK = 64  # generations per block of uniforms (bounds memory at CHUNK x means.size doubles)


def draw(means: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Sums of m generations' outcomes: ``means`` [..., n + 1] -> counts [..., n + 1]."""
    counts = np.zeros(means.shape, dtype=np.int64)
    for start in range(0, m, CHUNK):
        counts += (rng.random((min(CHUNK, m - start), *means.shape)) < means).sum(0)  # [chunk, ...] -> [...]
    return counts
