"""The meta-algorithm (Alg. 1) of Ivanov et al., "Principal-Agent Reinforcement Learning:
Orchestrating AI Agents with Contracts" (arXiv 2407.18074), as an exact solver.

Start from the zero contract policy ρ and alternate exact best responses:

1. agent:     π ← BR(ρ), the agent's optimal policy in the MDP that ρ induces, which fixes its
              truncated Q̄(s, a) and so its response to *any* contract at every state;
2. principal: ρ ← BR(π), backward induction of the principal against that response function
              (per state: the min-pay LP for every candidate a_p, implement the best).

Stop at a fixed point ρ_k = ρ_{k-1}. Thm 3.3: on a finite horizon of depth d this is the SPE after
at most d + 1 rounds (round k fixes the contracts of the last k levels; the last round confirms).
Evaluation (``test_step``) compares, on every tree, the meta-algorithm's principal value with the
SPE of :func:`experiments.contracts.spe.backward_induction` (the independent ground truth), checks
that the oracle agent facing the SPE contracts returns exactly the SPE value (tie-break towards
a_p), and that the two-action closed form equals the LP at every two-action state.
DDP: trees are sharded over ranks; each rank solves its own trees.
"""

from typing import Annotated

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveInt

from experiments.contracts.contract import Contract, min_pay_lp, two_action_contract
from experiments.contracts.mdp import PrincipalAgentMDP
from experiments.contracts.spe import (
    ContractPolicy,
    ContractSolver,
    agent_best_response,
    backward_induction,
    principal_best_response,
)
from modules.base import AtlasModule


class MemoSolver:
    """Memoises exact LP results per (𝒪(s), Q̄(s), a_p, ξ): late rounds of the meta-algorithm revisit the
    same deep states with unchanged Q̄, and re-solving identical LPs dominates the run time."""

    def __init__(self, solver: ContractSolver = min_pay_lp):
        self.solver, self.cache = solver, {}

    def __call__(self, P: np.ndarray, Qbar: np.ndarray, a_p: int, xi: float) -> Contract:
        key = (P.tobytes(), Qbar.tobytes(), a_p, xi)
        if key not in self.cache:
            self.cache[key] = self.solver(P, Qbar, a_p, xi)
        return self.cache[key]


def meta_algorithm(
    mdp: PrincipalAgentMDP, xi: float = 0.0, max_iterations: int = 50, solver: ContractSolver = min_pay_lp
) -> tuple[ContractPolicy, int, np.ndarray]:
    """Alternating best responses from ρ = 0. Returns (ρ, rounds run, the principal's utility against the
    exactly best-responding agent after every round [rounds])."""
    solver = MemoSolver(solver)
    rho = ContractPolicy(np.zeros(mdp.n_states, dtype=int), np.zeros((mdp.n_states, mdp.n_outcomes)))
    utilities = []
    for k in range(1, max_iterations + 1):
        agent = agent_best_response(mdp, rho)  # π ← BR(ρ): fixes Q̄
        new, _, _ = principal_best_response(mdp, agent.Qbar, xi, solver)  # ρ ← BR(π)
        utilities.append(agent_best_response(mdp, new).principal_utility)
        if new.same_as(rho):
            return new, k, np.array(utilities)
        rho = new
    return rho, max_iterations, np.array(utilities)


def closed_form_gap(mdp: PrincipalAgentMDP, Qbar: np.ndarray, xi: float) -> tuple[float, int]:
    """Largest |closed form - LP| (payments and costs) over every two-action state and a_p, and how many
    of those comparisons needed a positive payment: (gap, nontrivial checks)."""
    if mdp.n_actions != 2:
        return 0.0, 0
    gap, nontrivial = 0.0, 0
    for s in range(mdp.n_states):
        for a_p in range(2):
            lp, closed = (f(mdp.outcome[s], Qbar[s], a_p, xi) for f in (min_pay_lp, two_action_contract))
            if lp.implementable != closed.implementable:
                return float("inf"), nontrivial
            if lp.implementable:
                gap = max(gap, abs(lp.cost - closed.cost), float(np.abs(lp.payment - closed.payment).max()))
                nontrivial += lp.cost > 0
    return gap, nontrivial


class MetaAlgorithm(AtlasModule):
    """Alg. 1 on every instance tree, checked against backward induction."""

    needs = "contract_trees"
    models = ("none",)
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        xi: NonNegativeFloat = 0.0,
        max_iterations: Annotated[int, Field(ge=2)] = 50,
        curve_length: PositiveInt = 12,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])

    def test_step(self, batch, batch_idx):
        index, mdp = batch
        xi = self.hparams.xi
        spe = backward_induction(mdp, xi)
        oracle = agent_best_response(mdp, spe.policy)
        rho, rounds, utilities = meta_algorithm(mdp, xi, self.hparams.max_iterations)
        gap, checks = closed_form_gap(mdp, spe.Qbar, xi)
        curve = np.full(self.hparams.curve_length, utilities[-1])  # padded with the fixed point
        curve[: min(rounds, curve.size)] = utilities[: curve.size]
        self.record(
            index,
            depth=mdp.depth,
            states=mdp.n_states,
            actions=mdp.n_actions,
            outcomes=mdp.n_outcomes,
            gamma=mdp.gamma,
            spe_value=spe.principal_utility,
            meta_value=utilities[-1],
            value_gap=abs(utilities[-1] - spe.principal_utility),
            oracle_gap=abs(oracle.principal_utility - spe.principal_utility),
            same_actions=float(np.array_equal(rho.action, spe.policy.action)),
            rounds=rounds,
            excess_rounds=rounds - (mdp.depth + 1),
            closed_form_gap=gap,
            closed_form_checks=checks,
            effort_share=float(np.mean(spe.response != np.argmax(spe.Qbar, 1))),
            curve=np.abs(curve - spe.principal_utility),
        )

    def summarize(self, rows):
        self.plot_convergence(rows)
        return {
            "meta/max_value_gap": rows["value_gap"].max(),
            "meta/max_oracle_gap": rows["oracle_gap"].max(),
            "meta/max_excess_rounds": rows["excess_rounds"].max(),
            "meta/mean_rounds": rows["rounds"].mean(),
            "meta/same_actions": rows["same_actions"].mean(),
            "meta/max_closed_form_gap": rows["closed_form_gap"].max(),
            "meta/closed_form_checks": rows["closed_form_checks"].sum(),
            "meta/instances": len(rows["index"]),
            "spe/mean_principal_value": rows["spe_value"].mean(),
            "spe/contracted_share": rows["effort_share"].mean(),
        }

    def plot_convergence(self, rows) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        rounds = np.arange(1, rows["curve"].shape[1] + 1)
        for depth in np.unique(rows["depth"]):
            gaps = rows["curve"][rows["depth"] == depth]
            ax.plot(rounds, np.maximum(gaps.max(0), 1e-16), marker="o", label=f"depth {int(depth)}")
        ax.set(
            yscale="log",
            xlabel="round k",
            ylabel="max |V^p_k - V^p_SPE|",
            title="Meta-algorithm vs backward induction",
        )
        ax.legend(fontsize=7)
        self.save_figure(fig, "meta_convergence")
