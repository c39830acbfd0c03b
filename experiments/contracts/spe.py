"""Exact solutions of a finite-horizon principal-agent MDP (Ivanov et al., arXiv 2407.18074, Sec. 3).

* :func:`backward_induction` -- the subgame-perfect equilibrium (SPE): leaves first, at every state
  the agent's truncated Q̄(s, a) = R(s, a) + γ E_{o ~ 𝒪(s,a), s' ~ T(s,o)} V(s') is known, so the
  principal solves the min-pay contract for every candidate a_p and implements the best one,
  q(s, a_p) = E_{o ~ 𝒪(s,a_p)}[R^p(s,o) - b*(o) + γ E V^p(s')].
* :func:`agent_best_response` -- the oracle agent: given a contract policy ρ, it solves its own
  MDP exactly (ties go the principal's way) and reports both players' values. It both evaluates
  learned contracts and is the agent half of the meta-algorithm.
* :func:`principal_best_response` -- the principal's exact best response to a fixed agent
  response *function* (a fixed Q̄), the principal half of the meta-algorithm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from experiments.contracts.contract import Contract, agent_response, check_payment, min_pay_lp
from experiments.contracts.mdp import PrincipalAgentMDP

ContractSolver = Callable[[np.ndarray, np.ndarray, int, float], Contract]  # (P, Q̄, a_p, ξ) -> contract


@dataclass(frozen=True)
class ContractPolicy:
    """ρ: the principal's recommended action and contract in every state."""

    action: np.ndarray  # a_p(s)     [S]
    payment: np.ndarray  # b(s, o)    [S, O]

    def __post_init__(self) -> None:
        check_payment(self.payment)

    def same_as(self, other: ContractPolicy, atol: float = 1e-12) -> bool:
        return bool(
            np.array_equal(self.action, other.action) and np.allclose(self.payment, other.payment, atol=atol)
        )


@dataclass(frozen=True)
class Solution:
    policy: ContractPolicy  # ρ
    response: np.ndarray  # the agent's action in every state under ρ          [S]
    Qbar: np.ndarray  # the agent's truncated Q̄(s, a) under ρ             [S, A]
    value_agent: np.ndarray  # V(s)                                               [S]
    value_principal: np.ndarray  # V^p(s)                                             [S]
    q: np.ndarray | None = None  # q(s, a_p); -inf where a_p is not implementable     [S, A]

    @property
    def principal_utility(self) -> float:
        return float(self.value_principal[0])


def truncated_q(mdp: PrincipalAgentMDP, s: int, value_agent: np.ndarray) -> np.ndarray:
    """Q̄(s, ·) = R(s, ·) + γ 𝒪(s, ·) E_{T(s, o)} V   [A]."""
    return mdp.reward[s] + mdp.gamma * mdp.outcome[s] @ mdp.expected_next(s, value_agent)


def principal_gross(mdp: PrincipalAgentMDP, s: int, value_principal: np.ndarray) -> np.ndarray:
    """E_{o ~ 𝒪(s, a)}[R^p(s, o) + γ E_{T(s, o)} V^p] for every action a, before payments   [A]."""
    return mdp.outcome[s] @ (mdp.principal_reward[s] + mdp.gamma * mdp.expected_next(s, value_principal))


def principal_step(
    mdp: PrincipalAgentMDP,
    s: int,
    Qbar_s: np.ndarray,
    value_principal: np.ndarray,
    xi: float,
    solver: ContractSolver,
) -> tuple[np.ndarray, list[Contract]]:
    """Min-pay contract for every candidate a_p at s and the principal's q(s, ·)   ([A], A contracts)."""
    contracts = [solver(mdp.outcome[s], Qbar_s, a, xi) for a in range(mdp.n_actions)]
    q = principal_gross(mdp, s, value_principal) - np.array([c.cost for c in contracts])
    if not np.isfinite(q).any():
        raise ValueError(
            f"no action is implementable at state {s} with nudge ξ={xi}: "
            "the outcome rows cannot separate the actions by ξ; lower ξ"
        )
    return q, contracts


def backward_induction(
    mdp: PrincipalAgentMDP, xi: float = 0.0, solver: ContractSolver = min_pay_lp
) -> Solution:
    """The SPE, states processed children first."""
    S, A, n_o = mdp.outcome.shape
    Qbar, q = np.zeros((S, A)), np.zeros((S, A))
    action, payment = np.zeros(S, dtype=int), np.zeros((S, n_o))
    Va, Vp = np.zeros(S), np.zeros(S)
    for s in reversed(mdp.order):
        Qbar[s] = truncated_q(mdp, s, Va)
        q[s], contracts = principal_step(mdp, s, Qbar[s], Vp, xi, solver)
        a_p = int(np.argmax(q[s]))
        action[s], payment[s] = a_p, contracts[a_p].payment
        Vp[s], Va[s] = q[s, a_p], Qbar[s, a_p] + contracts[a_p].cost
    return Solution(ContractPolicy(action, payment), action.copy(), Qbar, Va, Vp, q)


def agent_best_response(mdp: PrincipalAgentMDP, policy: ContractPolicy) -> Solution:
    """The oracle agent's exact best response to ρ (ties to the principal) and both players' values."""
    S, A, _ = mdp.outcome.shape
    Qbar, response = np.zeros((S, A)), np.zeros(S, dtype=int)
    Va, Vp = np.zeros(S), np.zeros(S)
    for s in reversed(mdp.order):
        P, b = mdp.outcome[s], policy.payment[s]
        Qbar[s] = truncated_q(mdp, s, Va)
        principal = principal_gross(mdp, s, Vp) - P @ b  # the principal's value of each agent action
        a = agent_response(P, Qbar[s], b, principal)
        response[s], Va[s], Vp[s] = a, Qbar[s, a] + P[a] @ b, principal[a]
    return Solution(policy, response, Qbar, Va, Vp)


def principal_best_response(
    mdp: PrincipalAgentMDP, Qbar: np.ndarray, xi: float = 0.0, solver: ContractSolver = min_pay_lp
) -> tuple[ContractPolicy, np.ndarray, np.ndarray]:
    """The principal's best response to the agent response function fixed by Q̄ [S, A]:
    returns (ρ, q [S, A], V^p [S])."""
    S, A, n_o = mdp.outcome.shape
    q, Vp = np.zeros((S, A)), np.zeros(S)
    action, payment = np.zeros(S, dtype=int), np.zeros((S, n_o))
    for s in reversed(mdp.order):
        q[s], contracts = principal_step(mdp, s, Qbar[s], Vp, xi, solver)
        a_p = int(np.argmax(q[s]))
        action[s], payment[s], Vp[s] = a_p, contracts[a_p].payment, q[s, a_p]
    return ContractPolicy(action, payment), q, Vp
