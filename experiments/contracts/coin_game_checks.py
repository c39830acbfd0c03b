"""Independent checks of the Coin Game DP (``coin_game_dp``): neither uses its vectorised model.

* :func:`rollouts` -- Monte-Carlo episodes of tabular policies in :class:`CoinGameEnv` (the simulator
  samples ties and respawns itself), with optional payments and a deviating agent.
* :func:`brute_force_welfare` -- plain recursive expectimax over joint actions and chance outcomes
  from the environment's primitive rules, for short horizons.
"""

from __future__ import annotations

from functools import cache
from itertools import product

import numpy as np

from experiments.contracts.coin_game import CoinGameEnv, CoinGameSpec, coin_reward, move, spawn_choices


def rollouts(
    spec: CoinGameSpec,
    policy: np.ndarray,
    episodes: int,
    rng: np.random.Generator,
    payment: np.ndarray | None = None,
    deviate_first: int | None = None,
) -> dict[str, np.ndarray]:
    """Discounted per-episode returns of a joint table policy a(t, s) [H, S]. With ``payment`` [H, S, 2],
    agent i is paid b_i(t, s) whenever it plays its recommended action; with ``deviate_first`` = i,
    agent i plays a uniform action at t = 0 and follows afterwards.
    Returns discounted {"reward": [N, 2], "payment": [N, 2]} and per-step means {"step_welfare": [H],
    "step_payment": [H]}."""
    env = CoinGameEnv(spec, num_envs=episodes, seed=int(rng.integers(2**31)))
    env.reset()
    reward, paid = np.zeros((episodes, 2)), np.zeros((episodes, 2))
    step_welfare, step_payment = np.zeros(spec.horizon), np.zeros(spec.horizon)
    for t in range(spec.horizon):
        s = env.state()
        recommended = np.stack(np.divmod(policy[t, s], 4), -1)  # [N, 2]
        actions = recommended.copy()
        if deviate_first is not None and t == 0:
            actions[:, deviate_first] = rng.integers(0, 4, episodes)
        pay = payment[t, s] * (actions == recommended) if payment is not None else np.zeros((episodes, 2))
        _, rewards, _, _, _ = env.step({"red": actions[:, 0], "blue": actions[:, 1]})
        r = np.stack([rewards["red"], rewards["blue"]], -1)
        reward += spec.gamma**t * r
        paid += spec.gamma**t * pay
        step_welfare[t], step_payment[t] = r.sum(1).mean(), pay.sum(1).mean()
    return {"reward": reward, "payment": paid, "step_welfare": step_welfare, "step_payment": step_payment}


def brute_force_welfare(spec: CoinGameSpec) -> float:
    """The cooperative optimum by exhaustive expectimax (exponential: keep the horizon short)."""
    n2 = spec.cells
    step = [[int(move(spec, np.array(c), np.array(a))) for a in range(4)] for c in range(n2)]
    spawn = {
        (r, b): np.flatnonzero(spawn_choices(spec, np.array([[r, b]]))[0]).tolist()
        for r, b in product(range(n2), repeat=2)
    }

    @cache
    def value(red: int, blue: int, coin: int, colour: int, left: int) -> float:
        if left == 0:
            return 0.0
        best = -np.inf
        for a_red, a_blue in product(range(4), repeat=2):
            r, b = step[red][a_red], step[blue][a_blue]
            collectors = [i for i, cell in enumerate((r, b)) if cell == coin]
            if not collectors:
                total = spec.gamma * value(r, b, coin, colour, left - 1)
            else:
                gain = np.mean([coin_reward(spec, i, colour) for i in collectors])
                future = np.mean([value(r, b, c, k, left - 1) for c in spawn[(r, b)] for k in (0, 1)])
                total = gain + spec.gamma * future
            best = max(best, total)
        return best

    starts = [
        (r, b, c, k) for r, b in product(range(n2), repeat=2) if r != b for c in spawn[(r, b)] for k in (0, 1)
    ]
    weights = [1.0 / len(spawn[(r, b)]) for r, b, _, _ in starts]  # the coin is uniform given the agents
    return float(np.average([value(*s, spec.horizon) for s in starts], weights=weights))
