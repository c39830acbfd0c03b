"""Persuasion circuit: the token task, the planted circuit end to end, the tiny transformer's
contract (2 steps, exact resume), bad inputs."""

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from pydantic import ValidationError

from experiments.persuasion import tokens as tk
from experiments.persuasion.items import check_first_tokens
from experiments.persuasion.task import PlantedCircuitTask
from modules.persuasion.analysis import AnalysisConfig
from tests.helpers import run_launch

QUIET = ["trainer.enable_progress_bar=false"]


def test_token_task_ground_truth_by_construction():
    spec = tk.TokenTaskSpec(seed=3)
    b = tk.batch(spec, np.random.default_rng(0), 32)
    ctx = torch.tensor(tk.CONTEXT)
    for arm in ("clean", "mention", "keyword", "truthful"):
        assert torch.equal(b.ids[arm][:, : ctx[0]], b.ids["pers"][:, : ctx[0]])  # same prefix and options
        assert torch.equal(b.ids[arm][:, ctx[-1] + 1 :], b.ids["pers"][:, ctx[-1] + 1 :])
    is_kw = torch.isin(b.ids["pers"][:, ctx], torch.tensor(tk.KEYWORDS))
    assert is_kw.any(1).all() and not torch.isin(b.ids["mention"][:, ctx], torch.tensor(tk.KEYWORDS)).any()
    assert (b.mentions.sum(1) == 1).all()
    target_tok = b.ids["pers"][torch.arange(32)[:, None], b.value_pos].gather(1, b.target[:, None])[:, 0]
    assert torch.equal(b.ids["pers"][b.mentions], target_tok)  # mention = the target value
    assert torch.equal(b.ids["pers"].gather(1, b.option_pos), b.answer_ids)  # key tokens = readout (labels)
    ids, answer = tk.training_batch(spec, np.random.default_rng(1), 64)
    assert ids.shape == (64, tk.LENGTH) and torch.isin(answer, torch.tensor(tk.LABELS)).all()


def test_planted_preset_recovers_the_planted_circuit(tmp_path):
    results = run_launch(
        ["experiment=persuasion_planted", *QUIET, "task.replicas=1", "task.n_items=24"], tmp_path
    )
    failed = [c for c in results["claims"] if not c["passed"]]
    assert not failed, failed
    assert list((tmp_path / "plots").glob("persuasion_*.png"))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="dose=5"):
        PlantedCircuitTask(dose=5)
    with pytest.raises(ValidationError, match="claim_alpha"):
        AnalysisConfig(alphas=(1.0, 2.0), claim_alpha=4.0)
    with pytest.raises(ValueError, match="share a first token"):
        check_first_tokens(torch.tensor([[5, 6, 7, 5]]), ["q1"])


class Preempt(Callback):
    def __init__(self, at: int):
        self.at = at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx + 1 == self.at:
            raise RuntimeError("preempted")


TINY = [
    "task=persuasion_tokens",
    "algorithm=persuasion_tiny",
    *QUIET,
    "task.n_items=16",
    "algorithm.batch=16",
    "algorithm.d_model=32",
    "checkpoint_every_n_steps=3",
]


def test_tiny_transformer_evaluates_after_two_steps(tmp_path):
    m = run_launch([*TINY, "trainer.max_steps=2"], tmp_path)["metrics"]
    assert "persuasion/clean_acc" in m and "persuasion/too_few" in m


def test_tiny_transformer_resumes_exactly(tmp_path):
    steps = [*TINY, "trainer.max_steps=8"]
    straight = run_launch(steps, tmp_path / "straight")["metrics"]
    with pytest.raises(RuntimeError, match="preempted"):
        run_launch(steps, tmp_path / "resumed", callbacks=[Preempt(5)])
    resumed = run_launch(steps, tmp_path / "resumed")["metrics"]
    assert sorted(resumed) == sorted(straight)
    assert all(
        resumed[k] == straight[k] or (np.isnan(resumed[k]) and np.isnan(straight[k])) for k in straight
    )


def test_item_files_missing_fields_and_flat_rows(tmp_path):
    import json

    from experiments.persuasion.farm import NQ2, read_items
    from experiments.persuasion.task import FarmTask

    assert len(read_items(NQ2)) == 489
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q?", "adv": {"target": "x"}}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1 adv: missing field\(s\) \['mcq'\]"):
        read_items(bad)
    flat = tmp_path / "flat.jsonl"
    row = {
        "question": "Capital of France?",
        "options": ["Paris", "Lyon", "Nice", "Lille"],
        "correct": 0,
        "target": 1,
        "passages": {"logical": ["Lyon is the capital, say the records of Lyon."]},
    }
    flat.write_text(json.dumps(row) + "\n")
    task = FarmTask(path=str(flat), split="all", n_items=1)
    item = task.items[0]
    assert item.options[item.correct] == "Paris" and item.options[item.target] == "Lyon"
    with pytest.raises(ValueError, match="no 'emotional' passage"):
        FarmTask(path=str(flat), appeal="emotional")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_planted_preset_on_more_seeds(tmp_path, seed):
    results = run_launch(["experiment=persuasion_planted", f"seed={seed}", *QUIET], tmp_path)
    failed = [c for c in results["claims"] if not c["passed"]]
    assert not failed, failed


@pytest.mark.slow
def test_tiny_transformer_claims(tmp_path):
    results = run_launch(["experiment=persuasion_tiny", *QUIET], tmp_path)
    failed = [c for c in results["claims"] if not c["passed"]]
    assert not failed, failed


def test_attribution_ranking_runs_under_inference_mode():
    """Lightning tests under torch.inference_mode: attribution patching must still get gradients."""
    from experiments.persuasion.planted import planted_model
    from modules.hooks import HookedLM
    from modules.persuasion.analysis import Analysis

    items = tk.batch(tk.TokenTaskSpec(seed=0, readout="value"), np.random.default_rng(0), 12)
    cfg = AnalysisConfig(candidates=4, upstream_candidates=2, upstream_k=2, folds=3)
    hooked = HookedLM(planted_model(0))  # built outside, as Lightning builds the module before testing
    with torch.inference_mode():
        m = Analysis(hooked, items, cfg).run().metrics
    assert m["too_few"] == 0 and (m["decision_layer"], m["decision_head"]) == (2, 0)


def test_rank1_fit_recovers_a_shared_key_direction_across_query_heads():
    """GQA: logits b_g + (x.u_g)(x~_j.r) of 3 query heads sharing keys: r recovered, CV error small."""
    from types import SimpleNamespace

    from modules.persuasion.analysis import Analysis

    g = torch.Generator().manual_seed(0)
    n, D, G = 40, 6, 3
    u, r = (
        torch.randn(G, D, generator=g, dtype=torch.float64),
        torch.randn(D, generator=g, dtype=torch.float64),
    )
    XQ = torch.randn(G * n, D, generator=g, dtype=torch.float64)
    XQ = XQ[torch.arange(G * n) % n]  # every head reads the same query input of an item
    XK = torch.randn(n, 4, D, generator=g, dtype=torch.float64).repeat(G, 1, 1)
    group = torch.arange(G).repeat_interleave(n)
    S = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)[group, None] + (XQ * u[group]).sum(1)[:, None] * (
        (XK - XK.reshape(-1, D).mean(0)) @ r
    )
    fake = SimpleNamespace(cfg=AnalysisConfig(ridge=1e-9, folds=4), C=torch.arange(n), gen=g)
    _, r_fit, _, _ = Analysis.fit_rank1(fake, S, XQ, XK, group)
    assert torch.nn.functional.cosine_similarity(r_fit, r, dim=0).abs() > 0.999
    fake.fit_rank1 = lambda *a: Analysis.fit_rank1(fake, *a)
    assert Analysis.rank1_cv(fake, S, XQ, XK, group) < 1e-2  # folds centre keys on their own mean
