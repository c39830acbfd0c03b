"""``make reproduce``: run every claim preset on its seeds and write ``reports/reproduction.md``.

Each ``(preset, seed)`` is one ``launch.py experiment=<preset> seed=<s>`` run in
``outputs/reproduce/<preset>/seed_<s>``; a run whose ``metrics.json`` exists is reused, so an
interrupted reproduction continues where it stopped (learners resume from their checkpoints). The
report is generated from those ``metrics.json`` files only: per method, a table of claims with the
paper's figure (where the preset records one), the measured value as mean +- std over seeds, the
criterion, the pass count and the wall time, then the plots of the first seed.

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


def run(job: Job, timeout: float) -> Job:
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
    return load(job)


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


def fmt(x) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:.4g}" if isinstance(x, (int, float)) else str(x)


def claim_rows(jobs: list[Job]) -> list[str]:
    done = [j for j in jobs if j.results]
    rows = []
    for claim in done[0].results["claims"] if done else []:
        per_seed = [next(c for c in j.results["claims"] if c["id"] == claim["id"]) for j in done]
        values = np.array([np.nan if c["value"] is None else c["value"] for c in per_seed], dtype=float)
        value = (
            fmt(values[0])
            if len(values) == 1
            else f"{fmt(np.nanmean(values))} ± {fmt(np.nanstd(values, ddof=1))}"
        )
        thresholds = {fmt(c["threshold"]) for c in per_seed}
        passed = sum(c["passed"] for c in per_seed)
        mark = "PASS" if passed == len(jobs) else ("FAIL" if passed == 0 else "PARTIAL")
        rows.append(
            f"| `{claim['id']}` | {claim['statement']} | {claim.get('paper') or '–'} | {value} | "
            f"`{claim['metric']}` {claim['op']} {' / '.join(sorted(thresholds))} | "
            f"**{mark}** {passed}/{len(jobs)} |"
        )
    return rows


def write_report(groups: dict[str, list[Job]], out: Path, wall: dict[str, float]) -> None:
    plots = out / "plots"
    lines = [
        "# Reproduction report",
        "",
        "Generated by `make reproduce` (`python -m modules.runtime.report`) from the runs' `metrics.json`; "
        "never edited by hand. Each claim is run on the seeds listed; a claim passes a seed when its "
        "metric meets the criterion on that seed.",
        "",
        "| method | presets | claims passing on every seed | wall time (s, summed over runs) |",
        "|---|---|---|---|",
    ]
    by_method: dict[str, list[str]] = {}
    for preset in groups:
        by_method.setdefault(method_of(preset), []).append(preset)
    sections = []
    for method, names in sorted(by_method.items()):
        n_claims = n_pass = 0
        body = [
            f"## {method}",
            "",
            f"Method doc: [docs/methods/{method}.md](../docs/methods/{method}.md)",
            "",
        ]
        for preset in names:
            jobs = groups[preset]
            seeds = ", ".join(str(j.seed) for j in jobs)
            body += [
                f"### `{preset}` (seeds {seeds}; {sum(j.seconds for j in jobs):.0f} s)",
                "",
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
                    "| claim | statement | paper | ours (mean ± std) | criterion | verdict |",
                    "|---|---|---|---|---|---|",
                    *rows,
                    "",
                ]
                n_claims += len(rows)
                n_pass += sum("**PASS**" in r for r in rows)
            first = next((j for j in jobs if j.results), None)
            for png in sorted((first.run_dir / "plots").glob("*.png")) if first else []:
                target = plots / preset / png.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(png, target)
                body += [f"![{preset}: {png.stem}](plots/{preset}/{png.name})", ""]
        missing = [p for p in presets(method) if p not in groups]
        for label, listed in (
            ("GPU presets, not run on CPU", [p for p in missing if needs_gpu(p)]),
            ("Not run for this report", [p for p in missing if not needs_gpu(p)]),
        ):
            if listed:
                body += [f"{label}: {', '.join(f'`{p}`' for p in listed)}.", ""]
        lines.append(f"| [{method}](#{method}) | {len(names)} | {n_pass}/{n_claims} | {wall[method]:.0f} |")
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
        "--collect-only", action="store_true", help="write the report from finished runs only"
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
    if args.fresh:
        for name in names:
            shutil.rmtree(args.runs / name, ignore_errors=True)
    jobs = [Job(p, s, args.runs / p / f"seed_{s}") for p in names for s in seeds_of(p)]
    groups: dict[str, list[Job]] = {p: [j for j in jobs if j.preset == p] for p in names}
    step = load if args.collect_only else (lambda job: run(job, args.timeout))
    with ThreadPoolExecutor(args.jobs) as pool:
        for j in pool.map(step, jobs):
            status = (
                "error"
                if j.error
                else f"{sum(c['passed'] for c in j.results['claims'])}/{len(j.results['claims'])} claims pass"
            )
            print(f"{j.preset:<40} seed {j.seed}: {status} ({j.seconds:.0f} s)", flush=True)
    wall = {
        m: sum(j.seconds for j in jobs if method_of(j.preset) == m) for m in {method_of(p) for p in names}
    }
    if (args.method or args.preset) and (args.out / "reproduction.md").exists():
        # a partial re-run: keep the other presets' sections from their own runs on disk
        groups = {
            p: [load(Job(p, s, args.runs / p / f"seed_{s}")) for s in seeds_of(p)]
            for p in presets(None)
            if (args.runs / p).exists()
        } | groups
        wall = {
            m: sum(j.seconds for g in groups.values() for j in g if method_of(j.preset) == m)
            for m in {method_of(p) for p in groups}
        }
    write_report(groups, args.out, wall)
    print(f"report: {args.out / 'reproduction.md'}")


if __name__ == "__main__":
    main()
