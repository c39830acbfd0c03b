"""population_ne presets end to end through the launcher: every claim passes. Small versions in the
default tier; the full presets on three seeds are ``slow`` (``make reproduce``)."""

import pytest

from tests.helpers import run_preset

QUIET = ["trainer.enable_progress_bar=false"]
SMALL = {
    "population_ne_closed_form": ["task.count=20"],
    "population_ne_rosen": [
        "task.Ks=[2,4]",
        "task.gamma_over_beta_grid=[0.0,0.5,0.99,1.0,2.0]",
        "task.starts=4",
        "algorithm.max_iter=3000",
    ],
    "population_ne_exclusion": [
        "task.replicas=1",
        "task.alpha_over_beta=[1,3,10,20]",
        "task.gamma_over_beta=[0.0,0.3,0.8]",
        "task.starts=2",
    ],
    "population_ne_steering": [
        "task.replicas=1",
        "task.random_subsidies=20",
        "task.candidates=20000",
        "task.starts=2",
    ],
}


def run(experiment: str, seed: int, tmp_path, *overrides: str) -> dict:
    return run_preset(experiment, seed, tmp_path, *QUIET, *overrides)


@pytest.mark.parametrize("experiment", sorted(SMALL))
def test_small_presets(tmp_path, experiment):
    run(experiment, 0, tmp_path, *SMALL[experiment])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("experiment", sorted(SMALL))
def test_full_presets(tmp_path, experiment, seed):
    m = run(experiment, seed, tmp_path)
    if experiment == "population_ne_closed_form":
        assert m["population_ne/games"] == m["population_ne/games_unique"] == 100
    if experiment == "population_ne_rosen":
        assert m["rosen/le_games"] == 15
