"""The population game: K LLM agents, each playing a mixture w_k in Delta_D over D human subpopulations.

LLM Active Alignment (arXiv:2602.06836): agent k's responses follow pi_{w_k} = sum_d w_kd pi_d, and it
chooses w_k strategically. The game data are the population shares rho in Delta_D, the approval
matrix M [D, D] (M[d, e]: how much group d approves content aligned with group e), the base (RLHF)
alignments w0 [K, D], and the incentive weights alpha (attractiveness), beta (consistency) and gamma
(diversity). The attractiveness of group e is a = M^T rho (+ a steering subsidy sigma). How these
enter each agent's utility is a reconstruction and lives in ``experiments/population_ne/utilities.py``.

Bad input fails here with a message naming the field: shares not summing to 1, negative shares,
approvals or base weights, base alignments off the simplex, beta <= 0, alpha or gamma < 0.
"""

from dataclasses import dataclass, field, replace

import numpy as np

TOL = 1e-9  # tolerance of "sums to 1"


def check_simplex(name: str, x: np.ndarray) -> None:
    if np.any(x < 0):
        raise ValueError(f"{name} has negative weights: {np.round(x[x < 0], 6).tolist()}")
    sums = x.sum(-1)
    if np.any(np.abs(sums - 1) > TOL):
        raise ValueError(
            f"{name} must sum to 1 (per row), got sums {np.round(np.atleast_1d(sums), 9).tolist()}"
        )


@dataclass
class Game:
    rho: np.ndarray  # [D] population shares
    M: np.ndarray  # [D, D] approval matrix
    w0: np.ndarray  # [K, D] base alignments
    alpha: float  # attractiveness weight
    beta: float  # consistency weight
    gamma: float  # diversity weight
    sigma: np.ndarray = field(default=None)  # [D] subsidy on attractiveness (steering), default 0

    def __post_init__(self):
        rho, M, w0 = (np.asarray(x, dtype=np.float64) for x in (self.rho, self.M, self.w0))
        sigma = np.zeros(len(rho)) if self.sigma is None else np.asarray(self.sigma, dtype=np.float64)
        D = len(rho)
        if M.shape != (D, D):
            raise ValueError(f"approval matrix M has shape {M.shape}, expected ({D}, {D}) for {D} groups")
        if w0.ndim != 2 or w0.shape[1] != D:
            raise ValueError(f"base alignments w0 have shape {w0.shape}, expected (K, {D})")
        check_simplex("shares rho", rho)
        check_simplex("base alignments w0", w0)
        if np.any(M < 0):
            raise ValueError("approval matrix M has negative weights")
        if sigma.shape != (D,) or np.any(sigma < 0):
            raise ValueError(f"subsidy sigma must be {D} non-negative numbers, got {sigma.tolist()}")
        if not self.beta > 0:
            raise ValueError(f"beta (consistency weight) must be > 0, got {self.beta}")
        if self.alpha < 0 or self.gamma < 0:
            raise ValueError(f"alpha and gamma must be >= 0, got alpha={self.alpha}, gamma={self.gamma}")
        for name, value in (("rho", rho), ("M", M), ("w0", w0), ("sigma", sigma)):
            setattr(self, name, value)

    @property
    def K(self) -> int:
        return self.w0.shape[0]

    @property
    def D(self) -> int:
        return self.w0.shape[1]

    @property
    def a(self) -> np.ndarray:
        """Attractiveness of each group's content, a = M^T rho + sigma [D]."""
        return self.M.T @ self.rho + self.sigma

    @property
    def symmetric(self) -> bool:
        """All agents share one base alignment."""
        return bool(np.all(self.w0 == self.w0[0]))

    def subsidised(self, sigma: np.ndarray) -> "Game":
        return replace(self, sigma=np.asarray(sigma, dtype=np.float64))


def excluded_groups(W: np.ndarray, eps: float) -> np.ndarray:
    """Political exclusion: groups whose total weight sum_k w_kd is <= eps. W [..., K, D] -> bool [..., D]."""
    return W.sum(-2) <= eps
