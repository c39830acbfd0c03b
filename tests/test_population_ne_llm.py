"""population_ne claim 5, the LLM-grounded population. The pipeline runs in the default tier with a
stand-in generator (persona statements as posts: separable by construction) and the real encoder;
the presets with the offline LLMs are ``llm`` + ``slow`` (generations cached on disk)."""

import pytest

from experiments.population_ne.personas import DEFAULT_PERSONAS
from modules.llm import LanguageModel
from tests.helpers import assert_claims_pass, run_launch

QUIET = ["trainer.enable_progress_bar=false"]


def fake_generate(self, request):
    persona = next(p for p in DEFAULT_PERSONAS if p.system == request["system"])
    return f"{persona.statement} (post {request['seed']})"


def test_pipeline_with_stand_in_generator(tmp_path, monkeypatch):
    monkeypatch.setattr(LanguageModel, "_generate", fake_generate)
    results = run_launch(
        [
            "experiment=population_ne_llm",
            *QUIET,
            "task.replicas=1",
            f"model.cache={tmp_path / 'cache.sqlite'}",
        ],
        tmp_path,
    )
    m = results["metrics"]
    assert m["llm/persona_accuracy_mean"] == 1.0 and m["llm/separability_margin_min"] > 0.3
    assert m["llm/excluded_plain_max"] == 0 and m["llm/excluded_steered_max"] == 0
    assert all(c["passed"] for c in results["claims"]), results["claims"]


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["population_ne_llm", "population_ne_llm_gemma"])
def test_llm_presets(tmp_path, experiment):
    results = run_launch([f"experiment={experiment}", *QUIET], tmp_path)
    assert_claims_pass(results)
