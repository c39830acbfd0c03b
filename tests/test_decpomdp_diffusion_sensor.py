"""decpomdp_diffusion on the nonlinear sensor ring: the grid Bayes filter against closed forms and brute-force
importance sampling, bad input, the short multimodality run (claim b), an untrained model failing every
claim, exact resume, and the full presets (slow)."""

import numpy as np
import ot
import pytest
import yaml
from omegaconf import OmegaConf

from experiments.decpomdp_diffusion.grid_filter import cell_centers, grid_posterior, modes, sample_grid
from experiments.decpomdp_diffusion.sensor_ring import TAU, wrap
from experiments.decpomdp_diffusion.sensor_task import SensorRingTask
from modules.decpomdp_diffusion.sensor_learner import circle_w1
from modules.runtime.config import ConfigError, validate
from modules.runtime.results import evaluate_claims
from tests.helpers import CONF_DIR, Preempt, assert_claims_pass, compose_config, run_launch, run_preset

QUIET = ["trainer.enable_progress_bar=false"]


def task_from(name: str, **kw) -> SensorRingTask:
    cfg = yaml.safe_load((CONF_DIR / "task" / f"decpomdp_diffusion_sensor_{name}.yaml").read_text())
    return SensorRingTask(**{k: v for k, v in cfg.items() if not k.startswith("_")} | kw)


def small_task(**kw) -> SensorRingTask:
    args = {"sensors": [[0, 40], [180, 30]], "agents": [[0], [1]], "window": 3, "cells": 720, "instances": 1}
    return SensorRingTask(**{**args, **kw})


def test_layouts_switch_collective_observability():
    co, gap = task_from("co"), task_from("gap")
    assert co.collectively_observable and not gap.collectively_observable
    uncovered = ~gap.ring.covered(gap.grid).any(-1)
    arc = np.rad2deg(gap.grid[uncovered])
    assert arc.min() > 272 and arc.max() < 328  # exactly the arc the missing sensor at 300 degrees watched


def test_one_step_posteriors_match_closed_forms():
    task = small_task(window=1)
    ring, grid = task.ring, task.grid
    detected = np.array([[0.0, 0.0], [1.0, 0.0]])
    reading = np.array([[0.0, 0.0], [np.deg2rad(10.0), 0.0]])
    p = grid_posterior(ring, [0, 1], detected[:, None], reading[:, None], task.cells)
    # nothing seen: uniform on the cells no sensor covers
    blind = ~ring.covered(grid).any(-1)
    np.testing.assert_allclose(p[0], blind / blind.sum(), atol=1e-12)
    # sensor 0 sees +10 degrees: a Gaussian around 10 degrees, truncated to sensor 0's arc
    gauss = np.exp(-0.5 * ((wrap(grid) - np.deg2rad(10.0)) / ring.obs_std) ** 2) * ring.covered(grid)[:, 0]
    np.testing.assert_allclose(p[1], gauss / gauss.sum(), atol=1e-12)


def test_filter_matches_importance_sampling_over_windows():
    """Brute force: weight 400k prior trajectories by the agents' likelihood of the observed history."""
    task = small_task(drift=20.0, process_std=2.0, obs_std=4.0, window=3)
    ring, rng = task.ring, np.random.default_rng(0)
    sim = ring.simulate(6, rng)
    prior = ring.simulate(400_000, np.random.default_rng(1))["theta"]  # [N, K]
    for sensors in ([0], [1], [0, 1]):
        p = grid_posterior(ring, sensors, sim["detected"], sim["reading"], task.cells)
        for b in range(6):
            w = np.ones(len(prior))
            for t in range(ring.window):
                seen = ring.covered(prior[:, t])
                for j in sensors:
                    gauss = np.exp(
                        -0.5
                        * ((sim["reading"][b, t, j] - wrap(prior[:, t] - ring.centers[j])) / ring.obs_std)
                        ** 2
                    )
                    w *= np.where(sim["detected"][b, t, j] > 0.5, seen[:, j] * gauss, ~seen[:, j])
            assert w.sum() > 0
            # circular W1 between the weighted trajectories' final angles and the grid posterior
            u, v = np.mod(prior[:, -1], TAU) / TAU, task.grid / TAU
            distance = TAU * ot.wasserstein_circle(u, v, w / w.sum(), p[b]).item()
            assert distance < np.deg2rad(0.5), (sensors, b, np.rad2deg(distance))


def test_exact_samples_and_modes():
    grid = cell_centers(720)
    heavy, light = np.abs(wrap(grid - 0.3)) < 0.4, np.abs(wrap(grid - np.pi)) < 0.4  # 3:1 density
    p = (3.0 * heavy + light) / (3.0 * heavy + light).sum()
    draws = sample_grid(np.stack([p, p]), 20_000, np.random.default_rng(0))
    assert draws.shape == (2, 20_000)
    assert circle_w1(draws, grid, np.stack([p, p])).max() < 0.02
    masks, masses = modes(p, 0.1)
    np.testing.assert_allclose(masses, [p[heavy].sum(), p[light].sum()], atol=1e-12)
    np.testing.assert_array_equal(masks, [heavy, light])
    assert masks[0][0] and masks[0][-1]  # the heavier arc wraps around angle 0 and is one mode
    assert len(modes(p, 0.3)[1]) == 1


BAD_TASK = [
    ({"agents": [[0], [2]]}, r"agents\.1 references sensors \[2\]; the network has sensors 0\.\.1"),
    ({"agents": [[0], []]}, r"agents\.1 is empty: agent 1 would observe nothing"),
    ({"sensors": [[0, 40], [180]]}, r"sensors\.1 must be \[center_deg, radius_deg\]"),
    ({"sensors": [[0, 40], [180, 190]]}, r"sensors\.1 has radius 190"),
    ({"cells": 100}, r"cells=100 gives 3\.6-degree cells, coarser than half the smallest noise std"),
]


@pytest.mark.parametrize("kw,message", BAD_TASK, ids=[m for _, m in BAD_TASK])
def test_bad_task_input_is_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        small_task(**kw)


BAD_CONFIG = [
    (["task.agents=[]"], r"task\.agents: List should have at least 1 item"),
    (["task.window=0"], r"task\.window: Input should be greater than or equal to 1"),
    (
        ["algorithm.composite=average"],
        r"algorithm\.composite: Input should be 'fixed_point' or 'round_robin'",
    ),
]


@pytest.mark.parametrize("overrides,message", BAD_CONFIG, ids=[b[0][0] for b in BAD_CONFIG])
def test_bad_config_fails_before_compute(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose_config(["experiment=decpomdp_diffusion_sensor_co_composite", *overrides]))


def test_missing_sensor_fails_before_compute(tmp_path):
    with pytest.raises(
        Exception, match=r"agents\.2 references sensors \[6\]; the network has sensors 0\.\.5"
    ):
        run_launch(
            ["experiment=decpomdp_diffusion_sensor_co_composite", "task.agents=[[0,2],[1,4],[3,6]]"], tmp_path
        )


def claims_of(*presets: str) -> list[dict]:
    return [
        c
        for p in presets
        for c in OmegaConf.to_container(OmegaConf.load(CONF_DIR / "experiment" / f"{p}.yaml").claims)
    ]


# ---- end to end, short: claim b (multimodality) on the collectively observable layout --------------
SHORT = [*QUIET, "algorithm.steps=800", "task.instances=2", "task.histories_per_instance=60"]


def test_short_multimodal_claims_pass(tmp_path):
    results = run_launch(["experiment=decpomdp_diffusion_sensor_multimodal", "seed=0", *SHORT], tmp_path)
    assert_claims_pass(results)
    assert (tmp_path / "plots" / "decpomdp_diffusion_sensor.png").exists()


def test_claims_fail_for_an_untrained_model(tmp_path):
    """Two training steps (evaluation works after any step count): every sensor claim fails visibly."""
    tiny = [
        *QUIET,
        "trainer.max_steps=2",
        "task.instances=1",
        "task.histories_per_instance=40",
        "task.samples_per_history=16",
    ]
    co = run_launch(["experiment=decpomdp_diffusion_sensor_co_composite", *tiny], tmp_path / "co")["metrics"]
    gap = run_launch(["experiment=decpomdp_diffusion_sensor_gap", *tiny], tmp_path / "gap")["metrics"]
    verdicts = evaluate_claims(
        claims_of("decpomdp_diffusion_sensor_co_composite", "decpomdp_diffusion_sensor_multimodal"), co
    ) + evaluate_claims(claims_of("decpomdp_diffusion_sensor_gap"), gap)
    assert all(c["value"] is not None for c in verdicts), verdicts  # the claims fail on their values
    passed = {c["id"] for c in verdicts if c["passed"]}
    # an untrained ensemble is equally bad alone and centralized, so only that ratio claim may hold
    assert passed <= {"composite_near_centralized"}, verdicts


def test_learner_resumes_exactly(tmp_path):
    tiny = [
        "experiment=decpomdp_diffusion_sensor_gap",
        "seed=0",
        *QUIET,
        "algorithm.steps=30",
        "algorithm.hidden=16",
        "algorithm.batch_size=32",
        "checkpoint_every_n_steps=10",
        "task.instances=1",
        "task.histories_per_instance=16",
        "task.samples_per_history=4",
    ]
    straight = run_launch(tiny, tmp_path / "straight")["metrics"]
    with pytest.raises(RuntimeError, match="preempted"):
        run_launch(tiny, tmp_path / "resumed", callbacks=[Preempt(17, steps=True)])
    assert run_launch(tiny, tmp_path / "resumed")["metrics"] == straight


# ---- full claims (make reproduce): every preset on three seeds ------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("preset", ["sensor_co_composite", "sensor_multimodal", "sensor_gap"])
def test_preset_claims_hold(preset, seed, tmp_path):
    run_preset(f"decpomdp_diffusion_{preset}", seed, tmp_path, *QUIET)
