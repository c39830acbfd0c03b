"""rmab_comm presets end to end through the launcher, learners' exact resume, bad input at launch."""

import pytest

from tests.helpers import Preempt, run_launch, run_preset

QUIET = ["trainer.enable_progress_bar=false", "logger=none"]
SMALL = [
    "task=rmab_comm_synthetic",
    "algorithm=rmab_comm",
    "task.replicas=2",
    "task.eval_episodes=4",
    "algorithm.epochs=12",
    "algorithm.warmup=2",
    "algorithm.comm_every=2",
    "algorithm.influence_episodes=2",
    "algorithm.curve_every=4",
    "algorithm.curve_episodes=2",
    "checkpoint_every_n_steps=4",
    *QUIET,
]


def run(experiment: str, seed: int, tmp_path, *overrides: str) -> dict:
    return run_preset(experiment, seed, tmp_path, *QUIET, *overrides)


@pytest.mark.parametrize(
    "variant",
    [
        [],  # tabular, learned VDN comm
        ["algorithm.q_model=c51", "algorithm.methods=[no_comm,oracle,learned]"],
        ["algorithm.methods=[topline,oracle,worst,random_comm,random]", "algorithm.message=overwrite"],
    ],
    ids=["tabular", "c51", "overwrite"],
)
def test_learners_resume_exactly(tmp_path, variant):
    straight = run_launch([*SMALL, *variant], tmp_path / "straight")["metrics"]
    with pytest.raises(RuntimeError, match="preempted"):
        run_launch([*SMALL, *variant], tmp_path / "resumed", callbacks=[Preempt(7)])
    resumed = run_launch([*SMALL, *variant], tmp_path / "resumed")["metrics"]
    assert resumed == straight


def test_learners_evaluate_after_two_steps(tmp_path):
    m = run_launch([*SMALL, "trainer.max_steps=2", "algorithm.methods=[topline,no_comm,learned]"], tmp_path)[
        "metrics"
    ]
    assert m["rmab_comm/replicas"] == 2 and "rmab_comm/learned/precision_mean" in m


def test_budget_larger_than_arms_fails_before_compute(tmp_path):
    with pytest.raises(Exception, match="budget=20 must be in"):
        run_launch([*SMALL, "task.budget=20"], tmp_path)


def test_noise_shape_out_of_range_fails_at_validation(tmp_path):
    with pytest.raises(Exception, match="noise_shape"):
        run_launch([*SMALL, "task.noise_shape=cauchy"], tmp_path)


@pytest.mark.parametrize(
    "seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)]
)
def test_chain_counterexample(tmp_path, seed):
    m = run("rmab_comm_chain", seed, tmp_path)
    assert m["rmab_comm/replicas"] == 20 and m["rmab_comm/topline/reach95_share"] >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_noise_gap_and_recovery(tmp_path, seed):
    run("rmab_comm_synthetic", seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sis_comm_not_worse(tmp_path, seed):
    run("rmab_comm_sis", seed, tmp_path)
