"""A low-dimensional dynamics pair with a known region-dependent shift (estimator checks).

    P_src(s' | s, a) = N(f(s, a), sigma^2 I),   f(s, a) = s + 0.1 tanh(s) + 0.2 [a, a_0, ...]
    P_tar(s' | s, a) = N(f(s, a) + c g(s, a), sigma^2 I),   g = (0.3 relu(s_0) a_0, 0.15 relu(s_0), 0, ...)

with s ~ U[-1, 1]^ds, a ~ U[-1, 1]^da. Both kernels are Gaussians with equal covariance (Diracs at
sigma = 0), so W1 = W2 = c ||g(s, a)||: the closed-form true gap, zero on the half s_0 <= 0.
"""

import numpy as np

from experiments.compflow.transitions import Transitions


def mean_next(s: np.ndarray, a: np.ndarray) -> np.ndarray:
    """f(s, a) [n, ds]; the action is tiled over the state dimensions."""
    reps = -(-s.shape[1] // a.shape[1])
    return s + 0.1 * np.tanh(s) + 0.2 * np.tile(a, reps)[:, : s.shape[1]]


def shift(s: np.ndarray, a: np.ndarray) -> np.ndarray:
    """g(s, a) [n, ds]: nonzero only where s_0 > 0."""
    g = np.zeros_like(s)
    g[:, 0] = 0.3 * np.maximum(s[:, 0], 0) * a[:, 0]
    g[:, 1] = 0.15 * np.maximum(s[:, 0], 0)
    return g


def sample_inputs(n: int, ds: int, da: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(-1, 1, (n, ds)).astype(np.float32), rng.uniform(-1, 1, (n, da)).astype(np.float32)


def target_mean(s: np.ndarray, a: np.ndarray, scale: float) -> np.ndarray:
    return mean_next(s, a) + scale * shift(s, a)


def transitions(
    n: int, ds: int, da: int, scale: float, sigma: float, rng: np.random.Generator
) -> Transitions:
    """``n`` transitions of the source (``scale = 0``) or target kernel."""
    s, a = sample_inputs(n, ds, da, rng)
    s2 = target_mean(s, a, scale) + sigma * rng.standard_normal(s.shape)
    return Transitions(s, a, s2.astype(np.float32))


def log_ratio(s: np.ndarray, a: np.ndarray, s2: np.ndarray, scale: float, sigma: float) -> np.ndarray:
    """log P_tar(s2 | s, a) / P_src(s2 | s, a) [n], the quantity DARC's classifiers estimate; +-inf
    where the Dirac kernels (sigma = 0) differ."""
    f, g = mean_next(s, a), scale * shift(s, a)
    if sigma == 0:
        return np.where(np.linalg.norm(g, axis=1) > 0, -np.inf, 0.0)
    return (((s2 - f) ** 2).sum(1) - ((s2 - f - g) ** 2).sum(1)) / (2 * sigma**2)


def true_gap(s: np.ndarray, a: np.ndarray, scale: float) -> np.ndarray:
    """W(P_src(.|s,a), P_tar(.|s,a)) = c ||g(s, a)|| in closed form."""
    return scale * np.linalg.norm(shift(s, a), axis=1)
