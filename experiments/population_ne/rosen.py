"""Rosen's (1965) diagonal strict concavity for the population game: the uniqueness condition.

The pseudo-gradient g(W) = (dU_k / dw_k)_k has Jacobian J [K D, K D]; if (J + J^T) / 2 is negative
definite the NE is unique and gradient play converges to it. For the quadratic utility
J = -(beta I_K + gamma (1 1^T - I_K)) (x) I_D, with eigenvalues -(beta - gamma) (multiplicity
(K - 1) D) and -(beta + (K - 1) gamma) (multiplicity D): negative definite iff beta > gamma (gamma >= 0).
The numerical Jacobian (central differences of any utility's gradient) is checked against that.
"""

import numpy as np

from experiments.population_ne.game import Game


def pseudo_jacobian(game: Game, utility, W: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """dg / dW at the profile W [K, D] by central differences: [K D, K D]."""
    KD = W.size
    E = h * np.eye(KD).reshape(KD, *W.shape)  # [KD, K, D] perturbations
    dg = utility.gradient(game, W + E) - utility.gradient(game, W - E)  # [KD, K, D]
    return dg.reshape(KD, KD).T / (2 * h)  # row (k, d), column (j, e)


def max_symmetric_eigenvalue(J: np.ndarray) -> float:
    return float(np.linalg.eigvalsh((J + J.T) / 2).max())


def quadratic_max_eigenvalue(game: Game) -> float:
    """The largest eigenvalue of the quadratic game's (symmetric) Jacobian, in closed form."""
    eig = [-(game.beta + (game.K - 1) * game.gamma)] + ([-(game.beta - game.gamma)] if game.K > 1 else [])
    return max(eig)
