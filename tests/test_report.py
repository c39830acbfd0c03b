"""``make reproduce``'s report: generated from the runs' metrics.json, resumable, failing claims shown."""

from __future__ import annotations

import json

from modules.runtime import report


def test_report_runs_a_preset_on_its_seeds_reuses_runs_and_shows_verdicts(tmp_path):
    args = [
        "--preset",
        "contracts_meta_spe",
        "--runs",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "out"),
    ]
    report.main(args)
    text = (tmp_path / "out" / "reproduction.md").read_text()
    assert "## contracts" in text and "### `contracts_meta_spe` (seeds 0, 1, 2;" in text
    assert "| `meta_equals_spe` |" in text and "±" in text and "/3 |" in text
    metrics = tmp_path / "runs" / "contracts_meta_spe" / "seed_1" / "metrics.json"
    first = metrics.stat().st_mtime_ns
    report.main(args)  # a rerun reuses finished runs
    assert metrics.stat().st_mtime_ns == first
    results = json.loads(metrics.read_text())
    results["claims"][0]["passed"] = False  # a failing seed is shown as such
    metrics.write_text(json.dumps(results))
    report.main(args)
    assert "**PARTIAL** 2/3" in (tmp_path / "out" / "reproduction.md").read_text()


def test_gpu_presets_are_listed_not_run_on_cpu(tmp_path):
    assert report.needs_gpu("contracts_coin_7x7") and not report.needs_gpu("contracts_meta_spe")
    report.main(["--method", "contracts", "--collect-only", "--runs", str(tmp_path), "--out", str(tmp_path)])
    text = (tmp_path / "reproduction.md").read_text()
    assert "GPU presets, not run on CPU: `contracts_coin_7x7`." in text
    assert "### `contracts_coin_7x7`" not in text and "### `contracts_meta_spe`" in text
