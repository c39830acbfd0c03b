"""Ground truth of the sensor ring: the exact posterior ``p(theta_{K-1} | tau_G)`` of any agent set G by a
Bayes filter on a fine grid of the ring (brute force: predict by circular convolution with the motion
kernel, correct by the sensors' likelihood, at every step of the window). Written out because no installed
library filters a batch of histories on a circular grid.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from experiments.decpomdp_diffusion.sensor_ring import TAU, SensorRing, wrap


def cell_centers(cells: int) -> np.ndarray:
    """Angles [G] of the grid cells' centres."""
    return (np.arange(cells) + 0.5) * TAU / cells


def grid_posterior(
    ring: SensorRing, sensors: list[int], detected: np.ndarray, reading: np.ndarray, cells: int
) -> np.ndarray:
    """Posterior cell probabilities [n, G] of the final angle given ``sensors``' readings [n, K, J]."""
    grid = cell_centers(cells)
    move = wrap(np.arange(cells) * TAU / cells - ring.drift)  # [G] one step's displacement by m cells
    kernel = np.exp(-0.5 * (move / ring.process_std) ** 2)
    kernel_hat = np.fft.rfft(kernel / kernel.sum())
    p = np.full((detected.shape[0], cells), 1.0 / cells)  # theta_0 uniform
    for t in range(ring.window):
        if t > 0:  # p'(g) = sum_h p(h) kernel(g - h), circular
            p = np.fft.irfft(np.fft.rfft(p, axis=1) * kernel_hat, n=cells, axis=1).clip(min=0)
        p = p * ring.likelihood(grid, detected[:, t], reading[:, t], sensors)
        p /= p.sum(1, keepdims=True)
    return p


def sample_grid(p: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` exact draws [..., size] from cell probabilities ``p`` [..., G] (uniform within a cell)."""
    cells = p.shape[-1]
    cdf = np.cumsum(p, axis=-1)
    u = rng.uniform(size=(*p.shape[:-1], size)) * cdf[..., -1:]
    index = np.stack([np.searchsorted(c, v) for c, v in zip(cdf.reshape(-1, cells), u.reshape(-1, size))])
    index = np.minimum(index.reshape(u.shape), cells - 1)
    return (index + rng.uniform(size=u.shape)) * TAU / cells


def modes(p: np.ndarray, min_mass: float, floor: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """The posterior's modes on the ring: maximal circular arcs where ``p`` [G] exceeds ``floor x max p``,
    kept when they hold at least ``min_mass``. Returns masks [m, G] (heaviest first) and masses [m]."""
    labels, count = scipy.ndimage.label(p > floor * p.max())
    if count > 1 and labels[0] and labels[-1]:  # the arc through angle 0 is one arc
        labels[labels == labels[-1]] = labels[0]
    masks = np.stack([labels == k for k in np.unique(labels[labels > 0])])
    masses = masks @ p
    order = np.argsort(-masses)
    keep = order[masses[order] >= min_mass]
    return masks[keep], masses[keep]
