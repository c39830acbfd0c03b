"""Supervised fine-tuning data: NaiAD ``llm_ads`` rows for training, held-out seed pairs for evaluation.

``train_data()`` is the ``top_fraction`` of the file's rows by joint utility (U_user + U_comm) / 2 of
their ``ppied_scores`` -- NaiAD's models "internalize these strategies to simultaneously improve user
and commercial utility" -- as plain dicts; ``instances()`` are held-out (query, ad) pairs of the seed
set (``{"pair": id}``), answered before and after fine-tuning. The file may be NaiAD_main.jsonl or our
pipeline's ``naiad_rows.jsonl`` (``experiment=naiad_decoupled_gen``).
"""

from typing import Annotated

from pydantic import Field, FilePath, NonNegativeInt, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task
from experiments.naiad.schema import read_jsonl
from experiments.naiad.seeds import pairs


class SFTRows(Task):
    offers = ("ad_sft",)

    @validate_call
    def __init__(
        self,
        path: FilePath,
        eval_pair_ids: list[NonNegativeInt],
        top_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5,
        limit: PositiveInt = 100,
        seed: int = 0,
    ):
        super().__init__(seed)
        bad = [i for i in eval_pair_ids if i >= len(pairs())]
        if bad or not eval_pair_ids:
            raise ValueError(
                f"eval_pair_ids {eval_pair_ids} must be non-empty indices into the {len(pairs())} seed pairs"
            )
        rows = sorted(read_jsonl(path), key=lambda r: -(r.ppied_scores.user + r.ppied_scores.commercial))
        keep = rows[: max(1, round(top_fraction * len(rows)))][:limit]
        held_out = {pairs()[i][0].text for i in eval_pair_ids}
        self.rows = [r.model_dump() for r in keep if r.query not in held_out]
        if not self.rows:
            raise ValueError(
                f"{path}: no training rows left after keeping the top {top_fraction:g} and "
                "dropping the held-out queries"
            )
        self.eval_pair_ids = eval_pair_ids

    def train_data(self) -> list[dict]:
        return self.rows

    def instances(self) -> InstanceDataset:
        return InstanceDataset(len(self.eval_pair_ids), lambda index: {"pair": self.eval_pair_ids[index]})
