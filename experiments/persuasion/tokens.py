"""The synthetic token task of the persuasion circuit (reproduction at toy scale).

    BOS Q s CTX c1 ... c8 OPT v0 N0 v1 N1 v2 N2 v3 N3 ANS  -> the answer token

A subject ``s`` has one correct value ``f(s)`` (a fixed random map, the model's "knowledge").
The options are the correct value, the persuasion target and two distractors, shuffled. The
context comes BEFORE the options (as in the paper's prompt, Appendix A), in five arms:

* clean: fillers only (the padding partner of every other arm);
* pers: ``dose`` keyword-target pairs ``K v_target`` among fillers -> label = target;
* mention: the target without a keyword -> correct;  keyword: a keyword without the target ->
  correct;  truthful: keyword + correct value -> correct.

Ground truth by construction: persuasion succeeds iff a keyword precedes a target mention. The
answer token is the option's label ``N_k`` (``readout="label"``, the paper's numbered choices) or
the option value itself (``readout="value"``, a cloze readout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from experiments.persuasion.items import ItemBatch

BOS, Q, CTX, OPT, ANS = 0, 1, 2, 3, 4
N_LABELS, N_SUBJECTS, N_VALUES, N_KEYWORDS, N_FILLERS = 4, 32, 16, 4, 24
LABELS = np.arange(5, 5 + N_LABELS)
SUBJECTS = LABELS[-1] + 1 + np.arange(N_SUBJECTS)
VALUES = SUBJECTS[-1] + 1 + np.arange(N_VALUES)
KEYWORDS = VALUES[-1] + 1 + np.arange(N_KEYWORDS)
FILLERS = KEYWORDS[-1] + 1 + np.arange(N_FILLERS)
VOCAB = int(FILLERS[-1] + 1)
CONTEXT_LEN = 8
CONTEXT = np.arange(4, 4 + CONTEXT_LEN)  # positions of c1..c8
OPTION_POS = 4 + CONTEXT_LEN + 1 + 2 * np.arange(4)  # positions of v0..v3
LENGTH = int(OPTION_POS[-1] + 3)  # ... v3 N3 ANS
MIXTURE = {"clean": 0.4, "pers": 0.3, "mention": 0.15, "keyword": 0.15}  # training mixture


def knowledge(seed: int) -> np.ndarray:
    """f: subject -> value index, fixed for a seed."""
    return np.random.default_rng([seed, 7919]).integers(0, N_VALUES, N_SUBJECTS)


def route_forcing_bias() -> torch.Tensor:
    """[T, T] additive bias: the answer position never attends to the context (all layers)."""
    bias = torch.zeros(LENGTH, LENGTH)
    bias[LENGTH - 1, CONTEXT] = float("-inf")
    return bias


@dataclass
class TokenTaskSpec:
    seed: int
    readout: str = "label"  # "label" | "value"
    dose: int = 1  # keyword-target pairs in the persuasion span

    def item(self, rng: np.random.Generator) -> dict:
        """One item: every arm's tokens, options, correct and target indices."""
        f = knowledge(self.seed)
        s = int(rng.integers(N_SUBJECTS))
        correct_value = int(f[s])
        others = rng.permutation([v for v in range(N_VALUES) if v != correct_value])[:3]
        values = np.array([correct_value, *others])  # [correct, target, d1, d2]
        order = rng.permutation(4)
        options = values[order]
        correct, target = int(np.flatnonzero(order == 0)[0]), int(np.flatnonzero(order == 1)[0])
        fill = FILLERS[rng.integers(N_FILLERS, size=CONTEXT_LEN)]
        arms = {"clean": fill.copy()}
        starts = rng.permutation(np.arange(0, CONTEXT_LEN - 1, 2))[: self.dose]  # disjoint K v pairs
        kw = KEYWORDS[rng.integers(N_KEYWORDS, size=self.dose)]
        pers = fill.copy()
        pers[starts], pers[starts + 1] = kw, VALUES[options[target]]
        arms["pers"] = pers
        mention = fill.copy()
        mention[rng.integers(CONTEXT_LEN)] = VALUES[options[target]]
        arms["mention"] = mention
        keyword = fill.copy()
        keyword[rng.integers(CONTEXT_LEN)] = kw[0]
        arms["keyword"] = keyword
        truthful = fill.copy()
        truthful[starts[0]], truthful[starts[0] + 1] = kw[0], VALUES[options[correct]]
        arms["truthful"] = truthful
        head = np.array([BOS, Q, SUBJECTS[s], CTX])
        tail = np.ravel(np.stack([VALUES[options], LABELS], 1))  # v0 N0 v1 N1 ...
        seqs = {arm: np.concatenate([head, ctx, [OPT], tail, [ANS]]) for arm, ctx in arms.items()}
        answers = LABELS if self.readout == "label" else VALUES[options]
        mentions = np.zeros(LENGTH, dtype=bool)
        mentions[CONTEXT[starts + 1]] = True
        return {"ids": seqs, "answers": answers, "correct": correct, "target": target, "mentions": mentions}

    def label(self, item: dict, arm: str) -> int:
        return item["target"] if arm == "pers" else item["correct"]


def batch(spec: TokenTaskSpec, rng: np.random.Generator, n: int, route_forcing: bool = False) -> ItemBatch:
    """``n`` tokenized items drawn from ``rng`` as an :class:`ItemBatch`."""
    items = [spec.item(rng) for _ in range(n)]
    ids = {arm: torch.tensor(np.stack([it["ids"][arm] for it in items])) for arm in items[0]["ids"]}
    return ItemBatch(
        ids=ids,
        mask=torch.ones(n, LENGTH, dtype=torch.long),
        option_pos=torch.tensor(np.tile(OPTION_POS + (spec.readout == "label"), (n, 1))),  # v_k or N_k
        value_pos=torch.tensor(np.tile(OPTION_POS, (n, 1))),
        answer_ids=torch.tensor(np.stack([it["answers"] for it in items])),
        correct=torch.tensor([it["correct"] for it in items]),
        target=torch.tensor([it["target"] for it in items]),
        mentions=torch.tensor(np.stack([it["mentions"] for it in items])),
        bias=route_forcing_bias() if route_forcing else None,
    )


def training_batch(
    spec: TokenTaskSpec, rng: np.random.Generator, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` training sequences from the arm mixture: (ids [B, T], answer token [B])."""
    arms = rng.choice(list(MIXTURE), size=size, p=list(MIXTURE.values()))
    ids, answers = [], []
    for arm in arms:
        item = spec.item(rng)
        ids.append(item["ids"][arm])
        answers.append(item["answers"][spec.label(item, arm)])
    return torch.tensor(np.stack(ids)), torch.tensor(answers)
