"""Atlas launcher: ``python launch.py task=… model=… algorithm=… hardware=… [experiment=…]``.

Compose (Hydra) -> validate -> seed -> logger + Trainer from ``hardware`` -> instantiate task and
algorithm -> fit and/or test -> ``metrics.json`` -> the sweep objective. Nothing here knows any
method; see ``docs/architecture.md``. Lightning is imported only once a run starts, so ``--help``
and config errors answer in a few seconds.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from modules.runtime.config import ConfigError, register_schema, validate

log = logging.getLogger("atlas")
warnings.filterwarnings("ignore", message=".*`srun` command is available.*")  # a laptop with SLURM tools
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")  # lightning vs torch 2.13
register_schema()


def run(cfg: DictConfig, run_dir: Path, callbacks: Sequence = ()) -> float | None:
    import lightning.pytorch as pl
    import torch

    from modules.runtime.results import summary, write_results
    from modules.runtime.safety import safe_instantiate
    from modules.runtime.trainer import (
        build_logger,
        build_trainer,
        check_rerun,
        finish_logger,
        last_checkpoint,
        log_results,
        save_resolved_config,
    )

    validate(cfg)
    check_rerun(cfg, run_dir)
    save_resolved_config(cfg, run_dir)
    if cfg.hardware.threads:
        torch.set_num_threads(cfg.hardware.threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    logger = build_logger(cfg, run_dir)
    try:
        task = safe_instantiate(cfg.task, seed=cfg.seed)
        module = safe_instantiate(cfg.algorithm, task=task, model=cfg.model)
        trainer = build_trainer(cfg, run_dir, logger, callbacks)
        if "fit" in module.stages:
            resume = last_checkpoint(run_dir)
            log.info("fit: %s", f"resuming from {resume}" if resume else "from scratch")
            trainer.fit(module, ckpt_path=resume, weights_only=True)
        if "test" in module.stages:
            trainer.test(module, verbose=False)
        metrics = {k: float(v) for k, v in sorted(trainer.callback_metrics.items())}
        if trainer.is_global_zero:
            claims = OmegaConf.to_container(cfg.claims, resolve=True)
            results = write_results(run_dir / "metrics.json", cfg.experiment_name, cfg.seed, metrics, claims)
            log_results(logger, results)
            log.info("\n%s\nresults: %s", summary(results), run_dir / "metrics.json")
        if cfg.objective and cfg.objective not in metrics:
            raise ConfigError(
                f"objective={cfg.objective!r} is not a metric of this run (metrics.json is written); "
                f"metrics: {', '.join(metrics)}"
            )
        return metrics[cfg.objective] if cfg.objective else None
    finally:
        finish_logger(logger)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from modules.runtime.trainer import Interrupted

    try:
        return run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except ConfigError as err:  # one clear message (also in <run_dir>/launch.log), no traceback
        log.error("%s", err)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # Hydra marks this job failed and runs the sweep's other jobs
        sys.exit(2)
    except Interrupted as err:
        log.warning("interrupted: %s", err)
        sys.exit(130)


if __name__ == "__main__":
    main()
