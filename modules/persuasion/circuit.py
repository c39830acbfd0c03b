"""Analysis of the persuasion circuit (Sun et al., "How LLMs Are Persuaded: A Few Attention Heads,
Rerouted", arXiv:2605.09314) on models handed over by the task: the planted circuit.

One ``test_step`` = one replica: the full causal chain of :mod:`modules.persuasion.analysis` on
the replica's model and items, then the comparison with the planted ground truth (decision head,
keyword heads, routing direction r*). ``summarize`` reports every figure's mean, std, min and max
over replicas (NaN entries left out). DDP: replicas shard over ranks.
"""

from __future__ import annotations

import numpy as np
import torch

from modules.base import AtlasModule
from modules.hooks import HookedLM
from modules.persuasion.analysis import DEFAULT_ANALYSIS, Analysis, AnalysisConfig
from modules.persuasion.plots import figures


def summarize_replicas(rows: dict[str, np.ndarray]) -> dict[str, float]:
    out = {}
    for key, values in rows.items():
        if key == "index":
            continue
        v = np.asarray(values, dtype=float)
        finite = v[np.isfinite(v)]
        stats = (
            (finite.mean(), finite.std(), finite.min(), finite.max()) if len(finite) else (float("nan"),) * 4
        )
        for suffix, value in zip(("", "_std", "_min", "_max"), stats):
            out[f"persuasion/{key}{suffix}"] = float(value)
    return out


class CircuitAnalysis(AtlasModule):
    needs = "persuasion_circuit"
    models = ("none",)
    stages = ("test",)

    def __init__(self, task, model=None, analysis: AnalysisConfig = DEFAULT_ANALYSIS):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.analysis = AnalysisConfig.model_validate(
            dict(analysis) if not isinstance(analysis, AnalysisConfig) else analysis.model_dump()
        )

    def analysis_config(self, index: int) -> AnalysisConfig:
        """Per-replica settings; the random controls come from the instance's stream (rank-independent)."""
        return self.analysis.model_copy(
            update={"seed": int(self.task.rng(index, "analysis").integers(2**31))}
        )

    def analyse(self, index: int, hooked: HookedLM, items, title: str, tag: str = "") -> dict[str, float]:
        """The analysis of one instance; figures for instance 0 (and every instance with a ``tag``)."""
        result = Analysis(hooked, items, self.analysis_config(index)).run()
        self.last_result = result
        if (index == 0 or tag) and not result.metrics["too_few"]:
            for name, fig in figures(result.arrays, title).items():
                self.save_figure(fig, f"persuasion_{name}{tag}")
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
