"""NaiAD generation experiments: cache/resume with a stand-in generator (fast), the proxies against an
echo of the prompt, and the offline-LLM presets (claims 4-LLM, 5, 5b: ``llm``; claim 6 SFT: ``slow`` +
``llm``). LLM outputs are cached in the shared generation cache, so reruns cost no generation."""

import pytest

from experiments.naiad.ad_pairs import AdPairs
from experiments.naiad.schema import LLMAd, read_jsonl
from experiments.naiad.seeds import pairs
from modules.llm import LanguageModel
from modules.naiad.generation import DecoupledGeneration
from modules.naiad.pipeline import ARMS, response_prompt
from modules.naiad.scoring import Proxies
from tests.helpers import run_launch

FAST = [
    "experiment=naiad_decoupled_gen",
    "task.pair_ids=[0,4]",
    "algorithm.judge=false",
    "algorithm.response_tokens=8",
    "algorithm.bridge_tokens=8",
]


class Interrupted(RuntimeError):
    pass


def fake_model(budget: int | None, calls: list):
    """A stand-in for the LLM: deterministic text per request; raises after ``budget`` calls."""

    def generate(self, request):
        if budget is not None and len(calls) >= budget:
            raise Interrupted("simulated crash")
        calls.append(request["prompt"])
        name = next((a.name for _, a in pairs() if a.name in request["prompt"]), "")
        return f"Sure. {name} helps with sleep, coffee and planning. (seed {request['seed']} {len(calls)})"

    return generate


def test_partial_run_resumes_from_cache(tmp_path, monkeypatch):
    overrides = [*FAST, f"model.cache={tmp_path / 'cache.sqlite'}"]
    first: list = []
    monkeypatch.setattr(LanguageModel, "_generate", fake_model(7, first))
    with pytest.raises(Interrupted):
        run_launch(overrides, tmp_path / "a")
    assert len(first) == 7
    second: list = []
    monkeypatch.setattr(LanguageModel, "_generate", fake_model(None, second))
    metrics = run_launch(overrides, tmp_path / "b")
    assert not set(first) & set(second), "a cached generation was regenerated"
    third: list = []
    monkeypatch.setattr(LanguageModel, "_generate", fake_model(None, third))
    assert run_launch(overrides, tmp_path / "c")["metrics"] == metrics["metrics"]
    assert third == [] and len(first) + len(second) == 2 * (1 + len(ARMS))  # a rerun generates nothing
    rows = read_jsonl(tmp_path / "b" / "naiad_rows.jsonl", LLMAd)
    assert len(rows) == 2 * len(ARMS)
    assert {r.strategy for r in rows} <= {
        "Value & Vision",
        "Aesthetic & Lifestyle",
        "Emotional & Psychological",
        "Methodological Abstraction",
    }
    labels = [list(r.ppied_scores.model_dump().values()) for r in rows]
    assert all(0 <= x <= 100 for row in labels for x in row)


def test_every_arm_sees_the_question_and_the_ad_and_differs_only_in_its_instruction():
    query, ad = pairs()[0]
    prompts = {arm: response_prompt(query, ad, "bridge", arm) for arm in ARMS}
    for prompt in prompts.values():
        assert query.text in prompt and ad.name in prompt and ad.info in prompt
    context = prompts["hiU_hiC"].split("Link: bridge\n")[0]
    assert all(p.startswith(context + "Link: bridge\n") for p in prompts.values())
    assert len(set(prompts.values())) == len(ARMS)


def test_proxies_do_not_reward_echoing_the_prompt():
    """Repeating the prompt ("query + ad name + ad info") must score below a real native answer."""
    query, ad = (
        next((q, a) for q, a in pairs() if "sleep" in q.text.lower())
        if any("sleep" in q.text.lower() for q, _ in pairs())
        else pairs()[0]
    )
    echo = f"{query.text} {ad.name} {ad.info}"
    native = (
        f"Keep a fixed bedtime, dim the lights an hour before and avoid screens late at night. "
        f"If you want help staying consistent, {ad.name} can make that routine easier to keep."
    )
    scores = Proxies(LanguageModel())([query.text] * 2, [ad] * 2, [echo, native])
    assert scores["copy"][0] > 0.8 > scores["copy"][1]
    assert scores["user"][0] < scores["user"][1]
    assert scores["commercial"][0] < scores["commercial"][1]


def test_too_few_rows_to_calibrate(tmp_path):
    module = DecoupledGeneration(
        AdPairs(pair_ids=[0]), LanguageModel(cache=str(tmp_path / "c.sqlite")), judge=False
    )
    with pytest.raises(ValueError, match="too few to calibrate"):
        module.human_subset(4)
    assert module.human_subset(40).sum() == 20


def test_rejection_on_the_proxies_needs_another_judge(tmp_path):
    with pytest.raises(ValueError, match="judged by another scorer: set judge=true"):
        DecoupledGeneration(
            AdPairs(pair_ids=[0]), LanguageModel(cache=str(tmp_path / "c.sqlite")), max_tries=2, judge=False
        )


def test_bad_pair_ids():
    with pytest.raises(ValueError, match=r"pair_ids \[40\] out of range"):
        AdPairs(pair_ids=[0, 40])


# ---- the offline LLM: exploratory claims; each test checks that every claim's verdict was computed
# ---- (value present, passed a boolean) -- a failing verdict is a result, reported in the method doc ----
def verdicts_computed(results: dict) -> None:
    assert results["claims"], "the preset states claims"
    for claim in results["claims"]:
        assert claim["value"] is not None and isinstance(claim["passed"], bool), claim


@pytest.mark.llm
def test_decoupled_generation_llm(tmp_path):
    results = run_launch(["experiment=naiad_decoupled_gen"], tmp_path)
    verdicts_computed(results)
    assert len(read_jsonl(tmp_path / "naiad_rows.jsonl")) == 8 * len(ARMS)
    assert (tmp_path / "plots" / "quadrants.png").exists()


@pytest.mark.llm
def test_icl_llm(tmp_path):
    results = run_launch(["experiment=naiad_icl"], tmp_path)
    verdicts_computed(results)
    assert results["metrics"]["naiad/icl_generations"] == 32


@pytest.mark.llm
def test_strategies_llm(tmp_path):
    verdicts_computed(run_launch(["experiment=naiad_strategies_llm"], tmp_path))


@pytest.mark.slow
@pytest.mark.llm
def test_sft_llm(tmp_path):
    results = run_launch(["experiment=naiad_sft"], tmp_path / "sft")  # trains on the committed pipeline rows
    verdicts_computed(results)
    ckpt = tmp_path / "sft" / "checkpoints" / "last.ckpt"
    assert ckpt.exists() and ckpt.stat().st_size < 50e6  # LoRA weights only
