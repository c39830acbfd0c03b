"""VCG payments from estimates: cold counterfactual optimisation and Active Counterfactual Optimisation.

IAMFM (arXiv:2604.06263) computes Clarke payments p_i = H_{-i} - W_{-i}(theta_hat) from estimates,
where every H_{-i} = max W_{-i} is itself an optimisation. Two counterfactual rules, same schedule:

* ``cold``: successive halving on W_{-i} over an empty cache (fresh generations throughout);
* ``warm`` (ACO, a reconstruction of the paper's warm start): the main run's SH schedule replayed on
  W_{-i} over the shared cache -- every cached generation is re-scored with b_{-i} for free, new ones
  are drawn only for the deficit (arms eliminated early in the main run, higher fidelities).

Either way the chosen counterfactual arm is re-evaluated with ``fresh`` new target generations (its
optimisation estimate carries the winner's curse), and so is theta_hat for W_{-i}(theta_hat) (counted
in the main run's cost); ``fresh = 0`` uses the optimisation's own estimates instead.
:func:`audit` measures, in true values, eps_opt, eps_est,i and eps_cf,i, the IR slack
u_i + eps_opt + eps_est,i + eps_cf,i and the best misreport's gain on a grid (common random numbers)
with two bounds: eps_opt + eps_est(v) + eps_est(b') + 2 eps_cf(v), and the derivation's exact
eps_opt + eps_est(v) + eps_est(b') + eps_cf(v) + eps_cf(b') (warm starting makes eps_cf depend on b_i).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from experiments.iamfm.task import AdInstance
from modules.iamfm.cache import EvaluationCache
from modules.iamfm.elimination import sh_schedule, successive_halving
from modules.iamfm.vcg import vcg

Caches = Callable[[str], EvaluationCache]  # prefix -> an empty cache drawing from its own streams
Rule = Literal["warm", "cold"]


@dataclass
class Outcome:
    arm: int  # theta_hat
    payments: np.ndarray  # p_hat [n]
    H: np.ndarray  # H_hat_{-i} [n]
    W_minus: np.ndarray  # W_hat_{-i}(theta_hat) [n]
    new_cost: np.ndarray  # generation cost of each payment beyond the main run [n]


def run_mechanism(
    instance: AdInstance,
    bids: np.ndarray,
    budget: float,
    cache: Caches,
    rule: Rule,
    eta: int = 3,
    fresh: int = 60,
) -> Outcome:
    """theta_hat by multi-fidelity SH on the reported bids, then one counterfactual per advertiser."""
    K, n, t = len(instance.configs), instance.n, instance.target
    main, schedule = cache("main"), sh_schedule(K, instance.costs, budget, eta, multi_fidelity=True)
    arm = successive_halving(main, instance.weights(bids), schedule, eta)
    chosen = main
    if fresh:
        chosen = cache("fresh")
        chosen.ensure(np.array([arm]), t, fresh)
    W_minus = np.array([chosen.estimate(arm, t, instance.weights(bids, drop=i))[0] for i in range(n)])
    H, new_cost = np.zeros(n), np.zeros(n)
    for i in range(n):
        w = instance.weights(bids, drop=i)
        counterfactual = main if rule == "warm" else cache(f"cold{i}")
        before = counterfactual.cost
        k = successive_halving(counterfactual, w, schedule, eta)
        new_cost[i] = counterfactual.cost - before
        if fresh:
            check = cache(f"fresh{i}")
            check.ensure(np.array([k]), t, fresh)
            H[i], new_cost[i] = check.estimate(k, t, w)[0], new_cost[i] + check.cost
        else:
            H[i] = counterfactual.estimate(k, t, w)[0]
    return Outcome(arm, H - W_minus, H, W_minus, new_cost)


def audit(
    instance: AdInstance,
    budget: float,
    cache: Caches,
    rule: Rule,
    misreports: list[float],
    eta: int = 3,
    fresh: int = 60,
) -> dict[str, np.ndarray]:
    """Truthful run vs exact VCG on ``instance.means`` (the ground truth), and each advertiser's best
    misreport b_i = c v_i, c in ``misreports``, rerun on the same caches' streams."""
    v, t, n = instance.values, instance.target, instance.n
    mu = instance.means[t]
    star, p_true, H_true = vcg(mu, v, instance.lam)
    out = run_mechanism(instance, v, budget, cache, rule, eta, fresh)
    W = instance.welfare(instance.weights(v))
    W_minus_true = np.array([instance.welfare(instance.weights(v, drop=i))[out.arm] for i in range(n)])
    eps_opt = W[star] - W[out.arm]
    eps_est, eps_cf = np.abs(out.W_minus - W_minus_true), np.abs(out.H - H_true)
    utility = v * mu[out.arm, :n] - out.payments
    row = {
        "regret": eps_opt,
        "eps_est": eps_est,
        "eps_cf": eps_cf,
        "utility": utility,
        "ir_slack": utility + eps_opt + eps_est + eps_cf,
        "payment_error": np.abs(out.payments - p_true),
        "new_cost": out.new_cost,
    }
    gain, bound, exact = np.full(n, -np.inf), np.zeros(n), np.zeros(n)
    for i in range(n):
        for c in misreports:
            bids = v.copy()
            bids[i] = c * v[i]
            lie = run_mechanism(instance, bids, budget, cache, rule, eta, fresh)
            g = v[i] * mu[lie.arm, i] - lie.payments[i] - utility[i]
            if g > gain[i]:
                eps_est_lie = abs(lie.W_minus[i] - instance.welfare(instance.weights(v, drop=i))[lie.arm])
                gain[i], bound[i] = g, eps_opt + eps_est[i] + eps_est_lie + 2 * eps_cf[i]
                exact[i] = bound[i] - eps_cf[i] + abs(lie.H[i] - H_true[i])  # eps_cf(v) + eps_cf(b')
    if misreports:
        row |= {"misreport_gain": gain, "misreport_bound": bound, "misreport_bound_exact": exact}
    return row
