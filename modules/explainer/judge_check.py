"""Which judge formats carry decision signal (Policy-to-Language, arXiv:2502.12530: the proxies
must infer the decision from the explanation for their rewards to mean anything).

For every state the judges read three explanations -- correct ("the agent moves a* ."),
contradicting ("the agent moves b ." for each b != a*) and none -- and we report each judge's
mean p(a*) and argmax accuracy per kind, next to the held-out evaluator's. Ground truth: the
agent's actual action (value iteration). Solver: one replica per ``test_step``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from experiments.explainer.judges import JUDGES, Query
from experiments.explainer.readers import accuracy
from modules.base import AtlasModule
from modules.llm import LLM_MODELS

KINDS = ("correct", "contradicting", "none")


class JudgeCheck(AtlasModule):
    needs = "policy_explanation"
    models = (*LLM_MODELS, "none")  # an LLM group first: the MiniLM / LLM judges need one

    def __init__(
        self,
        task,
        model=None,
        judges: Annotated[list[Literal[JUDGES]], Field(min_length=1)] = ("noisy_rule",),
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])

    def queries(self) -> tuple[list[Query], list[str], list[int]]:
        env, out, kinds, actions = self.task.env, [], [], []
        for s in env.states:
            a = env.policy[s]
            rows = [("correct", f"the agent moves {env.actions[a]} .")]
            rows += [("contradicting", f"the agent moves {b} .") for b in env.actions if b != env.actions[a]]
            rows += [("none", "")]
            for kind, words in rows:
                out.append(Query(s, tuple(words.split())))
                kinds.append(kind)
                actions.append(a)
        return out, kinds, actions

    def test_step(self, batch, batch_idx):
        index, _ = batch
        queries, kinds, actions = self.queries()
        kinds, actions = np.array(kinds), np.array(actions)
        scores = {
            name: self.task.judge(name, index, self.model_factory).probs(queries)
            for name in self.hparams.judges
        }
        evaluator = self.task.evaluator
        scores["heldout"] = np.array(
            [evaluator.probs(self.task.env.facts(q.state), list(q.words)) for q in queries]
        )
        values = {}
        for name, p in scores.items():
            p_true = p[np.arange(len(p)), actions]
            acc = np.array([accuracy(row, a) for row, a in zip(p, actions)])
            for kind in KINDS:
                values[f"{name}_ptrue_{kind}"] = float(p_true[kinds == kind].mean())
                values[f"{name}_acc_{kind}"] = float(acc[kinds == kind].mean())
        self.record(index, **values)

    def summarize(self, rows):
        out = {}
        for name in [*self.hparams.judges, "heldout"]:
            for kind in KINDS:
                for stat in ("ptrue", "acc"):
                    out[f"explainer/judge_{name}_{stat}_{kind}"] = float(rows[f"{name}_{stat}_{kind}"].mean())
            out[f"explainer/judge_{name}_signal"] = (
                out[f"explainer/judge_{name}_ptrue_correct"]
                - out[f"explainer/judge_{name}_ptrue_contradicting"]
            )
        return out
