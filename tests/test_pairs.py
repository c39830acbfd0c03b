"""A fast_dev_run-style run of every compatible task x algorithm pair (2 steps, 2 instances).

Task configs are smoke-sized; presets scale them up (a GPU-sized instance never runs here)."""

from __future__ import annotations

import pytest

from modules.llm import LLM_MODELS
from tests.helpers import algorithm_pairs, run_launch


def compatible_pairs() -> list:
    pairs = []
    for name, algorithm, tasks in algorithm_pairs():
        model = algorithm.models[0]
        # LLM methods run end to end in their own `llm` tests; here they join the slow tier
        marks = [pytest.mark.llm, pytest.mark.slow] if model in LLM_MODELS else []
        pairs += [pytest.param(task, name, model, marks=marks, id=f"{task}-{name}") for task in tasks]
    return pairs


@pytest.mark.parametrize("task,algorithm,model", compatible_pairs())
def test_pair_runs_end_to_end(task, algorithm, model, tmp_path):
    results = run_launch(
        [
            f"task={task}",
            f"algorithm={algorithm}",
            f"model={model}",
            "logger=none",
            "trainer.max_steps=2",
            "trainer.limit_test_batches=2",
        ],
        tmp_path,
    )
    assert results["metrics"], "every run reports metrics"
    assert results["claims"] == []  # re-chosen pairs carry no preset claims
    assert (tmp_path / "metrics.json").exists()
