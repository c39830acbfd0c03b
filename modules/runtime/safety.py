"""Instantiation limited to an allowlist of ``_target_`` prefixes.

A sweep server, a shared config or a W&B sweep can inject overrides; only the project's packages
and the libraries our configs name may be called (Hydra 1.3 itself blocks only a few callables).
"""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig

ALLOWED_TARGETS = (
    "modules.",
    "experiments.",
    "lightning.pytorch.loggers.",
    "lightning.pytorch.callbacks.",
    "torch.optim.",
    "torch.nn.",
)


def targets(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every ``(key path, _target_)`` under ``node``."""
    found = []
    if isinstance(node, DictConfig):
        if "_target_" in node and node._target_ is not None:
            found.append((path or "<root>", str(node._target_)))
        for key in node:
            found += targets(node._get_node(key), f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            found += targets(item, f"{path}[{i}]")
    return found


def check_targets(node: Any, path: str = "") -> None:
    for where, target in targets(node, path):
        if not target.startswith(ALLOWED_TARGETS):
            raise ValueError(
                f"{where}._target_={target!r} is not allowed; targets must start with one of "
                f"{', '.join(ALLOWED_TARGETS)}"
            )


def safe_instantiate(node: Any, **kwargs: Any) -> Any:
    check_targets(node)
    return instantiate(node, **kwargs)
