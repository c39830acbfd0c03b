"""One adaptive-frontier-exploration instance: graph, label MRF, reward, discount, roots, realisations.

Choo et al. (arXiv:2505.21671). An instance is evaluated exactly (enumeration, ``exact``) when it is
small enough, otherwise on ``realisations`` sampled from the MRF by the chain rule and shared by
every policy (paired comparison).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx
import numpy as np

from experiments.gittins.exact import JointTable
from experiments.gittins.frontier import Frontier
from experiments.gittins.inference import GraphInference
from experiments.gittins.mrf import PairwiseMRF


@dataclass
class Instance:
    name: str  # family and index, for logs
    graph: nx.Graph  # nodes 0..n-1
    mrf: PairwiseMRF
    reward: np.ndarray  # [K] r(a)
    beta: float
    frontier: Frontier
    inference: GraphInference = field(repr=False)
    realisations: np.ndarray | None = field(default=None, repr=False)  # [R, n] labels; None: exact

    @property
    def n(self) -> int:
        return self.mrf.n

    @property
    def K(self) -> int:
        return self.mrf.K

    @property
    def exact(self) -> bool:
        return self.realisations is None

    @property
    def is_forest(self) -> bool:
        return nx.is_forest(self.graph)

    @cached_property
    def joint(self) -> JointTable:
        return JointTable(self.mrf)


def match_label_prior(
    mrf: PairwiseMRF, inference: GraphInference, prior: np.ndarray, tol: float = 1e-6, max_iter: int = 500
) -> tuple[PairwiseMRF, GraphInference]:
    """Shift every node's unary log-potential by b_a so the mean marginal over nodes equals ``prior``.

    Damped iterative scaling: b_a += eta (log prior_a - log mean_v P(X_v = a)), halving eta whenever
    the error grows (strong couplings make the mean marginal steep in b).
    """

    def error(inf: GraphInference) -> float:
        return float(np.max(np.abs(np.log(inf.marginals().mean(0) / prior))))

    eta, best = 1.0, error(inference)
    for _ in range(max_iter):
        mean = inference.marginals().mean(0)
        if np.max(np.abs(mean - prior)) < tol:
            return mrf, inference
        trial = PairwiseMRF(
            unary=mrf.unary + eta * np.log(prior / mean), edges=mrf.edges, pairwise=mrf.pairwise
        )
        trial_inference = inference.reweighted(trial)
        trial_error = error(trial_inference)
        if trial_error < best:
            mrf, inference, best, eta = trial, trial_inference, trial_error, min(1.0, 2 * eta)
        else:
            eta /= 2
    mean = inference.marginals().mean(0)
    raise ValueError(
        f"could not match the label prior {prior.tolist()} (mean marginals {mean.round(4).tolist()})"
    )


def build_instance(
    name: str,
    graph: nx.Graph,
    mrf: PairwiseMRF,
    reward: np.ndarray,
    beta: float,
    rng: np.random.Generator,
    samples: int,
    exact: bool,
    roots: list[int] | None = None,
    label_prior: np.ndarray | None = None,
    root_ties: str = "smallest",
) -> Instance:
    inference = GraphInference(mrf, graph)
    if label_prior is not None:
        mrf, inference = match_label_prior(mrf, inference, np.asarray(label_prior, dtype=np.float64))
    frontier = (
        Frontier.given(graph, roots)
        if roots is not None
        else Frontier.designate(graph, inference.marginals() @ reward, root_ties)
    )
    realisations = None if exact else inference.sample(samples, rng)
    return Instance(
        name=name,
        graph=graph,
        mrf=mrf,
        reward=np.asarray(reward, dtype=np.float64),
        beta=beta,
        frontier=frontier,
        inference=inference,
        realisations=realisations,
    )
