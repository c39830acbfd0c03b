"""Tree-shaped principal-agent MDPs (Ivanov et al., arXiv 2407.18074, App. D.1).

* :func:`paper_tree` -- the paper's generative model: a complete binary tree, actions a0 (no effort)
  and a1 (effort), outcomes o0/o1 leading to the left/right subtree, P(o1 | a0) = 0.1,
  P(o1 | a1) = 0.9 in every state, R(s, a0) = 0, R(s, a1) = -u with v ~ U[0,1], u ~ U[0,1-v],
  R^p(s, o0) = 0, R^p(s, o1) = u with v ~ U[0,2], u ~ U[0,2-v], γ = 1 [T].
* :func:`random_tree` -- random finite trees for exact checks: |O| children per state, outcome rows
  ~ Dirichlet(1), agent rewards ~ -U[0,1], principal rewards ~ U[0,2] [R]; ``transition_noise`` > 0
  makes T(s, o) stochastic (mass spread uniformly over the children) to exercise general T.

States are numbered breadth-first from the root 0; a tree of depth d has d decision levels.
"""

from __future__ import annotations

import numpy as np

from experiments.contracts.mdp import PrincipalAgentMDP


def complete_tree(branching: int, depth: int) -> np.ndarray:
    """children[s, o] of a complete ``branching``-ary tree with ``depth`` levels (-1 = leaf)   [S, b]."""
    if depth < 1 or branching < 1:
        raise ValueError(f"a tree needs depth >= 1 and branching >= 1, got {depth}, {branching}")
    n = sum(branching**level for level in range(depth))
    children = np.arange(n)[:, None] * branching + 1 + np.arange(branching)[None, :]
    children[children >= n] = -1
    return children


def tree_transition(children: np.ndarray, noise: float = 0.0) -> np.ndarray:
    """T[s, o, s'] sending outcome o to child o w.p. 1 - noise, else to a uniform child   [S, O, S]."""
    if not 0 <= noise < 1:
        raise ValueError(f"transition noise must be in [0, 1), got {noise}")
    S, n_o = children.shape
    T = np.zeros((S, n_o, S))
    for s in np.flatnonzero(children[:, 0] >= 0):
        T[s, np.arange(n_o), children[s]] = 1 - noise
        T[s, :, children[s]] += noise / n_o
    return T


def nested_uniform(rng: np.random.Generator, high: float, size: int) -> np.ndarray:
    """u ~ U[0, high - v] with v ~ U[0, high] (the paper's reward sampler)."""
    v = rng.uniform(0, high, size)
    return rng.uniform(0, high - v)


def paper_tree(
    rng: np.random.Generator, depth: int, p_good: tuple[float, float] = (0.1, 0.9), gamma: float = 1.0
) -> PrincipalAgentMDP:
    children = complete_tree(2, depth)
    S = children.shape[0]
    outcome = np.array([[1 - p_good[0], p_good[0]], [1 - p_good[1], p_good[1]]])
    reward = np.zeros((S, 2))
    reward[:, 1] = -nested_uniform(rng, 1.0, S)
    principal_reward = np.zeros((S, 2))
    principal_reward[:, 1] = nested_uniform(rng, 2.0, S)
    return PrincipalAgentMDP(
        np.broadcast_to(outcome, (S, 2, 2)).copy(), reward, principal_reward, tree_transition(children), gamma
    )


def random_tree(
    rng: np.random.Generator,
    depth: int,
    n_actions: int,
    n_outcomes: int,
    gamma: float,
    transition_noise: float = 0.0,
) -> PrincipalAgentMDP:
    children = complete_tree(n_outcomes, depth)
    S = children.shape[0]
    return PrincipalAgentMDP(
        rng.dirichlet(np.ones(n_outcomes), size=(S, n_actions)),
        -rng.uniform(0, 1, (S, n_actions)),
        rng.uniform(0, 2, (S, n_outcomes)),
        tree_transition(children, transition_noise),
        gamma,
    )
