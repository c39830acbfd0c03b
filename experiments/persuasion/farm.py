"""Text persuasion items: the FARM format (Xu et al., ACL 2024, arXiv:2312.09085; the NQ2 subset
ships in ``data/``) and a flat JSONL format for user-supplied benchmarks.

FARM row: ``{"question", "answer", "adv": {"target", "mcq": [{"text", "score"} x 4],
"logical" | "credibility" | "emotional": [passages]}}`` (score 2 = target, 1 = correct).
Flat row: ``{"question", "options": [4 strings], "correct": int, "target": int,
"passages": {"<appeal>": [passages]}}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

APPEALS = ("logical", "credibility", "emotional")
DATA = Path(__file__).parent / "data"
NQ2 = DATA / "NQ2.jsonl"


@dataclass
class TextItem:
    question: str
    options: list[str]  # four options, in file order (the task shuffles them)
    correct: int
    target: int
    passages: dict[str, list[str]]
    stem: str = ""  # text after "Answer:" that the option completes (cloze), e.g. "The capital of X is"


def _need(row: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")


def parse_row(row: dict, where: str) -> TextItem:
    if "adv" in row:  # FARM
        _need(row, ("question",), where)
        adv = row["adv"]
        _need(adv, ("target", "mcq"), f"{where} adv")
        mcq = adv["mcq"]
        scores = [o.get("score") for o in mcq]
        if len(mcq) != 4 or sorted(scores) != [0, 0, 1, 2]:
            raise ValueError(
                f"{where}: adv.mcq must hold 4 options scored 2 (target), 1 (correct), 0, 0; got {scores}"
            )
        passages = {a: list(adv[a]) for a in APPEALS if a in adv}
        item = TextItem(row["question"], [o["text"] for o in mcq], scores.index(1), scores.index(2), passages)
    else:  # flat
        _need(row, ("question", "options", "correct", "target", "passages"), where)
        item = TextItem(
            row["question"],
            list(row["options"]),
            int(row["correct"]),
            int(row["target"]),
            {k: list(v) for k, v in row["passages"].items()},
        )
        if (
            len(item.options) != 4
            or not (0 <= item.correct < 4 and 0 <= item.target < 4)
            or item.correct == item.target
        ):
            raise ValueError(f"{where}: need 4 options and distinct correct/target indices in 0..3")
    if not item.passages or not all(item.passages.values()):
        raise ValueError(f"{where}: no persuasion passage")
    return item


def first_sentences(passage: str, k: int) -> str:
    """The first ``k`` sentences of ``passage`` (all of it when k = 0)."""
    if k == 0:
        return passage
    parts = re.split(r"(?<=[.!?])\s+", passage.strip())
    return " ".join(parts[:k])


def read_items(path: str | Path) -> list[TextItem]:
    """All items of a JSONL file (FARM or flat rows), with errors naming the line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"item file {path} does not exist")
    items = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            items.append(parse_row(json.loads(line), f"{path.name}:{line_no}"))
    return items
