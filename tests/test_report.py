"""``make reproduce``'s report: generated from the runs' metrics.json, resumable, failing claims shown."""

from __future__ import annotations

import json
import shutil

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
    assert "| `meta_equals_spe` |" in text and "±" in text and "/3 |" in text and ", 2: " in text  # per seed
    metrics = tmp_path / "runs" / "contracts_meta_spe" / "seed_1" / "metrics.json"
    first = metrics.stat().st_mtime_ns
    report.main(args)  # a rerun reuses finished runs
    assert metrics.stat().st_mtime_ns == first
    results = json.loads(metrics.read_text())
    results["claims"][0]["passed"] = False  # a failing seed is shown as such
    metrics.write_text(json.dumps(results))
    report.main(args)
    assert "**PARTIAL** 2/3" in (tmp_path / "out" / "reproduction.md").read_text()
    (metrics.parent / "reproduce.json").unlink()  # a run launched by hand: its time is unknown
    report.main(args)
    assert "s, not recorded for seed 1)" in (tmp_path / "out" / "reproduction.md").read_text()
    shutil.rmtree(tmp_path / "runs")  # a fresh clone: only the committed records remain
    report.main(["--preset", "contracts_coin_exact", "--collect-only", *args[2:]])
    text = (tmp_path / "out" / "reproduction.md").read_text()
    assert "**PARTIAL** 2/3" in text and "s, not recorded for seed 1)" in text
    assert "### `contracts_coin_exact`" not in text  # nothing ran and nothing is recorded


def test_a_preset_without_records_keeps_its_earlier_section(tmp_path):
    earlier = [
        "## gittins",
        "",
        "### `gittins_exact` (seeds 0, 1, 2; 22 s)",
        "",
        "| claim | statement | paper | ours (mean ± std) | criterion | verdict |",
        "|---|---|---|---|---|---|",
        "| `a` | s | – | 1 ± 0 | `m` >= 1 | **PASS** 3/3 |",
        "| `b` | s | – | 0 ± 0 | `m` >= 1 | **FAIL** 0/3 |",
        "",
        "Not run for this report: `gittins_dqn`.",
    ]
    (tmp_path / "reproduction.md").write_text("\n".join(earlier) + "\n")
    args = ["--method", "gittins", "--collect-only", "--runs", str(tmp_path), "--out", str(tmp_path)]
    for _ in range(2):  # carried over once, unchanged by a second pass
        report.main(args)
        text = (tmp_path / "reproduction.md").read_text()
        assert text.count(report.CARRIED) == 1 and text.count('<a id="gittins_exact"></a>') == 1
        assert "| [gittins](#gittins) | 1 | 1/2 | 22 |" in text
        assert "| `b` | s | – | 0 ± 0 | `m` >= 1 | **FAIL** 0/3 |" in text


def test_gpu_presets_are_listed_not_run_on_cpu(tmp_path):
    assert report.needs_gpu("contracts_coin_7x7") and not report.needs_gpu("contracts_meta_spe")
    report.main(["--method", "contracts", "--collect-only", "--runs", str(tmp_path), "--out", str(tmp_path)])
    text = (tmp_path / "reproduction.md").read_text()
    assert "GPU presets, not run on CPU: `contracts_coin_7x7`." in text
    assert "### `contracts_coin_7x7`" not in text
    contracts = text.split("## contracts")[1].split("\n## ")[0]
    assert "`contracts_meta_spe`" in contracts.split("Not run for this report")[1]  # no run, no record
