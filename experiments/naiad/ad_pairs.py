"""(query, ad) prompts from the seed set, for the generation experiments (NaiAD notes N4, N6, N7).

One instance = ``{"pair": index into seeds.pairs(), "repeat": r}`` (plain ints, so Lightning can move
the batch), so a run over ``pair_ids`` x ``repeats`` shards over devices; the repeat number offsets the
generation seed.
"""

from pydantic import NonNegativeInt, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task
from experiments.naiad.seeds import pairs


class AdPairs(Task):
    offers = ("ad_pairs",)

    @validate_call
    def __init__(self, pair_ids: list[NonNegativeInt], repeats: PositiveInt = 1, seed: int = 0):
        super().__init__(seed)
        available = pairs()
        bad = [i for i in pair_ids if i >= len(available)]
        if bad:
            raise ValueError(
                f"pair_ids {bad} out of range: the seed set has {len(available)} pairs "
                f"(0..{len(available) - 1})"
            )
        if not pair_ids:
            raise ValueError("pair_ids is empty: choose at least one (query, ad) pair")
        self.pair_ids, self.repeats = pair_ids, repeats

    def make(self, index: int) -> dict:
        return {"pair": self.pair_ids[index // self.repeats], "repeat": index % self.repeats}

    def instances(self) -> InstanceDataset:
        return InstanceDataset(len(self.pair_ids) * self.repeats, self.make)
