"""VCG with the Clarke pivot over configurations (IAMFM, arXiv:2604.06263; Clarke 1971, Groves 1973).

W(theta; b) = sum_i b_i mu_i(theta) + lambda nu(theta); W_{-i} drops advertiser i's term;
theta* = argmax W, H_{-i} = max W_{-i}, p_i = H_{-i} - W_{-i}(theta*) >= 0, u_i = v_i mu_i(theta*) - p_i.
Vectorised over configurations and advertisers; ties go to the lowest configuration index.
"""

from __future__ import annotations

import numpy as np


def vcg(means: np.ndarray, bids: np.ndarray, lam: float) -> tuple[int, np.ndarray, np.ndarray]:
    """(theta* index, payments [n], H_{-i} [n]) for exact means [K, n + 1]."""
    n = len(bids)
    W = means @ np.append(bids, lam)  # [K]
    W_minus = W[:, None] - means[:, :n] * bids  # [K, n]: W_{-i}(theta)
    star = int(np.argmax(W))
    H = W_minus.max(0)
    return star, H - W_minus[star], H
