"""CompFlow (arXiv:2505.23062) presets end to end: every claim must pass, on 3 seeds (slow tier).
The Hopper filter preset is short enough for the default tier on one seed."""

import pytest

from tests.helpers import run_preset

QUIET = ["trainer.enable_progress_bar=false", "logger=none"]


def run(experiment: str, seed: int, tmp_path, *overrides: str) -> dict:
    return run_preset(experiment, seed, tmp_path, *QUIET, *overrides)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "experiment", ["compflow_gap_validity", "compflow_disjoint", "compflow_composite", "compflow_pendulum"]
)
def test_claims_hold(experiment, seed, tmp_path):
    run(experiment, seed, tmp_path)


def test_hopper_filter_beats_chance(tmp_path):
    m = run("compflow_hopper_filter", 0, tmp_path)
    assert m["instances"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_hopper_filter_other_seeds(seed, tmp_path):
    run("compflow_hopper_filter", seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("env", ["Hopper-v5", "HalfCheetah-v5"])
@pytest.mark.parametrize("shift,level", [("friction", 5.0), ("gravity", 0.5)])
def test_mujoco_returns(env, shift, level, tmp_path):
    run(
        "compflow_mujoco_returns",
        0,
        tmp_path,
        f"task.env={env}",
        f"task.shift={shift}",
        f"task.level={level}",
    )
