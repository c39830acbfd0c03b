"""Run the launcher from tests: in-process (``run_launch``) or as a real CLI (``cli``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, open_dict

from modules.runtime.config import group_options, locate, offers_of, register_schema

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose like ``python launch.py <overrides>`` would, with the Hydra config installed."""
    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def run_launch(overrides: Sequence[str], run_dir: Path, callbacks: Sequence = ()) -> dict:
    """Run one job in-process (CSV logger unless ``logger=`` is given) and return its metrics.json."""
    import launch

    if not any(o.startswith("logger=") for o in overrides):
        overrides = [*overrides, "logger=csv"]
    launch.run(compose_config(overrides), Path(run_dir), callbacks)
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def assert_claims_pass(results: dict) -> None:
    """Every claim of a run's metrics.json holds (the failing ones are shown with their figures)."""
    failed = [c for c in results["claims"] if not c["passed"]]
    assert not failed, failed


def run_preset(experiment: str, seed: int, run_dir: Path, *overrides: str, plots: bool = True) -> dict:
    """Run a claim preset on ``seed``, assert its claims hold (and that it saved PNG plots); its metrics."""
    results = run_launch([f"experiment={experiment}", f"seed={seed}", *overrides], run_dir)
    assert_claims_pass(results)
    if plots:
        assert list((Path(run_dir) / "plots").glob("*.png")), "plots are saved in the run dir"
    return results["metrics"]


def cli(
    *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 600, check: bool = True
) -> subprocess.CompletedProcess:
    """``python launch.py *args`` as a subprocess, from the repo root."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0", **(env or {})}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"launch.py {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def algorithm_pairs() -> list[tuple[str, type, list[str]]]:
    """Every ``conf/algorithm`` option as ``(name, class, [compatible conf/task options])``, from the
    configs themselves: a new method's pairs are covered the moment its configs exist."""
    tasks = {name: c._target_ for name, c in group_options("task").items() if "_target_" in c}
    found = []
    for name, c in group_options("algorithm").items():
        algorithm = locate(c._target_)
        found.append(
            (name, algorithm, [t for t, target in tasks.items() if algorithm.needs in offers_of(target)])
        )
    return found


class Preempt(Callback):
    """Kill training after ``at`` batches (``steps=True``: once ``global_step`` reaches ``at``), as a
    crash or preemption would: the rerun resumes from the last periodic ``last.ckpt``."""

    def __init__(self, at: int, steps: bool = False):
        self.at, self.steps = at, steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if (trainer.global_step if self.steps else batch_idx + 1) >= self.at:
            raise RuntimeError(f"preempted at batch {batch_idx + 1}, step {trainer.global_step}")
