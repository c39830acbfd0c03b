"""Min-pay contracts at one state (Ivanov et al., arXiv 2407.18074, Eq. 3 / App. "(17)").

Given the agent's truncated Q̄(s, ·) (its value of each action *excluding* the current payment) and
the outcome rows P = 𝒪(s, ·), the cheapest limited-liability contract that implements a_p solves

    min_b  P[a_p] · b   s.t.  Q̄(a_p) + P[a_p] · b >= Q̄(a) + P[a] · b + ξ   for all a ≠ a_p,   b >= 0

(ξ > 0 = nudging: a_p becomes strictly optimal by ξ). Infeasible = a_p is *not implementable*.
The LP goes to scipy's HiGHS; closed forms cover two actions (one IC constraint) and observed
actions (O = A, 𝒪 = identity), written once in batched torch for the learners and wrapped for
numpy. Ties in the agent's response go the principal's way (Lemma B.12).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linprog

TIE_TOL = 1e-9  # the agent treats values this close (relative to their scale) as a tie
HIGHS_TOL = 1e-10  # primal/dual feasibility tolerance asked of HiGHS (its tightest)


@dataclass(frozen=True)
class Contract:
    """A contract implementing ``action``; ``payment`` is None when the action is not implementable."""

    action: int
    payment: np.ndarray | None  # b(o) >= 0   [O]
    cost: float  # E_{o ~ 𝒪(s, action)} b(o); +inf if not implementable

    @property
    def implementable(self) -> bool:
        return self.payment is not None


def not_implementable(action: int) -> Contract:
    return Contract(action, None, float("inf"))


def check_inputs(P: np.ndarray, Qbar: np.ndarray, a_p: int, xi: float) -> None:
    """Clear errors for malformed inputs instead of a silently wrong contract."""
    if P.ndim != 2 or Qbar.shape != (P.shape[0],):
        raise ValueError(f"need outcome rows P [A, O] and Q̄ [A]; got {P.shape} and {Qbar.shape}")
    if np.any(P < 0) or np.any(np.abs(P.sum(1) - 1) > 1e-9):
        raise ValueError(f"outcome rows must be probability vectors that sum to 1; row sums {P.sum(1)}")
    if not 0 <= a_p < P.shape[0]:
        raise ValueError(f"recommended action {a_p} is not one of the {P.shape[0]} actions")
    if xi < 0:
        raise ValueError(f"the nudge ξ must be >= 0, got {xi}")


def check_payment(b: np.ndarray) -> None:
    if np.any(np.asarray(b) < 0):
        raise ValueError(f"limited liability: payments must be >= 0, got {np.asarray(b)}")


def min_pay_lp(P: np.ndarray, Qbar: np.ndarray, a_p: int, xi: float = 0.0) -> Contract:
    """The min-pay LP above, solved by HiGHS."""
    check_inputs(P, Qbar, a_p, xi)
    others = np.delete(np.arange(P.shape[0]), a_p)
    if Qbar[a_p] - Qbar[others].max(initial=-np.inf) >= xi:  # already (ξ-strictly) preferred: b = 0
        return Contract(a_p, np.zeros(P.shape[1]), 0.0)
    A_ub = P[others] - P[a_p]  # (P[a] - P[a_p]) · b <= Q̄(a_p) - Q̄(a) - ξ
    b_ub = Qbar[a_p] - Qbar[others] - xi
    res = linprog(
        P[a_p],
        A_ub=A_ub,
        b_ub=b_ub,
        bounds=(0, None),
        method="highs",
        options={"primal_feasibility_tolerance": HIGHS_TOL, "dual_feasibility_tolerance": HIGHS_TOL},
    )
    if res.status == 2:
        return not_implementable(a_p)
    if res.status != 0:
        raise RuntimeError(f"HiGHS failed on the min-pay LP ({res.message})")
    b = np.maximum(res.x, 0.0)
    return Contract(a_p, b, float(P[a_p] @ b))


def two_action_payments(
    P: torch.Tensor, Qbar: torch.Tensor, a_p: torch.Tensor, xi: float = 0.0
) -> torch.Tensor:
    """Closed form for |A| = 2 (any |O|), batched: one IC constraint, so pay on the single outcome with
    the best likelihood ratio P[a_p, o] / (P[a_p, o] - P[a, o]). Binary case (the paper's tree):
    b = [0, max(Q̄(a0) - Q̄(a1) + ξ, 0) / (p1 - p0)]. P [..., 2, O], Q̄ [..., 2], a_p [...] -> b [..., O];
    a row of NaN = a_p is not implementable."""
    n_o = P.shape[-1]
    other = 1 - a_p
    row_p, row_o = (
        P.gather(-2, a[..., None, None].expand(*a.shape, 1, n_o)).squeeze(-2) for a in (a_p, other)
    )  # [..., O]
    gap = (
        Qbar.gather(-1, other[..., None]).squeeze(-1) - Qbar.gather(-1, a_p[..., None]).squeeze(-1) + xi
    )  # extra pay due
    lift = row_p - row_o  # how much likelier each outcome is under a_p
    ratio = torch.where(lift > 0, row_p / lift.clamp(min=1e-300), torch.inf)
    o = ratio.argmin(-1, keepdim=True)
    amount = torch.where(
        gap[..., None] > 0, gap[..., None] / lift.gather(-1, o), torch.zeros_like(gap[..., None])
    )
    b = torch.zeros_like(lift).scatter(-1, o, amount)
    impossible = (gap > 0) & ~(lift > 0).any(-1)
    return torch.where(impossible[..., None], torch.nan, b)


def two_action_contract(P: np.ndarray, Qbar: np.ndarray, a_p: int, xi: float = 0.0) -> Contract:
    """:func:`two_action_payments` at one state."""
    check_inputs(P, Qbar, a_p, xi)
    if P.shape[0] != 2:
        raise ValueError(f"the two-action closed form needs 2 actions, got {P.shape[0]}")
    b = two_action_payments(torch.from_numpy(P), torch.from_numpy(Qbar), torch.tensor(a_p), xi).numpy()
    if np.isnan(b).any():
        return not_implementable(a_p)
    return Contract(a_p, b, float(P[a_p] @ b))


def observed_action_payments(Qbar, xi: float = 0.0):
    """Closed form when the outcome is the action (O = A, 𝒪 = identity): to implement a_p pay only for
    a_p, b(a_p) = max(max_{a≠a_p} Q̄(a) + ξ - Q̄(a_p), 0). Returns that payment for every a_p
    [..., A] (a torch tensor, or a numpy array for a numpy Q̄)."""
    if isinstance(Qbar, np.ndarray):
        return observed_action_payments(torch.from_numpy(Qbar.astype(np.float64)), xi).numpy()
    A = Qbar.shape[-1]
    mask = torch.eye(A, dtype=torch.bool, device=Qbar.device)
    others = Qbar.unsqueeze(-2).masked_fill(mask, -torch.inf)  # row a_p: Q̄ without a_p   [..., A, A]
    return (others.amax(-1) + xi - Qbar).clamp(min=0.0)


def observed_action_contract(Qbar: np.ndarray, a_p: int, xi: float = 0.0) -> Contract:
    """The observed-action closed form as a contract over outcomes = actions."""
    Qbar = np.asarray(Qbar, dtype=np.float64)
    check_inputs(np.eye(Qbar.size), Qbar, a_p, xi)
    b = np.zeros(Qbar.size)
    b[a_p] = observed_action_payments(Qbar, xi)[a_p]
    return Contract(a_p, b, float(b[a_p]))


def agent_response(P: np.ndarray, Qbar: np.ndarray, b: np.ndarray, principal_value: np.ndarray) -> int:
    """The agent's best response to contract b: argmax_a Q̄(a) + P[a]·b, ties (within TIE_TOL)
    broken in favour of the principal, whose value of each action is ``principal_value`` [A]."""
    check_payment(b)
    utility = Qbar + P @ b
    best = utility.max()
    ties = np.flatnonzero(utility >= best - TIE_TOL * max(1.0, abs(best)))
    return int(ties[np.argmax(principal_value[ties])])
