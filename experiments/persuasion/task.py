"""Tasks of the persuasion circuit: the planted circuit, the token task of the tiny transformer, and
text items (FARM NQ2 or a user file) for real language models.

Instances are replicas (independent seeds inside one run): a replica has its own knowledge map,
items and, for the planted task, its own planted model. Streams: ``items`` (evaluation items),
``knowledge`` (the map subject -> value); the tiny transformer's training batches come from the
learner's own stream.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveInt

from experiments.base import InstanceDataset, Task
from experiments.persuasion import tokens as tk
from experiments.persuasion.capitals import capital_items
from experiments.persuasion.farm import NQ2, TextItem, first_sentences, read_items
from experiments.persuasion.planted import PlantedTruth, planted_model


class PlantedCircuitTask(Task):
    """Replicas of the planted circuit: ``{"model", "items", "truth"}`` per instance."""

    offers = ("persuasion_circuit",)

    def __init__(
        self, seed: int = 0, replicas: PositiveInt = 3, n_items: PositiveInt = 48, dose: PositiveInt = 1
    ):
        super().__init__(seed)
        if dose > tk.CONTEXT_LEN // 2:
            raise ValueError(
                f"dose={dose}: at most {tk.CONTEXT_LEN // 2} keyword-target pairs fit the context"
            )
        self.replicas, self.n_items, self.dose = replicas, n_items, dose

    def knowledge_seed(self, index: int) -> int:
        return int(self.rng(index, "knowledge").integers(2**31))

    def make(self, index: int) -> dict:
        spec = tk.TokenTaskSpec(self.knowledge_seed(index), readout="value", dose=self.dose)
        return {
            "model": planted_model(spec.seed),
            "items": tk.batch(spec, self.rng(index, "items"), self.n_items),
            "truth": PlantedTruth(),
        }

    def instances(self):
        return InstanceDataset(self.replicas, self.make)


class TokenTask(Task):
    """The token task for a model trained from scratch: one knowledge map, evaluation items per replica."""

    offers = ("persuasion_tokens",)

    def __init__(
        self,
        seed: int = 0,
        replicas: PositiveInt = 1,
        n_items: PositiveInt = 256,
        dose: PositiveInt = 1,
        readout: Literal["label", "value"] = "label",
        route_forcing: bool = True,
    ):
        super().__init__(seed)
        if dose > tk.CONTEXT_LEN // 2:
            raise ValueError(
                f"dose={dose}: at most {tk.CONTEXT_LEN // 2} keyword-target pairs fit the context"
            )
        self.replicas, self.n_items, self.route_forcing = replicas, n_items, route_forcing
        self.spec = tk.TokenTaskSpec(
            int(self.rng(0, "knowledge").integers(2**31)), readout=readout, dose=dose
        )

    def make(self, index: int) -> dict:
        return {"items": tk.batch(self.spec, self.rng(index, "items"), self.n_items, self.route_forcing)}

    def instances(self):
        return InstanceDataset(self.replicas, self.make)


class FarmTask(Task):
    """Text items (FARM NQ2 by default, or any item file) in one or two context frames.

    Items are split into a development and a held-out part (stream ``split``); options are shuffled
    per item (stream ``options``). One instance per frame in ``frames``, each over the same items;
    the method keeps the first ``n_items`` whose options its tokenizer tells apart. ``sentences`` > 0
    keeps only that many leading sentences of each passage (shorter prompts for CPU runs).
    """

    offers = ("persuasion_text",)

    def __init__(
        self,
        seed: int = 0,
        path: str | None = None,
        split: Literal["dev", "heldout", "all"] = "heldout",
        dev_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.3,
        n_items: PositiveInt = 48,
        appeal: Literal["logical", "credibility", "emotional"] = "logical",
        passage: NonNegativeInt = 0,
        frames: tuple[Literal["note", "geo"], ...] = ("note",),
        skip_shared_first_token: bool = True,
        sentences: NonNegativeInt = 0,
    ):
        super().__init__(seed)
        items = self.load_items(path)
        for i, item in enumerate(items):
            if len(item.passages.get(appeal, [])) <= passage:
                raise ValueError(f"item {i} ({item.question!r}) has no {appeal!r} passage number {passage}")
        order = self.rng(0, "split").permutation(len(items))
        n_dev = round(dev_fraction * len(items))
        chosen = {"dev": order[:n_dev], "heldout": order[n_dev:], "all": order}[split]
        self.items, self.frames, self.skip, self.n_items = [], list(frames), skip_shared_first_token, n_items
        self.passages = [first_sentences(items[i].passages[appeal][passage], sentences) for i in chosen]
        for i in chosen:
            perm = self.rng(i, "options").permutation(4)
            item = items[i]
            self.items.append(
                TextItem(
                    item.question,
                    [item.options[p] for p in perm],
                    int(np.flatnonzero(perm == item.correct)[0]),
                    int(np.flatnonzero(perm == item.target)[0]),
                    item.passages,
                    item.stem,
                )
            )

    def load_items(self, path: str | None) -> list[TextItem]:
        return read_items(path or NQ2)

    def make(self, index: int) -> dict:
        return {"frame": self.frames[index], "items": self.items, "passages": self.passages}

    def instances(self):
        return InstanceDataset(len(self.frames), self.make)


class CapitalsTask(FarmTask):
    """The same pipeline on capitals of countries (facts a 135M model knows); ``path`` is unused."""

    def load_items(self, path: str | None) -> list[TextItem]:
        return capital_items(self.rng(0, "capitals"))
