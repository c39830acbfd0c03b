"""Every learner resumes exactly: stopped at any step (a crash, Ctrl-C, a preemption), rerun into
the same run directory, it ends with the same ``metrics.json`` as an uninterrupted run; a rerun of
a finished run trains nothing (``tests/test_pairs.py`` runs every learner for two steps). Discovered from
``conf/algorithm``: a new learner is covered the moment its config exists."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from modules.llm import LLM_MODELS
from tests.helpers import ROOT, Preempt, algorithm_pairs, run_launch

STEPS, EVERY, CRASH_AT = 12, 4, 10  # periodic checkpoints at 4 and 8; the crash loses steps 9-10


def learners() -> list:
    found = []
    for name, algorithm, tasks in algorithm_pairs():
        if "fit" in algorithm.stages and tasks:
            model = algorithm.models[0]
            marks = [pytest.mark.llm, pytest.mark.slow] if model in LLM_MODELS else []
            found.append(pytest.param(tasks[0], name, model, marks=marks, id=name))
    return found


class CountSteps(Callback):
    def __init__(self):
        self.steps = 0

    def on_train_batch_end(self, *args) -> None:
        self.steps += 1


def overrides(task: str, algorithm: str, model: str, steps: int = STEPS) -> list[str]:
    return [
        f"task={task}",
        f"algorithm={algorithm}",
        f"model={model}",
        "logger=none",
        "trainer.limit_test_batches=2",
        f"trainer.max_steps={steps}",
        f"checkpoint_every_n_steps={EVERY}",
        "trainer.enable_progress_bar=false",
    ]


@pytest.mark.parametrize("task,algorithm,model", learners())
def test_learner_resumes_exactly_after_a_crash_and_a_finished_rerun_trains_nothing(
    task, algorithm, model, tmp_path
):
    args = overrides(task, algorithm, model)
    straight = run_launch(args, tmp_path / "straight")
    with pytest.raises(RuntimeError, match="preempted"):
        run_launch(args, tmp_path / "resumed", callbacks=[Preempt(CRASH_AT, steps=True)])
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    saved = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert 0 < saved["global_step"] < CRASH_AT, "the periodic checkpoint is the resume point"
    assert run_launch(args, tmp_path / "resumed") == straight
    count = CountSteps()
    assert run_launch(args, tmp_path / "resumed", callbacks=[count]) == straight
    assert count.steps == 0, "a finished run trains nothing when rerun"


def test_ctrl_c_saves_at_a_step_boundary_and_the_rerun_is_exact(tmp_path):
    """SIGINT mid-run: the step in flight finishes, last.ckpt is saved, the run stops (exit 130);
    the rerun resumes from that step and matches an uninterrupted run."""
    task, algorithm, model = next(p.values for p in learners() if p.id == "gittins_dqn")
    args = [*overrides(task, algorithm, model, steps=400), "checkpoint_every_n_steps=1000"]
    straight = run_launch(args, tmp_path / "straight")
    run_dir = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 120
    while not (run_dir / "launch.log").exists() or "fit:" not in (run_dir / "launch.log").read_text():
        assert time.time() < deadline and proc.poll() is None, "the run never started training"
        time.sleep(0.2)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-2000:]
    assert "rerun the same command to resume" in out
    step = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 0 < step < 400, "interrupted mid-run, saved where it stopped"
    assert json.loads(json.dumps(run_launch(args, run_dir))) == straight
