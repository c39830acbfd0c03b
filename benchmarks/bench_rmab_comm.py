"""Speed of the batched per-arm learners (Bandit Whisperer, arXiv:2408.05686) against a per-arm loop.

One step = greedy Q-values of every arm, the budgeted joint action, one environment step and one
learner update per arm, on the synthetic RMAB with B = N / 2. ``batched``: all N arms as one array op
(:mod:`modules.rmab_comm.qlearners`); ``loop``: the same learners and environment, one arm at a time
(N single-arm learners and environments; the budgeted selection still sees all arms). Both run in
this process (one thread: ``OMP_NUM_THREADS=1``, as ``make bench`` sets); the table gives steps/s and the
ratio batched / loop. Learners update
once per 20-step epoch, so the rows time the forward passes plus one optimizer step per 20 steps.
Run: ``python benchmarks/bench_rmab_comm.py`` (``make bench``).
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.rmab_comm.task import SyntheticTask
from modules.rmab_comm.qlearners import C51Q, TabularQ
from modules.rmab_comm.selection import budgeted_greedy

COSTS = np.array([0, 1])


def learner(kind: str, K: int, task):
    """A learner of K arms and its optimizer (as the Lightning module configures them)."""
    if kind == "tabular":
        q = TabularQ(K, task.n_states, 2, 0.9)
        return q, torch.optim.SGD(q.parameters(), lr=0.1)
    q = C51Q(K, 2, 0.9, 10.0, torch.Generator().manual_seed(0), batch_size=32)
    return q, torch.optim.Adam(q.parameters(), lr=5e-4)


def setup(N: int, kind: str, per_arm: bool):
    task = SyntheticTask(replicas=1, n_arms=N, budget=N // 2, n_noisy=N // 2)
    if not per_arm:
        return task, [task.make_env([0], np.random.default_rng(0))], [learner(kind, N, task)]
    envs, qs = [], []
    for n in range(N):  # arm n alone, same parameters
        env = task.make_env([0], np.random.default_rng(n))
        env.theta, env.noisy, env.n_arms = env.theta[:, n : n + 1], env.noisy[:, n : n + 1], 1
        env.error.eps, env.budget, env.state = env.error.eps[:, n : n + 1], 1, env.state[:, n : n + 1]
        envs.append(env)
        qs.append(learner(kind, 1, task))
    return task, envs, qs


def steps_per_second(N: int, kind: str, per_arm: bool, seconds: float = 1.0) -> float:
    task, envs, qs = setup(N, kind, per_arm)
    own = np.zeros((1, 1 if per_arm else N), dtype=int) + (0 if per_arm else np.arange(N))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        q = np.concatenate(
            [qn.values(env, env.state, own) for (qn, _), env in zip(qs, envs)], axis=1
        )  # [1, N, 2]
        actions = budgeted_greedy(q, COSTS, task.budget)
        for n, ((qn, _), env) in enumerate(zip(qs, envs)):
            a = actions[:, n : n + 1] if per_arm else actions
            state = env.state
            nxt, _, _, _, info = env.step(a)
            qn.learn(env, own, state, a, info["observed"], nxt)
        steps += 1
        if steps % 20 == 0:  # the end of an epoch: one optimizer step per learner
            for qn, optimizer in qs:
                optimizer.zero_grad()
                qn.loss().backward()
                optimizer.step()
                qn.after_update(steps // 20)
    return steps / (time.perf_counter() - start)


def main() -> None:
    rows = [
        "| learner | N | batched steps/s | per-arm loop steps/s | batched / loop |",
        "|---|---|---|---|---|",
    ]
    for kind in ("tabular", "c51"):
        for N in (12, 100, 1000):
            fast = steps_per_second(N, kind, per_arm=False)
            slow = steps_per_second(N, kind, per_arm=True)
            rows.append(f"| {kind} | {N} | {fast:.1f} | {slow:.2f} | {fast / slow:.1f}x |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
