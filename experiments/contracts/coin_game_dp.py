"""Exact finite-horizon dynamic programming on a small Coin Game (Ivanov et al., arXiv 2407.18074,
App. D.2 reference values for the 3×3 grid).

The state is (red cell, blue cell, coin cell, colour) and time t < H; joint actions are
a = 4 a_red + a_blue. The one-step model (:func:`build_model`) is built from the environment's own
rules (``coin_game.move``/``spawn_choices``/``coin_reward``) for every state and joint action at once:
without a collection the next state is deterministic, after one the coin respawns uniformly, so
E V(s') needs only the mean of V over the respawn choices of each pair of agent cells.

* :func:`cooperative` -- the social-welfare optimum (joint policy), and for that policy the exact
  min-pay observed-action contracts given the other agent follows: agent i's truncated value
  Q̄_i(s, a_i) = r_i(s, (a_i, a_-i^rec)) + γ E V_i(s'), with V_i = max_a Q̄_i (follow and be paid),
  and b_i(s) = max_a Q̄_i(s, a) + ξ - Q̄_i(s, a_i^rec) (the observed-action closed form). Among
  welfare-optimal joint actions ``tie="min_payment"`` picks the cheapest to implement (welfare
  first, payments second, as the principal's objective orders them) [R]; ``"first"`` the lowest index.
* :func:`iterated_best_responses` -- a pure selfish Markov-perfect equilibrium, reached by alternating
  exact best responses of red and blue from a starting joint policy [V/R].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from experiments.contracts.coin_game import (
    CoinGameSpec,
    coin_reward,
    decode,
    move,
    spawn_choices,
    state_index,
)
from experiments.contracts.contract import observed_action_payments

N_MOVES = 4
TIE_TOL = 1e-9  # joint actions within this of the best welfare count as optimal


@dataclass(frozen=True)
class CoinModel:
    spec: CoinGameSpec
    next_state: np.ndarray  # the next state when nobody collects          [S, 16]
    collected: np.ndarray  # whether someone collects the coin             [S, 16]
    pair: np.ndarray  # the agents' new cells as red * cells + blue   [S, 16]
    reward: np.ndarray  # expected rewards (a fair coin splits ties)    [S, 16, 2]
    spawn: np.ndarray  # respawn choices of every pair of cells        [cells², cells]

    def expected_next(self, V: np.ndarray) -> np.ndarray:
        """E V(s') for every state and joint action   [S, 16] (V is [S] or [S, k] -> [S, 16, k])."""
        n2 = self.spec.cells
        per_pair = V.reshape(n2 * n2, n2, 2, *V.shape[1:])  # [pairs, coin cell, colour, ...]
        weights = self.spawn / (2 * self.spawn.sum(1, keepdims=True))
        respawned = np.einsum("pc,pcz...->p...", weights, per_pair)  # mean over respawn choices [pairs, ...]
        collected = self.collected.reshape(*self.collected.shape, *([1] * (V.ndim - 1)))
        return np.where(collected, respawned[self.pair], V[self.next_state])


def build_model(spec: CoinGameSpec) -> CoinModel:
    n2 = spec.cells
    cells, coin, colour = decode(spec, np.arange(spec.n_states))  # [S, 2], [S], [S]
    joint = np.arange(N_MOVES * N_MOVES)
    actions = np.stack(np.divmod(joint, N_MOVES), -1)  # [16, 2]: (a_red, a_blue)
    new = move(spec, cells[:, None, :], actions[None, :, :])  # [S, 16, 2]
    landed = new == coin[:, None, None]  # [S, 16, 2]
    share = landed / np.maximum(landed.sum(-1, keepdims=True), 1)  # who collects, ties split 50/50
    reward = share * coin_reward(spec, np.arange(2)[None, None, :], colour[:, None, None])
    pairs = np.stack(np.divmod(np.arange(n2 * n2), n2), -1)
    return CoinModel(
        spec,
        state_index(spec, new, coin[:, None], colour[:, None]),
        landed.any(-1),
        new[..., 0] * n2 + new[..., 1],
        reward,
        spawn_choices(spec, pairs),
    )


def start_distribution(spec: CoinGameSpec) -> np.ndarray:
    """Agents on distinct uniform cells, the coin spawned as after a collection   [S]."""
    n2 = spec.cells
    p = np.zeros((n2, n2, n2, 2))
    spawn = spawn_choices(spec, np.stack(np.divmod(np.arange(n2 * n2), n2), -1)).reshape(n2, n2, n2)
    distinct = ~np.eye(n2, dtype=bool)
    p[...] = (distinct[..., None] * spawn / spawn.sum(-1, keepdims=True))[..., None] / 2
    return (p / p.sum()).reshape(-1)


@dataclass(frozen=True)
class CooperativeSolution:
    policy: np.ndarray  # welfare-optimal joint action a(t, s)                  [H, S]
    welfare: np.ndarray  # social welfare to go under it                         [H + 1, S]
    agent: np.ndarray  # each agent's value to go, following and being paid   [H + 1, S, 2]
    Qbar: np.ndarray  # Q̄_i(t, s, a_i) given the other follows               [H, S, 2, 4]
    payment: np.ndarray  # b_i(t, s) paid when agent i follows                   [H, S, 2]
    cost: np.ndarray  # the principal's payments to go                        [H + 1, S]


def cooperative(
    model: CoinModel, tie: Literal["min_payment", "first"] = "min_payment", xi: float = 0.0
) -> CooperativeSolution:
    spec, S = model.spec, model.spec.n_states
    H, gamma = spec.horizon, spec.gamma
    welfare, agent, cost = np.zeros((H + 1, S)), np.zeros((H + 1, S, 2)), np.zeros((H + 1, S))
    policy, Qbar, payment = np.zeros((H, S), dtype=int), np.zeros((H, S, 2, 4)), np.zeros((H, S, 2))
    rows = np.arange(S)
    for t in reversed(range(H)):
        Q = model.reward.sum(-1) + gamma * model.expected_next(welfare[t + 1])  # [S, 16]
        Qi = (model.reward + gamma * model.expected_next(agent[t + 1])).reshape(
            S, 4, 4, 2
        )  # [S, a_r, a_b, i]
        pay_red = observed_action_payments(Qi[..., 0].transpose(0, 2, 1), xi).transpose(
            0, 2, 1
        )  # [S, a_r, a_b]
        pay_blue = observed_action_payments(Qi[..., 1], xi)  # [S, a_r, a_b]
        pay = (pay_red + pay_blue).reshape(S, 16)
        optimal = Q >= Q.max(1, keepdims=True) - TIE_TOL
        if tie == "min_payment":
            price = pay + gamma * model.expected_next(cost[t + 1])
            choice = np.argmin(np.where(optimal, price, np.inf), 1)
        else:
            choice = np.argmax(optimal, 1)
        a_r, a_b = np.divmod(choice, 4)
        policy[t], welfare[t] = choice, Q[rows, choice]
        Qbar[t, :, 0], Qbar[t, :, 1] = Qi[rows, :, a_b, 0], Qi[rows, a_r, :, 1]
        payment[t, :, 0], payment[t, :, 1] = pay_red[rows, a_r, a_b], pay_blue[rows, a_r, a_b]
        agent[t] = np.stack([Qbar[t, rows, 0, a_r], Qbar[t, rows, 1, a_b]], -1) + payment[t]
        cost[t] = payment[t].sum(-1) + gamma * model.expected_next(cost[t + 1])[rows, choice]
    return CooperativeSolution(policy, welfare, agent, Qbar, payment, cost)


def evaluate(model: CoinModel, policy: np.ndarray) -> np.ndarray:
    """Each agent's value to go under a joint policy [H, S] (no payments)   [H + 1, S, 2]."""
    spec, S = model.spec, model.spec.n_states
    values = np.zeros((spec.horizon + 1, S, 2))
    rows = np.arange(S)
    for t in reversed(range(spec.horizon)):
        values[t] = (model.reward + spec.gamma * model.expected_next(values[t + 1]))[rows, policy[t]]
    return values


def payments_to_go(model: CoinModel, policy: np.ndarray, payment: np.ndarray) -> np.ndarray:
    """Discounted payments to go when both agents follow ``policy`` [H, S] and are paid
    ``payment`` [H, S, 2] for it   [H + 1, S]."""
    spec, S = model.spec, model.spec.n_states
    cost, rows = np.zeros((spec.horizon + 1, S)), np.arange(S)
    for t in reversed(range(spec.horizon)):
        cost[t] = payment[t].sum(-1) + spec.gamma * model.expected_next(cost[t + 1])[rows, policy[t]]
    return cost


def occupancy(model: CoinModel, policy: np.ndarray, start: np.ndarray) -> np.ndarray:
    """P(s_t = s) when play follows ``policy`` [H, S] from the distribution ``start`` [S]   [H, S]."""
    spec, S = model.spec, model.spec.n_states
    n2, rows = spec.cells, np.arange(S)
    weights = model.spawn / (2 * model.spawn.sum(1, keepdims=True))  # respawn (cell, colour) per pair
    d = np.zeros((spec.horizon, S))
    d[0] = start
    for t in range(spec.horizon - 1):
        a = policy[t]
        collected = model.collected[rows, a]
        np.add.at(d[t + 1], model.next_state[rows, a][~collected], d[t][~collected])
        per_pair = np.bincount(model.pair[rows, a][collected], d[t][collected], minlength=n2 * n2)
        d[t + 1] += (per_pair[:, None, None] * weights[:, :, None]).repeat(2, -1).reshape(-1)
    return d


def best_response(model: CoinModel, policy: np.ndarray, i: int) -> np.ndarray:
    """Agent i's exact best response to the other's part of ``policy`` (keeping its own action on ties)."""
    spec, S = model.spec, model.spec.n_states
    rows, moves = np.arange(S), np.arange(N_MOVES)
    own = np.stack(np.divmod(policy, N_MOVES), -1)  # [H, S, 2]
    value, new = np.zeros(S), policy.copy()
    for t in reversed(range(spec.horizon)):
        if i == 0:  # joint actions open to agent i   [S, 4]
            joint = moves[None, :] * N_MOVES + own[t, :, 1:2]
        else:
            joint = own[t, :, 0:1] * N_MOVES + moves[None, :]
        Q = (model.reward[..., i] + spec.gamma * model.expected_next(value))[rows[:, None], joint]  # [S, 4]
        keep = Q[rows, own[t, :, i]] >= Q.max(1) - TIE_TOL
        a = np.where(keep, own[t, :, i], np.argmax(Q, 1))
        new[t] = joint[rows, a]
        value = Q[rows, a]
    return new


def iterated_best_responses(
    model: CoinModel, policy: np.ndarray, max_rounds: int = 100
) -> tuple[np.ndarray, int, bool]:
    """Red and blue best-respond in turn until neither changes: (policy, rounds, converged)."""
    for k in range(1, max_rounds + 1):
        new = best_response(model, best_response(model, policy, 0), 1)
        if np.array_equal(new, policy):
            return new, k, True
        policy = new
    return policy, max_rounds, False
