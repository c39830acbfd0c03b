"""Planted-structure logic bridges: four strategy families with templated slot-filling and noise.

NaiAD (arXiv 2605.09918) reports that LLM "reasoning paths cluster into four distinct semantic
strategies"; their names come from a secondary source [S] and the glosses below are ours [R]:

0. Value & Vision ("Mindset Bridge"): ties the ad to the user's goals and values;
1. Aesthetic & Lifestyle ("Vibe Bridge"): ties it to taste and lifestyle identity;
2. Emotional & Psychological ("Empathy Bridge"): ties it to feelings and pain points;
3. Methodological Abstraction ("Craftsmanship Bridge"): abstracts the task into a method the
   product embodies.

Each bridge is a random paraphrase of its family's seed bridge (every ``[a|b|c]`` choice drawn at
random) filled with a random (query, ad) pair from the seed set, so the family -- not the topic --
is the planted label a clustering should recover. Replica i is drawn from ``self.rng(i)``.
"""

import re
from typing import Annotated

import numpy as np
from pydantic import Field, PositiveInt, validate_call

from experiments.base import InstanceDataset, Task
from experiments.naiad.seeds import pairs

STRATEGIES = (
    "Value & Vision",
    "Aesthetic & Lifestyle",
    "Emotional & Psychological",
    "Methodological Abstraction",
)

SEED_BRIDGES = (  # one seed bridge per family; [a|b|c] = paraphrase choices, {need}/{product} = slots
    "[The user|Someone|This person] asking about {need} [wants|hopes|aims] to [become|grow into] the "
    "person they [aspire to be|dream of being]; {product} [serves|supports|advances] their "
    "[long-term goals|life ambitions|personal vision] and [values|principles].",
    "[The user|Someone|This person] asking about {need} [wants|enjoys|seeks] a [stylish|chic|elegant] "
    "and [beautiful|tasteful|good-looking] lifestyle; {product} [matches|fits|expresses] their "
    "[aesthetic|taste|sense of style] and [vibe|look|design sense].",
    "[The user|Someone|This person] asking about {need} [feels|is] [stressed|anxious|overwhelmed] and "
    "[worried|frustrated|afraid]; {product} [brings|offers|gives] [relief|comfort|reassurance] and "
    "[peace of mind|calm|emotional safety].",
    "[The user|Someone|This person] asking about {need} [needs|lacks|wants] a "
    "[systematic|step-by-step|structured] [method|process|workflow]; {product} [turns|breaks|organises] "
    "the task into [measurable steps|clear stages|repeatable routines] with [feedback|checks|iteration].",
)
CHOICE = re.compile(r"\[([^\]]+)\]")


def paraphrase(seed_bridge: str, rng: np.random.Generator) -> str:
    """Resolve every ``[a|b|c]`` choice of a seed bridge at random."""
    return CHOICE.sub(lambda m: (options := m.group(1).split("|"))[rng.integers(len(options))], seed_bridge)


def planted_bridges(rng: np.random.Generator, per_family: int) -> dict:
    """``per_family`` bridges per strategy family, each on a random seed (query, ad) pair: texts,
    planted labels [4 * per_family] and each bridge's context (ad name and category, as in the schema)."""
    pool = pairs()
    rows = {"texts": [], "labels": [], "ad_names": [], "categories": []}
    for family, seed_bridge in enumerate(SEED_BRIDGES):
        for _ in range(per_family):
            query, ad = pool[rng.integers(len(pool))]
            rows["texts"].append(paraphrase(seed_bridge, rng).format(need=query.need, product=ad.name))
            rows["labels"].append(family)
            rows["ad_names"].append(ad.name)
            rows["categories"].append(ad.category)
    rows["labels"] = np.array(rows["labels"])
    return rows


class PlantedBridges(Task):
    """``n_replicas`` independent planted sets (one ``test_step`` each) of 4 x ``per_family`` bridges."""

    offers = ("bridges",)

    @validate_call
    def __init__(
        self, n_replicas: PositiveInt = 3, per_family: Annotated[int, Field(ge=2)] = 20, seed: int = 0
    ):
        super().__init__(seed)
        self.n_replicas, self.per_family = n_replicas, per_family
        self.strategies = STRATEGIES

    def make(self, index: int) -> dict:
        return planted_bridges(self.rng(index), self.per_family)

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.n_replicas, self.make)
