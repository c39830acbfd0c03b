"""The LightningModule contract shared by every method and baseline.

Two kinds of module live in Atlas:

* **learners** (``stages = ("fit", "test")``) train in ``training_step`` and are then evaluated;
* **solvers** (``stages = ("test",)``) do their work in ``test_step``, one task instance per step.

Either way evaluation runs over ``task.instances()`` in ``test_step``, so Lightning shards the
instances over devices and nodes exactly as it shards training batches. Per-instance results are
``record``-ed, gathered across ranks (deduplicated: the distributed sampler pads with repeats),
reduced by ``summarize`` into scalar metrics, and logged -- which is how they reach
``metrics.json`` through ``trainer.callback_metrics``, also under ``ddp_spawn``.

Python, NumPy and torch RNG states travel in every checkpoint so a resumed run continues the same
random stream as an uninterrupted one.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from experiments.base import Task


def _identity(item: Any) -> Any:
    return item


def arrays_to_tensors(tree: Any) -> Any:
    """NumPy arrays -> tensors in nested dicts/lists: checkpoints load with ``weights_only=True``."""
    if isinstance(tree, dict):
        return {k: arrays_to_tensors(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(arrays_to_tensors(v) for v in tree)
    return torch.from_numpy(tree.copy()) if isinstance(tree, np.ndarray) else tree


def tensors_to_arrays(tree: Any) -> Any:
    """The inverse of :func:`arrays_to_tensors`."""
    if isinstance(tree, dict):
        return {k: tensors_to_arrays(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tensors_to_arrays(v) for v in tree)
    return tree.numpy() if isinstance(tree, torch.Tensor) else tree


class AtlasModule(pl.LightningModule):
    """Base class of every method. Subclasses set ``needs``, ``models`` and ``stages``."""

    needs: ClassVar[str] = ""                  # the task capability this method runs on
    models: ClassVar[tuple[str, ...]] = ("none",)  # the `model=` choices it accepts
    stages: ClassVar[tuple[str, ...]] = ("test",)  # ("test",) solver, ("fit", "test") learner

    def __init__(self, task: Task, model: Any = None):
        super().__init__()
        self.task = task
        self.model_factory = model
        self._rows: list[tuple[int, dict[str, Any]]] = []

    # ---- data: evaluation instances, one per test_step -------------------------------------
    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.task.instances(), batch_size=None, collate_fn=_identity)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.task.train_data(), batch_size=None, collate_fn=_identity)

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
        columns = {k: torch.as_tensor(np.stack([np.asarray(v[k], dtype=np.float64) for _, v in self._rows]),
                                      device=self.device) for k in keys}
        if self.trainer.world_size > 1:
            index = self.all_gather(index).reshape(-1)                       # [world * n_local]
            columns = {k: self.all_gather(c).reshape(-1, *c.shape[1:]) for k, c in columns.items()}
        index_np = index.cpu().numpy()
        _, first = np.unique(index_np, return_index=True)                  # drop sampler padding
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

    # ---- exact resume: RNG states ride along in the checkpoint ----------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng"] = arrays_to_tensors({
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
        })

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "rng" not in checkpoint:
            return
        rng = checkpoint["rng"]
        version, state, gauss = rng["python"]
        random.setstate((version, tuple(state), gauss))
        np.random.set_state(tensors_to_arrays(rng["numpy"]))
        torch.set_rng_state(rng["torch"])
