"""Policy-to-Language (explainer): environment vs brute force, grammar/readers/judges, cache,
flow pieces vs closed forms, rewards, GAE, bad inputs, and small end-to-end runs with resume."""

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
import torch

from experiments.explainer.cartpole import CartPole, controller
from experiments.explainer.frozenlake import ACTIONS, MOVES, FrozenLake
from experiments.explainer.grammar import (
    EOS,
    INDEX,
    PAD,
    context_tokens,
    is_true,
    parse,
    sample_explanation,
    sentences,
)
from experiments.explainer.judges import CachedJudge, Judge, JudgeCache, NoisyRuleJudge, Query, text
from experiments.explainer.readers import CredulousReader, SkepticalReader, accuracy
from experiments.explainer.task import ExplainerTask
from modules.explainer.flow import CrossAttentionVelocity, to_simplex
from modules.explainer.ppo import gae
from modules.explainer.rewards import segment, sentence_rewards, token_rewards
from modules.explainer.sft import PROMPT
from modules.runtime.config import ConfigError, validate
from tests.helpers import Preempt, compose_config, run_launch

QUIET = ["trainer.enable_progress_bar=false"]
ENV = FrozenLake()


# ---- environment ---------------------------------------------------------------------------
def test_value_iteration_follows_a_shortest_safe_path():
    """Brute force: BFS distances to the goal over safe cells; every optimal move shortens them by 1."""
    safe = nx.Graph()
    n = ENV.n
    for s in range(n * n):
        r, c = divmod(s, n)
        for dr, dc in MOVES.values():
            r2, c2 = r + dr, c + dc
            if 0 <= r2 < n and 0 <= c2 < n and ENV.cell(s) != "H" and ENV.desc[r2][c2] != "H":
                safe.add_edge(s, r2 * n + c2)
    dist = nx.single_source_shortest_path_length(safe, ENV.goal[0] * n + ENV.goal[1])
    for s in ENV.states:
        dr, dc = MOVES[ACTIONS[ENV.policy[s]]]
        r, c = divmod(s, n)
        assert dist[(r + dr) * n + c + dc] == dist[s] - 1, s


def test_context_hides_the_action():
    for s in ENV.states:
        assert not any(a in ENV.context(s) for a in ACTIONS)


def test_cartpole_controller_balances_and_its_contexts_hide_the_push(tmp_path):
    """Simulator truth: the PD controller keeps CartPole-v1 up for the full 500 steps; each decision
    context states the pole and cart (not the push); the decision is the controller's action."""
    env = gym.make("CartPole-v1")
    for episode in range(3):
        state, _ = env.reset(seed=episode)
        for _ in range(500):
            state, _, terminated, truncated, _ = env.step(controller(state))
            if terminated or truncated:
                break
        assert truncated and not terminated  # CartPole-v1 truncates at 500 steps
    pole = CartPole()
    assert len(pole.states) >= 20 and set(pole.policy.values()) == {0, 1}
    for s in pole.states:
        assert "push" not in pole.context(s) and "pole leans" in pole.context(s)
        assert pole.policy[s] == controller(pole.raw[s])
        assert len(context_tokens(pole, s)) == PROMPT
    # the grammar, the readers and the judges run on its two actions
    rng, task = np.random.default_rng(0), ExplainerTask(env="cartpole", actions=["left", "right"], replicas=1)
    s = pole.states[0]
    a = pole.actions[pole.policy[s]]
    words = sample_explanation(pole.facts(s), a, rng, 1.0, 3)
    assert all(w not in ("down", "up") for w in words)
    said = ["the", "agent", "moves", a, "."]
    assert accuracy(task.evaluator.probs(pole.facts(s), said), pole.policy[s]) == 1.0
    assert task.judge("noisy_rule", 0, cache_dir=tmp_path).probs([Query(s, tuple(said))]).shape == (1, 2)


def test_cartpole_task_trains_and_evaluates_the_tiny_explainer(tmp_path):
    m = run_launch([*SMALL_RL, "task=explainer_cartpole"], tmp_path)["metrics"]
    assert 0 <= m["explainer/heldout_flow_dense_mean"] <= 1 and m["explainer/replicas"] == 1


# ---- grammar and readers -------------------------------------------------------------------
def test_grammar_sentences_are_accurate_with_probability_one_or_zero():
    rng = np.random.default_rng(0)
    for s in ENV.states:
        a, facts = ACTIONS[ENV.policy[s]], ENV.facts(s)
        for p, expected in ((1.0, True), (0.0, False)):
            for sent in sentences(sample_explanation(facts, a, rng, p, 3)):
                claim = parse(sent)
                if claim is not None:
                    assert is_true(claim, facts, a) == expected


def test_explanation_without_sentences_is_an_error():
    with pytest.raises(ValueError, match="no sentences"):
        sentences([])
    with pytest.raises(ValueError, match="no sentences"):
        segment([EOS, PAD])


def test_skeptical_reader_ignores_false_facts_the_credulous_one_believes():
    s = 0  # top-left: left and up are walls
    facts = ENV.facts(s)
    lie = ["a", "hole", "is", "down", "."]  # false: down from (0, 0) is frozen
    assert CredulousReader().probs(facts, lie)[1] < CredulousReader().probs(facts, [])[1]
    assert SkepticalReader().probs(facts, lie) == pytest.approx(SkepticalReader().probs(facts, []))


def test_accuracy_splits_ties():
    assert accuracy(np.array([0.4, 0.4, 0.2, 0.0]), 0) == 0.5
    assert accuracy(np.array([0.1, 0.7, 0.2, 0.0]), 2) == 0.0


def test_text_renders_sentences():
    words = ("the", "agent", "moves", "down", ".", "a", "hole", "is", "left", ".")
    assert text(words) == "The agent moves down. A hole is left."


# ---- judges and cache -------------------------------------------------------------------------
def test_noisy_rule_judge_is_deterministic_per_draw():
    judge = NoisyRuleJudge(ENV, 0.2, seed=0)
    q = Query(0, ("the", "agent", "moves", "down", "."))
    again, other = judge.probs([q, q])
    assert again == pytest.approx(other)
    p0, p1 = judge.probs([q, Query(q.state, q.words, 1)])
    assert not np.allclose(p0, p1)
    assert judge.probs([q]).sum() == pytest.approx(1.0)


class Counting(Judge):
    key = "counting"

    def __init__(self):
        super().__init__(ENV)
        self.calls = 0

    def probs(self, queries):
        self.calls += len(queries)
        return np.full((len(queries), 4), 0.25)


def test_cache_survives_an_interrupted_run(tmp_path):
    """Judgments are committed as they are made: a new process (new connection) re-judges nothing."""
    queries = [Query(s, ()) for s in ENV.states]
    first = Counting()
    CachedJudge(first, JudgeCache(tmp_path / "j.sqlite")).probs(queries[:5])  # then the run dies
    second = Counting()
    out = CachedJudge(second, JudgeCache(tmp_path / "j.sqlite")).probs(queries)
    assert first.calls == 5 and second.calls == len(queries) - 5 and out.shape == (len(queries), 4)


def test_cache_keeps_environments_apart(tmp_path):
    """FrozenLake and CartPole share state indices (4, 13, 14); one cache must not mix their judgments."""
    cartpole = CartPole()
    shared = sorted(set(ENV.states) & set(cartpole.states))
    queries = [Query(s, ()) for s in shared]
    for env in (ENV, cartpole):
        cached = CachedJudge(NoisyRuleJudge(env, sigma_r=0.1, seed=0), JudgeCache(tmp_path / "j.sqlite"))
        assert shared and cached.probs(queries).shape == (len(shared), len(env.actions))


def test_llm_judges_need_a_language_model():
    with pytest.raises(ValueError, match="needs a language model"):
        ExplainerTask(replicas=1).judge("smollm2", 0, model=None)


# ---- bad inputs -----------------------------------------------------------------------------
def test_action_set_must_match_the_environment():
    with pytest.raises(ValueError, match=r"do not match the frozenlake environment's action set"):
        ExplainerTask(actions=["left", "right"])
    with pytest.raises(ValueError, match="do not match"):
        ExplainerTask(actions=["down", "left", "right", "up"])
    with pytest.raises(
        ValueError, match=r"do not match the cartpole environment's action set \['left', 'right'\]"
    ):
        ExplainerTask(env="cartpole", actions=["left", "down", "right", "up"])


@pytest.mark.parametrize(
    "override,message",
    [
        ("task.sigma_r=0", r"task\.sigma_r: Input should be greater than 0"),
        ("task.sigma_r=-0.1", r"task\.sigma_r: Input should be greater than 0"),
        ("algorithm.sigma_factors=[0.5,0,1]", r"algorithm\.sigma_factors\.1: Input should be greater than 0"),
    ],
)
def test_bad_sigma_fails_before_compute(override, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose_config(["experiment=explainer_denoise", override]))


def test_lora_explainer_needs_an_llm_and_llm_explanations_need_a_sentence():
    from modules.explainer.llm_policy import sentence_ends, words
    from modules.explainer.lora import LoRAExplainerPPO

    with pytest.raises(ValueError, match="needs an LLM"):
        LoRAExplainerPPO(ExplainerTask(replicas=1), model=None)
    with pytest.raises(ValueError, match="no sentences"):
        sentence_ends([], tokenizer=None)
    assert words("The agent moves Down! A hole is left?") == (
        *("the", "agent", "moves", "down", "."),
        *("a", "hole", "is", "left", "."),
    )


def test_sigma_sweep_must_contain_sigma_r():
    from modules.explainer.denoise import DenoisingFlow

    with pytest.raises(ValueError, match="must contain 1.0"):
        DenoisingFlow(ExplainerTask(replicas=1), sigma_factors=[0.5, 2.0, 4.0])


# ---- flow pieces ----------------------------------------------------------------------------
def test_cross_attention_gqa_equals_explicitly_repeated_kv_heads():
    """Closed form: GQA with 2 KV heads == full multi-head attention with each KV head copied."""
    g = torch.Generator().manual_seed(0)
    d, heads, kv, dh = 16, 4, 2, 4
    W_Q, W_K, W_V = (
        torch.randn(heads * dh, d, generator=g),
        torch.randn(kv * dh, d, generator=g),
        torch.randn(kv * dh, d, generator=g),
    )
    gqa = CrossAttentionVelocity(4, W_Q, W_K, W_V, heads, kv, flow_tokens=3, hidden=8)

    def rep(W):  # each KV head's rows copied to the query heads it serves
        return W.view(kv, dh, d).repeat_interleave(heads // kv, 0).reshape(heads * dh, d)

    full = CrossAttentionVelocity(4, W_Q, rep(W_K), rep(W_V), heads, heads, flow_tokens=3, hidden=8)
    full.load_state_dict({**gqa.state_dict(), "W_K": rep(W_K), "W_V": rep(W_V)})
    z, t = torch.randn(5, 4, generator=g), torch.rand(5, generator=g)
    H, mask = (
        torch.randn(5, 7, d, generator=g),
        torch.arange(7)[None] < torch.tensor([[7], [3], [5], [1], [7]]),
    )
    assert torch.allclose(gqa(z, t, (H, mask)), full(z, t, (H, mask)), atol=1e-5)
    assert {n for n, _ in gqa.named_buffers()} == {"W_Q", "W_K", "W_V"}  # frozen, not trained
    assert all(n.startswith(("emb.", "proj.")) for n, _ in gqa.named_parameters())  # only phi_Emb, phi_Proj


def test_flow_rewards_with_common_noise_see_only_the_condition():
    """Prefixes of one explanation share the source draws: equal conditions give equal p_hat (r_j = 0)."""
    from modules.explainer.flow import PooledVelocity, flow_probs

    v = PooledVelocity(4, 8, hidden=16)
    H = torch.randn(1, 5, 8, generator=torch.Generator().manual_seed(0)).repeat(4, 1, 1)  # 4 equal prefixes
    cond = (H, torch.ones(4, 5, dtype=torch.bool))
    shared = flow_probs(v, cond, 4, 4, 0.3, 8, 4, torch.Generator().manual_seed(1), np.array([0, 0, 1, 1]))
    assert torch.allclose(shared[0], shared[1]) and torch.allclose(shared[2], shared[3])
    assert not torch.allclose(shared[0], shared[2])  # another explanation, other draws
    own = flow_probs(v, cond, 4, 4, 0.3, 8, 4, torch.Generator().manual_seed(1))
    assert not torch.allclose(own[0], own[1])


def test_to_simplex():
    p = to_simplex(torch.tensor([[0.5, -0.1, 0.3, 0.2]]))
    assert p.sum() == pytest.approx(1.0) and (p > 0).all()


# ---- rewards and PPO --------------------------------------------------------------------------
def test_sentence_rewards_telescope():
    p = np.array([0.2, 0.5, 0.4, 0.9])
    assert sentence_rewards(p, "probability") == pytest.approx([0.3, -0.1, 0.5])
    logit = np.log(p / (1 - p))
    assert sentence_rewards(p, "logit").sum() == pytest.approx(logit[-1] - logit[0])


def test_segment_and_token_rewards():
    words = ["the", "agent", "moves", "down", ".", "a", "hole", "is"]
    words_out, ends = segment([INDEX[w] for w in words] + [EOS, PAD])
    assert words_out == words and ends == [4, 7]  # the unfinished tail is a sentence
    r = [np.array([0.3, -0.1])]
    dense, sparse = token_rewards(r, [ends], 10, True), token_rewards(r, [ends], 10, False)
    assert dense[0, 4] == pytest.approx(0.3) and dense[0, 7] == pytest.approx(-0.1)
    assert sparse[0, 7] == pytest.approx(0.2) and sparse.sum() == pytest.approx(dense.sum())


def test_gae_with_lambda_one_is_reward_to_go_minus_value():
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    mask = (torch.arange(6)[None] < torch.tensor([[6], [4], [1]])).float()
    adv, ret = gae(rewards, values, mask, 1.0, 1.0)
    togo = torch.flip(torch.cumsum(torch.flip(rewards * mask, [1]), 1), [1])
    assert adv == pytest.approx((togo - values) * mask, abs=1e-5)
    assert ret == pytest.approx(togo * mask, abs=1e-5)


# ---- end to end (small) -----------------------------------------------------------------------
def test_denoise_preset_runs_small(tmp_path):
    m = run_launch(
        [
            "experiment=explainer_denoise",
            "task.replicas=1",
            "algorithm.conditions=4",
            "algorithm.samples=40",
            "algorithm.train_steps=100",
            *QUIET,
        ],
        tmp_path,
    )["metrics"]
    assert m["explainer/replicas"] == 1 and 0 < m["explainer/proxy_w2"] < 1
    assert (tmp_path / "plots" / "denoise_w2_vs_sigma.png").exists()
    assert (tmp_path / "plots" / "denoise_simplex.png").exists()


SMALL_RL = [
    "experiment=explainer_rl",
    "task.replicas=1",
    "algorithm.sft_steps=3",
    "algorithm.ppo_steps=4",
    "algorithm.eval_every=2",
    "algorithm.batch_size=8",
    "algorithm.flow_every=2",
    "algorithm.flow_steps=3",
    "algorithm.flow_warmup=3",
    "algorithm.warmup_batches=1",
    "algorithm.eval_samples=1",
    "checkpoint_every_n_steps=2",
    *QUIET,
]


def test_ppo_learner_resumes_exactly_and_evaluates_after_two_steps(tmp_path):
    straight = run_launch(SMALL_RL, tmp_path / "straight")["metrics"]
    assert {
        "explainer/heldout_flow_dense_mean",
        "explainer/gap_widening",
        "explainer/dense_criterion",
    } <= set(straight)
    assert (tmp_path / "straight" / "plots" / "learning_curves.png").exists()
    with pytest.raises(RuntimeError, match="preempted"):
        run_launch(SMALL_RL, tmp_path / "resumed", callbacks=[Preempt(5)])  # inside PPO, after a refresh
    resumed = run_launch(SMALL_RL, tmp_path / "resumed")["metrics"]
    assert resumed == straight
    two = run_launch([*SMALL_RL, "trainer.max_steps=2"], tmp_path / "two")["metrics"]
    assert two["explainer/replicas"] == 1 and "explainer/heldout_flow_dense_mean" in two  # stopped in SFT


def test_flow_comparison_runs_small(tmp_path):
    m = run_launch(
        [
            "experiment=explainer_flow",
            "model=none",
            "task.replicas=1",
            "algorithm.conditionings=[attention,pooled]",
            "algorithm.sft_steps=5",
            "algorithm.explanations=20",
            "algorithm.draws=2",
            "algorithm.flow_steps=5",
            "algorithm.samples=4",
            *QUIET,
        ],
        tmp_path,
    )["metrics"]
    assert {"explainer/energy_ratio_attention_vs_pooled", "explainer/reward_spearman_mean"} <= set(m)


def test_minilm_conditioning_needs_a_language_model():
    from modules.explainer.flow_compare import FlowComparison

    with pytest.raises(ValueError, match="needs the MiniLM encoder"):
        FlowComparison(ExplainerTask(replicas=1), model=None)


def test_judge_check_rule_judge_and_evaluator_see_the_signal(tmp_path):
    m = run_launch(
        ["experiment=explainer_judges", "model=none", "algorithm.judges=[noisy_rule]", *QUIET], tmp_path
    )["metrics"]
    assert m["explainer/judge_heldout_acc_correct"] == 1.0
    assert m["explainer/judge_noisy_rule_signal"] > 0.3 and m["explainer/judge_heldout_signal"] > 0.3
