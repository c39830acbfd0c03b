"""Unit tests of the Gittins frontier-exploration core against brute force and dynamic programming."""

import itertools

import networkx as nx
import numpy as np
import pytest
import torch
from pydantic import ValidationError

from experiments.gittins.exact import JointTable, evaluate_exact, solve_optimal
from experiments.gittins.frontier import Frontier, FrontierState, tree_parents
from experiments.gittins.graphs import random_forest, random_recursive_tree, read_edge_list, tree_plus_edges
from experiments.gittins.hivlike import sexual_contact_network
from experiments.gittins.inference import GraphInference
from experiments.gittins.instance import build_instance
from experiments.gittins.mrf import PairwiseMRF, covariate_mrf, n_theta, pairwise_features, unary_features
from experiments.gittins.rollout import rollout
from experiments.gittins.task import Block, ExactGittinsTask, GittinsTask
from modules.gittins.dqn import DQNPolicy, q_values
from modules.gittins.index import gittins_indices
from modules.gittins.policies import POLICIES, GittinsPolicy
from modules.graph_nets import EdgeGNN


def random_mrf(graph: nx.Graph, K: int, rng: np.random.Generator, d: int = 3) -> PairwiseMRF:
    nu, npair = n_theta(K, d)
    c = rng.integers(0, 2, size=(graph.number_of_nodes(), d))
    return covariate_mrf(graph, c, rng.normal(size=nu), rng.normal(size=npair), K)


def instance(graph: nx.Graph, K: int, beta: float, rng: np.random.Generator, reward=None, samples: int = 0):
    reward = np.linspace(0, 1, K) if reward is None else np.asarray(reward, float)
    return build_instance(
        "test", graph, random_mrf(graph, K, rng), reward, beta, rng, samples, exact=samples == 0
    )


def brute_marginal(P: np.ndarray, keep: tuple[int, ...]) -> np.ndarray:
    return P.sum(axis=tuple(i for i in range(P.ndim) if i not in keep))


def discounted(steps: np.ndarray, beta: float) -> float:
    return float(steps @ beta ** np.arange(len(steps)))


# ---- the MRF ---------------------------------------------------------------------------------
def test_binary_features_are_the_papers():
    """K = 2: f_u = [1, x, c_k, x c_k ...], f_p = [1, xy, x(1-y)+(1-x)y, (1-x)(1-y), per-covariate 5]."""
    rng = np.random.default_rng(0)
    cu, cv = rng.integers(0, 2, (4, 3)), rng.integers(0, 2, (4, 3))
    fu, fp = unary_features(2, cu), pairwise_features(2, cu, cv)
    for e, x, y in itertools.product(range(4), range(2), range(2)):
        want_u = [1, x] + [v for k in range(3) for v in (cu[e, k], x * cu[e, k])]
        assert fu[e, x].tolist() == want_u
        s = cu[e] + cv[e]
        want_p = [1, x * y, x * (1 - y) + (1 - x) * y, (1 - x) * (1 - y)]
        for k in range(3):
            want_p += [
                s[k],
                x * y * s[k],
                x * (1 - y) * cu[e, k] + (1 - x) * y * cv[e, k],
                (1 - x) * y * cu[e, k] + x * (1 - y) * cv[e, k],
                (1 - x) * (1 - y) * s[k],
            ]
        assert fp[e, x, y].tolist() == want_p


def test_pairwise_features_are_symmetric():
    rng = np.random.default_rng(1)
    cu, cv = rng.integers(0, 2, (5, 2)), rng.integers(0, 2, (5, 2))
    assert np.array_equal(pairwise_features(3, cu, cv), pairwise_features(3, cv, cu).transpose(0, 2, 1, 3))


# ---- exact inference against brute force ----------------------------------------------------------
@pytest.mark.parametrize("K", [2, 3])
def test_sum_product_matches_enumeration(K):
    rng = np.random.default_rng(K)
    for trial in range(6):
        n = int(rng.integers(3, 8))
        graph = random_recursive_tree(n, rng) if trial % 2 else nx.gnp_random_graph(n, 0.5, seed=trial)
        mrf = random_mrf(graph, K, rng)
        P, inference = mrf.joint_table(), GraphInference(mrf, graph)
        assert np.allclose(inference.marginals(), [brute_marginal(P, (v,)) for v in range(n)])
        for u, v in graph.edges:
            assert np.allclose(
                inference.pair_marginal(u, v),
                brute_marginal(P, (u, v)) if u < v else brute_marginal(P, (v, u)).T,
            )
        status = np.full((2, n), -1)
        status[1, rng.choice(n, size=n // 2, replace=False)] = rng.integers(0, K, n // 2)
        for c, comp in enumerate(inference.components):
            post = inference.posterior(status, c)
            for row in range(2):
                cond = P[tuple(slice(None) if s < 0 else s for s in status[row])]
                free = [v for v in range(n) if status[row, v] < 0]
                for i, v in enumerate(comp.nodes):
                    if status[row, v] < 0:
                        want = brute_marginal(cond, (free.index(v),))
                        assert np.allclose(post[row, i], want / want.sum())


def test_chain_rule_samples_follow_the_joint():
    rng = np.random.default_rng(3)
    graph = tree_plus_edges(6, 2, rng)
    mrf = random_mrf(graph, 2, rng)
    x = GraphInference(mrf, graph).sample(40000, rng)
    freq = np.bincount(x @ (2 ** np.arange(6))[::-1], minlength=64) / len(x)
    assert np.abs(freq - mrf.joint_table().ravel()).max() < 0.01


# ---- the index ------------------------------------------------------------------------------------
class Table:
    """An oracle from explicit tables."""

    def __init__(self, conditional: dict, marginal: dict):
        self.c, self.m = conditional, marginal

    def conditional(self, child, parent):
        return self.c[child]

    def marginal(self, v):
        return self.m[v]


def test_leaf_index_is_expected_reward_over_one_minus_beta():
    q = np.array([[0.7, 0.3], [0.2, 0.8]])
    idx = gittins_indices(
        np.array([-1, 0]), Table({1: q}, {0: np.array([0.5, 0.5])}), np.array([0.0, 1.0]), 0.8
    )
    assert np.allclose(idx.by_parent_label[1], q[:, 1] / 0.2)
    # root with one leaf child: h(m) = E r + beta E_a[phi_c^a(m)], phi_c^a(m) = max(m, q(1|a) + beta m)
    m = np.linspace(0, 5, 500001)
    h = 0.5 + 0.8 * (0.5 * np.maximum(m, 0.3 + 0.8 * m) + 0.5 * np.maximum(m, 0.8 + 0.8 * m))
    assert abs(idx.root[0] - m[np.argmax(h <= m)]) < 1e-4


def test_index_at_the_top_of_the_range():
    """A label that makes the child surely positive puts its index at B (repeated grid points)."""
    sure = np.array([[0.5, 0.5], [0.0, 1.0]])
    oracle = Table({1: np.array([[0.2, 0.8], [0.6, 0.4]]), 2: sure}, {0: np.array([0.3, 0.7])})
    idx = gittins_indices(np.array([-1, 0, 1]), oracle, np.array([0.0, 1.0]), 0.9)
    assert idx.by_parent_label[2, 1] == pytest.approx(10.0) and np.all(np.isfinite(idx.by_parent_label[1:]))


@pytest.mark.parametrize("K,family", [(2, "tree"), (2, "forest"), (3, "tree")])
def test_gittins_equals_dp_optimum(K, family):
    rng = np.random.default_rng(10 + K)
    reward = [0.0, 0.5, 1.0] if K == 3 else [0.0, 1.0]
    for trial in range(5):
        n = int(rng.integers(4, 9 if K == 2 else 7))
        graph = random_recursive_tree(n, rng) if family == "tree" else random_forest(n, 2, rng)
        beta = [0.5, 0.7, 0.9][trial % 3]
        inst = instance(graph, K, beta, rng, reward)
        policy = GittinsPolicy(inst)
        v_dp = solve_optimal(inst.joint, inst.frontier, inst.reward, beta).value
        v_g = discounted(evaluate_exact(policy, inst.joint, inst.frontier, inst.reward), beta)
        assert abs(v_g - v_dp) <= 1e-9 * max(1.0, v_dp)
        assert abs(policy.indices.value - v_dp) <= 1e-9 * max(1.0, v_dp)  # Whittle's Phi_roots(0)


def test_reward_shift_changes_no_decision():
    rng = np.random.default_rng(5)
    inst = instance(random_recursive_tree(7, rng), 3, 0.8, rng, [0.0, 0.3, 1.0])
    parent = tree_parents(inst.graph, inst.frontier.roots)
    a = gittins_indices(parent, inst.inference, np.array([0.0, 0.3, 1.0]), 0.8)
    b = gittins_indices(parent, inst.inference, np.array([-2.0, -1.7, -1.0]), 0.8)
    assert np.allclose(a.by_parent_label, b.by_parent_label, equal_nan=True)
    assert np.isclose(b.value, a.value - 2.0 * (1 - 0.8**7) / 0.2)
    flat = gittins_indices(parent, inst.inference, np.array([0.4, 0.4, 0.4]), 0.8)
    assert np.isclose(flat.value, 0.4 * (1 - 0.8**7) / 0.2)


# ---- evaluators, policies, rollouts --------------------------------------------------------------
def test_exact_and_monte_carlo_evaluations_agree():
    rng = np.random.default_rng(6)
    inst = instance(tree_plus_edges(7, 2, rng), 2, 0.9, rng)
    mc = build_instance("mc", inst.graph, inst.mrf, inst.reward, 0.9, rng, 20000, exact=False)
    for name in ("gittins", "greedy", "random", "optimal"):
        exact = evaluate_exact(POLICIES[name](inst), inst.joint, inst.frontier, inst.reward)
        order = rollout(POLICIES[name](mc), mc.realisations, mc.frontier, mc.inference, rng)
        sampled = mc.reward[np.take_along_axis(mc.realisations, order, 1)].mean(0)
        assert np.abs(exact - sampled).max() < 0.02, name
    dp = solve_optimal(inst.joint, inst.frontier, inst.reward, 0.9)
    assert np.isclose(
        discounted(evaluate_exact(POLICIES["optimal"](inst), inst.joint, inst.frontier, inst.reward), 0.9),
        dp.value,
    )


class Generic:
    """Hides a priority policy's type so the rollout takes the lock-step path."""

    def __init__(self, policy):
        self.policy, self.name = policy, "generic"

    def probs(self, state: FrontierState) -> np.ndarray:
        return self.policy.probs(state)


def test_heap_and_lock_step_rollouts_choose_the_same_nodes():
    rng = np.random.default_rng(7)
    inst = instance(tree_plus_edges(30, 5, rng), 2, 0.9, rng, samples=50)
    policy = GittinsPolicy(inst)
    heap = rollout(policy, inst.realisations, inst.frontier, inst.inference, rng)
    lock = rollout(Generic(policy), inst.realisations, inst.frontier, inst.inference, rng)
    assert np.array_equal(heap, lock)
    assert all(len(set(row)) == inst.n for row in heap)


def test_frontier_rule():
    graph = nx.Graph([(0, 1), (1, 2), (3, 4)])
    frontier = Frontier.given(graph, [1, 4])
    tested = np.zeros((1, 5), dtype=bool)
    allowed = frontier.allowed(tested)
    assert allowed[0].tolist() == [False, True, False, False, True]
    frontier.advance(allowed, np.array([1]), np.array([[False, True, False, False, False]]))
    assert allowed[0].tolist() == [True, False, True, False, True]
    assert np.array_equal(allowed, frontier.allowed(np.array([[False, True, False, False, False]])))


@pytest.mark.parametrize("K", [2, 3])
def test_replanning_equals_the_static_policy_on_forests(K):
    """On a forest, evidence beyond a node's parent is irrelevant: re-planning is exactly optimal too."""
    rng = np.random.default_rng(20 + K)
    for trial in range(4):
        graph = random_forest(int(rng.integers(5, 9 if K == 2 else 7)), 1, rng)
        inst = instance(graph, K, [0.6, 0.9][trial % 2], rng)
        v_dp = solve_optimal(inst.joint, inst.frontier, inst.reward, inst.beta).value
        steps = evaluate_exact(POLICIES["gittins_replan"](inst), inst.joint, inst.frontier, inst.reward)
        assert abs(discounted(steps, inst.beta) - v_dp) <= 1e-9 * max(1.0, v_dp)


def test_evidence_oracle_matches_the_joint():
    """The re-planning policy's conditionals P(X_v | X_u, observations) on a loopy graph, against
    brute-force enumeration."""
    from modules.gittins.policies import EvidenceOracle

    rng = np.random.default_rng(4)
    inst = instance(tree_plus_edges(7, 3, rng), 2, 0.9, rng)
    comp = inst.inference.components[0]
    status = np.full(7, -1)
    status[[0, 3]] = [1, 0]
    oracle = EvidenceOracle(comp, comp.calibrate(status[None]), np.arange(7))
    P = inst.mrf.joint_table()[tuple(slice(None) if s < 0 else s for s in status)]  # axes: the 5 free nodes
    free = [v for v in range(7) if status[v] < 0]
    for u, v in inst.graph.edges:
        if status[u] < 0 and status[v] < 0:
            joint = brute_marginal(P, (free.index(u), free.index(v)))
            assert np.allclose(oracle.conditional(v, u), joint / joint.sum(1, keepdims=True))
    assert np.allclose(oracle.marginal(free[0]), brute_marginal(P, (0,)) / P.sum())


def test_greedy_posterior_matches_the_joint():
    rng = np.random.default_rng(8)
    inst = instance(tree_plus_edges(6, 3, rng), 2, 0.9, rng)
    joint = JointTable(inst.mrf)
    post = joint.posterior(0b000101)
    P = inst.mrf.joint_table()
    for row, status in enumerate(joint.status_rows(0b000101)):
        cond = P[tuple(slice(None) if s < 0 else s for s in status)]
        assert np.allclose(post[row, 3], brute_marginal(cond, (1,)) / cond.sum())


# ---- the HIV-like generator --------------------------------------------------------------------------
def test_sexual_network_is_sparse_heavy_tailed_and_matches_prevalence():
    rng = np.random.default_rng(9)
    graph, c = sexual_contact_network(500, 5, rng)
    sizes = sorted((len(s) for s in nx.connected_components(graph)), reverse=True)
    assert graph.number_of_nodes() == 500 and c.shape == (500, 5)
    assert sizes[0] >= 30 and np.mean(np.array(sizes) <= 3) >= 0.4  # a few big components, many dyads/triads
    assert graph.number_of_edges() - 500 + len(sizes) <= 25  # few independent cycles
    task = GittinsTask(
        blocks=[
            {
                "graph": "sexual_network",
                "nodes": [300, 400],
                "label_prior": [0.88, 0.12],
                "theta_scale": 0.5,
                "betas": [0.99],
            }
        ],
        samples=10,
    )
    inst = task.make(0)
    assert abs(inst.inference.marginals()[:, 1].mean() - 0.12) < 1e-5


# ---- bad input: a clear message before any compute -------------------------------------------------
def test_self_loops_are_refused(tmp_path):
    with pytest.raises(ValueError, match="self-loop on node 2"):
        PairwiseMRF(unary=np.zeros((3, 2)), edges=[[2, 2]], pairwise=np.zeros((1, 2, 2)))
    path = tmp_path / "loop.txt"
    path.write_text("0 1\n1 1\n")
    with pytest.raises(ValueError, match="line 2: self-loop"):
        read_edge_list(path)


def test_unparsable_edge_list_is_refused(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("# comment\n0 1\n1 2 3\n")
    with pytest.raises(ValueError, match="line 3: expected two node names"):
        GittinsTask(blocks=[{"graph": "edge_list", "path": str(path)}])


def test_label_distribution_must_sum_to_one():
    with pytest.raises(ValidationError, match="label_prior must sum to 1"):
        Block(graph="random_tree", label_prior=[0.5, 0.6])
    with pytest.raises(ValueError, match=r"P\(X_1 \| X_0\) must be a probability distribution"):
        gittins_indices(
            np.array([-1, 0]),
            Table({1: np.array([[0.5, 0.6], [0.5, 0.5]])}, {0: np.array([0.5, 0.5])}),
            np.array([0.0, 1.0]),
            0.9,
        )


def test_beta_outside_unit_interval_is_refused():
    with pytest.raises(ValidationError, match="less than 1"):
        Block(graph="random_tree", betas=[1.0])
    with pytest.raises(ValidationError, match="greater than 0"):
        Block(graph="random_tree", betas=[0.0])
    with pytest.raises(ValueError, match=r"beta must lie in \(0, 1\)"):
        gittins_indices(np.array([-1]), Table({}, {0: np.array([0.5, 0.5])}), np.array([0.0, 1.0]), 1.0)


def test_roots_must_be_one_per_component(tmp_path):
    path = tmp_path / "two.txt"
    path.write_text("a b\nb c\nd e\n")  # components {a, b, c} = nodes 0-2 and {d, e} = nodes 3-4
    with pytest.raises(ValueError, match="root 1 lies outside its component"):
        GittinsTask(blocks=[{"graph": "edge_list", "path": str(path), "roots": [0, 1]}])
    with pytest.raises(ValueError, match="root 9 is not a node"):
        GittinsTask(blocks=[{"graph": "edge_list", "path": str(path), "roots": [0, 9]}])
    with pytest.raises(ValueError, match="1 components have no root"):
        GittinsTask(blocks=[{"graph": "edge_list", "path": str(path), "roots": [4]}])
    task = GittinsTask(blocks=[{"graph": "edge_list", "path": str(path), "roots": [2, 3]}])
    assert task.make(0).frontier.roots.tolist() == [2, 3]


def test_exact_enumeration_refuses_big_graphs():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="exact enumeration needs n <= 12"):
        JointTable(random_mrf(random_recursive_tree(13, rng), 2, rng))


def test_exact_task_refuses_blocks_too_big_to_enumerate():
    with pytest.raises(ValueError, match=r"blocks.1 \(random_tree\) has up to 13 nodes"):
        ExactGittinsTask(
            blocks=[{"graph": "random_tree", "nodes": [4, 6]}, {"graph": "random_tree", "nodes": [4, 13]}]
        )


def test_dqn_component_cache_matches_a_full_evaluation():
    """Between rollout steps the DQN re-evaluates only touched components; Q must equal a full pass."""
    rng = np.random.default_rng(11)
    inst = instance(random_forest(12, 3, rng), 2, 0.9, rng, samples=4)
    torch.manual_seed(0)
    net = EdgeGNN(5, 4, hidden=16)
    policy = DQNPolicy(net, inst, K=2)
    status, allowed = np.full((4, inst.n), -1), np.tile(inst.frontier.is_root, (4, 1))
    for _ in range(inst.n):
        chosen = policy.probs(FrontierState(status, allowed, None)).argmax(1)
        with torch.no_grad():
            full = q_values(net, policy.whole, status).double().numpy()
        assert np.abs(full - policy.q).max() < 1e-5
        status[np.arange(4), chosen] = inst.realisations[np.arange(4), chosen]
        inst.frontier.advance(allowed, chosen, status >= 0)
