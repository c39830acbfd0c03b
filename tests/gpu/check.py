"""GPU check: each method's learner presets and the LLM presets on ``hardware=gpu`` vs ``hardware=cpu``.

Run on a machine with CUDA (``bash tests/gpu/check.sh``). For every preset it runs the same seed on
both devices and prints one table row: wall times, the largest relative metric difference, and the
claims passing on each device. Solvers must match to float tolerance (``--match`` presets); learners
and LLM runs may differ by floating-point order, so their row reports the difference and both
verdicts. Exits non-zero if a run fails or a ``--match`` preset differs.

    python tests/gpu/check.py [--steps 200] [--match contracts_meta_spe gittins_exact] [PRESET ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from modules.llm import LLM_MODELS  # noqa: E402
from modules.runtime.config import locate  # noqa: E402


def default_presets() -> list[str]:
    """Every preset whose algorithm learns (``fit``) or whose model is an LLM."""
    chosen = []
    for path in sorted((ROOT / "conf" / "experiment").glob("*.yaml")):
        defaults = OmegaConf.load(path).get("defaults", [])
        picks = {
            k.split("/")[-1].replace("override ", ""): v
            for d in defaults
            if isinstance(d, dict)
            for k, v in d.items()
        }
        algorithm, model = picks.get("algorithm"), picks.get("model")
        if algorithm is None:
            continue
        cls = locate(OmegaConf.load(ROOT / "conf" / "algorithm" / f"{algorithm}.yaml")._target_)
        if "fit" in cls.stages or model in LLM_MODELS:
            chosen.append(path.stem)
    return chosen


def run(preset: str, hardware: str, steps: int | None, out: Path) -> tuple[dict | None, float]:
    args = [f"experiment={preset}", f"hardware={hardware}", "logger=csv", f"hydra.run.dir={out}"]
    if steps:
        args.append(f"trainer.max_steps={steps}")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "offline"},
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"{preset} on {hardware} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None, seconds
    return json.loads((out / "metrics.json").read_text()), seconds


def max_rel_diff(a: dict, b: dict) -> float:
    keys = a["metrics"].keys() & b["metrics"].keys()
    return max(
        (abs(a["metrics"][k] - b["metrics"][k]) / max(1.0, abs(a["metrics"][k])) for k in keys), default=0.0
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="*", help="default: every learner and LLM preset")
    parser.add_argument("--steps", type=int, default=None, help="cap training steps (trainer.max_steps)")
    parser.add_argument(
        "--match",
        nargs="*",
        default=["contracts_meta_spe", "gittins_exact"],
        help="solver presets whose metrics must match across devices (rel 1e-6)",
    )
    args = parser.parse_args()
    presets = [*args.match, *(args.presets or default_presets())]
    print("| preset | cpu s | gpu s | max rel diff | claims cpu | claims gpu | must match |")
    print("|---|---|---|---|---|---|---|")
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for preset in presets:
            cpu, t_cpu = run(preset, "cpu", args.steps, Path(tmp) / preset / "cpu")
            gpu, t_gpu = run(preset, "gpu", args.steps, Path(tmp) / preset / "gpu")
            if cpu is None or gpu is None:
                bad += 1
                print(f"| {preset} | {t_cpu:.0f} | {t_gpu:.0f} | failed | | | |")
                continue
            diff, must = max_rel_diff(cpu, gpu), preset in args.match
            bad += must and diff > 1e-6
            verdicts = [f"{sum(c['passed'] for c in r['claims'])}/{len(r['claims'])}" for r in (cpu, gpu)]
            print(
                f"| {preset} | {t_cpu:.0f} | {t_gpu:.0f} | {diff:.2e} | {verdicts[0]} | {verdicts[1]} | "
                f"{'yes' if must else 'no'} |",
                flush=True,
            )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
