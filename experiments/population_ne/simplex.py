"""Euclidean projection onto the probability simplex, batched over leading axes.

The sort-based closed form (Held, Wolfe & Crowder 1974; Duchi et al. 2008): with v sorted
decreasingly, rho = max{j : v_(j) - (sum_{i<=j} v_(i) - 1) / j > 0} and the threshold
tau = (sum_{i<=rho} v_(i) - 1) / rho, Pi(v) = max(v - tau, 0). Written here because neither numpy nor
scipy ships a batched simplex projection.
"""

import numpy as np


def simplex_threshold(v: np.ndarray) -> np.ndarray:
    """The threshold tau of each row of ``v`` [..., D] -> [...]: Pi(v) = max(v - tau, 0)."""
    u = -np.sort(-v, axis=-1)  # [..., D], decreasing
    css = np.cumsum(u, axis=-1) - 1.0
    j = np.arange(1, v.shape[-1] + 1)
    rho = np.count_nonzero(u - css / j > 0, axis=-1)  # [...], >= 1
    return np.take_along_axis(css, rho[..., None] - 1, axis=-1)[..., 0] / rho


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Pi_Delta(v) row-wise for ``v`` [..., D]."""
    return np.maximum(v - simplex_threshold(v)[..., None], 0.0)
