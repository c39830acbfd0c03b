"""The foundation: compose, validate, run, results, devices, sweeps, SLURM, Optuna, W&B.

Runs use a fast real solver (``FAST``) so every mechanism is exercised on real work.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import torch
from hydra.errors import HydraException

from modules.runtime.config import ConfigError, run_name, validate
from tests.helpers import CONF_DIR, ROOT, cli, compose_config, run_launch

FAST = ["experiment=contracts_meta_spe", "task.n_instances=4"]  # a real solver, seconds
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


# ---- compose + validate ----------------------------------------------------------------------
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment):
    cfg = compose_config([f"experiment={experiment}"])
    if cfg.trainer.accelerator.value == "gpu" and not torch.cuda.is_available():
        cfg = compose_config([f"experiment={experiment}", "hardware=cpu"])  # a GPU preset, checked on CPU
    validate(cfg)
    assert cfg.claims or experiment == "default", "a preset must state the claims it reproduces"


def test_help_lists_groups_and_choices():
    out = cli("--help").stdout
    assert "hardware: cpu, ddp, ddp_cpu, gpu, slurm, slurm_cpu" in out
    assert "logger: csv, none, wandb" in out
    for group in ("task:", "algorithm:", "model:", "experiment:", "hparams_search:"):
        assert group in out


BAD_INPUTS = [
    (["algorithm.xi=abc"], ConfigError, r"algorithm\.xi: Input should be a valid number"),
    (
        ["+algorithm.xii=1"],
        ConfigError,
        r"algorithm\.xii: not a parameter of .*; allowed: xi, max_iterations",
    ),
    (["algorithm.xi=-1"], ConfigError, r"algorithm\.xi: Input should be greater than or equal to 0"),
    (["task.n_instances=0"], ConfigError, r"task\.n_instances: Input should be greater than 0"),
    (["algorithm.xii=1"], HydraException, r"Key 'xii' is not in struct"),
    (["algorithm=nope"], HydraException, r"Could not find 'algorithm/nope'"),
    (
        ["trainer.strategy=dpp"],
        HydraException,
        r"Invalid value 'dpp', expected one of \[auto, ddp, ddp_spawn",
    ),
    (["seed=abc"], HydraException, r"Value 'abc' of type 'str' could not be converted to Integer"),
    (["task=naiad_synthetic"], ConfigError, r"does not offer .*compatible tasks: contracts_paper_trees"),
    (["claims.0.op=approx"], ConfigError, r"op='approx'; allowed: <=, <, >=, >, =="),
    (["algorithm._target_=os.system"], ValueError, r"'os.system' is not allowed"),
]


@pytest.mark.parametrize("overrides,error,message", BAD_INPUTS, ids=[o[0][0] for o in BAD_INPUTS])
def test_bad_input_fails_before_compute_naming_the_problem(overrides, error, message):
    with pytest.raises(error) as info:
        validate(compose_config(["experiment=contracts_meta_spe", *overrides]))
    chain = f"{info.value}\n{info.value.__cause__}"  # Hydra wraps OmegaConf's error
    assert re.search(message, chain), chain


def test_multirun_ddp_on_local_launcher_is_refused(tmp_path):
    proc = cli("-m", *FAST, "trainer.strategy=ddp", "seed=0,1", f"hydra.sweep.dir={tmp_path}", check=False)
    assert proc.returncode != 0
    assert "use hardware=ddp_cpu" in proc.stderr + proc.stdout
    assert not list(tmp_path.glob("*/metrics.json"))


def test_claims_dropped_when_the_preset_is_rechosen():
    cfg = compose_config(["experiment=gittins_exact", "task=gittins_nontrees"])
    assert cfg.claims and cfg.objective
    validate(cfg)
    assert list(cfg.claims) == [] and cfg.objective is None


# ---- runs ------------------------------------------------------------------------------------
def test_run_writes_contract_and_is_reproducible(tmp_path):
    first = run_launch([*FAST, "seed=3"], tmp_path / "a")
    again = run_launch([*FAST, "seed=3"], tmp_path / "b")
    other = run_launch([*FAST, "seed=4"], tmp_path / "c")
    assert first == again
    assert first["metrics"] != other["metrics"]
    assert first["experiment"] == "contracts_meta_spe" and first["seed"] == 3
    assert all(c["passed"] for c in first["claims"] if c["id"] != "closed_form_checked")
    assert (tmp_path / "a" / "config.yaml").exists()
    assert list((tmp_path / "a" / "plots").glob("*.png")), "solvers save their plots as PNG"


def test_ddp_cpu_shards_evaluation_and_matches_one_device(tmp_path):
    one = cli(*FAST, "logger=none", f"hydra.run.dir={tmp_path / 'one'}")
    two = cli(*FAST, "hardware=ddp_cpu", "logger=none", f"hydra.run.dir={tmp_path / 'two'}")
    assert one.returncode == two.returncode == 0
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert m1["metrics"] == pytest.approx(m2["metrics"], rel=1e-12, abs=1e-12)


def test_basic_multirun_aggregates_a_table(tmp_path):
    cli("-m", *FAST, "logger=csv", "seed=0,1", f"hydra.sweep.dir={tmp_path}")
    assert sorted(p.parent.name for p in tmp_path.glob("*/metrics.json")) == ["0", "1"]
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    assert len(summary) == 3 and "seed" in summary[0]
    assert "| meta_equals_spe | 2/2 |" in (tmp_path / "summary.md").read_text()


def test_optuna_search_runs_three_trials(tmp_path):
    cli("hparams_search=contracts_meta_optuna", *FAST, "logger=csv", f"hydra.sweep.dir={tmp_path}")
    assert len(list(tmp_path.glob("*/metrics.json"))) == 3
    results = (tmp_path / "optimization_results.yaml").read_text()
    assert "best_params" in results and "best_value" in results


@pytest.mark.slurm
@pytest.mark.skipif(shutil.which("slurmctld") is None, reason="Debian's slurm-wlm/munge not installed")
def test_real_slurm_multirun(tmp_path):
    subprocess.run(["bash", str(ROOT / "tests/slurm/start.sh")], check=True, timeout=120)
    cli(
        "-m",
        *FAST,
        "hardware=slurm_cpu",
        "hydra.launcher.partition=debug",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=2",
        "hydra.launcher.timeout_min=10",
        "logger=csv",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path}",
        timeout=900,
        env={"SLURM_CONF": "/run/atlas-slurm/slurm.conf"},
    )
    jobs = sorted(tmp_path.glob("*/metrics.json"))
    assert [p.parent.name for p in jobs] == ["0", "1"]
    assert [json.loads(p.read_text())["seed"] for p in jobs] == [0, 1]
    assert list((tmp_path / ".submitit").glob("*/*_log.out")), "the jobs went through sbatch"


# ---- W&B ------------------------------------------------------------------------------------
def test_wandb_offline_one_run_per_multirun_job(tmp_path):
    cli("-m", *FAST, "logger=wandb", "seed=0,1", f"hydra.sweep.dir={tmp_path}")
    runs = sorted(tmp_path.glob("*/wandb/offline-run-*"))
    assert len(runs) == 2 and runs[0].name != runs[1].name


def test_broken_wandb_never_loses_metrics(tmp_path):
    env = {"WANDB_MODE": "online", "WANDB_API_KEY": "", "HOME": str(tmp_path), "WANDB_DIR": str(tmp_path)}
    cli(*FAST, "logger=wandb", f"hydra.run.dir={tmp_path / 'run'}", env=env)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["claims"]
    assert "falling back to CSV" in (tmp_path / "run" / "launch.log").read_text()


# ---- checkpoints -------------------------------------------------------------------------------
def test_a_finished_learner_keeps_last_checkpoint_and_reruns_without_training(tmp_path):
    tiny = [
        "experiment=gittins_dqn",
        "logger=none",
        "task.blocks.0.count=2",
        "task.blocks.0.nodes=[6,6]",
        "algorithm.episodes=2",
        "algorithm.batch_size=8",
        "checkpoint_every_n_steps=5",
    ]
    first = run_launch(tiny, tmp_path)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.exists() and not (tmp_path / "checkpoints" / "on_exception.ckpt").exists()
    steps = torch.load(last, weights_only=True)["global_step"]
    assert run_launch(tiny, tmp_path)["metrics"] == first["metrics"]  # resumed: nothing left to train
    assert torch.load(last, weights_only=True)["global_step"] == steps


# ---- second pass: model args, top-level values, reruns, sweeps, names ------------------------
MORE_BAD_INPUTS = [
    (["experiment=gittins_dqn", "model.hidden=abc"], r"model\.hidden: Input should be a valid integer"),
    (["experiment=gittins_dqn", "+model.widht=3"], r"model\.widht: not a parameter of modules\.graph_nets"),
    (
        ["experiment=naiad_icl", "model.dtype=float8"],
        r"model\.dtype: Input should be 'float32' or 'bfloat16'",
    ),
    (["seed=-1"], r"seed=-1: seeds are non-negative"),
    (["trainer.devices=0"], r"trainer\.devices=0: need at least one device"),
    (["hardware.threads=0"], r"hardware\.threads=0: must be >= 1"),
]


@pytest.mark.parametrize("overrides,message", MORE_BAD_INPUTS, ids=[o[0][-1] for o in MORE_BAD_INPUTS])
def test_model_and_top_level_values_are_validated(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose_config(overrides))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_gpu_hardware_without_a_gpu_fails_with_one_line_before_compute(tmp_path):
    proc = cli(*FAST, "hardware=gpu", "logger=wandb", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 2
    assert "no CUDA GPU on this machine" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "wandb").exists(), "no W&B run is created for an invalid config"
    assert "no CUDA GPU" in (tmp_path / "launch.log").read_text(), "the run directory records why"


def test_rerun_with_another_config_is_refused_unless_fresh(tmp_path):
    first = run_launch([*FAST, "seed=3"], tmp_path)
    with pytest.raises(ConfigError, match=r"holds a run of another config \(seed: 3 -> 4\).*fresh=true"):
        run_launch([*FAST, "seed=4"], tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == first, "nothing was mixed"
    assert run_launch([*FAST, "seed=4", "fresh=true"], tmp_path)["seed"] == 4


def test_a_sweep_validates_every_point_before_the_first_job(tmp_path):
    proc = cli("-m", *FAST, "task.n_instances=2,-1", f"hydra.sweep.dir={tmp_path}", check=False)
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    assert "1 of 2 sweep points are invalid; no job was started" in out and "task.n_instances" in out
    assert not list(tmp_path.glob("*/metrics.json"))


def test_a_failing_job_leaves_the_summary_of_the_others_and_a_reused_dir_reports_this_sweep(tmp_path):
    cli("-m", *FAST, "logger=csv", "seed=0,1", f"hydra.sweep.dir={tmp_path}")
    cli("-m", *FAST, "logger=csv", "seed=0", f"hydra.sweep.dir={tmp_path}")
    table = (tmp_path / "summary.csv").read_text().splitlines()
    assert len(table) == 2 and table[1].startswith("0,"), "only this sweep's job (0) is reported"
    proc = cli(
        "-m",
        *FAST,
        "logger=csv",
        "seed=7",
        "objective=no/such_metric",
        f"hydra.sweep.dir={tmp_path / 'f'}",
        check=False,
    )
    assert "is not a metric of this run" in proc.stdout + proc.stderr
    assert (tmp_path / "f" / "summary.csv").exists(), "a failing job still leaves a summary"


def test_a_custom_pairing_is_named_by_its_choices(tmp_path):
    results = run_launch(
        ["task=gittins_trees10", "algorithm=gittins_greedy", "trainer.limit_test_batches=1"], tmp_path
    )
    assert results["experiment"] == "gittins_trees10+gittins_greedy" and results["claims"] == []
    assert (
        run_name("gittins_exact", "gittins_trees10", "gittins_greedy", ["task=gittins_trees10"])
        == "gittins_trees10+gittins_greedy"
    )  # the run directory's name (conf/config.yaml)
    assert run_name("gittins_exact", "gittins_forests", "gittins_vs_optimal", ["seed=1"]) == "gittins_exact"


def test_help_is_fast_and_does_not_import_lightning():
    code = (
        "import sys, runpy; sys.argv = ['launch.py', '--help']\n"
        "try:\n    runpy.run_path('launch.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "assert 'lightning' not in sys.modules, 'lightning imported by --help'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, timeout=60)


def test_wandb_resumed_run_continues_the_same_run(tmp_path):
    first = cli(*FAST, "logger=wandb", f"hydra.run.dir={tmp_path}")
    assert "wandb:" not in first.stdout + first.stderr  # a quiet run: no W&B banner or warning
    first_id = (tmp_path / "wandb_id").read_text()
    cli(*FAST, "logger=wandb", f"hydra.run.dir={tmp_path}")
    assert (tmp_path / "wandb_id").read_text() == first_id
    assert {p.name.rsplit("-", 1)[-1] for p in (tmp_path / "wandb").glob("offline-run-*")} == {first_id}
