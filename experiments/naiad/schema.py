"""The NaiAD sample schema and its JSONL readers/writers.

The published dataset (huggingface.co/datasets/MaxAcand/NaiAD, arXiv 2605.09918) has two
configurations; the field names below are exactly those of its dataset card:

* ``human_ads`` (NaiAD_human.jsonl): id, query, response, ppied_scores{q1..q4}
* ``llm_ads``   (NaiAD_main.jsonl):  id, query, category (list), ad_name, ad_label, ad_info,
  logic_bridge, strategy, response, ppied_scores{q1..q4}

q1 relevance, q2 coherence (user utility); q3 ad effectiveness, q4 click-through intent (commercial
utility) -- names from a secondary source [S]. The score scale is not published; 0-100 is our working
assumption [R] and a parameter of the reader. A bad row fails with its file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

SCORE_RANGE = (0.0, 100.0)


class Scores(BaseModel):
    """``ppied_scores``: the four (PPI-calibrated) dimension scores."""

    model_config = ConfigDict(extra="forbid")
    q1: float
    q2: float
    q3: float
    q4: float

    def check_range(self, low: float, high: float) -> None:
        for name, value in self.model_dump().items():
            if not low <= value <= high:
                raise ValueError(f"ppied_scores.{name} = {value} is outside [{low:g}, {high:g}]")

    @property
    def user(self) -> float:
        """U_user = (q1 + q2) / 2 [R]."""
        return (self.q1 + self.q2) / 2

    @property
    def commercial(self) -> float:
        """U_comm = (q3 + q4) / 2 [R]."""
        return (self.q3 + self.q4) / 2


class HumanAd(BaseModel):
    """A ``human_ads`` row (human-written sponsorship segment)."""

    model_config = ConfigDict(extra="ignore")
    id: str | int
    query: str
    response: str
    ppied_scores: Scores


class LLMAd(HumanAd):
    """An ``llm_ads`` row: the ad, its logic bridge and strategy, the response and its scores."""

    category: list[str]
    ad_name: str
    ad_label: str
    ad_info: str
    logic_bridge: str
    strategy: str


def parse_row(
    line: str, schema: type[HumanAd], where: str, score_range: tuple[float, float] = SCORE_RANGE
) -> HumanAd:
    """One JSONL line -> a validated row; errors name ``where`` (file:line) and the field."""
    try:
        row = schema.model_validate(json.loads(line))
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: not valid JSON ({err.msg})") from None
    except ValidationError as err:
        problems = "; ".join(f"field {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ValueError(f"{where}: {problems}") from None
    try:
        row.ppied_scores.check_range(*score_range)
    except ValueError as err:
        raise ValueError(f"{where} (id {row.id}): {err}") from None
    return row


def read_jsonl(
    path: str | Path, schema: type[HumanAd] = LLMAd, score_range: tuple[float, float] = SCORE_RANGE
) -> list[HumanAd]:
    """All rows of a NaiAD JSONL file (blank lines skipped); the first bad row raises ``ValueError``."""
    path = Path(path)
    rows = [
        parse_row(line, schema, f"{path}:{number}", score_range)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if line.strip()
    ]
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def write_jsonl(path: str | Path, rows: Iterable[HumanAd]) -> Path:
    """Write rows, one JSON object per line (atomic replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(row.model_dump_json() + "\n" for row in rows))
    tmp.replace(path)
    return path
