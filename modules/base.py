"""The LightningModule contract shared by every method.

Two kinds of module live in Atlas:

* **learners** (``stages = ("fit", "test")``) train in ``training_step`` and are then evaluated;
* **solvers** (``stages = ("test",)``) do their work in ``test_step``, one task instance per step.

Either way evaluation runs over ``task.instances()`` in ``test_step``, so Lightning shards the
instances over devices and nodes exactly as it shards training batches. Per-instance results are
``record``-ed, gathered across ranks (deduplicated: the distributed sampler pads with repeats),
reduced by ``summarize`` into scalar metrics, and logged -- which is how they reach
``metrics.json`` through ``trainer.callback_metrics``, also under ``ddp_spawn``.

Exact resume is structural, not a convention each learner must remember:

* randomness comes from named streams, ``self.rng(name)`` (NumPy) and ``self.torch_generator(name)``
  (torch), seeded from ``(seed, rank, name)``; every stream's state rides in every checkpoint, and
  so do the global Python/NumPy/torch states;
* non-parameter learner state (environments, replay buffers, counters) is returned by
  ``learner_state()`` and restored by ``load_learner_state()``; NumPy arrays travel as tensors;
* a checkpoint holds only tensors, numbers, strings and containers of them (it loads with
  ``weights_only=True``): anything else fails at save time, naming its key;
* subclasses may not override ``on_save_checkpoint``/``on_load_checkpoint``.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from experiments.base import Task, stream_id

CHECKPOINT_LEAVES = (torch.Tensor, int, float, bool, str, type(None))


def _identity(item: Any) -> Any:
    return item


def arrays_to_tensors(tree: Any) -> Any:
    """NumPy arrays -> tensors, NumPy scalars -> Python numbers, in nested dicts/lists/tuples."""
    if isinstance(tree, dict):
        return {k: arrays_to_tensors(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(arrays_to_tensors(v) for v in tree)
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(tree).copy())
    return tree.item() if isinstance(tree, np.generic) else tree


def tensors_to_arrays(tree: Any) -> Any:
    """Tensors -> NumPy arrays in nested dicts/lists/tuples (the inverse of :func:`arrays_to_tensors`)."""
    if isinstance(tree, dict):
        return {k: tensors_to_arrays(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tensors_to_arrays(v) for v in tree)
    return tree.numpy() if isinstance(tree, torch.Tensor) else tree


def check_checkpoint_tree(tree: Any, key: str = "checkpoint") -> None:
    """Refuse anything ``torch.load(weights_only=True)`` would refuse, naming the offending key."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            check_checkpoint_tree(v, f"{key}.{k}")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            check_checkpoint_tree(v, f"{key}[{i}]")
    elif not isinstance(tree, CHECKPOINT_LEAVES):
        raise TypeError(
            f"{key} holds a {type(tree).__module__}.{type(tree).__qualname__}; checkpoints hold "
            "tensors, numbers, strings and lists/dicts of them (return NumPy arrays from "
            "learner_state(), never objects)"
        )


class AtlasModule(pl.LightningModule):
    """Base class of every method. Subclasses set ``needs``, ``models`` and ``stages``."""

    needs: ClassVar[str] = ""  # the task capability this method runs on
    models: ClassVar[tuple[str, ...]] = ("none",)  # the `model=` choices it accepts
    stages: ClassVar[tuple[str, ...]] = ("test",)  # ("test",) solver, ("fit", "test") learner
    saved_parameters: ClassVar[str | None] = None  # regex: keep only matching state_dict keys (e.g. LoRA)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook in ("on_save_checkpoint", "on_load_checkpoint"):
            if hook in cls.__dict__:
                raise TypeError(
                    f"{cls.__qualname__} overrides {hook}: return extra state from learner_state() "
                    "and restore it in load_learner_state() instead"
                )

    def __init__(self, task: Task, model: Any = None):
        super().__init__()
        self.task = task
        self.model_factory = model
        self._rows: list[tuple[int, dict[str, Any]]] = []
        self._streams: dict[str, np.random.Generator] = {}
        self._torch_streams: dict[str, torch.Generator] = {}

    # ---- data: evaluation instances, one per test_step -------------------------------------
    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.task.instances(), batch_size=None, collate_fn=_identity)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.task.train_data(), batch_size=None, collate_fn=_identity)

    # ---- named random streams (checkpointed) ----------------------------------------------
    def _stream_seed(self, name: str) -> list[int]:
        return [self.task.seed, self.global_rank, stream_id(name)]

    def rng(self, name: str) -> np.random.Generator:
        """The module's NumPy stream ``name`` for this rank, created on first use, checkpointed.
        Create per-rank streams from ``setup`` on (before it, every rank counts as rank 0)."""
        if name not in self._streams:
            self._streams[name] = np.random.default_rng(self._stream_seed(name))
        return self._streams[name]

    def torch_generator(self, name: str) -> torch.Generator:
        """The module's CPU ``torch.Generator`` stream ``name`` (e.g. for ``torch.randn(generator=…)``)."""
        if name not in self._torch_streams:
            seed = int(np.random.SeedSequence(self._stream_seed(name)).generate_state(1, np.uint64)[0] >> 1)
            self._torch_streams[name] = torch.Generator().manual_seed(seed)
        return self._torch_streams[name]

    # ---- per-instance results -> scalar metrics -------------------------------------------
    def record(self, index: int, **values: Any) -> None:
        """Store one instance's results (numbers or fixed-shape arrays, e.g. a reward curve)."""
        self._rows.append((int(index), values))

    def on_test_epoch_start(self) -> None:
        self._rows = []

    def on_test_epoch_end(self) -> None:
        for name, value in self.summarize(self.gather_rows()).items():
            self.log(name, torch.tensor(float(value), dtype=torch.float64), sync_dist=True)

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        """Reduce all instances' records (``rows[key][i]`` = instance i, sorted by index) to metrics."""
        raise NotImplementedError(f"{type(self).__name__} records instances but does not summarize them")

    def gather_rows(self) -> dict[str, np.ndarray]:
        """All ranks' records as ``{key: array[n_instances, ...]}`` sorted by instance index."""
        if not self._rows:
            return {}
        keys = sorted(self._rows[0][1])
        index = torch.tensor([i for i, _ in self._rows], device=self.device)
        columns = {
            k: torch.as_tensor(
                np.stack([np.asarray(v[k], dtype=np.float64) for _, v in self._rows]), device=self.device
            )
            for k in keys
        }
        if self.trainer.world_size > 1:
            index = self.all_gather(index).reshape(-1)  # [world * n_local]
            columns = {k: self.all_gather(c).reshape(-1, *c.shape[1:]) for k, c in columns.items()}
        index_np = index.cpu().numpy()
        _, first = np.unique(index_np, return_index=True)  # drop sampler padding
        order = first[np.argsort(index_np[first])]
        rows = {k: c.cpu().numpy()[order] for k, c in columns.items()}
        rows["index"] = index_np[order]
        return rows

    # ---- artifacts ----------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return Path(self.trainer.default_root_dir)

    def save_figure(self, fig, name: str) -> Path:
        """Save ``fig`` as ``<run_dir>/plots/<name>.png`` and log it to W&B when W&B is the logger."""
        import matplotlib.pyplot as plt

        path = self.run_dir / "plots" / f"{name}.png"
        if self.trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=120, bbox_inches="tight")
            log_image = getattr(self.logger, "log_image", None)
            if log_image is not None:
                log_image(key=f"plots/{name}", images=[str(path)])
        plt.close(fig)
        return path

    # ---- exact resume ---------------------------------------------------------------------
    def learner_state(self) -> dict[str, Any]:
        """Non-parameter state a resumed run needs (env states, buffers, counters); arrays allowed."""
        return {}

    def load_learner_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`learner_state` (arrays come back as tensors)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.saved_parameters is not None:
            keep = re.compile(self.saved_parameters)
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if keep.search(k)}
        checkpoint["atlas"] = arrays_to_tensors(
            {
                "python_rng": random.getstate(),
                "numpy_rng": np.random.get_state(),
                "torch_rng": torch.get_rng_state(),
                "streams": {name: g.bit_generator.state for name, g in self._streams.items()},
                "torch_streams": {name: g.get_state() for name, g in self._torch_streams.items()},
                "learner": self.learner_state(),
            }
        )
        check_checkpoint_tree(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["atlas"]
        version, internal, gauss = state["python_rng"]
        random.setstate((version, tuple(internal), gauss))
        np.random.set_state(tensors_to_arrays(state["numpy_rng"]))
        torch.set_rng_state(state["torch_rng"])
        for name, bit_state in state["streams"].items():
            self.rng(name).bit_generator.state = bit_state
        for name, torch_state in state["torch_streams"].items():
            self.torch_generator(name).set_state(torch_state)
        self.load_learner_state(state["learner"])
