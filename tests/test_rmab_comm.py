"""rmab_comm core pieces against brute force / closed form, bad inputs, batched == per-arm."""

import itertools

import numpy as np
import pytest
import torch

from experiments.rmab_comm.chain import ChainRMAB, optimal_return
from experiments.rmab_comm.features import nearest
from experiments.rmab_comm.noise import SystematicError
from experiments.rmab_comm.task import ChainTask, SISTask, SyntheticTask
from modules.rmab_comm.qlearners import C51Q, ArmMLP, TabularQ
from modules.rmab_comm.selection import budgeted_greedy, random_feasible
from modules.rmab_comm.strategies import VDN, fixed_pattern, senders_of


def greedy_reference(q: np.ndarray, costs: np.ndarray, budget: int) -> np.ndarray:
    """The index rule written per row, per arm (the definition the batched version must match)."""
    out = np.zeros(q.shape[:2], dtype=int)
    for b in range(q.shape[0]):
        adv = np.maximum(q[b] - q[b, :, :1], 0)
        bids = [(adv[n].max(), n, int(adv[n].argmax())) for n in range(q.shape[1])]
        spent = 0
        for value, n, a in sorted(bids, key=lambda t: -t[0]):
            if value > 0 and spent + costs[a] <= budget:
                out[b, n], spent = a, spent + costs[a]
    return out


@pytest.mark.parametrize("costs", [[0, 1], [0, 1, 2]])
def test_budgeted_greedy_matches_reference_and_is_feasible(costs):
    rng, costs = np.random.default_rng(0), np.asarray(costs)
    for budget in (1, 3, 6):
        q = rng.normal(size=(50, 8, len(costs)))
        actions = budgeted_greedy(q, costs, budget)
        np.testing.assert_array_equal(actions, greedy_reference(q, costs, budget))
        assert np.all(costs[actions].sum(1) <= budget)
        assert np.all(costs[random_feasible((50, 8), len(costs), costs, budget, rng)].sum(1) <= budget)


def test_unit_costs_pull_the_top_b_positive_advantages():
    q = np.zeros((1, 5, 2))
    q[0, :, 1] = [0.5, -1.0, 2.0, 0.1, 3.0]
    np.testing.assert_array_equal(budgeted_greedy(q, np.array([0, 1]), 2), [[0, 0, 1, 0, 1]])
    np.testing.assert_array_equal(
        budgeted_greedy(q, np.array([0, 1]), 5), [[1, 0, 1, 1, 1]]
    )  # never a harmful pull


@pytest.mark.parametrize("K", [2, 4, 6])
def test_chain_optimum_equals_brute_force(K):
    theta = np.array([[K, 4.5, 1.5, 0.0]])
    H, gamma = 8, 0.9
    best = -np.inf
    for plan in itertools.product([0, 1], repeat=H):  # every open-loop plan (deterministic chain)
        env = ChainRMAB(
            theta=theta[None],
            noisy=np.zeros((1, 1), bool),
            costs=[0, 1],
            budget=1,
            rng=np.random.default_rng(0),
        )
        total = 0.0
        for t, a in enumerate(plan):
            _, reward, _, _, _ = env.step(np.array([[a]]))
            total += gamma**t * reward[0]
        best = max(best, total)
    assert optimal_return(theta, gamma, H)[0] == pytest.approx(best)


def test_chain_false_optimum_for_the_noisy_arm():
    task = ChainTask(replicas=1, n_arms=2, budget=2, n_noisy=1)
    env = task.make_env([0], np.random.default_rng(0))
    _, _, _, _, info = env.step(np.array([[1, 0]]))  # clean climbs, noisy drops to 0
    assert info["true"][0].tolist() == [2.0, 0.0]
    assert 1.0 <= info["observed"][0, 1] <= 2.0  # the noisy arm sees a reward for failing
    _, _, _, _, info2 = env.step(np.array([[1, 1]]))
    assert info2["observed"][0, 1] == info["observed"][0, 1]  # systematic: the same every visit


def test_systematic_error_is_fixed_per_bin_and_spares_the_top_bin():
    rng = np.random.default_rng(0)
    error = SystematicError.stack(
        [SystematicError.draw(3, 51, 50, "gaussian", 1.0, 0.5, 0.5, rng)]
    )  # [1, 3, 51]
    bins = np.array([[0, 10, 50]])
    first = error.observe(np.full((1, 3), 0.5), bins)
    np.testing.assert_array_equal(first, error.observe(np.full((1, 3), 0.5), bins))
    assert error.eps[0, :, 50].tolist() == [0.0, 0.0, 0.0] and np.all((first >= 0) & (first <= 1))
    uniform = SystematicError.draw(4, 51, 50, "uniform", 1.0, 0.3, 0.5, rng)
    assert np.abs(uniform.eps).max() <= 0.3


def test_topline_world_has_no_errors():
    task = SyntheticTask(replicas=1)
    env = task.make_env([0], np.random.default_rng(0), noisy=False)
    _, _, _, _, info = env.step(np.zeros((1, 12), dtype=int))
    np.testing.assert_array_equal(info["true"], info["observed"])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"budget": 13}, "budget=13 must be in"),
        ({"costs": [0, -1]}, "non-negative"),
        ({"costs": [1, 1]}, "C\\[0\\] = 0"),
        ({"n_noisy": 20}, "n_noisy=20 exceeds"),
        ({"noise_level": -1.0}, "noise_level"),
        ({"noise_width": 1.5}, "noise_width"),
        ({"noise_mixture_p": 2.0}, "noise_mixture_p"),
        ({"noise_shape": "cauchy"}, "noise_shape='cauchy'"),
    ],
)
def test_bad_inputs_fail_with_clear_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticTask(**kwargs)


def test_bad_chain_and_sis_inputs():
    with pytest.raises(ValueError, match="optimal_reward"):
        ChainTask(optimal_reward=(1.0, 4.0))
    with pytest.raises(ValueError, match="budget=9"):
        SISTask(n_arms=8, budget=9)


def test_infeasible_joint_action_is_refused():
    env = SyntheticTask(replicas=1, budget=2).make_env([0], np.random.default_rng(0))
    with pytest.raises(ValueError, match="budget 2"):
        env.step(np.ones((1, 12), dtype=int))


def test_batched_arm_networks_equal_a_per_arm_loop():
    K, gen = 5, torch.Generator().manual_seed(0)
    net = ArmMLP(K, [1, 16, 16, 6], gen)
    x = torch.rand(3, 1, 1, generator=gen).expand(3, K, 1)  # every arm in the same state
    owner = torch.tensor([[4, 3, 2, 1, 0]] * 3)
    batched, messaged = net(x), net(x, owner)
    for k in range(K):
        h = x[:, k]
        for i, (w, b) in enumerate(zip(net.weights, net.biases)):
            h = h @ w[k] + b[k]
            h = torch.tanh(h) if i < 2 else h
        torch.testing.assert_close(batched[:, k], h)
        torch.testing.assert_close(messaged[:, K - 1 - k], h)  # a message = the sender's network


def train(q, optimizer, epochs: int, transitions) -> None:
    """Per epoch: store the transitions, one optimizer step on the learner's loss, sync targets."""
    for epoch in range(epochs):
        for t in transitions(epoch):
            q.learn(*t)
        optimizer.zero_grad()
        q.loss().backward()
        optimizer.step()
        q.after_update(epoch)


def test_c51_learns_a_constant_reward():
    """A C51 arm with reward 1 every step converges towards Q = 1 / (1 - gamma) for every action."""
    q = C51Q(2, 2, 0.5, 4.0, torch.Generator().manual_seed(0), batch_size=32, target_every=1)
    env = SyntheticTask(replicas=1, n_arms=2, budget=1, n_noisy=0).make_env([0], np.random.default_rng(0))
    rng = np.random.default_rng(1)

    def steps(epoch):
        for _ in range(5):
            yield (
                env,
                None,
                rng.random((1, 2)),
                rng.integers(0, 2, (1, 2)),
                np.ones((1, 2)),
                rng.random((1, 2)),
            )

    train(q, torch.optim.Adam(q.net.parameters(), lr=1e-2), 300, steps)
    values = q.values(env, rng.random((4, 2)), np.tile([0, 1], (4, 1)))
    assert np.abs(values - 2.0).max() < 0.3


def test_tabular_q_learning_reaches_the_fixed_point_on_the_chain():
    theta = np.array([[[3, 4.0, 1.5, 0.0]]])
    env = ChainRMAB(
        theta=theta, noisy=np.zeros((1, 1), bool), costs=[0, 1], budget=1, rng=np.random.default_rng(0)
    )
    q = TabularQ(1, 4, 2, 0.9)

    def sweep(epoch):  # every (state, action) once per epoch
        for s in (1.0, 2.0, 3.0):
            for a in (0, 1):
                env.state = np.array([[s]])
                nxt, _, _, _, info = env.step(np.array([[a]]))
                yield env, np.zeros((1, 1), int), np.array([[s]]), np.array([[a]]), info["true"], nxt

    train(q, torch.optim.SGD(q.parameters(), lr=0.5), 400, sweep)
    top, table = 4.0 / 0.1, q.table.detach().numpy()
    assert table[0, 3].max() == pytest.approx(4.0 + 0.9 * top, rel=1e-6)
    assert table[0, 1, 1] == pytest.approx(2.0 + 0.9 * (4.0 + 0.9 * top), rel=1e-6)


def test_tabular_update_is_the_mean_target_step():
    """One SGD step on the visit-weighted loss = Q + lr (mean target - Q), per (arm, state, action)."""
    env = SyntheticTask(replicas=1, n_arms=2, budget=1, n_noisy=0, state_bins=2).make_env(
        [0], np.random.default_rng(0)
    )
    q = TabularQ(2, 2, 2, 0.9)
    with torch.no_grad():
        q.table.copy_(torch.arange(8, dtype=torch.float64).reshape(2, 2, 2))
    own = np.array([[0, 1]])
    q.learn(
        env, own, np.array([[0.1, 0.9]]), np.array([[1, 0]]), np.array([[1.0, 0.0]]), np.array([[0.9, 0.1]])
    )
    q.learn(
        env, own, np.array([[0.2, 0.8]]), np.array([[1, 0]]), np.array([[0.0, 1.0]]), np.array([[0.1, 0.1]])
    )
    expected = q.table.detach().clone()
    y0 = np.mean([1.0 + 0.9 * 3, 0.0 + 0.9 * 1])  # arm 0, (s=0, a=1): two visits
    y1 = np.mean([0.0 + 0.9 * 5, 1.0 + 0.9 * 5])  # arm 1, (s=1, a=0)
    expected[0, 0, 1] += 0.1 * (y0 - expected[0, 0, 1])
    expected[1, 1, 0] += 0.1 * (y1 - expected[1, 1, 0])
    train(q, torch.optim.SGD(q.parameters(), lr=0.1), 1, lambda epoch: [])
    torch.testing.assert_close(q.table.detach(), expected)


def test_patterns_and_sender_rule():
    z = np.array([[[0.0], [1.0], [0.1], [1.1]]])  # arms 0~2 and 1~3 are similar
    noisy = np.array([False, False, True, True])
    receive, sender = fixed_pattern("oracle", z, noisy, np.random.default_rng(0))
    assert receive[0].tolist() == [False, False, True, True] and sender[0].tolist() == [-1, -1, 0, 1]
    receive, sender = fixed_pattern("worst", z, noisy, np.random.default_rng(0))
    assert sender[0].tolist() == [2, 3, -1, -1]
    _, sender = fixed_pattern("random_comm", z, noisy, np.random.default_rng(0))
    assert all(sender[0, i] not in (i, -1) for i in (0, 1))
    assert senders_of(np.array([[True, True, False, False]]), z)[0].tolist() == [2, 3, -1, -1]
    assert nearest(z, np.zeros((1, 4), bool))[0].tolist() == [-1] * 4  # nobody to hear from


def test_vdn_is_a_sum_of_per_arm_utilities():
    vdn = VDN(2, 3, torch.Generator().manual_seed(0))
    c = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(vdn(c), vdn.per_arm(c).sum(-1))
    greedy = vdn.greedy()
    with torch.no_grad():
        assert np.array_equal(
            greedy, (vdn.per_arm(torch.ones(2, 3)) > vdn.per_arm(torch.zeros(2, 3))).numpy()
        )
