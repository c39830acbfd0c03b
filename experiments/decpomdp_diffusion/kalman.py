"""Exact posteriors ``p(s_{K-1} | tau_G)`` of the linear-Gaussian Dec-POMDP for any agent set G.

The Kalman filter (Kalman 1960) over the window: agents in G know their own actions (a control
input) and observations; the other agents' actions are unknown to G and enter as extra process noise
``action_std^2 b_j b_j^T``. The posterior covariance does not depend on the data; the mean is
linear in it. Written out (a dozen lines) because no installed library filters a batch of histories.
"""

from __future__ import annotations

import numpy as np

from experiments.decpomdp_diffusion.linear_gaussian import LinearGaussianDecPOMDP


def kalman_posterior(
    system: LinearGaussianDecPOMDP, agents: list[int], actions: np.ndarray, obs: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean [n, d] and covariance [d, d] of ``s_{K-1}`` given the agents' histories.

    ``actions`` [n, K-1, n_agents] and ``obs`` (per agent [n, K, p_i]) as from ``system.simulate``.
    """
    d, n = system.dim, actions.shape[0]
    others = [j for j in range(system.n_agents) if j not in agents]
    Q = system.Q * np.eye(d) + system.action_std**2 * system.B[others].T @ system.B[others]
    H = np.concatenate([system.H[i] for i in agents])  # [p, d]
    R = system.obs_std**2 * np.eye(H.shape[0])
    y = np.concatenate([obs[i] for i in agents], axis=-1)  # [n, K, p]
    mean, cov = np.zeros((n, d)), np.eye(d)
    for t in range(system.window):
        if t > 0:
            mean = mean @ system.A.T + actions[:, t - 1, agents] @ system.B[agents]
            cov = system.A @ cov @ system.A.T + Q
        gain = np.linalg.solve(H @ cov @ H.T + R, H @ cov).T  # [d, p]
        mean = mean + (y[:, t] - mean @ H.T) @ gain.T
        cov = (np.eye(d) - gain @ H) @ cov
    return mean, (cov + cov.T) / 2
