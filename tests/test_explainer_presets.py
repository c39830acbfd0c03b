"""Policy-to-Language (explainer) presets end to end: every claim's own threshold, on seeds beyond
the default where the run is affordable. All slow (minutes on 2 cores); the LLM judges also `llm`."""

import pytest

from tests.helpers import run_preset

QUIET = ["trainer.enable_progress_bar=false"]


def run(experiment: str, seed: int, tmp_path, *overrides: str) -> dict:
    return run_preset(experiment, seed, tmp_path, *QUIET, *overrides, plots=False)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flow_denoises_proxy_rewards(tmp_path, seed):
    """Claim 1 (Theorem 1), 3 replicas per run."""
    m = run("explainer_denoise", seed, tmp_path)
    assert m["explainer/flow_w2_at_sigma_r"] < m["explainer/proxy_w2"]
    assert (tmp_path / "plots" / "denoise_simplex.png").exists()


@pytest.mark.slow
def test_language_conditioned_flow_beats_ablations(tmp_path):
    """Claim 2: attention flow vs w/o-Attn and MiniLM flows; rewards vs the oracle's (3 replicas)."""
    run("explainer_flow", 0, tmp_path)


@pytest.mark.slow
def test_flow_rewards_train_better_explainers(tmp_path):
    """Claims 3-6: PPO on flow (dense, sparse) vs proxy rewards vs SFT, held-out evaluator (3 replicas)."""
    run("explainer_rl", 0, tmp_path)
    assert (tmp_path / "plots" / "learning_curves.png").exists()


@pytest.mark.slow
@pytest.mark.llm
def test_smollm2_continuation_judge_carries_signal(tmp_path):
    run("explainer_judges", 0, tmp_path)


@pytest.mark.slow
@pytest.mark.llm
def test_gemma_continuation_judge_carries_signal(tmp_path):
    run("explainer_judges_gemma", 0, tmp_path)
