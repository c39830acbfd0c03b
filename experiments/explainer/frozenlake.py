"""FrozenLake-v1 4x4 (``is_slippery=False``) and its value-iteration policy: the agent to explain.

The decision context of a state is its grid position rendered as text, with the agent's action
hidden. ``facts(s)`` lists what the map says about each move (off the grid, into a hole, closer to
the goal); the explanation grammar and the readers use them. The policy is exact value iteration
on gymnasium's transition table (ties broken towards the lowest action index, as ``np.argmax``).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

ACTIONS = ("left", "down", "right", "up")  # gymnasium's FrozenLake action order
MOVES = {"left": (0, -1), "down": (1, 0), "right": (0, 1), "up": (-1, 0)}


@dataclass(frozen=True)
class Facts:
    """What the map says about each move from one state (dicts over the environment's actions, in order)."""

    wall: dict[str, bool]  # the move leaves the grid (the agent stays put)
    hole: dict[str, bool]  # the move lands in a hole
    closer: dict[str, bool]  # the move lowers the Manhattan distance to the goal


class FrozenLake:
    """The 4x4 map, the optimal policy (gamma = ``gamma``) and the non-terminal states."""

    actions = ACTIONS
    question = "So the agent moves"  # the LLM continuation judges' prompt end

    def __init__(self, gamma: float = 0.95):
        env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=False)
        self.desc = [b"".join(row).decode() for row in env.unwrapped.desc]  # ["SFFF", ...]
        self.P = env.unwrapped.P
        self.n = len(self.desc)
        self.goal = next((r, c) for r, row in enumerate(self.desc) for c, x in enumerate(row) if x == "G")
        self.states = [s for s in range(self.n * self.n) if self.cell(s) in "SF"]
        self.policy = self.value_iteration(gamma)

    def cell(self, s: int) -> str:
        return self.desc[s // self.n][s % self.n]

    def value_iteration(self, gamma: float, tol: float = 1e-12) -> dict[int, int]:
        """Exact optimal greedy action per state (Bellman iteration to ``tol``)."""
        S, A = self.n * self.n, len(ACTIONS)
        V = np.zeros(S)
        while True:
            Q = np.array(
                [
                    [
                        sum(p * (r + gamma * V[s2] * (not done)) for p, s2, r, done in self.P[s][a])
                        for a in range(A)
                    ]
                    for s in range(S)
                ]
            )  # [S, A]
            V_new = Q.max(1)
            if np.abs(V_new - V).max() < tol:
                return {s: int(np.argmax(Q[s])) for s in self.states}
            V = V_new

    def token_words(self, s: int) -> list[str]:
        """The tiny explainer's view of the context: ``at row r col c``."""
        r, c = divmod(s, self.n)
        return ["at", "row", str(r), "col", str(c)]

    def context(self, s: int) -> str:
        """The decision context as text (the agent's action is not in it)."""
        r, c = divmod(s, self.n)
        return (
            f"Grid rows: {' / '.join(self.desc)}. S start, F frozen, H hole, G goal. "
            f"The agent is at row {r}, column {c}."
        )

    def facts(self, s: int) -> Facts:
        r, c = divmod(s, self.n)
        dist = abs(self.goal[0] - r) + abs(self.goal[1] - c)
        wall, hole, closer = {}, {}, {}
        for a, (dr, dc) in MOVES.items():
            r2, c2 = r + dr, c + dc
            wall[a] = not (0 <= r2 < self.n and 0 <= c2 < self.n)
            hole[a] = not wall[a] and self.desc[r2][c2] == "H"
            closer[a] = not wall[a] and abs(self.goal[0] - r2) + abs(self.goal[1] - c2) < dist
        return Facts(wall, hole, closer)
