"""Exact Coin Game references for Ivanov et al., "Principal-Agent Reinforcement Learning:
Orchestrating AI Agents with Contracts" (arXiv 2407.18074), Sec. 5 / App. D.2, on a small grid.

By finite-horizon DP (``experiments/contracts/coin_game_dp.py``): the cooperative optimum
(social welfare), a pure selfish Markov-perfect equilibrium reached by iterated best responses from
the cooperative policy, and the exact min-pay observed-action contracts that implement the
cooperative policy when the other agent follows (payments = the principal's cost, paid as
transfers, so welfare is unchanged and the principal nets welfare - payments).

Each is checked against ground truth that does not use the DP's model: Monte-Carlo episodes in the
simulator (welfare, payments, an agent's value when following and when deviating at t = 0: every
|DP - MC| in standard errors), brute-force expectimax on a short horizon, and the min-pay LP on
sampled states. The tie-break among welfare-optimal joint actions is pluggable (``tie``) [R].
DDP: one instance per game; ranks solve their own copies.
"""


import dataclasses
from typing import Literal

import matplotlib
import numpy as np
from pydantic import NonNegativeFloat, PositiveInt

from experiments.contracts.coin_game_checks import brute_force_welfare, rollouts
from experiments.contracts.coin_game_dp import (build_model, cooperative, evaluate, iterated_best_responses,
                                                start_distribution)
from experiments.contracts.contract import min_pay_lp
from modules.base import AtlasModule

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def z_score(exact: float, samples: np.ndarray) -> float:
    """|exact - mean| in standard errors of the Monte-Carlo mean."""
    return abs(exact - samples.mean()) / max(samples.std(ddof=1) / np.sqrt(samples.size), 1e-12)


class CoinGameExact(AtlasModule):
    """Claim 3: exact cooperative, selfish and contract values of the Coin Game, independently checked."""

    needs = "coin_game"
    models = ("none",)
    stages = ("test",)

    def __init__(self, task, model=None, tie: Literal["first", "min_payment"] = "first",
                 xi: NonNegativeFloat = 0.0, episodes: PositiveInt = 20000, brute_force_horizon: PositiveInt = 4,
                 lp_checks: PositiveInt = 300, references: tuple[float, float, float] = (11.61, 9.28, 2.08)):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])

    def test_step(self, batch, batch_idx):
        index, spec = batch
        hp = self.hparams
        rng = self.task.rng(index, "policy")
        model, p0 = build_model(spec), start_distribution(spec)
        coop = cooperative(model, hp.tie, hp.xi)
        cheapest = cooperative(model, "min_payment", hp.xi)
        selfish, rounds, converged = iterated_best_responses(model, coop.policy)
        selfish_values = evaluate(model, selfish)
        exact = {"coop_welfare": p0 @ coop.welfare[0], "payments": p0 @ coop.cost[0],
                 "selfish_welfare": p0 @ selfish_values[0].sum(-1)}

        follow = rollouts(spec, coop.policy, hp.episodes, rng, coop.payment)
        deviate = rollouts(spec, coop.policy, hp.episodes, rng, coop.payment, deviate_first=0)
        alone = rollouts(spec, selfish, hp.episodes, rng)
        deviation_value = coop.Qbar[0, :, 0].mean(-1) + coop.payment[0, :, 0] / 4     # uniform first action
        z = [z_score(exact["coop_welfare"], follow["reward"].sum(1)),
             z_score(exact["payments"], follow["payment"].sum(1)),
             z_score(p0 @ coop.agent[0, :, 0], follow["reward"][:, 0] + follow["payment"][:, 0]),
             z_score(p0 @ deviation_value, deviate["reward"][:, 0] + deviate["payment"][:, 0]),
             z_score(exact["selfish_welfare"], alone["reward"].sum(1))]

        short = dataclasses.replace(spec, horizon=hp.brute_force_horizon)
        short_dp = start_distribution(short) @ cooperative(build_model(short)).welfare[0]
        brute_gap = abs(brute_force_welfare(short) - short_dp)

        paid = np.argwhere(coop.payment.sum(-1) > 0)                       # (t, s) where someone is paid
        t, s = paid[rng.choice(len(paid), min(hp.lp_checks, len(paid)), replace=False)].T
        lp_gap = max(abs(min_pay_lp(np.eye(4), coop.Qbar[t[k], s[k], i], rec, hp.xi).cost - coop.payment[t[k], s[k], i])
                     for k in range(len(t)) for i, rec in enumerate(np.divmod(coop.policy[t[k], s[k]], 4)))

        reference_gap = max(abs(round(exact[key], 2) - ref) for key, ref in
                            zip(("coop_welfare", "selfish_welfare", "payments"), hp.references))
        self.record(index, **exact, principal_net=exact["coop_welfare"] - exact["payments"],
                    payments_cheapest=p0 @ cheapest.cost[0], selfish_rounds=rounds, selfish_converged=converged,
                    mc_max_z=max(z), brute_force_gap=brute_gap, lp_gap=lp_gap, reference_gap=reference_gap,
                    follow_red_value=p0 @ coop.agent[0, :, 0], deviation_red_value=p0 @ deviation_value,
                    step_welfare=follow["step_welfare"], step_payment=follow["step_payment"],
                    step_selfish=alone["step_welfare"])

    def summarize(self, rows):
        self.plot(rows)
        first = {k: v[0] for k, v in rows.items()}
        return {
            "coin/coop_welfare": first["coop_welfare"],
            "coin/selfish_welfare": first["selfish_welfare"],
            "coin/contract_cost": first["payments"],
            "coin/payment_share": first["payments"] / first["coop_welfare"],
            "coin/principal_net": first["principal_net"],
            "coin/contract_cost_cheapest_tie": first["payments_cheapest"],
            "coin/selfish_rounds": first["selfish_rounds"],
            "coin/selfish_converged": first["selfish_converged"],
            "check/mc_max_z": rows["mc_max_z"].max(),
            "check/brute_force_gap": rows["brute_force_gap"].max(),
            "check/lp_gap": rows["lp_gap"].max(),
            "check/reference_gap": rows["reference_gap"].max(),
        }

    def plot(self, rows) -> None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        steps = np.arange(rows["step_welfare"].shape[1])
        ax.plot(steps, rows["step_welfare"][0], label="welfare, cooperative + contracts")
        ax.plot(steps, rows["step_payment"][0], label="min-pay contract payments")
        ax.plot(steps, rows["step_selfish"][0], ls="--", label="welfare, selfish equilibrium")
        ax.set(xlabel="step t", ylabel="mean per step (Monte-Carlo)", title="Coin Game: payments vs welfare")
        ax.legend(fontsize=7)
        self.save_figure(fig, "coin_exact_payments_vs_welfare")
