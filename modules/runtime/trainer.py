"""Trainer and logger from the ``hardware``/``logger`` groups.

* Checkpoints go to ``<run_dir>/checkpoints`` (deterministic, so a rerun or a SLURM requeue of the
  same job directory resumes from the newest checkpoint); an exception writes
  ``on_exception.ckpt`` at the step it happened, and ``last.ckpt`` survives a finished run.
* Preemption has one owner: submitit (USR2 + ``max_num_timeout`` in ``hardware/slurm.yaml``)
  requeues; Lightning's ``SLURMEnvironment`` runs with ``auto_requeue=False``.
* W&B is offline unless ``WANDB_MODE``/``logger.mode`` says otherwise; if W&B cannot start, the run
  falls back to CSV and goes on -- a broken W&B never costs a run or its ``metrics.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import lightning.pytorch as pl
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, OnExceptionCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from modules.runtime.safety import safe_instantiate

log = logging.getLogger(__name__)


def build_logger(cfg: DictConfig, run_dir: Path) -> Logger | bool:
    if not cfg.logger:
        return False
    try:
        logger = safe_instantiate(cfg.logger, save_dir=str(run_dir))
        if isinstance(logger, WandbLogger):      # start the run now, so a failure surfaces here
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        return logger
    except Exception as err:                     # noqa: BLE001 -- any logger failure must not cost the run
        log.warning("logger %s failed (%s); falling back to CSV in %s", cfg.logger.get("_target_"), err, run_dir)
        return CSVLogger(save_dir=str(run_dir), name="csv")


@rank_zero_only
def save_resolved_config(cfg: DictConfig, run_dir: Path) -> None:
    """``<run_dir>/config.yaml``: the config exactly as the run saw it (Hydra keeps the unresolved one)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)


def finish_logger(logger: Logger | bool) -> None:
    """Close the W&B run so the next job of a multirun gets its own run (also after an exception)."""
    if isinstance(logger, WandbLogger):
        import wandb

        wandb.finish()


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest of the periodic ``last.ckpt`` and the crash-time ``on_exception.ckpt``."""
    found = [p for p in (run_dir / "checkpoints").glob("*.ckpt") if p.stem in ("last", "on_exception")]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


class SaveFinalState(Callback):
    """Make ``last.ckpt`` the final training state (periodic saves can stop short of the end): a
    finished learner's weights are kept, and a rerun of the run directory trains nothing more."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.save_checkpoint(self.path)


def build_trainer(cfg: DictConfig, run_dir: Path, logger: Logger | bool,
                  callbacks: Sequence[Callback] = ()) -> pl.Trainer:
    kwargs: dict[str, Any] = OmegaConf.to_container(cfg.trainer, resolve=True)
    kwargs["accelerator"] = cfg.trainer.accelerator.value
    kwargs["strategy"] = cfg.trainer.strategy.value
    ckpt_dir = run_dir / "checkpoints"
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []
    return pl.Trainer(
        **kwargs,
        default_root_dir=str(run_dir),
        logger=logger,
        plugins=plugins,
        callbacks=[
            ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0,
                            every_n_train_steps=cfg.checkpoint_every_n_steps),
            SaveFinalState(ckpt_dir / "last.ckpt"),
            OnExceptionCheckpoint(dirpath=ckpt_dir),          # on_exception.ckpt, removed after success
            *callbacks,
        ],
    )
