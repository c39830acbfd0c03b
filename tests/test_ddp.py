"""Two CPU ranks (``hardware=ddp_cpu``, gloo) for one solver and one learner of every method.

Solvers shard their instances over ranks and must report exactly the one-device metrics; learners
are data-parallel (each rank its own experience), so they must run, log the same metric keys on
every rank (a key logged on rank 0 only would hang the all-reduce) and finish. Discovered from
``conf/``: a new method is covered the moment its configs exist. Slow: each run spawns two ranks."""

from __future__ import annotations

import pytest

from modules.llm import LLM_MODELS
from modules.runtime.report import method_of
from tests.helpers import algorithm_pairs, run_launch


def one_per_method(stage: str) -> list:
    chosen: dict[str, object] = {}
    for name, algorithm, tasks in algorithm_pairs():
        method = method_of(name + "_")
        learner = "fit" in algorithm.stages
        if method in chosen or learner != (stage == "fit") or algorithm.models[0] in LLM_MODELS or not tasks:
            continue
        chosen[method] = pytest.param(tasks[0], name, algorithm.models[0], id=f"{method}-{name}")
    return list(chosen.values())


def args(task: str, algorithm: str, model: str, *extra: str) -> list[str]:
    return [
        f"task={task}",
        f"algorithm={algorithm}",
        f"model={model}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        *extra,
    ]


@pytest.mark.slow
@pytest.mark.parametrize("task,algorithm,model", one_per_method("test"))
def test_solver_on_two_ranks_matches_one_device(task, algorithm, model, tmp_path):
    small = ("trainer.limit_test_batches=4",)
    one = run_launch(args(task, algorithm, model, *small), tmp_path / "one")
    two = run_launch(args(task, algorithm, model, *small, "hardware=ddp_cpu"), tmp_path / "two")
    assert two["metrics"] == pytest.approx(one["metrics"], rel=1e-9, abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("task,algorithm,model", one_per_method("fit"))
def test_learner_on_two_ranks_logs_the_same_keys(task, algorithm, model, tmp_path):
    short = ("trainer.max_steps=4", "trainer.limit_test_batches=2")
    one = run_launch(args(task, algorithm, model, *short), tmp_path / "one")
    two = run_launch(args(task, algorithm, model, *short, "hardware=ddp_cpu"), tmp_path / "two")
    assert set(two["metrics"]) == set(one["metrics"])
