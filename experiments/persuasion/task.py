"""Tasks of the persuasion circuit: the planted circuit and the token task of the tiny transformer.

Instances are replicas (independent seeds inside one run): a replica has its own knowledge map,
items and, for the planted task, its own planted model. Streams: ``items`` (evaluation items),
``knowledge`` (the map subject -> value); the tiny transformer's training batches come from the
learner's own stream.
"""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from experiments.base import InstanceDataset, Task
from experiments.persuasion import tokens as tk
from experiments.persuasion.planted import PlantedTruth, planted_model


class PlantedCircuitTask(Task):
    """Replicas of the planted circuit: ``{"model", "items", "truth"}`` per instance."""

    offers = ("persuasion_circuit",)

    def __init__(self, seed: int = 0, replicas: PositiveInt = 3, n_items: PositiveInt = 48, dose: PositiveInt = 1):
        super().__init__(seed)
        if dose > tk.CONTEXT_LEN // 2:
            raise ValueError(f"dose={dose}: at most {tk.CONTEXT_LEN // 2} keyword-target pairs fit the context")
        self.replicas, self.n_items, self.dose = replicas, n_items, dose

    def knowledge_seed(self, index: int) -> int:
        return int(self.rng(index, "knowledge").integers(2**31))

    def make(self, index: int) -> dict:
        spec = tk.TokenTaskSpec(self.knowledge_seed(index), readout="value", dose=self.dose)
        return {"model": planted_model(spec.seed), "items": tk.batch(spec, self.rng(index, "items"), self.n_items),
                "truth": PlantedTruth()}

    def instances(self):
        return InstanceDataset(self.replicas, self.make)


class TokenTask(Task):
    """The token task for a model trained from scratch: one knowledge map, evaluation items per replica."""

    offers = ("persuasion_tokens",)

    def __init__(self, seed: int = 0, replicas: PositiveInt = 1, n_items: PositiveInt = 256, dose: PositiveInt = 1,
                 readout: Literal["label", "value"] = "label", route_forcing: bool = True):
        super().__init__(seed)
        if dose > tk.CONTEXT_LEN // 2:
            raise ValueError(f"dose={dose}: at most {tk.CONTEXT_LEN // 2} keyword-target pairs fit the context")
        self.replicas, self.n_items, self.route_forcing = replicas, n_items, route_forcing
        self.spec = tk.TokenTaskSpec(int(self.rng(0, "knowledge").integers(2**31)), readout=readout, dose=dose)

    def make(self, index: int) -> dict:
        return {"items": tk.batch(self.spec, self.rng(index, "items"), self.n_items, self.route_forcing)}

    def instances(self):
        return InstanceDataset(self.replicas, self.make)
