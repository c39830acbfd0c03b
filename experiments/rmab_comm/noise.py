"""The systematic data-error model (Bandit Whisperer, Sec. "Problem formulation"; released code).

A noisy arm never sees its true reward r(s') but ``r~ = clip(r(s') + eps[arm, bin(s')], 0, 1)``:
the state range is cut into ``bins`` bins and every (arm, bin) gets ONE perturbation drawn when the
environment is created -- the same error on every visit (systematic), unlike i.i.d. reward noise.
The bin of maximal reward keeps its true reward (eps = 0 there). Shapes of eps:

* ``gaussian``: N(0, level^2);
* ``uniform``: U(-width, width);
* ``mixture``: per (arm, bin) a coin with P(uniform) = ``mixture_p`` picks U(-width, width), else N(0,
  level^2).
"""

from typing import Literal

import numpy as np

Shape = Literal["gaussian", "uniform", "mixture"]


def check_noise(shape: str, level: float, width: float, mixture_p: float) -> None:
    """Raise ``ValueError`` naming the argument when a noise parameter is out of range."""
    if shape not in ("gaussian", "uniform", "mixture"):
        raise ValueError(f"noise_shape={shape!r}; allowed: gaussian, uniform, mixture")
    if not level >= 0:
        raise ValueError(f"noise_level={level} must be >= 0 (the Gaussian std on a [0, 1] reward)")
    if not 0 < width <= 1:
        raise ValueError(f"noise_width={width} must be in (0, 1] (half-width of the uniform error)")
    if not 0 <= mixture_p <= 1:
        raise ValueError(f"noise_mixture_p={mixture_p} must be in [0, 1]")


class SystematicError:
    """One fixed perturbation per (arm, reward bin); ``observe`` applies it to true rewards."""

    def __init__(self, eps: np.ndarray):
        self.eps = eps  # [..., N, bins]

    @classmethod
    def draw(
        cls,
        n_arms: int,
        bins: int,
        top_bin: int,
        shape: str,
        level: float,
        width: float,
        mixture_p: float,
        rng: np.random.Generator,
    ) -> "SystematicError":
        check_noise(shape, level, width, mixture_p)
        gauss = rng.normal(0.0, level, (n_arms, bins))
        unif = rng.uniform(-width, width, (n_arms, bins))
        coin = rng.random((n_arms, bins)) < mixture_p
        eps = {"gaussian": gauss, "uniform": unif, "mixture": np.where(coin, unif, gauss)}[shape]
        eps[:, top_bin] = 0.0  # the best bin keeps its reward
        return cls(eps)

    @classmethod
    def stack(cls, errors: list["SystematicError"]) -> "SystematicError":
        """Replicas side by side: eps [B, N, bins]."""
        return cls(np.stack([e.eps for e in errors]))

    def observe(self, reward: np.ndarray, bin_index: np.ndarray) -> np.ndarray:
        """``reward``, ``bin_index``: [B, N] (eps [B, N, bins]) -> observed rewards [B, N]."""
        eps = np.take_along_axis(self.eps, bin_index[..., None], axis=-1)[..., 0]
        return np.clip(reward + eps, 0.0, 1.0)
