"""The results contract: every run writes ``<run_dir>/metrics.json``::

    {"experiment": str, "seed": int, "metrics": {name: number},
     "claims": [{"id", "statement", "metric", "value", "op", "threshold", "passed"}]}

A claim's ``passed`` is computed here from value/op/threshold -- never written by hand. A threshold
is a number or the name of another metric (e.g. "gittins beats greedy").
"""

from __future__ import annotations

import json
import math
import operator
from numbers import Real
from pathlib import Path
from typing import Any

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


def evaluate_claims(claims: list[dict[str, Any]], metrics: dict[str, float]) -> list[dict[str, Any]]:
    verdicts = []
    for claim in claims:
        value = metrics.get(claim["metric"])
        threshold = claim["threshold"]
        if isinstance(threshold, str):
            threshold = metrics.get(threshold)
        passed = (
            value is not None
            and threshold is not None
            and math.isfinite(value)
            and bool(OPS[claim["op"]](value, threshold))
        )
        verdicts.append(
            {
                "id": claim["id"],
                "statement": claim["statement"],
                "metric": claim["metric"],
                "value": value,
                "op": claim["op"],
                "threshold": threshold,
                "passed": passed,
                "paper": claim.get("paper"),
            }
        )
    return verdicts


def write_results(
    path: Path, experiment: str, seed: int, metrics: dict[str, float], claims: list[dict[str, Any]]
) -> dict[str, Any]:
    results = {
        "experiment": experiment,
        "seed": seed,
        "metrics": metrics,
        "claims": evaluate_claims(claims, metrics),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False, default=float))
    tmp.replace(path)  # atomic: never a half-written file
    return results


def summary(results: dict[str, Any]) -> str:
    lines = [f"== {results['experiment']} (seed {results['seed']}) =="]
    width = max((len(k) for k in results["metrics"]), default=0)
    lines += [
        f"  {k:<{width}}  {v:.6g}" for k, v in sorted(results["metrics"].items()) if isinstance(v, Real)
    ]
    for c in results["claims"]:
        mark = "PASS" if c["passed"] else "FAIL"
        lines.append(
            f"  [{mark}] {c['id']}: {c['metric']} = {c['value']} {c['op']} {c['threshold']}"
            f"  ({c['statement']})"
        )
    return "\n".join(lines)
