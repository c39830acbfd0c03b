"""The principal-agent MDP of Ivanov et al., "Principal-Agent Reinforcement Learning: Orchestrating AI
Agents with Contracts" (arXiv 2407.18074), Sec. 2: M = (S, s0, A, B, O, 𝒪, R, R^p, T, γ).

Each step the principal sees s and commits to a contract b ∈ B = R^{|O|}_{≥0} (limited liability);
the agent sees (s, b) and takes a hidden action a; an outcome o ~ 𝒪(s, a) is drawn; the agent gets
R(s, a) + b(o), the principal R^p(s, o) - b(o); the next state s' ~ T(s, o) depends on the outcome,
not on the action. Here the horizon is finite: the transition graph must be acyclic, and a row
T(s, o, ·) summing to 0 ends the episode (sub-stochastic rows end it with the missing mass).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

PROB_TOL = 1e-9  # how far a probability row may be from summing to 1


@dataclass  # not frozen: Lightning copies batch dataclasses field by field
class PrincipalAgentMDP:
    outcome: np.ndarray  # 𝒪[s, a, o]: outcome distribution of action a at s   [S, A, O]
    reward: np.ndarray  # R[s, a]: the agent's reward (an effort cost when < 0) [S, A]
    principal_reward: np.ndarray  # R^p[s, o]: the principal's reward of outcome o        [S, O]
    transition: np.ndarray  # T[s, o, s']: next-state distribution (sum 0 = end)  [S, O, S]
    gamma: float  # discount γ ∈ (0, 1]
    s0: int = 0  # the initial state
    order: tuple[int, ...] = field(init=False, repr=False)  # states, parents before children

    def __post_init__(self) -> None:
        Out, R, Rp, T = (
            np.asarray(x, dtype=np.float64)
            for x in (self.outcome, self.reward, self.principal_reward, self.transition)
        )
        if Out.ndim != 3:
            raise ValueError(f"outcome function 𝒪 must have shape [S, A, O], got {Out.shape}")
        S, A, n_o = Out.shape
        for name, x, shape in (
            ("reward R", R, (S, A)),
            ("principal_reward R^p", Rp, (S, n_o)),
            ("transition T", T, (S, n_o, S)),
        ):
            if x.shape != shape:
                raise ValueError(
                    f"{name} must have shape {list(shape)} (from 𝒪 of shape {list(Out.shape)}), "
                    f"got {list(x.shape)}"
                )
            if not np.all(np.isfinite(x)):
                raise ValueError(f"{name} has non-finite entries")
        if np.any(Out < 0) or np.any(T < 0):
            raise ValueError("probabilities in 𝒪 and T must be >= 0")
        sums = Out.sum(-1)
        if np.any(np.abs(sums - 1) > PROB_TOL):
            s, a = np.argwhere(np.abs(sums - 1) > PROB_TOL)[0]
            raise ValueError(f"outcome rows 𝒪(s, a) must sum to 1: 𝒪({s}, {a}) sums to {sums[s, a]:.6g}")
        row = T.sum(-1)
        if np.any(row > 1 + PROB_TOL):
            s, o = np.argwhere(row > 1 + PROB_TOL)[0]
            raise ValueError(
                f"transition rows T(s, o) must sum to at most 1: T({s}, {o}) sums to {row[s, o]:.6g}"
            )
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if not 0 <= self.s0 < S:
            raise ValueError(f"s0={self.s0} is not a state (S={S})")
        graph = nx.DiGraph()
        graph.add_nodes_from(range(S))
        graph.add_edges_from((int(s), int(t)) for s, _, t in np.argwhere(T > 0))
        if not nx.is_directed_acyclic_graph(graph):
            raise ValueError(f"transitions must be acyclic (finite horizon); cycle: {nx.find_cycle(graph)}")
        for name, x in (("outcome", Out), ("reward", R), ("principal_reward", Rp), ("transition", T)):
            object.__setattr__(self, name, x)
        object.__setattr__(self, "order", tuple(nx.topological_sort(graph)))

    @property
    def n_states(self) -> int:
        return self.outcome.shape[0]

    @property
    def n_actions(self) -> int:
        return self.outcome.shape[1]

    @property
    def n_outcomes(self) -> int:
        return self.outcome.shape[2]

    @property
    def depth(self) -> int:
        """Decision levels on the longest path (a complete binary tree of depth d has 2^d - 1 states)."""
        level = np.ones(self.n_states, dtype=int)
        for s in reversed(self.order):
            children = np.flatnonzero(self.transition[s].sum(0) > 0)
            if children.size:
                level[s] = 1 + level[children].max()
        return int(level.max())

    def expected_next(self, s: int, values: np.ndarray) -> np.ndarray:
        """E_{s' ~ T(s, o)} values[s'] for every outcome o (0 where the episode ends)   [O]."""
        return self.transition[s] @ values
