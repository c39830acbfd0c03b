"""The results contract: claims are evaluated, never typed."""

import json
import math

from modules.runtime.results import evaluate_claims, write_results

CLAIM = {"id": "c", "statement": "s", "metric": "a", "op": "<=", "threshold": 1.0}


def test_claim_against_number_and_against_metric():
    metrics = {"a": 0.5, "b": 0.4}
    assert evaluate_claims([CLAIM], metrics)[0]["passed"] is True
    verdict = evaluate_claims([{**CLAIM, "threshold": "b"}], metrics)[0]
    assert verdict["passed"] is False and verdict["threshold"] == 0.4 and verdict["value"] == 0.5


def test_missing_or_nan_metric_fails():
    assert evaluate_claims([CLAIM], {})[0]["passed"] is False
    assert evaluate_claims([CLAIM], {"a": math.nan})[0]["passed"] is False
    assert evaluate_claims([{**CLAIM, "threshold": "missing"}], {"a": 0.0})[0]["passed"] is False


def test_every_operator():
    for op, expected in {"<=": True, "<": False, ">=": True, ">": False, "==": True}.items():
        assert evaluate_claims([{**CLAIM, "op": op}], {"a": 1.0})[0]["passed"] is expected


def test_metrics_json_layout(tmp_path):
    write_results(tmp_path / "metrics.json", "exp", 3, {"a": 0.5}, [CLAIM])
    results = json.loads((tmp_path / "metrics.json").read_text())
    assert list(results) == ["experiment", "seed", "metrics", "claims"]
    assert list(results["claims"][0]) == [
        "id",
        "statement",
        "metric",
        "value",
        "op",
        "threshold",
        "passed",
        "paper",
    ]
