"""population_ne core: the closed form against dynamics, brute force and the KKT residual on tiny
games; the Rosen Jacobian; the steering QP; bad input."""

import numpy as np
import pytest
from scipy.optimize import minimize

from experiments.population_ne.exclusion import ExclusionGrid
from experiments.population_ne.game import Game
from experiments.population_ne.kkt import kkt_residual
from experiments.population_ne.random_games import RandomGames
from experiments.population_ne.rosen import (
    max_symmetric_eigenvalue,
    pseudo_jacobian,
    quadratic_max_eigenvalue,
)
from experiments.population_ne.simplex import project_simplex
from experiments.population_ne.social_media import SocialMedia
from experiments.population_ne.utilities import utility
from modules.population_ne.closed_form import active_set_ne, closed_form_ne, symmetric_ne
from modules.population_ne.dynamics import run_dynamics
from modules.population_ne.steering import minimal_subsidy

Q = utility("quadratic")


def game(K=3, D=4, alpha=5.0, beta=1.0, gamma=0.4, seed=0, symmetric=False):
    rng = np.random.default_rng(seed)
    w0 = rng.dirichlet(np.ones(D), size=1 if symmetric else K)
    M = rng.uniform(size=(D, D)) + 2 * np.eye(D)
    return Game(
        rng.dirichlet(np.ones(D)),
        M / M.sum(1, keepdims=True),
        np.broadcast_to(w0, (K, D)),
        alpha,
        beta,
        gamma,
    )


def test_simplex_projection_is_the_nearest_point():
    rng = np.random.default_rng(0)
    for v in rng.normal(size=(20, 5)) * 2:
        ref = minimize(
            lambda x, v=v: ((x - v) ** 2).sum(),
            np.full(5, 0.2),
            method="SLSQP",
            bounds=[(0, 1)] * 5,
            constraints={"type": "eq", "fun": lambda x: x.sum() - 1},
            options={"ftol": 1e-14},
        ).x
        assert np.abs(project_simplex(v) - ref).max() < 1e-6


@pytest.mark.parametrize("seed", range(6))
def test_closed_form_matches_dynamics_and_kkt(seed):
    for symmetric in (True, False):
        g = game(seed=seed, symmetric=symmetric, alpha=[0.5, 3, 10][seed % 3])
        W = closed_form_ne(g, Q)
        starts = np.random.default_rng(seed).dirichlet(np.ones(g.D), size=(5, g.K))
        for kind in ("best_response", "projected_gradient"):
            B, _, ok = run_dynamics(g, Q, starts, kind)
            assert ok.all() and np.abs(B - W).max() < 1e-9
        assert kkt_residual(g, W, Q) < 1e-12


def test_no_agent_gains_by_deviating():
    """Brute force: no point of a fine grid of the simplex (D = 3) beats the NE for any agent."""
    g = game(K=3, D=3, seed=4)
    W = closed_form_ne(g, Q)
    t = np.linspace(0, 1, 61)
    grid = np.array([(x, y, 1 - x - y) for x in t for y in t if x + y <= 1 + 1e-12])
    for k in range(g.K):
        dev = np.repeat(W[None], len(grid), 0)
        dev[:, k] = np.maximum(grid, 0)
        assert (Q.payoff(g, dev)[:, k] <= Q.payoff(g, W)[k] + 1e-12).all()


def test_symmetric_formula_equals_active_set():
    g = game(K=5, D=6, symmetric=True, alpha=8.0)
    assert np.abs(symmetric_ne(g) - active_set_ne(g)[0]).max() < 1e-12


def test_active_set_at_scale():
    rng = np.random.default_rng(1)
    K, D = 300, 40
    M = rng.uniform(size=(D, D)) + 2 * np.eye(D)
    g = Game(
        rng.dirichlet(np.ones(D)),
        M / M.sum(1, keepdims=True),
        rng.dirichlet(np.ones(D), size=K),
        5.0,
        1.0,
        0.02,
    )
    W, _ = active_set_ne(g)
    assert kkt_residual(g, W, Q) < 1e-9 and (W == 0).any()


def test_rosen_jacobian():
    for gamma in (0.0, 0.5, 1.0, 2.0):
        g = game(K=4, gamma=gamma)
        lam = max_symmetric_eigenvalue(pseudo_jacobian(g, Q, g.w0))
        assert lam == pytest.approx(quadratic_max_eigenvalue(g), abs=1e-6)
        assert (lam < -1e-6) == (g.beta > gamma)


def test_kl_utility_dynamics_reach_a_kkt_point():
    g = game(K=3, D=4, alpha=4.0, gamma=0.3)
    kl = utility("kl")
    starts = np.random.default_rng(0).dirichlet(np.ones(4), size=(4, 3))
    B, _, ok = run_dynamics(g, kl, starts, "best_response")
    assert ok.all() and np.abs(B - B[:1]).max() < 1e-9 and kkt_residual(g, B[0], kl) < 1e-9
    with pytest.raises(ValueError, match="closed form is for utility=quadratic"):
        closed_form_ne(g, kl)


def test_minimal_subsidy_matches_brute_force():
    """Symmetric agents: the QP's subsidy is no larger than the best of a dense grid of feasible ones."""
    g = game(K=4, D=3, alpha=20.0, gamma=0.3, symmetric=True, seed=0)
    assert (closed_form_ne(g, Q).sum(0) <= 1e-9).any()
    sigma = minimal_subsidy(g, 0.05)
    assert closed_form_ne(g.subsidised(sigma), Q).sum(0).min() >= 0.05 - 1e-7
    t = np.linspace(0, 1.5 * np.abs(sigma).max() + 0.1, 21)
    best = min(
        np.linalg.norm(s)
        for s in (np.array([x, y, z]) for x in t for y in t for z in t)
        if closed_form_ne(g.subsidised(s), Q).sum(0).min() >= 0.05
    )
    assert np.linalg.norm(sigma) <= best + 1e-9


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rho=[0.5, 0.6]), r"shares rho must sum to 1"),
        (dict(rho=[1.2, -0.2]), r"shares rho has negative weights"),
        (dict(w0=[[1.5, -0.5]]), r"base alignments w0 has negative weights"),
        (dict(beta=0.0), r"beta \(consistency weight\) must be > 0"),
        (dict(beta=-1.0), r"beta \(consistency weight\) must be > 0"),
        (dict(gamma=-0.1), r"alpha and gamma must be >= 0"),
        (dict(M=[[1, -1], [0, 1]]), r"approval matrix M has negative weights"),
    ],
)
def test_bad_game(kwargs, match):
    base = dict(rho=[0.5, 0.5], M=np.eye(2), w0=[[0.5, 0.5]], alpha=1.0, beta=1.0, gamma=0.0)
    with pytest.raises(ValueError, match=match):
        Game(**{**base, **kwargs})


def test_bad_task_input():
    with pytest.raises(ValueError, match="shares rho must sum to 1"):
        ExclusionGrid(rho=[0.5, 0.4, 0.2])
    with pytest.raises(ValueError, match=r"beta.0\s+Input should be greater than 0"):
        RandomGames(beta=(0.0, 1.0))
    with pytest.raises(ValueError, match="gamma_over_beta range \\[0.9, 0.1\\] is empty"):
        RandomGames(gamma_over_beta=(0.9, 0.1))
    with pytest.raises(ValueError, match="must stay below 1"):
        ExclusionGrid(gamma_over_beta=[0.5, 1.0])
    with pytest.raises(ValueError, match="rho has 3 shares for 4 personas"):
        SocialMedia(rho=[0.5, 0.3, 0.2])
    with pytest.raises(ValueError, match="closed form needs beta > gamma"):
        closed_form_ne(game(gamma=1.5), Q)
