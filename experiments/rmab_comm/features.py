"""Arm features for similarity (Bandit Whisperer: a receiver hears from a SIMILAR arm).

z_i = W^T theta_i with W ~ U[0, 1]^{4x4} drawn once from a fixed seed (the released code's
"linear" feature transform), theta_i the arm's raw transition parameters (not standardised: on the
synthetic arms that would let the duplicated noise scale outweigh the pull effect). ``nearest`` is the
sender rule: the closest arm in feature space among the allowed.
"""

import numpy as np

W = np.random.default_rng(0).uniform(0.0, 1.0, (4, 4))


def arm_features(theta: np.ndarray) -> np.ndarray:
    """theta [N, 4] -> z [N, 4]."""
    return theta @ W


def nearest(z: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """For every arm i, the closest arm j != i with ``allowed[..., j]`` (z [..., N, d], allowed [..., N]);
    -1 where no arm is allowed."""
    dist = np.linalg.norm(z[..., :, None, :] - z[..., None, :, :], axis=-1)  # [..., N, N]
    n = z.shape[-2]
    dist = np.where(np.eye(n, dtype=bool) | ~allowed[..., None, :], np.inf, dist)
    best = dist.argmin(-1)
    return np.where(np.isfinite(dist.min(-1)), best, -1)
