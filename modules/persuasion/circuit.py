"""Analysis of the persuasion circuit (Sun et al., "How LLMs Are Persuaded: A Few Attention Heads,
Rerouted", arXiv:2605.09314) on models handed over by the task: the planted circuit.

One ``test_step`` = one replica: the full causal chain of :mod:`modules.persuasion.analysis` on
the replica's model and items, then the comparison with the planted ground truth (decision head,
keyword heads, routing direction r*). ``summarize`` reports every figure's mean, std, min and max
over replicas. DDP: replicas shard over ranks.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveInt

from modules.base import AtlasModule
from modules.hooks import HookedLM
from modules.persuasion.analysis import Analysis, AnalysisConfig
from modules.persuasion.plots import figures

Share = Annotated[float, Field(ge=0, le=1)]


def summarize_replicas(rows: dict[str, np.ndarray]) -> dict[str, float]:
    out = {}
    for key, values in rows.items():
        if key == "index":
            continue
        v = np.asarray(values, dtype=float)
        out[f"persuasion/{key}"] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        if len(v) > 1:
            out[f"persuasion/{key}_std"] = float(np.nanstd(v))
            out[f"persuasion/{key}_min"] = float(np.nanmin(v))
            out[f"persuasion/{key}_max"] = float(np.nanmax(v))
    return out


class CircuitAnalysis(AtlasModule):
    needs = "persuasion_circuit"
    models = ("none",)
    stages = ("test",)

    def __init__(self, task, model=None, candidates: NonNegativeInt = 0, n_random: PositiveInt = 12,
                 top_joint: PositiveInt = 3, alphas: list[float] = [0.5, 1.0, 2.0, 4.0, 8.0], claim_alpha: float = 4.0,
                 removal: Literal["clean_value", "project_out"] = "clean_value", folds: PositiveInt = 10,
                 ridge: Annotated[float, Field(gt=0)] = 1e-3, upstream_k: NonNegativeInt = 0,
                 upstream_threshold: Share = 0.1, upstream_candidates: NonNegativeInt = 0,
                 batch_size: PositiveInt = 64):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        if claim_alpha not in alphas:
            raise ValueError(f"claim_alpha={claim_alpha} must be one of alphas={alphas}")

    def analysis_config(self, index: int) -> AnalysisConfig:
        hp = dict(self.hparams)
        hp["alphas"] = tuple(hp["alphas"])
        return AnalysisConfig(**hp, seed=int(self.rng("analysis").integers(2**31)) + index)

    def analyse(self, index: int, hooked: HookedLM, items, title: str) -> dict[str, float]:
        result = Analysis(hooked, items, self.analysis_config(index)).run()
        self.last_result = result
        if index == 0:
            for name, fig in figures(result.arrays, title).items():
                self.save_figure(fig, f"persuasion_{name}")
        return result.metrics

    def test_step(self, batch, batch_idx):
        index, inst = batch
        hooked = HookedLM(inst["model"])
        metrics = self.analyse(index, hooked, inst["items"], "planted")
        truth = inst["truth"]
        found = (int(metrics["decision_layer"]), int(metrics["decision_head"]))
        metrics["decision_head_found"] = float(found == truth.decision_head)
        r = torch.as_tensor(self.last_result.arrays["r_hat"])
        metrics["routing_cosine"] = float(torch.nn.functional.cosine_similarity(r, truth.r_star, dim=0))
        chosen = {tuple(x) for x in self.last_result.arrays["keyword_heads"].tolist()}
        hits = len(chosen & truth.keyword_heads)
        metrics["keyword_precision"] = hits / len(chosen) if chosen else 0.0
        metrics["keyword_recall"] = hits / len(truth.keyword_heads)
        self.record(index, **metrics)

    def summarize(self, rows):
        return summarize_replicas(rows)
