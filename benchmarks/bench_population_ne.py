"""Speed of the closed-form NE (LLM Active Alignment, arXiv:2602.06836) at K = 1000 agents x D = 100 groups.

Measured in one run, on one core, on the same games: the closed form (symmetric formula; for
heterogeneous agents the support-given D x D linear solve inside the active-set search) against the
reference path, damped best-response dynamics from the uniform profile run until no entry moves by
more than 1e-12. The ratio is dynamics time / closed-form time; both answers' KKT residuals and their
largest difference are printed too. Run: ``python benchmarks/bench_population_ne.py`` (``make bench``).
"""

import sys
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.population_ne.game import Game  # noqa: E402
from experiments.population_ne.kkt import kkt_residual  # noqa: E402
from experiments.population_ne.utilities import utility  # noqa: E402
from modules.population_ne.closed_form import active_set_ne, closed_form_ne  # noqa: E402
from modules.population_ne.dynamics import run_dynamics  # noqa: E402

K, D = 1000, 100


def timed(fn, repeats: int = 1):
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return out, (time.perf_counter() - start) / repeats


def games(rng: np.random.Generator) -> dict[str, Game]:
    M = rng.uniform(size=(D, D)) + 2 * np.eye(D)
    M /= M.sum(1, keepdims=True)
    rho = rng.dirichlet(np.ones(D))
    shared = np.broadcast_to(rng.dirichlet(np.ones(D)), (K, D))
    return {
        "symmetric, gamma = 0.005": Game(rho, M, shared, 5.0, 1.0, 0.005),
        "heterogeneous, gamma = 0.005": Game(rho, M, rng.dirichlet(np.ones(D), size=K), 5.0, 1.0, 0.005),
        "heterogeneous, gamma = 0.0005": Game(rho, M, rng.dirichlet(np.ones(D), size=K), 20.0, 1.0, 0.0005),
    }


def main() -> None:
    u, rows = utility("quadratic"), []
    uniform = np.full((1, K, D), 1.0 / D)  # the dynamics' start
    for name, game in games(np.random.default_rng(0)).items():
        W, t_closed = timed(lambda game=game: closed_form_ne(game, u), repeats=5)
        iters = active_set_ne(game)[1] if not game.symmetric else 0
        (B, n, ok), t_br = timed(lambda game=game: run_dynamics(game, u, uniform, "best_response", tol=1e-12))
        rows.append(
            [
                name,
                f"{t_closed * 1e3:.1f}",
                iters,
                f"{t_br * 1e3:.0f}",
                int(n[0]),
                bool(ok[0]),
                f"{t_br / t_closed:.0f}x",
                f"{kkt_residual(game, W, u):.1e}",
                f"{kkt_residual(game, B[0], u):.1e}",
                f"{np.abs(W - B[0]).max():.1e}",
            ]
        )
    print(f"Closed-form NE vs best-response dynamics, K = {K} agents x D = {D} groups, one core\n")
    print(
        tabulate(
            rows,
            headers=[
                "game",
                "closed form (ms)",
                "active-set iters",
                "BR dynamics (ms)",
                "BR iters",
                "BR converged",
                "ratio",
                "KKT closed",
                "KKT BR",
                "max |closed - BR|",
            ],
            tablefmt="github",
        )
    )


if __name__ == "__main__":
    main()
