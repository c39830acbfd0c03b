"""A linear-Gaussian Dec-POMDP with a known global state (Wang, Dong et al., "On Diffusion Models for
Multi-Agent Partial Observability", arXiv:2410.13953; the synthetic stand-in for its benchmarks).

State ``s in R^d``, stationary prior ``N(0, I)``. The first ``2 * oscillators`` coordinates are
(position, velocity) pairs rotating by ``theta`` per step; the rest are static AR(1) coordinates:

    s_{t+1} = A s_t + sum_i b_i a_i^t + w_t,  A = sqrt(1 - q) blockdiag(R(theta), ..., 1, ...),  w ~ N(0, q I)
    o_i^t   = H_i s_t + v_i^t,                v ~ N(0, sigma^2 I)

Agent i's action ``a_i^t ~ N(0, action_std^2)`` (a random exploration policy) pushes coordinate
``action_coords[i]``; agent i knows only its own actions. A history is a window of ``K`` steps,
``tau_i = (o_i^0, a_i^0, ..., a_i^{K-2}, o_i^{K-1})``; the state to reconstruct is ``s_{K-1}``.

Observability over the window: ``s_{K-1}`` determines ``o_i^t`` through ``O_i = [H_i A^{t-K+1}]_t``
(noise aside), so agent i cannot resolve ``d - rank(O_i)`` directions (the null space of ``O_i``);
the system is *collectively observable* iff the agents' stacked ``O_i`` have full column rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg


@dataclass(frozen=True)
class LinearGaussianDecPOMDP:
    A: np.ndarray  # [d, d] dynamics
    Q: float  # process-noise variance per coordinate
    H: tuple[np.ndarray, ...]  # per agent [p_i, d] observation matrix
    obs_std: float  # observation-noise std
    B: np.ndarray  # [n, d] action direction of each agent (zero rows: no action)
    action_std: float
    window: int  # K

    @property
    def dim(self) -> int:
        return self.A.shape[0]

    @property
    def n_agents(self) -> int:
        return len(self.H)

    @property
    def obs_dims(self) -> list[int]:
        return [h.shape[0] for h in self.H]

    def observability(self, agents: list[int]) -> np.ndarray:
        """Stacked ``[H_i A^{t-K+1}]`` over the window and the given agents: [K * sum p_i, d]."""
        A_inv = np.linalg.inv(self.A)
        powers = [np.linalg.matrix_power(A_inv, self.window - 1 - t) for t in range(self.window)]
        return np.concatenate([self.H[i] @ P for i in agents for P in powers])

    def observable_projection(self, agents: list[int], tol: float = 1e-8) -> np.ndarray:
        """Orthogonal projection [d, d] onto the directions of ``s_{K-1}`` the agents' histories determine."""
        basis = scipy.linalg.orth(self.observability(agents).T, rcond=tol)  # [d, r]
        return basis @ basis.T

    def unobservable_basis(self, agents: list[int], tol: float = 1e-8) -> np.ndarray:
        """Orthonormal basis [d, d - r] of the directions nobody in ``agents`` can resolve."""
        return scipy.linalg.null_space(self.observability(agents), rcond=tol)

    def simulate(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` windows: states [n, K, d], actions [n, K-1, agents], obs [n, K, p_i] per agent."""
        d, K = self.dim, self.window
        s = np.empty((n, K, d))
        a = rng.normal(0.0, self.action_std, (n, max(K - 1, 0), self.n_agents)) * np.any(self.B, 1)
        s[:, 0] = rng.normal(size=(n, d))
        for t in range(1, K):
            s[:, t] = s[:, t - 1] @ self.A.T + a[:, t - 1] @ self.B + rng.normal(0, self.Q**0.5, (n, d))
        obs = [s @ h.T + rng.normal(0, self.obs_std, (n, K, h.shape[0])) for h in self.H]
        return {"states": s, "actions": a, "obs": obs}


def build_system(
    dim: int,
    oscillators: int,
    theta: float,
    process_noise: float,
    H: list[np.ndarray],
    obs_std: float,
    action_coords: list[int] | None,
    action_std: float,
    window: int,
) -> LinearGaussianDecPOMDP:
    blocks = [np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])] * oscillators
    A = np.sqrt(1 - process_noise) * scipy.linalg.block_diag(*blocks, np.eye(dim - 2 * oscillators))
    B = np.zeros((len(H), dim))
    for i, c in enumerate(action_coords or []):
        B[i, c] = 1.0
    return LinearGaussianDecPOMDP(
        A=A, Q=process_noise, H=tuple(H), obs_std=obs_std, B=B, action_std=action_std, window=window
    )
