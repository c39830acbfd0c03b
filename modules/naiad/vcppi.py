"""VC-PPI trials solver: every estimator on every synthetic trial, against the simulator's truth.

NaiAD (Zhang et al., arXiv 2605.09918) calibrates LLM-judge scores with "VC-PPI"; the estimator
family is our reconstruction [R] (see ``modules/naiad/estimators.py`` and ``labels.py``). Per trial
(one ``test_step``) this module

1. estimates each system's per-dimension means with classical, naive-judge, PPI, PPI++ and the
   pluggable VC-PPI strategy (``vcppi=`` a name in ``ESTIMATORS``, default the cross-fitted
   recalibration), combines them into the task's contrast (variances add: the systems are
   independent) and records coverage of the true contrast, width, and -- for a two-system contrast
   -- whether the sign is right and the interval excludes 0 on the right side;
2. recomputes PPI and PPI++ with ``ppi_py.ppi_mean_ci`` and records the largest difference;
3. fits the variance-calibrated labels (option B) and records their spread against the true human
   spread, the raw judge's spread, and the Spearman gap to the judge's ranking.

A solver: no training; under DDP the trials shard over ranks and ``summarize`` sees all of them.
"""

from typing import Annotated, Literal

import numpy as np
from matplotlib.figure import Figure
from ppi_py import ppi_mean_ci
from pydantic import Field
from scipy.stats import spearmanr

from experiments.naiad.simulator import DIMENSIONS
from modules.base import AtlasModule
from modules.naiad.estimators import ESTIMATORS, CrossFitPPI, Estimate, check_alpha
from modules.naiad.labels import VarianceCalibratedLabels


class VCPPI(AtlasModule):
    needs = "ppi_trials"
    models = ("none",)
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        alpha: Annotated[float, Field(gt=0, lt=1)] = 0.1,
        vcppi: Literal["crossfit", "ppipp", "ppi"] = "crossfit",
        folds: Annotated[int, Field(ge=2)] = 5,
        ridge: Annotated[float, Field(ge=0)] = 0.0,
        power_tuning: bool = True,
        target_variance: Literal["marginal", "explained"] = "marginal",
        finite_sample: bool = False,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        check_alpha(alpha)
        self.alpha = alpha
        fs = finite_sample
        vc = CrossFitPPI(folds, ridge, power_tuning, fs) if vcppi == "crossfit" else ESTIMATORS[vcppi](fs)
        self.estimators = {name: ESTIMATORS[name](fs) for name in ("classical", "naive", "ppi", "ppipp")}
        self.estimators["vcppi"] = vc
        self.labels = VarianceCalibratedLabels(target_variance)

    def contrast_estimate(self, trial: dict, estimator) -> Estimate:
        """sum_s c_s theta_hat_s with se^2 = sum_s c_s^2 se_s^2 (independent systems)."""
        parts = [
            estimator.estimate(Y, S, S_unl) for Y, S, S_unl in zip(trial["Y"], trial["S"], trial["S_unl"])
        ]
        c = trial["contrast"]
        return Estimate(
            sum(ci * p.point for ci, p in zip(c, parts)),
            np.sqrt(sum(ci**2 * p.se**2 for ci, p in zip(c, parts))),
        )

    def ppi_py_gap(self, trial: dict) -> float:
        """max |ours - ppi_py| over PPI (lam = 1) and PPI++ (lam = None) interval ends."""
        gap = 0.0
        for name, lam in (("ppi", 1.0), ("ppipp", None)):
            for Y, S, S_unl in zip(trial["Y"], trial["S"], trial["S_unl"]):
                lo, hi = self.estimators[name].estimate(Y, S, S_unl).interval(self.alpha)
                for d in range(Y.shape[1]):
                    ref = ppi_mean_ci(Y[:, d], S[:, d], S_unl[:, d], alpha=self.alpha, lam=lam)
                    gap = max(
                        gap, abs(lo[d] - float(np.ravel(ref[0])[0])), abs(hi[d] - float(np.ravel(ref[1])[0]))
                    )
        return gap

    def label_checks(self, trial: dict) -> dict[str, np.ndarray]:
        """Per system and dimension [systems, D]: sd(labels)/sd_true(Y), sd(judge)/sd_true(Y),
        |Spearman(labels, Y) - Spearman(judge, Y)| on the labelled items."""
        sd_labels, sd_judge, gap = [], [], []
        for Y, S, S_unl, human_sd in zip(trial["Y"], trial["S"], trial["S_unl"], trial["human_sd"]):
            calibrator = self.labels.fit(Y, S, S_unl)
            labels = calibrator.transform(np.concatenate([S, S_unl]))  # [n + N, D]
            sd_labels.append(labels.std(0, ddof=1) / human_sd)
            sd_judge.append(np.concatenate([S, S_unl]).std(0, ddof=1) / human_sd)
            n = Y.shape[0]
            gap.append(
                [
                    abs(spearmanr(labels[:n, d], Y[:, d])[0] - spearmanr(S[:, d], Y[:, d])[0])
                    for d in range(Y.shape[1])
                ]
            )
        return {
            "sd_ratio_labels": np.array(sd_labels),
            "sd_ratio_judge": np.array(sd_judge),
            "spearman_gap": np.array(gap),
        }

    def test_step(self, batch, batch_idx):
        index, trial = batch
        theta = trial["theta"]
        values = {}
        for name, estimator in self.estimators.items():
            estimate = self.contrast_estimate(trial, estimator)
            lo, hi = estimate.interval(self.alpha)
            values[f"cover_{name}"] = (lo <= theta) & (theta <= hi)
            values[f"width_{name}"] = hi - lo
            values[f"sign_wrong_{name}"] = np.sign(estimate.point) != np.sign(theta)
            values[f"excludes_zero_{name}"] = np.where(theta > 0, lo > 0, hi < 0)
        values["ppi_py_gap"] = self.ppi_py_gap(trial)
        values.update(self.label_checks(trial))
        self.record(index, **values)

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        names = list(self.estimators)
        m = {}
        for name in names:
            m[f"naiad/coverage_{name}"] = rows[f"cover_{name}"].mean()  # over trials, dims
            m[f"naiad/coverage_min_dim_{name}"] = rows[f"cover_{name}"].mean(0).min()
            m[f"naiad/width_{name}"] = rows[f"width_{name}"].mean()
        m["naiad/width_ratio_ppipp_classical"] = m["naiad/width_ppipp"] / m["naiad/width_classical"]
        m["naiad/width_ratio_vcppi_ppipp"] = m["naiad/width_vcppi"] / m["naiad/width_ppipp"]
        m["naiad/ppi_py_max_gap"] = rows["ppi_py_gap"].max()
        m["naiad/labels_sd_ratio"] = rows["sd_ratio_labels"].mean()
        m["naiad/labels_sd_ratio_q05"] = np.quantile(rows["sd_ratio_labels"], 0.05)
        m["naiad/labels_sd_ratio_q95"] = np.quantile(rows["sd_ratio_labels"], 0.95)
        m["naiad/judge_sd_ratio"] = rows["sd_ratio_judge"].mean()
        m["naiad/labels_spearman_gap_max"] = rows["spearman_gap"].max()
        if self.task.is_contrast:
            for d, dim in enumerate(DIMENSIONS[: rows["sign_wrong_naive"].shape[1]]):
                m[f"naiad/sign_wrong_naive_{dim}"] = rows["sign_wrong_naive"][:, d].mean()
            for name in ("ppipp", "vcppi"):
                m[f"naiad/excludes_zero_min_dim_{name}"] = rows[f"excludes_zero_{name}"].mean(0).min()
        self.plot(rows, names)
        return {k: float(v) for k, v in m.items()}

    def plot(self, rows: dict[str, np.ndarray], names: list[str]) -> None:
        fig = Figure(figsize=(9, 3.2))
        ax_cov, ax_width = fig.subplots(1, 2)
        ax_cov.bar(names, [rows[f"cover_{n}"].mean() for n in names], color="tab:blue")
        ax_cov.axhline(1 - self.alpha, color="k", ls="--", lw=1, label=f"nominal {1 - self.alpha:g}")
        ax_cov.set_ylabel("coverage")
        ax_cov.set_ylim(0, 1)
        ax_cov.legend(loc="lower left")
        ax_width.bar(names, [rows[f"width_{n}"].mean() for n in names], color="tab:orange")
        ax_width.set_ylabel("mean interval width")
        fig.suptitle(f"{len(rows['index'])} trials: coverage and width per estimator")
        self.save_figure(fig, "coverage_width")
