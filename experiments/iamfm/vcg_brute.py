"""Brute-force VCG with the Clarke pivot, by plain enumeration (the ground truth of the oracle).

For every configuration, every advertiser and every counterfactual the welfare is summed term by
term in Python floats; ties go to the lowest configuration index. Independent of the vectorised
oracle in ``modules/iamfm/vcg.py`` on purpose.
"""

from __future__ import annotations


def brute_force_vcg(means: list[list[float]], bids: list[float], lam: float) -> tuple[int, list[float]]:
    """(chosen configuration, Clarke payments) for means[k] = (mu_1..mu_n, nu) of configuration k."""
    n = len(bids)

    def welfare(k: int, skip: int | None) -> float:
        total = lam * means[k][n]
        for j in range(n):
            if j != skip:
                total += bids[j] * means[k][j]
        return total

    def best(skip: int | None) -> int:
        chosen = 0
        for k in range(1, len(means)):
            if welfare(k, skip) > welfare(chosen, skip):
                chosen = k
        return chosen

    star = best(None)
    payments = [welfare(best(i), i) - welfare(star, i) for i in range(n)]
    return star, payments
