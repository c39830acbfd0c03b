"""IAMFM presets end to end (arXiv:2604.06263, claims 1-5): tiny versions in the default tier (metrics
and figures produced, the oracle claims asserted in full), the full claims on three seeds in ``slow``."""

import math

import pytest

from tests.helpers import run_launch


def claims(results: dict) -> dict:
    return {c["id"]: c for c in results["claims"]}


def test_oracle_vcg_preset(tmp_path):
    results = run_launch(["experiment=iamfm_oracle_vcg", "logger=none", "task.count=20"], tmp_path)
    assert all(c["passed"] for c in results["claims"]), results["claims"]


@pytest.mark.parametrize(
    "preset,overrides,metrics,figure",
    [
        (
            "iamfm_mf_vs_sf_count",
            ["task.count=8", "algorithm.budgets=[200,2000]"],
            ["claim/sh_minus_uniform_upper_max"],
            "regret_vs_budget",
        ),
        (
            "iamfm_elim_vs_model",
            ["task.count=3", "algorithm.budgets=[300,1000]"],
            ["claim/sh_vs_gp_ucb_sign_changes", "iamfm/sh_minus_gp_ucb/B300"],
            "regret_vs_budget",
        ),
        (
            "iamfm_aco",
            ["task.count=3", "algorithm.budgets=[1000]"],
            ["claim/aco_new_cost_ratio", "claim/aco_payment_error_ratio"],
            "payment_error_vs_cost",
        ),
        (
            "iamfm_ir_sp",
            ["task.count=3", "algorithm.budgets=[300,1000]", "algorithm.misreports=[0.0,2.0]"],
            ["claim/ir_slack_min", "claim/within_bound_frac_min", "claim/misreport_gain_increase_max"],
            "payment_error_vs_cost",
        ),
    ],
)
def test_tiny_presets_run(preset, overrides, metrics, figure, tmp_path):
    results = run_launch([f"experiment={preset}", "logger=none", *overrides], tmp_path)
    assert all(math.isfinite(results["metrics"][m]) for m in metrics)
    assert len(results["claims"]) >= 1 and (tmp_path / "plots" / f"{figure}.png").exists()
    if preset == "iamfm_ir_sp":
        assert claims(results)["approx_ir"]["passed"]  # holds on any run (the derivation)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "preset",
    [
        "iamfm_oracle_vcg",
        "iamfm_mf_vs_sf_count",
        "iamfm_mf_vs_sf_proxy",
        "iamfm_elim_vs_model",
        "iamfm_aco",
        "iamfm_ir_sp",
    ],
)
def test_full_preset_claims(preset, seed, tmp_path):
    results = run_launch([f"experiment={preset}", "logger=none", f"seed={seed}"], tmp_path)
    assert all(c["passed"] for c in results["claims"]), results["claims"]
