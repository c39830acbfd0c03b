"""NaiAD: VC-PPI estimators vs ppi_py, calibrated labels, schema/loader errors, strategy clustering,
and the CI presets (claims 1-4) end to end on two seeds."""

import json

import numpy as np
import pytest
from ppi_py import classical_mean_ci, crossppi_mean_ci, ppi_mean_ci
from scipy.stats import spearmanr

from experiments.naiad.bridges import PlantedBridges
from experiments.naiad.naiad_file import NaiADFile
from experiments.naiad.schema import LLMAd, Scores, read_jsonl, write_jsonl
from experiments.naiad.seeds import ADS, QUERIES, pairs
from experiments.naiad.simulator import Judge, Population, System
from experiments.naiad.trials import PPITrials
from modules.naiad.estimators import ESTIMATORS, Classical, CrossFitPPI, PPIpp, power_tuned_mean
from modules.naiad.labels import VarianceCalibratedLabels
from tests.helpers import assert_claims_pass, run_launch

SYNTHETIC = dict(
    n_trials=3,
    n_labelled=100,
    n_unlabelled=5000,
    systems={"p": {"mean": [60, 55, 45, 50], "polish": 10}},
    contrast=[1.0],
    judge={"bias": 30, "compression": 0.5, "halo": 0.4, "noise": 5},
    truth_sd=15,
    truth_corr=0.4,
    polish_sd=10,
    rater_sd=8,
)


def sample(seed=0, n=100, N=5000):
    pop = Population(System((60, 55, 45, 50), 10), Judge(30, 0.5, 0.4, 5), 15, 0.4, 10, 8)
    rng = np.random.default_rng(seed)
    Y, S = pop.sample(rng, n)
    return Y, S, pop.sample(rng, N)[1], pop


# ---- estimators vs ppi_py -------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name,lam", [("ppi", 1.0), ("ppipp", None)])
def test_ppi_matches_ppi_py(seed, name, lam):
    Y, S, S_unl, _ = sample(seed)
    lo, hi = ESTIMATORS[name]().estimate(Y, S, S_unl).interval(0.1)
    for d in range(4):
        ref_lo, ref_hi = ppi_mean_ci(Y[:, d], S[:, d], S_unl[:, d], alpha=0.1, lam=lam)
        assert abs(lo[d] - ref_lo[0]) < 1e-10 and abs(hi[d] - ref_hi[0]) < 1e-10


def test_classical_and_crossfit_match_ppi_py():
    Y, S, S_unl, _ = sample(3)
    lo, hi = Classical().estimate(Y, S, S_unl).interval(0.05)
    ref = classical_mean_ci(Y[:, 0], alpha=0.05)
    assert abs(lo[0] - ref[0]) < 1e-10 and abs(hi[0] - ref[1]) < 1e-10
    # lam = 1 cross-fitting is cross-prediction-powered inference: compare with crossppi_mean_ci,
    # whose unlabelled predictions are one column per fold model
    est = CrossFitPPI(folds=5, power_tuning=False)
    f, _ = est.cross_predict(Y, S, S_unl)
    fold = np.arange(len(Y)) * 5 // len(Y)
    X_unl = np.hstack([np.ones((len(S_unl), 1)), S_unl])
    per_fold = np.stack([X_unl @ est.fit(Y[fold != k], S[fold != k]) for k in range(5)], axis=-1)  # [N, D, K]
    lo, hi = est.estimate(Y, S, S_unl).interval(0.1)
    for d in range(4):
        ref_lo, ref_hi = crossppi_mean_ci(Y[:, d], f[:, d], per_fold[:, d, :], alpha=0.1)
        assert abs(lo[d] - ref_lo) < 1e-10 and abs(hi[d] - ref_hi) < 1e-10


def test_power_tuning_limits():
    Y, S, S_unl, _ = sample(4)
    classical = Classical().estimate(Y, S, S_unl)
    lam0 = power_tuned_mean(Y, S, S_unl, lam=0.0)
    assert np.allclose(lam0.point, classical.point) and np.allclose(lam0.se, classical.se)
    # a constant judge carries no information: PPI++ falls back to the classical interval
    flat = PPIpp().estimate(Y, np.ones_like(S), np.ones_like(S_unl))
    assert np.allclose(flat.point, classical.point) and np.allclose(flat.se, classical.se)


def test_crossfit_recalibration_is_exact_on_a_linear_judge():
    rng = np.random.default_rng(0)
    S = rng.normal(50, 10, (60, 4))
    Y = 3 + S @ np.array([[0.5, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0.1, 0, 0, 1]])
    f, f_unl = CrossFitPPI(folds=4).cross_predict(Y, S, S[:10])
    assert np.allclose(f, Y) and np.allclose(f_unl, Y[:10])


def test_bad_estimator_inputs():
    Y, S, S_unl, _ = sample(0)
    with pytest.raises(ValueError, match="empty human subset"):
        PPIpp().estimate(Y[:0], S[:0], S_unl)
    with pytest.raises(ValueError, match=r"alpha must lie in \(0, 1\), got 1.5"):
        PPIpp().estimate(Y, S, S_unl).interval(1.5)
    with pytest.raises(ValueError, match="alpha must lie in"):
        PPIpp().estimate(Y, S, S_unl).interval(0.0)
    with pytest.raises(ValueError, match="shape mismatch"):
        PPIpp().estimate(Y, S[:, :3], S_unl)
    with pytest.raises(ValueError, match="empty human subset"):
        VarianceCalibratedLabels().fit(Y[:0], S[:0], S_unl)


BAD_ARRAYS = [
    (lambda Y: Y.tolist(), r"Y \(human labels\) must be a NumPy array .*got list"),
    (lambda Y: Y[:, 0], r"Y \(human labels\) must be 2-D .*got 1-D"),
    (lambda Y: Y[None], r"must be 2-D .*got 3-D"),
    (lambda Y: Y.astype(str), r"must hold numbers, got dtype <U"),
    (lambda Y: Y > 50, r"must hold numbers, got dtype bool"),
    (lambda Y: np.where(np.arange(len(Y))[:, None] == 3, np.nan, Y), r"non-finite values .* first row 3"),
    (lambda Y: np.where(np.arange(len(Y))[:, None] == 5, np.inf, Y), r"non-finite values .* first row 5"),
]


@pytest.mark.parametrize("corrupt,message", BAD_ARRAYS, ids=[m.split(" ")[-1] for _, m in BAD_ARRAYS])
def test_bad_label_arrays_name_the_argument_and_row(corrupt, message):
    Y, S, S_unl, _ = sample(0)
    with pytest.raises(ValueError, match=message):
        PPIpp().estimate(corrupt(Y), S, S_unl)


def test_small_samples_warn_and_finite_sample_widens_to_t_quantiles():
    Y, S, S_unl, _ = sample(0)
    with pytest.warns(UserWarning, match="20 human labels; normal intervals under-cover below 50"):
        normal = PPIpp().estimate(Y[:20], S[:20], S_unl)
    import warnings as _warnings

    with _warnings.catch_warnings():
        _warnings.simplefilter("error")
        t_based = PPIpp(finite_sample=True).estimate(Y[:20], S[:20], S_unl)
    assert t_based.df == 19 and np.allclose(t_based.point, normal.point)
    (lo_n, hi_n), (lo_t, hi_t) = normal.interval(0.1), t_based.interval(0.1)
    assert np.all(hi_t - lo_t > hi_n - lo_n)


# ---- variance-calibrated labels ------------------------------------------------------------
def test_calibrated_labels_keep_spread_and_ranking():
    Y, S, S_unl, pop = sample(5)
    labels = VarianceCalibratedLabels().fit(Y, S, S_unl)
    y_tilde = labels.transform(np.concatenate([S, S_unl]))
    assert np.allclose(y_tilde.mean(0), PPIpp().estimate(Y, S, S_unl).point)
    ratio = y_tilde.std(0, ddof=1) / pop.human_sd
    assert np.all((ratio > 0.85) & (ratio < 1.15))
    assert np.all(np.concatenate([S, S_unl]).std(0) / pop.human_sd < 0.8)  # the judge compresses
    for d in range(4):
        assert spearmanr(y_tilde[: len(Y), d], Y[:, d])[0] == spearmanr(S[:, d], Y[:, d])[0]
    explained = VarianceCalibratedLabels("explained").fit(Y, S, S_unl)
    assert np.all(explained.sigma < labels.sigma)  # Var(E[Y|f]) < Var(Y)


# ---- simulator and trials task -------------------------------------------------------------
def test_trials_are_deterministic_and_validated():
    task = PPITrials(**SYNTHETIC, seed=7)
    a, b = task.instances()[2][1], PPITrials(**SYNTHETIC, seed=7).instances()[2][1]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["Y"].shape == (1, 100, 4) and a["S_unl"].shape == (1, 5000, 4)
    assert np.allclose(a["theta"], [60, 55, 45, 50])
    with pytest.raises(ValueError, match="contrast has 2 weights for 1 systems"):
        PPITrials(**{**SYNTHETIC, "contrast": [1.0, -1.0]})
    with pytest.raises(ValueError, match="n_labelled"):
        PPITrials(**{**SYNTHETIC, "n_labelled": 0})


def test_simulator_moments():
    Y, S, _, pop = sample(0, n=200_000, N=1)
    assert np.allclose(Y.mean(0), pop.true_mean, atol=0.15)
    assert np.allclose(Y.std(0), pop.human_sd, rtol=0.01)


# ---- schema, JSONL and the user-file loader ------------------------------------------------
def row(**overrides):
    base = {
        "id": 1,
        "query": "q?",
        "category": ["food"],
        "ad_name": "BrewCraft",
        "ad_label": "kettle",
        "ad_info": "pours well",
        "logic_bridge": "coffee is a craft",
        "strategy": "Methodological Abstraction",
        "response": "Use a kettle.",
        "ppied_scores": {"q1": 70, "q2": 60, "q3": 50, "q4": 40},
    }
    return {**base, **overrides}


def test_jsonl_roundtrip(tmp_path):
    rows = [LLMAd.model_validate(row(id=i)) for i in range(3)]
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    assert read_jsonl(path) == rows
    assert rows[0].ppied_scores.user == 65 and rows[0].ppied_scores.commercial == 45


def test_jsonl_bad_rows_name_the_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    missing = row()
    del missing["logic_bridge"]
    path.write_text(json.dumps(row()) + "\n" + json.dumps(missing) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: field logic_bridge: Field required"):
        read_jsonl(path)
    path.write_text(json.dumps(row(ppied_scores={"q1": 70, "q2": 60, "q3": 130, "q4": 40})) + "\n")
    with pytest.raises(
        ValueError, match=r"bad.jsonl:1 \(id 1\): ppied_scores.q3 = 130.0 is outside \[0, 100\]"
    ):
        read_jsonl(path)
    path.write_text(json.dumps(row(ppied_scores={"q1": 70, "q2": 60, "q4": 40})) + "\n")
    with pytest.raises(ValueError, match=r"field ppied_scores.q3: Field required"):
        read_jsonl(path)
    path.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not valid JSON"):
        read_jsonl(path)
    with pytest.raises(ValueError, match="outside"):
        NaiADFile(path=str(write_jsonl(tmp_path / "ok.jsonl", [LLMAd.model_validate(row())])), score_max=10)


def test_scores_reject_unknown_dimension():
    with pytest.raises(ValueError, match="q5"):
        Scores.model_validate({"q1": 1, "q2": 1, "q3": 1, "q4": 1, "q5": 1})


def test_seed_set():
    assert len(QUERIES) == 16 and len(ADS) == 16 and len(pairs()) == 32
    assert all(q.category == a.category for q, a in pairs())


# ---- planted bridges -----------------------------------------------------------------------
def test_planted_bridges_are_deterministic():
    a = PlantedBridges(n_replicas=2, per_family=5, seed=3).instances()[1][1]
    b = PlantedBridges(n_replicas=2, per_family=5, seed=3).instances()[1][1]
    assert a["texts"] == b["texts"] and len(a["texts"]) == 20 and list(np.bincount(a["labels"])) == [5] * 4
    assert all(name in text for name, text in zip(a["ad_names"], a["texts"]))


# ---- presets end to end (claims 1-4) -------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_preset_vcppi(tmp_path, seed):
    metrics = run_launch(["experiment=naiad_vcppi", f"seed={seed}"], tmp_path)
    assert_claims_pass(metrics)
    assert len(metrics["claims"]) == 7
    assert (tmp_path / "plots" / "coverage_width.png").exists()


@pytest.mark.parametrize("seed", [0, 1])
def test_preset_halo(tmp_path, seed):
    metrics = run_launch(["experiment=naiad_halo", f"seed={seed}", "task.n_trials=500"], tmp_path)
    assert_claims_pass(metrics)
    assert metrics["metrics"]["naiad/sign_wrong_naive_q3"] == 0.0  # the halo helps B on q3: right sign


@pytest.mark.parametrize("seed", [0, 1])
def test_preset_labels(tmp_path, seed):
    metrics = run_launch(["experiment=naiad_labels", f"seed={seed}", "task.n_trials=200"], tmp_path)
    assert_claims_pass(metrics)


@pytest.mark.parametrize("seed", [0, 1])
def test_preset_strategies(tmp_path, seed):
    metrics = run_launch(["experiment=naiad_strategies", f"seed={seed}"], tmp_path)
    assert_claims_pass(metrics)
    clusters = json.loads((tmp_path / "clusters" / "0.json").read_text())
    sizes = [c["size"] for c in clusters]
    assert len(sizes) == 4 and sum(sizes) == 80 and min(sizes) >= 15  # four families of 20, near-exact
    assert metrics["metrics"]["naiad/strategies_raw_ari_mean"] < 0.7  # raw embeddings cluster by topic


def test_strategies_on_a_naiad_file(tmp_path):
    rng = np.random.default_rng(0)
    planted = PlantedBridges(n_replicas=1, per_family=12, seed=0).instances()[0][1]
    rows = [
        LLMAd.model_validate(
            row(
                id=i,
                logic_bridge=t,
                category=[c],
                ad_name=a,
                strategy=f"s{label}",
                ppied_scores=dict(zip(("q1", "q2", "q3", "q4"), rng.uniform(0, 100, 4))),
            )
        )
        for i, (t, c, a, label) in enumerate(
            zip(planted["texts"], planted["categories"], planted["ad_names"], planted["labels"])
        )
    ]
    path = write_jsonl(tmp_path / "naiad.jsonl", rows)
    metrics = run_launch(
        ["experiment=naiad_strategies", "task=naiad_file", f"task.path={path}"], tmp_path / "run"
    )
    assert metrics["metrics"]["naiad/strategies_ari_min"] >= 0.7
    clusters = json.loads((tmp_path / "run" / "clusters" / "0.json").read_text())
    assert all("mean_user_utility" in c for c in clusters)


def test_bad_config_values_fail_before_compute(tmp_path):
    with pytest.raises(ValueError, match="algorithm.alpha"):
        run_launch(["experiment=naiad_vcppi", "algorithm.alpha=1.5"], tmp_path)
    with pytest.raises(ValueError, match="task.path"):
        run_launch(
            ["experiment=naiad_strategies", "task=naiad_file", "task.path=/nonexistent.jsonl"], tmp_path
        )
