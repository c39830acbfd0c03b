"""``make reproduce``: run every claim preset on its seeds and write ``reports/reproduction.md``.

Each ``(preset, seed)`` is one ``launch.py experiment=<preset> seed=<s>`` run in
``outputs/reproduce/<preset>/seed_<s>``; a run whose ``metrics.json`` exists is reused, so an
interrupted reproduction continues where it stopped (learners resume from their checkpoints). Each
run is recorded in ``reports/runs/<preset>/seed_<s>.json`` (its ``metrics.json``, wall time and
error), committed with the report. The report is generated from those records only, so running one
method or preset rewrites its own sections and keeps every other one from its records, on any clone.
Per method: a table of claims with the paper's figure (where the preset records one), the measured
value as mean +- std over seeds, the criterion, the pass count and the wall time, then the plots of
the first seed. A preset with no record keeps its section from the earlier report, marked as such.

    python -m modules.runtime.report [--method gittins | --preset gittins_exact …] [--jobs 2] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "conf" / "experiment"


@dataclass
class Job:
    preset: str
    seed: int
    run_dir: Path
    seconds: float = 0.0
    error: str | None = None
    results: dict = field(default_factory=dict)


def methods() -> list[str]:
    return sorted(p.name for p in (ROOT / "experiments").iterdir() if (p / "__init__.py").exists())


def method_of(preset: str) -> str:
    return max((m for m in methods() if preset.startswith(m + "_")), key=len, default="other")


def presets(method: str | None) -> list[str]:
    names = sorted(p.stem for p in PRESETS.glob("*.yaml") if p.stem != "default")
    return [n for n in names if method in (None, method_of(n))]


def needs_gpu(preset: str) -> bool:
    """A preset pinned to an accelerator (``override /hardware: gpu``, a paper-scale run): not run on CPU."""
    for entry in OmegaConf.load(PRESETS / f"{preset}.yaml").get("defaults", []):
        if isinstance(entry, DictConfig) and "override /hardware" in entry:
            hardware = OmegaConf.load(ROOT / "conf" / "hardware" / f"{entry['override /hardware']}.yaml")
            return OmegaConf.select(hardware, "trainer.accelerator") == "gpu"
    return False


def seeds_of(preset: str) -> list[int]:
    return list(OmegaConf.load(PRESETS / f"{preset}.yaml").get("reproduce_seeds", [0, 1, 2]))


def run(job: Job, timeout: float, records: Path) -> Job:
    """Run ``job`` unless its run directory holds a finished run, then record it."""
    metrics, log = job.run_dir / "metrics.json", job.run_dir / "reproduce.json"
    if not metrics.exists():
        start = time.perf_counter()
        cmd = [
            sys.executable,
            str(ROOT / "launch.py"),
            f"experiment={job.preset}",
            f"seed={job.seed}",
            f"hydra.run.dir={job.run_dir}",
            "logger=csv",
            "hardware.threads=1",
            "trainer.enable_progress_bar=false",
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
            error = None if proc.returncode == 0 else (proc.stderr or proc.stdout)[-1500:]
        except subprocess.TimeoutExpired:
            error = f"timed out after {timeout:.0f} s"
        job.run_dir.mkdir(parents=True, exist_ok=True)
        log.write_text(json.dumps({"seconds": time.perf_counter() - start, "error": error}))
    save_record(load(job), records)
    return job


def load(job: Job) -> Job:
    """Fill ``job`` from its run directory (never runs anything)."""
    metrics, log = job.run_dir / "metrics.json", job.run_dir / "reproduce.json"
    saved = json.loads(log.read_text()) if log.exists() else {"seconds": float("nan"), "error": None}
    job.seconds, job.error = saved["seconds"], saved["error"]
    if metrics.exists():
        job.results = json.loads(metrics.read_text())
    elif job.error is None:
        job.error = "no metrics.json"
    return job


def record_path(records: Path, preset: str, seed: int) -> Path:
    return records / preset / f"seed_{seed}.json"


def save_record(job: Job, records: Path) -> None:
    """The committed trace of one run: what the report needs once ``outputs/`` is gone."""
    path = record_path(records, job.preset, job.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    seconds = job.seconds if np.isfinite(job.seconds) else None
    path.write_text(json.dumps({"seconds": seconds, "error": job.error, "metrics": job.results}, indent=1))


def load_record(job: Job, records: Path) -> Job:
    path = record_path(records, job.preset, job.seed)
    if not path.exists():
        job.error = "no metrics.json"
        return job
    saved = json.loads(path.read_text())
    job.seconds = float("nan") if saved["seconds"] is None else saved["seconds"]
    job.error, job.results = saved["error"], saved["metrics"]
    return job


def collect(job: Job, records: Path) -> Job:
    """A run on disk refreshes its record; without one the record stands."""
    if job.run_dir.exists():
        save_record(load(job), records)
        return job
    return load_record(job, records)


def earlier_sections(report: Path) -> dict[str, list[str]]:
    """The preset sections of an earlier report, by preset (kept for presets that have no record)."""
    sections: dict[str, list[str]] = {}
    name = None
    for line in report.read_text().splitlines() if report.exists() else []:
        if line.startswith("### `"):
            name = line.split("`")[1]
            sections[name] = [line]
        elif line.startswith(("## ", "GPU presets, not run on CPU", "Not run for this report")):
            name = None
        elif name:
            sections[name].append(line)
    return sections


def fmt(x) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:.4g}" if isinstance(x, (int, float)) else str(x)


def wall_time(jobs: list[Job]) -> str:
    """Summed wall time; a run launched by hand has no ``reproduce.json`` and no recorded time."""
    unknown = [str(j.seed) for j in jobs if not np.isfinite(j.seconds)]
    known = sum(j.seconds for j in jobs if np.isfinite(j.seconds))
    return f"{known:.0f} s" + (f", not recorded for seed {', '.join(unknown)}" if unknown else "")


def claim_rows(jobs: list[Job]) -> list[str]:
    done = [j for j in jobs if j.results]
    rows = []
    for claim in done[0].results["claims"] if done else []:
        per_seed = [next(c for c in j.results["claims"] if c["id"] == claim["id"]) for j in done]
        values = np.array([np.nan if c["value"] is None else c["value"] for c in per_seed], dtype=float)
        value = (
            fmt(values[0])
            if len(values) == 1
            else f"{fmt(np.nanmean(values))} ± {fmt(np.nanstd(values, ddof=1))} "
            f"({', '.join(f'{j.seed}: {fmt(v)}' for j, v in zip(done, values, strict=True))})"
        )
        thresholds = {fmt(c["threshold"]) for c in per_seed}
        passed = sum(c["passed"] for c in per_seed)
        mark = "PASS" if passed == len(jobs) else ("FAIL" if passed == 0 else "PARTIAL")
        statement = claim["statement"].replace("|", r"\|")  # a pipe would end the table cell
        rows.append(
            f"| `{claim['id']}` | {statement} | {claim.get('paper') or '–'} | {value} | "
            f"`{claim['metric']}` {claim['op']} {' / '.join(sorted(thresholds))} | "
            f"**{mark}** {passed}/{len(jobs)} |"
        )
    return rows


def anchor(preset: str) -> str:
    """A link target that outlives the heading's seeds and wall time: ``reproduction.md#<preset>``."""
    return f'<a id="{preset}"></a>'


CARRIED = "Carried over from an earlier report: no record of these runs is in `reports/runs/`."


def write_report(groups: dict[str, list[Job]], out: Path) -> None:
    plots = out / "plots"
    carried = {p: lines for p, lines in earlier_sections(out / "reproduction.md").items() if p not in groups}
    lines = [
        "# Reproduction report",
        "",
        "Generated by `make reproduce` (`python -m modules.runtime.report`) from the runs' `metrics.json`, "
        "recorded in `reports/runs/`; never edited by hand. Each claim is run on the seeds listed; a claim "
        "passes a seed when its metric meets the criterion on that seed.",
        "",
        "| method | presets | claims passing on every seed | wall time (s, summed over runs) |",
        "|---|---|---|---|",
    ]
    shown = sorted(groups.keys() | carried.keys())
    sections = []
    for method in methods():  # every method, those with nothing run yet included
        names = [p for p in shown if method_of(p) == method]
        wall = 0.0
        body = [
            f"## {method}",
            "",
            f"Method doc: [docs/methods/{method}.md](../docs/methods/{method}.md)",
            "",
        ]
        for preset in names:
            if preset in carried:
                heading, *rest = carried[preset]
                rest = [line for line in rest if line not in (anchor(preset), CARRIED)]
                while rest and not rest[0]:
                    rest.pop(0)
                wall += float(heading.split("; ")[1].split(" s")[0])
                body += [heading, "", anchor(preset), CARRIED, "", *rest]
                continue
            jobs = groups[preset]
            wall += np.nansum([j.seconds for j in jobs])
            seeds = ", ".join(str(j.seed) for j in jobs)
            body += [
                f"### `{preset}` (seeds {seeds}; {wall_time(jobs)})",
                "",
                anchor(preset),
                f"`python launch.py experiment={preset}`",
                "",
            ]
            for j in jobs:
                if j.error:
                    body += [
                        f"Seed {j.seed} **did not finish**:",
                        "",
                        "```",
                        j.error.strip()[-800:],
                        "```",
                        "",
                    ]
            rows = claim_rows(jobs)
            if rows:
                body += [
                    "| claim | statement | paper | ours (mean ± std; per seed) | criterion | verdict |",
                    "|---|---|---|---|---|---|",
                    *rows,
                    "",
                ]
            first = next((j for j in jobs if j.results and (j.run_dir / "plots").exists()), None)
            if first:  # fresh plots replace the committed ones
                shutil.rmtree(plots / preset, ignore_errors=True)
                (plots / preset).mkdir(parents=True)
                for png in (first.run_dir / "plots").glob("*.png"):
                    shutil.copyfile(png, plots / preset / png.name)
            for png in sorted((plots / preset).glob("*.png")):
                body += [f"![{preset}: {png.stem}](plots/{preset}/{png.name})", ""]
        missing = [p for p in presets(method) if p not in names]
        for label, listed in (
            ("GPU presets, not run on CPU", [p for p in missing if needs_gpu(p)]),
            ("Not run for this report", [p for p in missing if not needs_gpu(p)]),
        ):
            if listed:
                body += [f"{label}: {', '.join(f'`{p}`' for p in listed)}.", ""]
        rows = [line for line in body if line.startswith("| `")]  # claim rows, carried ones included
        n_pass = sum("**PASS**" in r for r in rows)
        lines.append(f"| [{method}](#{method}) | {len(names)} | {n_pass}/{len(rows)} | {wall:.0f} |")
        sections += body
    out.mkdir(parents=True, exist_ok=True)
    (out / "reproduction.md").write_text("\n".join([*lines, "", *sections]) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", help="one method (default: all)")
    parser.add_argument("--preset", action="append", help="only these presets (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one torch thread each)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--fresh", action="store_true", help="discard earlier runs and start over")
    parser.add_argument(
        "--collect-only", action="store_true", help="write the report from finished runs and records only"
    )
    parser.add_argument("--runs", type=Path, default=ROOT / "outputs" / "reproduce")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args(argv)
    if args.method and args.method not in methods():
        parser.error(f"--method {args.method!r}: choose one of {', '.join(methods())}")
    names = [n for n in presets(args.method) if not needs_gpu(n)]
    if args.preset:
        unknown = sorted(set(args.preset) - set(presets(None)))
        if unknown:
            parser.error(f"--preset {', '.join(unknown)}: no such conf/experiment preset")
        names = [n for n in args.preset if n in presets(args.method)]  # in the order given
    records = args.out / "runs"
    if args.fresh:
        for name in names:
            shutil.rmtree(args.runs / name, ignore_errors=True)
            shutil.rmtree(records / name, ignore_errors=True)
    jobs = [Job(p, s, args.runs / p / f"seed_{s}") for p in names for s in seeds_of(p)]
    step = (
        (lambda job: collect(job, records))
        if args.collect_only
        else (lambda job: run(job, args.timeout, records))
    )
    with ThreadPoolExecutor(args.jobs) as pool:
        for j in pool.map(step, jobs):
            status = (
                "error"
                if j.error
                else f"{sum(c['passed'] for c in j.results['claims'])}/{len(j.results['claims'])} claims pass"
            )
            print(f"{j.preset:<40} seed {j.seed}: {status} ({j.seconds:.0f} s)", flush=True)
    groups = {  # every preset with a record, this run's included
        p: [load_record(Job(p, s, args.runs / p / f"seed_{s}"), records) for s in seeds_of(p)]
        for p in presets(None)
        if (records / p).exists()
    }
    write_report(groups, args.out)
    print(f"report: {args.out / 'reproduction.md'}")


if __name__ == "__main__":
    main()
