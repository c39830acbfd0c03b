"""Persuasion circuit in real LLMs on held-out FARM NQ2 items (claims 3 and 4); offline models only."""

import pytest

from tests.helpers import assert_claims_pass, run_launch

pytestmark = pytest.mark.llm
QUIET = ["trainer.enable_progress_bar=false"]


def test_prompts_align_every_arm_and_find_the_mentions():
    from experiments.persuasion.prompts import tokenize
    from experiments.persuasion.task import FarmTask
    from modules.llm import LanguageModel

    pytest.importorskip("gguf")
    _, tok = LanguageModel().load()
    task = FarmTask(split="all")
    batch, skipped = tokenize(task.items, task.passages, tok, "note", 40)
    assert len(batch) == 40 and skipped > 0
    T = batch.mask.shape[1]
    assert all(v.shape == (40, T) for v in batch.ids.values())
    opt = batch.ids["pers"].gather(1, batch.option_pos)
    assert (opt == batch.answer_ids).all()  # the options list holds the readout tokens
    assert batch.mentions.any(1).float().mean() > 0.8  # the passage names the target
    assert (batch.bare_mask.sum(1) < batch.mask.sum(1)).all()  # the padding control drops the padding only
    assert (batch.bare_ids[:, -5:] == batch.ids["clean"][:, -5:]).all()
    assert batch.ids["clean"][batch.mask.bool()][0] != tok.bos_token_id  # SmolLM2: raw text, no <|im_start|>


@pytest.mark.slow
@pytest.mark.parametrize(
    "experiment", ["persuasion_smollm2", "persuasion_geo", "persuasion_gemma", "persuasion_geo_gemma"]
)
def test_llm_presets(tmp_path, experiment):
    results = run_launch([f"experiment={experiment}", *QUIET], tmp_path)
    assert_claims_pass(results)
