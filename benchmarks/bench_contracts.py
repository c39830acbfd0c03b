"""Speed of the contracts method (Ivanov et al., arXiv 2407.18074) on one core.

* ``SPE``: backward induction with the two-action closed form on the paper's binary effort trees;
* ``meta``: the meta-algorithm (alternating exact best responses) on the same trees;
* ``coin DP``: the 3x3 Coin Game's exact model, cooperative optimum and selfish equilibrium;
* ``Alg. 2 update``: one training step of the tree learner (8 environment steps + one gradient step
  for every replica), with one Q̄ head (the paper) and with 5 pessimistic heads.

Run: ``python benchmarks/bench_contracts.py`` (``make bench``).
"""

import functools
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.contracts.coin_game import CoinGameSpec
from experiments.contracts.coin_game_dp import (
    build_model,
    cooperative,
    iterated_best_responses,
)
from experiments.contracts.spe import backward_induction
from experiments.contracts.task import BinaryContractTrees
from experiments.contracts.trees import paper_tree
from modules.contracts.meta import meta_algorithm
from modules.contracts.tree_dqn import TreeContractDQN
from modules.nets import MLP


def timed(fn, *args, repeats: int = 1):
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn(*args)
    return out, (time.perf_counter() - start) / repeats


def update_seconds(heads: int, updates: int = 30) -> float:
    """Seconds per training step of the tree learner: 3 trees x 3 seeds x (xi, xi = 0) replicas."""
    task = BinaryContractTrees(
        n_instances=3, generator="paper", depth=(7, 7), actions=(2, 2), outcomes=(2, 2), gammas=(1.0,)
    )
    learner = TreeContractDQN(task, functools.partial(MLP, hidden=[128, 128]), agent_heads=heads)
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    for _ in range(32):  # fill the buffer past one batch
        learner.act(1.0)
    start = time.perf_counter()
    for step in range(updates):
        learner.act(learner.epsilon(step))
        loss = learner.loss(learner.buffer.sample(128, learner.rng("replay")))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / updates


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print("Contracts method, one core")
    print(f"{'depth':>6} {'states':>7} {'SPE s':>8} {'meta s':>8}")
    for depth in (6, 8, 10):
        mdp = paper_tree(rng, depth)
        _, t_spe = timed(backward_induction, mdp)
        _, t_meta = timed(meta_algorithm, mdp)
        print(f"{depth:>6} {mdp.n_states:>7} {t_spe:>8.3f} {t_meta:>8.3f}")
    spec = CoinGameSpec(size=3, respawn="anywhere")
    model, t_model = timed(build_model, spec)
    coop, t_coop = timed(cooperative, model)
    _, t_br = timed(iterated_best_responses, model, coop.policy)
    print(f"coin DP 3x3: model {t_model:.2f} s, cooperative optimum {t_coop:.2f} s, selfish MPE {t_br:.2f} s")
    for heads in (1, 5):
        print(f"Alg. 2 update, 18 replicas, {heads} Q-bar head(s): {update_seconds(heads) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
