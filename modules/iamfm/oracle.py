"""Oracle VCG on exact expected exposure and satisfaction (IAMFM, arXiv:2604.06263, claim 1).

Per instance: theta* and Clarke payments from the vectorised oracle (``modules/iamfm/vcg.py``),
checked against plain brute-force enumeration (``experiments/iamfm/vcg_brute.py``); individual
rationality u_i >= 0, p_i >= 0, and the largest utility gain of any misreport b_i = c v_i on the grid.

A solver; under DDP the instances shard over ranks.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, NonNegativeFloat

from experiments.iamfm.vcg_brute import brute_force_vcg
from modules.base import AtlasModule
from modules.iamfm.vcg import vcg


class OracleVCG(AtlasModule):
    needs: ClassVar[str] = "ad_configuration"
    models = ("none",)
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        misreports: Annotated[list[NonNegativeFloat], Field(min_length=1)] = (0.0, 0.5, 1.5, 3.0),
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.misreports = list(misreports)

    def test_step(self, batch, batch_idx):
        index, inst = batch
        mu, v, n = inst.means[inst.target], inst.values, inst.n
        star, payments, _ = vcg(mu, v, inst.lam)
        brute_star, brute_payments = brute_force_vcg(mu.tolist(), v.tolist(), inst.lam)
        utility = v * mu[star, :n] - payments
        gain = np.full(n, -np.inf)
        for i in range(n):
            for c in self.misreports:
                bids = v.copy()
                bids[i] = c * v[i]
                lie, p_lie, _ = vcg(mu, bids, inst.lam)
                gain[i] = max(gain[i], v[i] * mu[lie, i] - p_lie[i] - utility[i])
        self.record(
            index,
            star=star,
            same_star=float(star == brute_star),
            payment_gap=np.abs(payments - np.array(brute_payments)).max(),
            min_utility=utility.min(),
            min_payment=payments.min(),
            max_gain=gain.max(),
            payments=payments,
            utility=utility,
        )

    def summarize(self, rows):
        return {
            "iamfm/instances": len(rows["index"]),
            "claim/oracle_brute_force_gap": rows["payment_gap"].max() + (1 - rows["same_star"].min()),
            "claim/oracle_min_utility": rows["min_utility"].min(),
            "claim/oracle_min_payment": rows["min_payment"].min(),
            "claim/oracle_max_misreport_gain": rows["max_gain"].max(),
            **{f"iamfm/oracle/payment_{i}": p for i, p in enumerate(rows["payments"].mean(0))},
            **{f"iamfm/oracle/utility_{i}": u for i, u in enumerate(rows["utility"].mean(0))},
        }
