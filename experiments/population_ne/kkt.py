"""The KKT residual of a candidate equilibrium: the ground truth every solver is judged by.

W is a Nash equilibrium of the concave game iff, for every agent k, w_k maximises U_k over the simplex:
there is lambda_k with g_kd = lambda_k where w_kd > 0 and g_kd <= lambda_k where w_kd = 0
(g = dU_k / dw_k). With lambda_k = max_d g_kd this is the complementarity system
min(w_kd, lambda_k - g_kd) = 0, w_k >= 0, sum_d w_kd = 1; the residual is its largest violation
(tolerance-free: no support threshold is needed).
"""

import numpy as np

from experiments.population_ne.game import Game


def kkt_residual(game: Game, W: np.ndarray, utility) -> np.ndarray:
    """max over agents and groups of the KKT violation; W [..., K, D] -> [...]."""
    g = utility.gradient(game, W)  # [..., K, D]
    lam = g.max(-1, keepdims=True)
    complementarity = np.abs(np.minimum(W, lam - g)).max((-2, -1))
    feasibility = np.maximum(np.abs(W.sum(-1) - 1).max(-1), np.maximum(-W, 0).max((-2, -1)))
    return np.maximum(complementarity, feasibility)
