"""NaiAD generation experiments: cache/resume with a stand-in generator (fast), and the offline-LLM
presets (claims 4-LLM, 5, 5b: ``llm``; claim 6 SFT: ``slow`` + ``llm``). LLM outputs are cached in
the shared generation cache, so reruns cost no generation."""

import json

import pytest

from experiments.naiad.schema import LLMAd, read_jsonl
from experiments.naiad.seeds import pairs
from modules.llm import Generator
from modules.naiad.generation import DecoupledGeneration
from modules.naiad.pipeline import ARMS, response_prompt
from tests.helpers import run_launch

FAST = ["experiment=naiad_decoupled_gen", "task.pair_ids=[0,4]", "algorithm.judge=false",
        "algorithm.response_tokens=8", "algorithm.bridge_tokens=8"]


class Interrupted(RuntimeError):
    pass


def fake_model(budget: int | None, calls: list):
    """A stand-in for the LLM: deterministic text per request; raises after ``budget`` calls."""
    def generate(self, request):
        if budget is not None and len(calls) >= budget:
            raise Interrupted("simulated crash")
        calls.append(request["prompt"])
        name = next((a.name for _, a in pairs() if a.name in request["prompt"]), "")
        return f"Sure. {name} helps with sleep, coffee and planning. (seed {request['seed']})"
    return generate


def test_partial_run_resumes_from_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache.sqlite"
    overrides = [*FAST, f"algorithm.cache_path={cache}"]
    first: list = []
    monkeypatch.setattr(Generator, "_generate", fake_model(7, first))
    with pytest.raises(Interrupted):
        run_launch(overrides, tmp_path / "a")
    assert len(first) == 7
    second: list = []
    monkeypatch.setattr(Generator, "_generate", fake_model(None, second))
    metrics = run_launch(overrides, tmp_path / "b")
    assert not set(first) & set(second), "a cached generation was regenerated"
    total = len(first) + len(second)
    third: list = []
    monkeypatch.setattr(Generator, "_generate", fake_model(None, third))
    run_launch(overrides, tmp_path / "c")
    assert third == [] and total >= 2 * (1 + len(ARMS))             # a rerun generates nothing
    rows = read_jsonl(tmp_path / "b" / "naiad_rows.jsonl", LLMAd)
    assert len(rows) == metrics["metrics"]["naiad/gen_rows_written"] == 2 * len(ARMS)
    assert {r.strategy for r in rows} <= {"Value & Vision", "Aesthetic & Lifestyle",
                                          "Emotional & Psychological", "Methodological Abstraction"}


def test_prompts_withhold_what_a_low_target_must_not_use():
    query, ad = pairs()[0]
    assert ad.name not in response_prompt(query, ad, "bridge", "hiU_loC")
    assert query.text not in response_prompt(query, ad, "bridge", "loU_hiC")
    assert ad.name in response_prompt(query, ad, "bridge", "hiU_hiC") and query.text in response_prompt(
        query, ad, "bridge", "hiU_hiC")


def test_too_few_rows_to_calibrate(tmp_path):
    from experiments.naiad.ad_pairs import AdPairs

    module = DecoupledGeneration(AdPairs(pair_ids=[0]), judge=False, cache_path=str(tmp_path / "c.sqlite"))
    with pytest.raises(ValueError, match="too few to calibrate"):
        module.human_subset(4)
    assert module.human_subset(40).sum() == 20


def test_bad_pair_ids():
    from experiments.naiad.ad_pairs import AdPairs

    with pytest.raises(ValueError, match=r"pair_ids \[40\] out of range"):
        AdPairs(pair_ids=[0, 40])


# ---- the offline LLM (exploratory claims: their verdicts are in metrics.json and the method doc;
# ---- the tests check what must hold regardless: the runs complete and write their artefacts) ----
@pytest.mark.llm
def test_decoupled_generation_llm(tmp_path):
    metrics = run_launch(["experiment=naiad_decoupled_gen"], tmp_path)
    assert metrics["metrics"]["naiad/gen_rows_written"] == 40
    assert len(read_jsonl(tmp_path / "naiad_rows.jsonl")) == 40
    assert (tmp_path / "plots" / "quadrants.png").exists()
    m = metrics["metrics"]
    assert m["naiad/gen_proxy_p_commercial_target"] < 0.05 and m["naiad/gen_proxy_p_user_target"] < 0.05


@pytest.mark.llm
def test_icl_llm(tmp_path):
    metrics = run_launch(["experiment=naiad_icl"], tmp_path)
    assert metrics["metrics"]["naiad/icl_generations"] == 32


@pytest.mark.llm
def test_strategies_llm(tmp_path):
    metrics = run_launch(["experiment=naiad_strategies_llm"], tmp_path)
    clusters = json.loads((tmp_path / "bridge_clusters.json").read_text())
    assert len(clusters["silhouette"]) == len(clusters["ks"]) and all(c["name"] for c in clusters["clusters"])
    assert 2 <= metrics["metrics"]["naiad/gen_bridges_best_k"] <= 6


@pytest.mark.slow
@pytest.mark.llm
def test_sft_llm(tmp_path):
    metrics = run_launch(["experiment=naiad_sft"], tmp_path / "sft")      # trains on the committed pipeline rows
    assert metrics["metrics"]["naiad/sft_loss_last_epoch"] < metrics["metrics"]["naiad/sft_loss_first_epoch"]
    assert not list((tmp_path / "sft" / "checkpoints").glob("*.ckpt")) or all(
        p.stat().st_size < 50e6 for p in (tmp_path / "sft" / "checkpoints").glob("*.ckpt"))   # LoRA weights only
