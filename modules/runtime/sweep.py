"""Multirun callbacks: every sweep point is validated before the first job starts, and one table of
this sweep's ``metrics.json`` files is kept up to date in the sweep directory.

``summary.csv`` (one row per job: its overrides, metrics and claim verdicts) and ``summary.md``
(the same table, each claim's pass count over the jobs, and mean +- std of every metric) are
rewritten after every job, so a failing job still leaves the others' summary. A reused sweep
directory reports only this sweep's jobs (``.atlas_sweep.json`` records which, and since when).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)
MARKER = ".atlas_sweep.json"


def sweep_points(config: DictConfig) -> list[list[str]] | None:
    """The override lists of every job of a grid sweep; ``None`` for sweepers that choose points online."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    return [point for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]


def validate_points(config: DictConfig, points: list[list[str]]) -> None:
    from modules.runtime.config import validate

    loader, problems = GlobalHydra.instance().config_loader(), []
    for i, point in enumerate(points):
        try:
            job = loader.load_sweep_config(config, list(point))
            with open_dict(job):
                job.hydra.job.num, job.hydra.job.id = i, f"validate_{i}"
                job.hydra.runtime.output_dir = str(Path(config.hydra.sweep.dir) / str(i))
            HydraConfig.instance().set_config(job)
            with open_dict(job):
                del job["hydra"]  # as a job sees its config
            validate(job)
        except Exception as err:  # noqa: BLE001 -- every point's problem is reported, then the sweep stops
            problems.append(f"job {i} ({' '.join(point)}): {err}")
    HydraConfig.instance().set_config(config)
    if problems:  # Hydra turns a callback's exception into a warning: stop the sweep here ourselves
        message = f"{len(problems)} of {len(points)} sweep points are invalid; no job was started:"
        log.error("%s", "\n  ".join([message, *problems]))
        raise SystemExit(2)


def collect(sweep_dir: Path) -> pd.DataFrame:
    marker = json.loads((sweep_dir / MARKER).read_text()) if (sweep_dir / MARKER).exists() else {}
    since, jobs = marker.get("started", 0.0), marker.get("jobs")
    rows = []
    for path in sorted(
        sweep_dir.glob("*/metrics.json"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else p.parent.name,
    ):
        if path.stat().st_mtime < since or (jobs is not None and path.parent.name not in jobs):
            continue  # an earlier sweep's job in a reused directory
        results = json.loads(path.read_text())
        overrides_file = path.parent / ".hydra" / "overrides.yaml"
        overrides = (
            overrides_file.read_text().replace("\n- ", " ").lstrip("- ").strip()
            if overrides_file.exists()
            else ""
        )
        row: dict[str, Any] = {
            "job": path.parent.name,
            "overrides": overrides,
            "experiment": results["experiment"],
            "seed": results["seed"],
        }
        row.update(results["metrics"])
        row.update({f"claim:{c['id']}": c["passed"] for c in results["claims"]})
        rows.append(row)
    return pd.DataFrame(rows)


def write_summary(sweep_dir: Path) -> pd.DataFrame:
    table = collect(sweep_dir)
    if table.empty:
        for stale in ("summary.csv", "summary.md"):
            (sweep_dir / stale).unlink(missing_ok=True)
        return table
    table.to_csv(sweep_dir / "summary.csv", index=False)
    claims = [c for c in table.columns if c.startswith("claim:")]
    metrics = [
        c for c in table.columns if c not in ("job", "overrides", "experiment", "seed") and c not in claims
    ]
    lines = [f"# Sweep {sweep_dir}", "", table.to_markdown(index=False, floatfmt=".6g"), ""]
    if claims:
        lines += ["| claim | passed |", "|---|---|"]
        lines += [f"| {c[6:]} | {int(table[c].sum())}/{table[c].notna().sum()} |" for c in claims]
        lines.append("")
    if len(table) > 1 and metrics:
        lines += ["| metric | mean | std | jobs |", "|---|---|---|---|"]
        lines += [
            f"| {m} | {table[m].mean():.6g} | {table[m].std():.6g} | {table[m].notna().sum()} |"
            for m in metrics
        ]
    (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")
    return table


class AggregateMetrics(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        points = sweep_points(config)
        if points is not None:
            validate_points(config, points)
        n = len(points) if points is not None else int(config.hydra.sweeper.get("n_trials", 0)) or None
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / MARKER).write_text(
            json.dumps(
                {"started": time.time() - 1, "jobs": None if n is None else [str(i) for i in range(n)]}
            )
        )

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode is not None and str(config.hydra.mode).endswith("MULTIRUN"):
            write_summary(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = write_summary(sweep_dir)
        if not table.empty:
            log.info("sweep summary (%d jobs): %s", len(table), sweep_dir / "summary.md")
