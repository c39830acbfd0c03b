"""A user-supplied NaiAD ``llm_ads`` JSONL file (e.g. NaiAD_main.jsonl, or our pipeline's output).

The file is read and validated when the task is built -- before any compute -- so a row with a
missing field or an out-of-range score fails with its file, line and field. The task offers the
rows' logic bridges (with their declared ``strategy`` as reference labels, their ad context and
their scores) as one bridge set for strategy clustering.
"""

from typing import Annotated

import numpy as np
from pydantic import Field, FilePath, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task
from experiments.naiad.schema import LLMAd, read_jsonl


class NaiADFile(Task):
    offers = ("bridges",)

    @validate_call
    def __init__(
        self,
        path: FilePath,
        score_min: float = 0.0,
        score_max: Annotated[float, Field(gt=0)] = 100.0,
        limit: PositiveInt | None = None,
        seed: int = 0,
    ):
        super().__init__(seed)
        if score_max <= score_min:
            raise ValueError(f"score_max ({score_max}) must exceed score_min ({score_min})")
        self.rows: list[LLMAd] = read_jsonl(path, LLMAd, (score_min, score_max))[:limit]

    def bridges(self) -> dict:
        strategies = sorted({r.strategy for r in self.rows})
        return {
            "texts": [r.logic_bridge for r in self.rows],
            "labels": np.array([strategies.index(r.strategy) for r in self.rows]),  # declared strategies
            "ad_names": [r.ad_name for r in self.rows],
            "categories": [r.category[0] if r.category else "" for r in self.rows],
            "scores": np.array(
                [
                    [r.ppied_scores.q1, r.ppied_scores.q2, r.ppied_scores.q3, r.ppied_scores.q4]
                    for r in self.rows
                ]
            ),  # [m, 4]
        }

    def instances(self) -> InstanceDataset:
        return InstanceDataset(1, lambda index: self.bridges())
