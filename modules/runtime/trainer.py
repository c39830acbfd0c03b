"""Trainer and logger from the ``hardware``/``logger`` groups.

* Checkpoints go to ``<run_dir>/checkpoints/last.ckpt`` (deterministic, so a rerun or a SLURM
  requeue of the same job directory resumes from it), always at a step boundary: periodically,
  at the end of training, and when the run is interrupted (Ctrl-C or SIGTERM finish the step in
  flight, save, and stop). A resumed run therefore equals an uninterrupted one exactly; a crash
  (an exception, kill -9) resumes from the last periodic save.
* Preemption has one owner: submitit (USR2 + ``max_num_timeout`` in ``hardware/slurm.yaml``)
  requeues; Lightning's ``SLURMEnvironment`` runs with ``auto_requeue=False``.
* W&B is offline unless ``WANDB_MODE``/``logger.mode`` says otherwise; if W&B cannot start, the run
  falls back to CSV and goes on -- a broken W&B never costs a run or its ``metrics.json``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from modules.runtime.safety import safe_instantiate

log = logging.getLogger(__name__)


def build_logger(cfg: DictConfig, run_dir: Path) -> Logger | bool:
    """The configured logger; a W&B run keeps its id in ``<run_dir>/wandb_id``, so a resumed run
    (a rerun, a SLURM requeue) continues the same W&B run."""
    if not cfg.logger:
        return False
    try:
        extra: dict[str, Any] = {}
        id_file = run_dir / "wandb_id"
        if cfg.logger._target_.endswith("WandbLogger"):
            os.environ.setdefault("WANDB_SILENT", "true")  # W&B's banner and run summary, unless asked for
            if id_file.exists():
                extra = {"id": id_file.read_text().strip(), "resume": "allow"}
        logger = safe_instantiate(cfg.logger, save_dir=str(run_dir), **extra)
        if isinstance(logger, WandbLogger):  # start the run now, so a failure surfaces here
            # Lightning 2.6 always passes `anonymous`, which W&B deprecated (one warning per run)
            logger._wandb_init.pop("anonymous", None)
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
            if trainer_rank() == 0:
                id_file.write_text(logger.experiment.id)
        return logger
    except Exception as err:  # noqa: BLE001 -- any logger failure must not cost the run
        log.warning(
            "logger %s failed (%s); falling back to CSV in %s", cfg.logger.get("_target_"), err, run_dir
        )
        return CSVLogger(save_dir=str(run_dir), name="csv")


# keys that change how a run is shown or where it runs, never what it computes
PRESENTATION_KEYS = (
    "logger",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "hardware.threads",
    "objective",
    "fresh",
    "reproduce_seeds",
)


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def check_rerun(cfg: DictConfig, run_dir: Path) -> None:
    """A rerun into ``run_dir`` resumes only under the config that made it; ``fresh=true`` starts over."""
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        return
    if cfg.fresh:
        for stale in (run_dir / "checkpoints" / "last.ckpt", run_dir / "metrics.json"):
            stale.unlink(missing_ok=True)
        return
    saved = _flat(OmegaConf.to_container(OmegaConf.load(saved_path), resolve=True))
    now = _flat(OmegaConf.to_container(OmegaConf.create(OmegaConf.to_yaml(cfg, resolve=True))))
    differ = sorted(
        k
        for k in saved.keys() | now.keys()
        if saved.get(k) != now.get(k) and not k.startswith(PRESENTATION_KEYS)
    )
    if differ:
        from modules.runtime.config import ConfigError

        shown = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in differ[:8])
        raise ConfigError(
            f"{run_dir} holds a run of another config ({shown}{', …' if len(differ) > 8 else ''}); "
            "choose another hydra.run.dir, or add fresh=true to discard it and start over"
        )


@rank_zero_only
def save_resolved_config(cfg: DictConfig, run_dir: Path) -> None:
    """``<run_dir>/config.yaml``: the config exactly as the run saw it (Hydra keeps the unresolved one)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)


def trainer_rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", 0)))


def log_results(logger: Logger | bool, results: dict[str, Any]) -> None:
    """The claims as a W&B table (claim, value, threshold, passed) beside the run's metrics."""
    if isinstance(logger, WandbLogger):
        columns = ["claim", "statement", "metric", "value", "op", "threshold", "passed", "paper"]
        logger.log_table(
            key="claims",
            columns=columns,
            data=[[c["id"], *(c[k] for k in columns[1:])] for c in results["claims"]],
        )
        logger.experiment.summary.update({f"claims/{c['id']}": c["passed"] for c in results["claims"]})


def finish_logger(logger: Logger | bool) -> None:
    """Close the W&B run so the next job of a multirun gets its own run (also after an exception)."""
    if isinstance(logger, WandbLogger):
        import wandb

        wandb.finish()


def last_checkpoint(run_dir: Path) -> Path | None:
    """``last.ckpt``, saved only at step boundaries (never a half-finished step)."""
    path = run_dir / "checkpoints" / "last.ckpt"
    return path if path.exists() else None


class Interrupted(Exception):
    """Raised after a graceful stop has saved ``last.ckpt``; the rerun resumes from there. (Not a
    ``KeyboardInterrupt``: Lightning would ``sys.exit`` and ignore SIGINT for the rest of the process.)"""


class GracefulStop(Callback):
    """Ctrl-C / SIGTERM during ``fit``: finish the step in flight, save ``last.ckpt``, stop.

    A second Ctrl-C interrupts at once (then the rerun resumes from the last periodic save).
    SLURM preemption (USR2) stays with submitit, which requeues the job."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, path: Path):
        self.path, self.requested, self.saved = path, None, {}

    def _request(self, signum, frame) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        log.warning(
            "%s: finishing the current step, saving %s, then stopping (again to abort)",
            self.requested,
            self.path,
        )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            self.saved = {s: signal.signal(s, self._request) for s in self.SIGNALS}

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.requested is not None:
            trainer.save_checkpoint(self.path)
            raise Interrupted(
                f"{self.requested} at step {trainer.global_step}; saved {self.path}: "
                "rerun the same command to resume"
            )

    def on_train_end(self, *args: Any) -> None:
        self.restore()

    def on_exception(self, *args: Any) -> None:
        self.restore()

    def restore(self) -> None:
        for s, handler in self.saved.items():
            signal.signal(s, handler)
        self.saved = {}


class SaveFinalState(Callback):
    """Make ``last.ckpt`` the final training state (periodic saves can stop short of the end): a
    finished learner's weights are kept, and a rerun of the run directory trains nothing more."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.save_checkpoint(self.path)


def build_trainer(
    cfg: DictConfig, run_dir: Path, logger: Logger | bool, callbacks: Sequence[Callback] = ()
) -> pl.Trainer:
    kwargs: dict[str, Any] = OmegaConf.to_container(cfg.trainer, resolve=True)
    kwargs["accelerator"] = cfg.trainer.accelerator.value
    kwargs["strategy"] = cfg.trainer.strategy.value
    ckpt_dir = run_dir / "checkpoints"
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no GPU/TPU/tips banner per run
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []
    return pl.Trainer(
        **kwargs,
        default_root_dir=str(run_dir),
        logger=logger,
        plugins=plugins,
        callbacks=[
            ModelCheckpoint(
                dirpath=ckpt_dir,
                save_last=True,
                save_top_k=0,
                every_n_train_steps=cfg.checkpoint_every_n_steps,
            ),
            SaveFinalState(ckpt_dir / "last.ckpt"),
            GracefulStop(ckpt_dir / "last.ckpt"),
            *callbacks,
        ],
    )
