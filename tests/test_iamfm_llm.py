"""IAMFM's LLM instantiation (claim 6): end to end with a stand-in LLM (fast: prompts, seeds, caching,
measurement, payments), and on the offline SmolLM2 / Gemma-3-270M pair (``llm``)."""

import zlib

import numpy as np
import pytest

from experiments.iamfm.llm_ads import LLMAdTask, exposure
from modules.llm import LanguageModel
from tests.helpers import run_launch


class FakeEncoder:
    def encode(self, texts, normalize_embeddings=True):
        vectors = np.array([np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fake_lm(calls: list):
    """Mentions every brand the prompt asks for (earlier when 'prominently'), varied by the seed."""

    def generate(self, request):
        calls.append((request["model"], request["prompt"], request["seed"]))
        words = [w.rstrip(".") for w in request["prompt"].split() if w[:1].isupper()]
        lead = "Stridex" if "Stridex prominently" in request["prompt"] else "Comfort"
        return f"{lead} first. Fit matters {request['seed'] % 7}. " + " ".join(words[-3:])

    return generate


def test_llm_mechanism_end_to_end_and_cached(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(LanguageModel, "_generate", fake_lm(calls))
    monkeypatch.setattr(LanguageModel, "encoder", lambda self: FakeEncoder())
    cache = tmp_path / "generations.sqlite"
    overrides = [
        "experiment=iamfm_llm",
        "model=smollm2",
        f"model.cache={cache}",
        f"task.cheap_model.cache={cache}",
    ]
    first = run_launch(overrides, tmp_path / "a")["metrics"]
    assert first["claim/llm_ir_slack_min"] >= -1e-9
    assert {m for m, _, _ in calls} == {"smollm2-135m-instruct"}
    assert first["iamfm/llm/generations_cheap"] >= 18 and first["iamfm/llm/generations_target"] >= 18 + 6
    n_calls = len(calls)
    second = run_launch(overrides, tmp_path / "b")["metrics"]
    assert len(calls) == n_calls and second == first  # a rerun generates nothing


def test_exposure_and_bad_llm_task():
    assert exposure("Stridex shoes", "stridex") == 1.0 and exposure("no brand here", "Stridex") == 0.0
    assert 0 < exposure("Try the Vellora", "Vellora") < 1
    with pytest.raises(ValueError, match="values has 1 entries for 2 brands"):
        LLMAdTask(cheap_model=None, values=[1.0])


@pytest.mark.llm
@pytest.mark.slow
def test_llm_pair_preset(tmp_path):
    results = run_launch(["experiment=iamfm_llm"], tmp_path)
    assert all(c["passed"] for c in results["claims"]), results["claims"]
