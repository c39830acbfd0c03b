"""After a multirun: one table of every job's ``metrics.json`` in the sweep directory.

``summary.csv`` (one row per job: its overrides, metrics and claim verdicts) and ``summary.md``
(the same table, plus each claim's pass count over the jobs, e.g. a claim across seeds).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def collect(sweep_dir: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(sweep_dir.glob("*/metrics.json"), key=lambda p: int(p.parent.name)
                       if p.parent.name.isdigit() else p.parent.name):
        results = json.loads(path.read_text())
        overrides_file = path.parent / ".hydra" / "overrides.yaml"
        overrides = OmegaConf.load(overrides_file) if overrides_file.exists() else []
        row: dict[str, Any] = {"job": path.parent.name, "overrides": " ".join(overrides),
                               "experiment": results["experiment"], "seed": results["seed"]}
        row.update(results["metrics"])
        row.update({f"claim:{c['id']}": c["passed"] for c in results["claims"]})
        rows.append(row)
    return pd.DataFrame(rows)


def write_summary(sweep_dir: Path) -> pd.DataFrame:
    table = collect(sweep_dir)
    if table.empty:
        return table
    table.to_csv(sweep_dir / "summary.csv", index=False)
    claims = [c for c in table.columns if c.startswith("claim:")]
    lines = [f"# Sweep {sweep_dir}", "", table.to_markdown(index=False, floatfmt=".6g"), ""]
    if claims:
        lines += ["| claim | passed |", "|---|---|"]
        lines += [f"| {c[6:]} | {int(table[c].sum())}/{table[c].notna().sum()} |" for c in claims]
    (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")
    return table


class AggregateMetrics(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = write_summary(sweep_dir)
        if not table.empty:
            log.info("sweep summary (%d jobs): %s", len(table), sweep_dir / "summary.md")
