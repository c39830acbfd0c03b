"""Config schema and validation: everything that can be checked is checked before any compute.

Three layers:

1. **Compose time** (Hydra/OmegaConf): the top-level schema below is registered in the ConfigStore
   as ``atlas_schema`` and extended by ``conf/config.yaml``, so ``seed=abc``,
   ``trainer.strategy=dpp`` or an unknown key fail while composing, naming the key and the allowed
   values.
2. **Signatures** (pydantic): every ``_target_`` under ``task``/``algorithm`` is imported and its
   keyword arguments are validated against the constructor's annotations
   (``Annotated[float, Field(gt=0, lt=1)]``, ``PositiveInt``, ``FilePath``, ``Literal``...), so
   ``algorithm.lr=abc``, ``+algorithm.lrr=1``, a negative budget or a missing file fail with the
   key, the problem and the allowed keys.
3. **Semantics**: the task offers what the algorithm needs; the algorithm accepts the chosen model;
   multirun + ``strategy=ddp`` on the local launcher is refused; claims are well formed.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import MISSING, DictConfig, OmegaConf

from modules.runtime.results import OPS
from modules.runtime.safety import check_targets

log = logging.getLogger(__name__)
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
INJECTED = {"task": ("seed",), "algorithm": ("task", "model")}  # passed by launch.py, not by YAML


class Accelerator(enum.Enum):
    cpu = "cpu"
    gpu = "gpu"
    cuda = "cuda"
    mps = "mps"
    auto = "auto"


class Strategy(enum.Enum):
    auto = "auto"
    ddp = "ddp"
    ddp_spawn = "ddp_spawn"
    fsdp = "fsdp"
    deepspeed = "deepspeed"


@dataclass
class TrainerConf:
    """The ``lightning.pytorch.Trainer`` arguments Atlas exposes (hardware/ sets the first five)."""

    accelerator: Accelerator = Accelerator.cpu
    devices: Any = 1  # int, list of ids, or "auto"
    num_nodes: int = 1
    strategy: Strategy = Strategy.auto
    precision: str = "32-true"
    max_epochs: int = 1
    max_steps: int = -1
    limit_train_batches: Any = None  # int = batches, float = fraction
    limit_test_batches: Any = None  # int = instances, float = fraction
    log_every_n_steps: int = 10
    gradient_clip_val: float | None = None
    enable_progress_bar: bool = True
    deterministic: Any = False


@dataclass
class HardwareConf:
    """Process-wide settings of the machine a run lands on (set by ``hardware/*.yaml``)."""

    threads: int | None = None  # torch intra-op threads; null = torch's default (all cores)


@dataclass
class ClaimConf:
    id: str = MISSING
    statement: str = MISSING
    metric: str = MISSING
    op: str = MISSING  # one of <=, <, >=, >, ==
    threshold: Any = MISSING  # a number, or the name of another metric
    paper: str | None = None  # the paper's own figure for this claim, where it gives one


@dataclass
class AtlasConf:
    task: Any = MISSING
    model: Any = MISSING
    algorithm: Any = MISSING
    logger: Any = None
    trainer: TrainerConf = field(default_factory=TrainerConf)
    hardware: HardwareConf = field(default_factory=HardwareConf)
    seed: int = 0
    experiment_name: str = "custom"
    objective: str | None = None
    claims: list[ClaimConf] = field(default_factory=list)
    checkpoint_every_n_steps: int = 200
    fresh: bool = False  # rerun into an existing run dir: discard its checkpoint
    reproduce_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # seeds `make reproduce` runs


RECHOOSABLE = ("task", "model", "algorithm")


def rechosen(overrides) -> set[str]:
    """Which of task/model/algorithm the command line re-chose (over a preset's choices)."""
    return {str(o).split("=")[0].lstrip("+~") for o in overrides} & set(RECHOOSABLE)


def run_name(experiment_name: str, task: str, algorithm: str, overrides) -> str:
    """A preset's runs are named by the preset; a custom pairing by its own choices (``task+algorithm``)."""
    return f"{task}+{algorithm}" if rechosen(overrides) else experiment_name


def register_schema() -> None:
    ConfigStore.instance().store(name="atlas_schema", node=AtlasConf)
    OmegaConf.register_new_resolver("atlas_run_name", run_name, replace=True)


class ConfigError(ValueError):
    """A config problem found before any compute."""


# ---- signatures -----------------------------------------------------------------------------
def locate(target: str) -> Any:
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def check_signature(node: DictConfig, key: str) -> None:
    """Validate ``node``'s keyword arguments against its ``_target_``'s annotated signature."""
    target = locate(node._target_)
    params = inspect.signature(
        target, eval_str=True
    ).parameters  # also under `from __future__ import annotations`
    skip = set(INJECTED.get(key, ())) | {"self"}
    partial = bool(node.get("_partial_", False))  # the caller supplies the rest (e.g. layer sizes)
    fields, open_kwargs = {}, False
    for name, p in params.items():
        if p.kind is p.VAR_KEYWORD:
            open_kwargs = True
        elif p.kind not in (p.VAR_POSITIONAL,) and name not in skip:
            annotation = Any if p.annotation is inspect.Parameter.empty else p.annotation
            required = p.default is inspect.Parameter.empty and not partial
            fields[name] = (annotation, ... if required else p.default)
    values = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if not k.startswith("_")}
    model = pydantic.create_model(
        f"{target.__name__}Args",
        __config__=pydantic.ConfigDict(
            arbitrary_types_allowed=True, extra="allow" if open_kwargs else "forbid"
        ),
        **fields,
    )
    try:
        model.model_validate(values)
    except pydantic.ValidationError as err:
        problems = []
        for e in err.errors():
            where = ".".join([key, *map(str, e["loc"])])
            if e["type"] == "extra_forbidden":
                problems.append(f"{where}: not a parameter of {node._target_}; allowed: {', '.join(fields)}")
            else:
                problems.append(f"{where}: {e['msg']} (got {e.get('input')!r})")
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems)) from None


# ---- semantics ------------------------------------------------------------------------------
def group_option(group: str, name: str) -> DictConfig:
    """One option of a config group with its same-group ``defaults`` merged in, as Hydra composes it."""
    node = OmegaConf.load(CONF_DIR / group / f"{name}.yaml")
    bases = [d for d in node.pop("defaults", []) if isinstance(d, str) and d != "_self_"]
    return OmegaConf.merge(*(group_option(group, b) for b in bases), node)


def group_options(group: str) -> dict[str, DictConfig]:
    return {p.stem: group_option(group, p.stem) for p in sorted((CONF_DIR / group).glob("*.yaml"))}


def offers_of(task_target: str) -> tuple[str, ...]:
    return tuple(getattr(locate(task_target), "offers", ()))


def check_compatibility(cfg: DictConfig, choices: dict[str, str]) -> None:
    algorithm = locate(cfg.algorithm._target_)
    if algorithm.needs not in offers_of(cfg.task._target_):
        compatible = [
            name
            for name, c in group_options("task").items()
            if "_target_" in c and algorithm.needs in offers_of(c._target_)
        ]
        raise ConfigError(
            f"task={choices.get('task')} does not offer {algorithm.needs!r}, which "
            f"algorithm={choices.get('algorithm')} needs; compatible tasks: {', '.join(compatible)}"
        )
    if choices.get("model") not in algorithm.models:
        raise ConfigError(
            f"algorithm={choices.get('algorithm')} accepts model={'|'.join(algorithm.models)}, "
            f"not model={choices.get('model')}"
        )


def check_launch(cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    launcher = str(hydra_cfg.launcher.get("_target_", ""))
    if (
        hydra_cfg.mode == RunMode.MULTIRUN
        and cfg.trainer.strategy == Strategy.ddp
        and launcher.endswith("BasicLauncher")
    ):
        raise ConfigError(
            "multirun with trainer.strategy=ddp on the local launcher replays the whole sweep in "
            "every rank; use hardware=ddp_cpu (ddp_spawn) or trainer.strategy=ddp_spawn locally, "
            "or hardware=slurm on a cluster"
        )


def check_values(cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    """Top-level values the schema's types cannot express."""
    submitting = (
        "submitit" in str(hydra_cfg.launcher.get("_target_", "")) and "SLURM_JOB_ID" not in os.environ
    )
    problems = []
    if cfg.seed < 0:
        problems.append(f"seed={cfg.seed}: seeds are non-negative integers")
    if cfg.trainer.devices in (0, "0") or (isinstance(cfg.trainer.devices, int) and cfg.trainer.devices < 0):
        problems.append(f"trainer.devices={cfg.trainer.devices}: need at least one device (or 'auto')")
    if cfg.checkpoint_every_n_steps < 1:
        problems.append(f"checkpoint_every_n_steps={cfg.checkpoint_every_n_steps}: must be >= 1")
    if cfg.hardware.threads is not None and cfg.hardware.threads < 1:
        problems.append(f"hardware.threads={cfg.hardware.threads}: must be >= 1 (or null)")
    if (
        cfg.trainer.accelerator in (Accelerator.gpu, Accelerator.cuda) and not submitting
    ):  # GPUs are on the nodes
        import torch

        if not torch.cuda.is_available():
            problems.append(
                f"trainer.accelerator={cfg.trainer.accelerator.value}: no CUDA GPU on this machine; "
                "use hardware=cpu (or hardware=ddp_cpu), or run on a GPU node (hardware=slurm)"
            )
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def check_claims(cfg: DictConfig) -> None:
    for claim in cfg.claims:
        if claim.op not in OPS:
            raise ConfigError(f"claim {claim.id}: op={claim.op!r}; allowed: {', '.join(OPS)}")


def drop_claims_if_rechosen(cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    """A preset's claims and objective are about the task/model/algorithm it composes: re-choosing
    one on the command line makes them inapplicable, so they are dropped (and the run says so), and
    the run is named by its own choices."""
    overrides = hydra_cfg.overrides.task
    changed = rechosen(overrides)
    if not changed:
        return
    choices = hydra_cfg.runtime.choices
    if cfg.claims or cfg.objective:
        log.warning(
            "claims and objective of experiment %s dropped: %s re-chosen on the command line",
            cfg.experiment_name,
            ", ".join(sorted(changed)),
        )
    cfg.claims = []
    if not any(str(o).startswith("objective=") for o in overrides):
        cfg.objective = None
    cfg.experiment_name = run_name(cfg.experiment_name, choices.task, choices.algorithm, overrides)


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` on the first class of problems found; run before any compute."""
    hydra_cfg = HydraConfig.get()
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"missing values for: {', '.join(missing)}")
    check_targets(cfg.task, "task")
    check_targets(cfg.algorithm, "algorithm")
    check_targets(cfg.model, "model")
    if cfg.logger:
        check_targets(cfg.logger, "logger")
    check_signature(cfg.task, "task")
    check_signature(cfg.algorithm, "algorithm")
    if "_target_" in cfg.model:
        check_signature(cfg.model, "model")
    check_compatibility(cfg, dict(hydra_cfg.runtime.choices))
    check_launch(cfg, hydra_cfg)
    check_values(cfg, hydra_cfg)
    check_claims(cfg)
    drop_claims_if_rechosen(cfg, hydra_cfg)
