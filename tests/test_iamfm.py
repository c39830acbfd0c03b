"""IAMFM core (arXiv:2604.06263): exact VCG vs brute force, the simulator and cache, the optimisers,
payments on noise-free instances, and every bad input the issue lists."""

import numpy as np
import pytest

from experiments.iamfm.simulator import draw
from experiments.iamfm.task import AdAuctionTask, AdInstance
from experiments.iamfm.vcg_brute import brute_force_vcg
from modules.iamfm.cache import EvaluationCache, simulator_caches, simulator_sampler
from modules.iamfm.cokriging import CoKriging, mf_gp_ucb
from modules.iamfm.elimination import sh_schedule, successive_halving, uniform_allocation
from modules.iamfm.payments import audit, run_mechanism
from modules.iamfm.vcg import vcg
from modules.runtime.config import ConfigError
from tests.helpers import run_launch

PROXY = [{"name": "proxy", "cost": 1.0, "bias": 0.08}, {"name": "target", "cost": 5.0}]


def streams(task, index):
    return lambda name: task.rng(index, name)


@pytest.mark.parametrize("trial", range(20))
def test_vcg_equals_brute_force(trial):
    rng = np.random.default_rng(trial)
    K, n = int(rng.integers(1, 12)), int(rng.integers(1, 5))
    means, bids, lam = rng.random((K, n + 1)), rng.uniform(0, 3, n), float(rng.uniform(0, 3))
    star, payments, _ = vcg(means, bids, lam)
    brute_star, brute_payments = brute_force_vcg(means.tolist(), bids.tolist(), lam)
    assert star == brute_star
    np.testing.assert_allclose(payments, brute_payments, atol=1e-12, rtol=0)
    assert payments.min() >= -1e-12 and (bids * means[star, :n] - payments).min() >= -1e-12


def test_draw_is_vectorised_and_chunk_free():
    means = np.random.default_rng(0).random((300, 27, 4))  # seeds x configurations x outcomes
    counts = draw(means, 1000, np.random.default_rng(1))
    assert counts.shape == (300, 27, 4)
    assert np.abs(counts / 1000 - means).max() < 0.08
    p = np.array([0.3, 0.6])
    a, b = np.random.default_rng(2), np.random.default_rng(2)
    assert np.array_equal(draw(p, 50, a) + draw(p, 70, a), draw(p, 120, b))  # common random numbers


def test_cache_draws_only_the_deficit_and_rescores_any_bids():
    task = AdAuctionTask(fidelities=PROXY)
    inst = task.make(0)
    cache = EvaluationCache(inst.costs, 27, 4, simulator_sampler(inst, streams(task, 0)))
    cache.ensure(np.arange(27), 0, 10)
    cache.ensure(np.arange(3), 0, 4)  # already there: free
    assert cache.cost == 270
    cache.ensure(np.array([2]), 1, 3)
    assert cache.cost == 285 and cache.counts[1, 2] == 3
    w1, w2 = inst.weights([1.0, 0.0, 0.0]), inst.weights([0.0, 2.0, 0.0])
    both = cache.estimate(np.arange(27), 0, w1 + w2)
    np.testing.assert_allclose(
        both, cache.estimate(np.arange(27), 0, w1) + cache.estimate(np.arange(27), 0, w2)
    )


@pytest.mark.parametrize("budget", [195, 300, 1000, 3000])
@pytest.mark.parametrize("multi", [False, True])
def test_schedule_within_budget(budget, multi):
    costs = np.array([1.0, 5.0])
    schedule = sh_schedule(27, costs, budget, 3, multi)
    spent, previous = 0.0, {}
    for (f, m), survivors in zip(schedule, (27, 9, 3)):
        spent += (m - previous.get(f, 0)) * survivors * costs[f]
        previous[f] = m
    assert spent <= budget and schedule[-1][0] == 1
    assert [f for f, _ in schedule] == ([0, 1, 1] if multi else [1, 1, 1])


def deterministic_instance(seed: int, n: int = 3) -> AdInstance:
    """Means in {0, 1}: every generation is certain, so estimates are exact."""
    rng = np.random.default_rng(seed)
    configs = np.array(np.meshgrid(*[[0.0, 1.0]] * n)).reshape(n, -1).T
    means = rng.integers(0, 2, (1, len(configs), n + 1)).astype(float)
    return AdInstance(seed, rng.uniform(0.5, 3, n), 2.0, configs, means, np.array([1.0]), ("target",))


@pytest.mark.parametrize("seed", range(6))
def test_noise_free_optimisers_and_payments_are_exact(seed):
    inst = deterministic_instance(seed)
    task = AdAuctionTask(seed=seed)
    w = inst.weights(inst.values)
    _star, payments, _ = vcg(inst.means[0], inst.values, inst.lam)
    for method in ("sh", "uniform"):
        cache = EvaluationCache(inst.costs, 8, 4, simulator_sampler(inst, streams(task, 0)))
        arm = (
            successive_halving(cache, w, sh_schedule(8, inst.costs, 100, 3, True), 3)
            if method == "sh"
            else uniform_allocation(cache, w, 100)
        )
        assert inst.welfare(w)[arm] == inst.welfare(w).max()
    for rule in ("warm", "cold"):
        out = run_mechanism(inst, inst.values, 100, simulator_caches(inst, streams(task, 0)), rule, fresh=5)
        np.testing.assert_allclose(out.payments, payments, atol=1e-12)
        row = audit(inst, 100, simulator_caches(inst, streams(task, 0)), rule, [0.0, 2.0], fresh=5)
        assert row["misreport_gain"].max() <= 1e-12 and row["ir_slack"].min() >= -1e-12


def test_gp_ucb_stays_within_budget_and_beats_a_random_pick():
    task = AdAuctionTask(fidelities=PROXY)
    regrets = []
    for index in range(4):
        inst = task.make(index)
        w = inst.weights(inst.values)
        cache = EvaluationCache(inst.costs, 27, 4, simulator_sampler(inst, streams(task, index)))
        arm = mf_gp_ucb(cache, w, inst.configs, 1000, 10, 2.0, 0.2, CoKriging())
        assert cache.cost <= 1000 and cache.counts[1].sum() > 0  # it reached the target fidelity
        regrets.append(inst.welfare(w).max() - inst.welfare(w)[arm])
    W = task.make(0).welfare(task.make(0).weights(task.values))
    assert np.mean(regrets) < W.max() - W.mean()


def test_warm_counterfactuals_reuse_the_cache():
    task = AdAuctionTask(fidelities=PROXY)
    inst = task.make(0)
    warm = run_mechanism(inst, inst.values, 1000, simulator_caches(inst, streams(task, 0)), "warm")
    cold = run_mechanism(inst, inst.values, 1000, simulator_caches(inst, streams(task, 0)), "cold")
    assert warm.arm == cold.arm and np.array_equal(warm.W_minus, cold.W_minus)  # same main run
    assert warm.new_cost.sum() < cold.new_cost.sum()


@pytest.mark.parametrize(
    "override,message",
    [
        ("task.values=[3.0,-1.0]", r"task.values.1: Input should be greater than or equal to 0"),
        ("task.levels=[]", r"task.levels: List should have at least 1 item"),
        ("task.fidelities.0.cost=0", r"task.fidelities.0.cost: Input should be greater than 0"),
        ("algorithm.budgets=[0]", r"algorithm.budgets.0: Input should be greater than 0"),
    ],
)
def test_bad_config_fails_before_compute(override, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        run_launch(["task=iamfm_proxy", "algorithm=iamfm_regret", "logger=none", override], tmp_path)


def test_bad_task_semantics():
    with pytest.raises(ValueError, match=r"the last one \(proxy\) is the target and must have bias 0"):
        AdAuctionTask(
            fidelities=[{"name": "target", "cost": 5.0}, {"name": "proxy", "cost": 1.0, "bias": 0.1}]
        )
    with pytest.raises(ValueError, match="duplicate names"):
        AdAuctionTask(fidelities=[{"name": "a", "cost": 1.0}, {"name": "a", "cost": 2.0}])
    with pytest.raises(ValueError, match="budget=50 is too small for successive halving"):
        sh_schedule(27, np.array([1.0, 5.0]), 50, 3, False)
    with pytest.raises(ValueError, match="too small for uniform allocation"):
        uniform_allocation(EvaluationCache(np.array([5.0]), 27, 4, None), np.ones(4), 100)
