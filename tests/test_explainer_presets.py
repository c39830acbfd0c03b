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


TINY_LORA = [
    "experiment=explainer_lora",
    "algorithm.ppo_steps=3",
    "algorithm.batch_size=2",
    "algorithm.warmup_batches=1",
    "algorithm.flow_warmup=10",
    "algorithm.flow_steps=5",
    "algorithm.max_new_tokens=12",
    "checkpoint_every_n_steps=1",
    *QUIET,
]


@pytest.mark.slow
@pytest.mark.llm
def test_lora_explainer_resumes_exactly_from_adapter_only_checkpoints(tmp_path):
    """Claim 7's learner: killed in its second PPO step and rerun, it ends with the same metrics;
    its checkpoints hold the LoRA weights and the flow's two MLPs only; it evaluates after 1 step."""
    import torch

    from tests.helpers import Preempt, run_launch

    straight = run_launch(TINY_LORA, tmp_path / "straight")["metrics"]
    assert straight["explainer/lora_steps"] == 3
    assert (tmp_path / "straight" / "plots" / "lora_learning_curve.png").exists()
    with pytest.raises(RuntimeError, match="preempted"):
        run_launch(
            TINY_LORA, tmp_path / "resumed", callbacks=[Preempt(2)]
        )  # after the first step's checkpoint
    state = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state and all("lora_" in k or k.startswith(("flow.emb.", "flow.proj.")) for k in state)
    assert sum(v.numel() for v in state.values()) < 1e6  # not the 135M frozen weights
    assert run_launch(TINY_LORA, tmp_path / "resumed")["metrics"] == straight
    one = run_launch([*TINY_LORA, "trainer.max_steps=1"], tmp_path / "one")["metrics"]
    assert {"explainer/lora_heldout_before", "explainer/lora_heldout_after"} <= set(one)


@pytest.mark.slow
@pytest.mark.llm
def test_lora_explainer_trend(tmp_path):
    """Claim 7: the smoke run's held-out trend (before vs after PPO, held-out evaluator)."""
    run("explainer_lora", 0, tmp_path)
