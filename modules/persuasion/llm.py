"""The persuasion circuit in a real language model on text items (Sun et al., "How LLMs Are
Persuaded: A Few Attention Heads, Rerouted", arXiv:2605.09314; items from FARM NQ2).

The LLM comes from the ``model=`` group (``modules.llm.LanguageModel``; SmolLM2-135M-Instruct by
default, Gemma-3-270M with ``model=gemma3_270m``, any hub model with ``model=hf model.name=...``).
One ``test_step`` = one context frame (``note``: the persuasion passage in the user's note;
``geo``: the passage as a top-ranked retrieved source): tokenize the items
(``experiments/persuasion/prompts.py``), run the full causal chain of
:mod:`modules.persuasion.analysis`, record the figures and the top-5 restoration heads. With two
frames, ``summarize`` also reports the overlap of their top-5 heads. GQA: the decision head's KV
group is reported with it; the rank-one fit uses the keys of that group. DDP: frames shard over ranks.
"""

from __future__ import annotations

import numpy as np

from experiments.persuasion.prompts import tokenize
from modules.hooks import HookedLM
from modules.llm import LLM_MODELS
from modules.persuasion.circuit import CircuitAnalysis, summarize_replicas

TOP = 5


class LLMCircuitAnalysis(CircuitAnalysis):
    needs = "persuasion_text"
    models = LLM_MODELS
    stages = ("test",)

    def setup(self, stage: str) -> None:
        model, self.tokenizer = self.model_factory.load()
        self.hooked = HookedLM(model)

    def test_step(self, batch, batch_idx):
        index, inst = batch
        items, skipped = tokenize(
            inst["items"],
            inst["passages"],
            self.tokenizer,
            inst["frame"],
            self.task.n_items,
            skip_shared_first_token=self.task.skip,
        )
        metrics = self.analyse(
            index, self.hooked, items, f"{self.model_factory.name}, {inst['frame']}", tag=f"_{inst['frame']}"
        )
        top = np.full((TOP, 2), -1)
        if not metrics["too_few"]:
            ranked = self.last_result.arrays["ranked"][:TOP]
            top[: len(ranked)] = ranked
        self.record(index, **metrics, n_skipped_shared_first_token=skipped, top_heads=top)

    def summarize(self, rows):
        frames = self.task.frames
        top = rows.pop("top_heads")
        out = {}
        for i, frame in enumerate(frames):
            one = {k: v[i : i + 1] for k, v in rows.items()}
            out.update(
                {
                    k.replace("persuasion/", f"persuasion/{frame}/"): v
                    for k, v in summarize_replicas(one).items()
                    if not k.endswith(("_std", "_min", "_max"))
                }
            )
        if len(frames) == 2:
            a, b = ({tuple(h) for h in t.astype(int).tolist() if h[0] >= 0} for t in top)
            out[f"persuasion/top{TOP}_overlap"] = float(len(a & b)) if a and b else float("nan")
        return out
