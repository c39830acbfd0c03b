"""The task contract shared by every method.

A task is what a method runs *on*: a dataset of instances (graphs, MDPs, auctions, seeds) that
solvers evaluate in ``test_step``, and optionally training data for learners. Tasks declare the
capabilities they ``offer``; algorithms declare the one they ``need`` (see ``modules/base.py``), and
``launch.py`` refuses an incompatible pair before any compute, naming the compatible choices.

Instances are generated deterministically from ``(seed, index, stream name)`` -- never from a global
RNG -- so an instance is the same on every rank, device count and resume, and evaluation can be
sharded freely. Streams are *named* (``self.rng(i, "graph")``, ``self.rng(i, "realisations")``):
each consumer of randomness gets its own, so adding a consumer never shifts another's numbers.
"""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import Dataset


def stream_id(name: str) -> int:
    """A stable 32-bit id of a named RNG stream (the same on every machine and Python version)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"an RNG stream is named by a non-empty string, not {name!r}")
    return zlib.crc32(name.encode())


def instance_rng(seed: int, index: int, stream: str) -> np.random.Generator:
    """The RNG of stream ``stream`` of instance ``index`` in a run seeded with ``seed``."""
    return np.random.default_rng([seed, index, stream_id(stream)])


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
    derives from it through :meth:`rng`.
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

    def rng(self, index: int, stream: str = "instance") -> np.random.Generator:
        """Instance ``index``'s stream ``stream``; name each consumer's stream (see the module doc)."""
        return instance_rng(self.seed, index, stream)
