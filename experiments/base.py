"""The task contract shared by every method.

A task is what a method runs *on*: a dataset of instances (graphs, MDPs, auctions, seeds) that
solvers evaluate in ``test_step``, and optionally training data for learners. Tasks declare the
capabilities they ``offer``; algorithms declare the one they ``need`` (see ``modules/base.py``), and
``launch.py`` refuses an incompatible pair before any compute, naming the compatible choices.

Instances are generated deterministically from ``(seed, index)`` -- never from a global RNG -- so an
instance is the same on every rank, device count and resume, and evaluation can be sharded freely.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from torch.utils.data import Dataset


def instance_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """The RNG of instance ``index`` of a run seeded with ``seed`` (independent streams per ``stream``)."""
    return np.random.default_rng([seed, index, stream])


class InstanceDataset(Dataset):
    """``len(self)`` instances, each built on demand by ``make(index)``; items are ``(index, instance)``."""

    def __init__(self, n: int, make):
        self.n, self.make = n, make

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[int, Any]:
        return index, self.make(index)


class Task:
    """Base class of every task. Subclasses set ``offers`` and implement ``instances``.

    ``seed`` is injected by ``launch.py`` from the top-level ``seed``; everything random in a task
    derives from it through :func:`instance_rng`.
    """

    offers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, seed: int = 0):
        self.seed = seed

    def instances(self) -> Dataset:
        """The evaluation instances, consumed one per ``test_step``."""
        raise NotImplementedError(f"{type(self).__name__} has no evaluation instances")

    def train_data(self) -> Dataset:
        """Training data for supervised learners (RL learners collect their own)."""
        raise NotImplementedError(f"{type(self).__name__} has no training data")

    def rng(self, index: int, stream: int = 0) -> np.random.Generator:
        return instance_rng(self.seed, index, stream)
