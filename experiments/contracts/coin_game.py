"""The two-agent Coin Game (Lerer & Peysakhovich 2017; Foerster et al. 2018) as used by Ivanov et al.,
arXiv 2407.18074, Sec. 5: a red and a blue agent on an n×n torus, one coin (red or blue) at a time.
Moves are simultaneous (4 moves, no "stay"); an agent that lands on the coin collects it: +1 if the
coin has its colour, +0.2 otherwise, and *no* penalty for the owner (the paper removes it) [T].
If both land on it at once a fair coin decides who collects [R]. A collected coin respawns at a
uniform cell -- ``free``: not under an agent, as in the rllib/LOLA games; ``anywhere``: any cell --
with a uniform colour [R]. Episodes last ``horizon`` steps; agents start on distinct uniform cells.

:class:`CoinGameEnv` is a batch of ``num_envs`` games behind a PettingZoo-parallel-style API with
gymnasium spaces (pettingzoo itself is not a dependency): dicts keyed by agent, every value batched
over games. Observations are agent-centric 4-channel grids (own position, other's position,
own-colour coin, other-colour coin), so one network can serve both agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np

MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])  # up, down, left, right as (row, col) steps
AGENTS = ("red", "blue")  # agent i owns the coins of colour i


@dataclass  # not frozen: Lightning copies batch dataclasses field by field
class CoinGameSpec:
    size: int = 3  # the torus is size × size
    horizon: int = 20  # steps per episode
    gamma: float = 0.99  # discount of the returns we report
    own_reward: float = 1.0  # collecting a coin of one's own colour
    other_reward: float = 0.2  # collecting the other agent's coin
    respawn: Literal["free", "anywhere"] = "free"  # where a new coin may appear

    def __post_init__(self) -> None:
        if self.size < 2 or self.horizon < 1:
            raise ValueError(
                f"the Coin Game needs size >= 2 and horizon >= 1, got {self.size}, {self.horizon}"
            )
        if self.respawn not in ("free", "anywhere"):
            raise ValueError(f"respawn must be 'free' or 'anywhere', got {self.respawn!r}")

    @property
    def cells(self) -> int:
        return self.size * self.size

    @property
    def n_states(self) -> int:
        """(red cell, blue cell, coin cell, coin colour)."""
        return self.cells**3 * 2


def move(spec: CoinGameSpec, cell: np.ndarray, action: np.ndarray) -> np.ndarray:
    """The cell (row * size + col) reached from ``cell`` by ``action`` on the torus."""
    rc = (np.stack(np.divmod(cell, spec.size), -1) + MOVES[action]) % spec.size
    return rc[..., 0] * spec.size + rc[..., 1]


def coin_reward(spec: CoinGameSpec, collector: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return np.where(collector == colour, spec.own_reward, spec.other_reward)


def state_index(spec: CoinGameSpec, cells: np.ndarray, coin: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Index in [0, n_states) of (red cell, blue cell, coin cell, colour); ``cells`` is [..., 2]."""
    return ((cells[..., 0] * spec.cells + cells[..., 1]) * spec.cells + coin) * 2 + colour


def spawn_choices(spec: CoinGameSpec, cells: np.ndarray) -> np.ndarray:
    """Which cells a new coin may appear on, given the agents' cells [E, 2]   -> bool [E, cells]."""
    allowed = np.ones((cells.shape[0], spec.cells), dtype=bool)
    if spec.respawn == "free":
        rows = np.arange(cells.shape[0])
        allowed[rows, cells[:, 0]] = allowed[rows, cells[:, 1]] = False
    return allowed


def decode(spec: CoinGameSpec, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """State indices -> (agents' cells [..., 2], coin cell [...], colour [...])."""
    rest, colour = np.divmod(np.asarray(index), 2)
    rest, coin = np.divmod(rest, spec.cells)
    return np.stack(np.divmod(rest, spec.cells), -1), coin, colour


def observe(spec: CoinGameSpec, index: np.ndarray) -> np.ndarray:
    """Agent-centric grids of the states ``index`` [N]: for agent i the channels are its own cell, the
    other's cell, an own-colour coin, an other-colour coin   [N, 2 agents, 4, n, n]."""
    cells, coin, colour = decode(spec, index)
    N, rows = cells.shape[0], np.arange(cells.shape[0])
    grid = np.zeros((N, 2, 4, spec.cells), dtype=np.float32)
    for i in range(2):
        grid[rows, i, 0, cells[:, i]] = 1
        grid[rows, i, 1, cells[:, 1 - i]] = 1
        grid[rows, i, 2 + (colour != i), coin] = 1
    return grid.reshape(N, 2, 4, spec.size, spec.size)


class CoinGameEnv:
    """A batch of Coin Games, stepped in lockstep (all episodes have the same length)."""

    possible_agents = AGENTS

    def __init__(self, spec: CoinGameSpec, num_envs: int = 1, seed: int | None = None):
        self.spec, self.num_envs = spec, num_envs
        self.agents = list(AGENTS)
        self.np_random = np.random.default_rng(seed)
        self.cells = np.zeros((num_envs, 2), dtype=int)  # agents' cells            [E, 2]
        self.coin = np.zeros(num_envs, dtype=int)  # the coin's cell          [E]
        self.colour = np.zeros(num_envs, dtype=int)  # 0 red, 1 blue            [E]
        self.t = 0

    def observation_space(self, agent: str) -> gym.spaces.Box:
        return gym.spaces.Box(0.0, 1.0, (4, self.spec.size, self.spec.size), np.float32)

    def action_space(self, agent: str) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(len(MOVES))

    # ---- state ------------------------------------------------------------------------------
    def state(self) -> np.ndarray:
        """The global state index of every game   [E]."""
        return state_index(self.spec, self.cells, self.coin, self.colour)

    def set_state(self, index: np.ndarray, t: int = 0) -> None:
        self.cells, self.coin, self.colour = decode(self.spec, index)
        self.t = t

    def observations(self) -> dict[str, np.ndarray]:
        """Agent-centric grids (see :func:`observe`), one batch per agent   [E, 4, n, n]."""
        grids = observe(self.spec, self.state())
        return {agent: grids[:, i] for i, agent in enumerate(AGENTS)}

    def _spawn_coin(self, which: np.ndarray) -> None:
        allowed = spawn_choices(self.spec, self.cells[which])
        u = self.np_random.random((allowed.shape[0], 1))
        cumulative = np.cumsum(allowed, 1) / allowed.sum(1, keepdims=True)
        self.coin[which] = (u > cumulative).sum(1)  # a uniform allowed cell
        self.colour[which] = self.np_random.integers(0, 2, allowed.shape[0])

    # ---- PettingZoo-parallel-style API --------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        E, n2 = self.num_envs, self.spec.cells
        red = self.np_random.integers(0, n2, E)
        blue = (red + self.np_random.integers(1, n2, E)) % n2  # a distinct uniform cell
        self.cells = np.stack([red, blue], -1)
        self._spawn_coin(np.ones(E, dtype=bool))
        self.t = 0
        return self.observations(), {agent: {} for agent in AGENTS}

    def step(self, actions: dict[str, np.ndarray]):
        if self.t >= self.spec.horizon:
            raise RuntimeError("the episode is over; call reset()")
        a = np.stack([np.asarray(actions[agent], dtype=int).reshape(self.num_envs) for agent in AGENTS], -1)
        if np.any((a < 0) | (a >= len(MOVES))):
            raise ValueError(f"actions must be in [0, {len(MOVES)}), got {np.unique(a)}")
        self.cells = move(self.spec, self.cells, a)
        landed = self.cells == self.coin[:, None]  # [E, 2]
        collector = np.where(
            landed[:, 0] & landed[:, 1],
            self.np_random.integers(0, 2, self.num_envs),
            np.where(landed[:, 0], 0, 1),
        )
        collected = landed.any(1)
        rewards = np.zeros((self.num_envs, 2))
        gain = coin_reward(self.spec, collector, self.colour)
        rewards[collected, collector[collected]] = gain[collected]
        infos = {
            agent: {"collected": collected & (collector == i), "own_colour": self.colour == i}
            for i, agent in enumerate(AGENTS)
        }
        self._spawn_coin(collected)
        self.t += 1
        done = np.full(self.num_envs, self.t >= self.spec.horizon)
        return (
            self.observations(),
            {agent: rewards[:, i] for i, agent in enumerate(AGENTS)},
            {agent: np.zeros(self.num_envs, dtype=bool) for agent in AGENTS},
            {agent: done for agent in AGENTS},
            infos,
        )
