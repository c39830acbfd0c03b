"""The adaptive-frontier-exploration task: families of graphs with covariate MRFs over node labels.

Choo et al. (arXiv:2505.21671), experiments 1-3. A task is a list of ``blocks``; each block is a
family of ``count`` instances (graph source, label set, reward, discounts, MRF scale), and the
instances of all blocks are concatenated. Instance i is built from ``self.rng(i, "graph")`` (graph,
covariates, theta) and ``self.rng(i, "realisations")`` (its Monte-Carlo realisations), so it is identical on
every rank and device count and every policy sees the same realisations.

Bad input fails here, before any compute: a beta outside (0, 1), a label prior or reward of the
wrong length or a prior not summing to 1 (pydantic, at config validation), and, when the task is
built, an edge list that does not parse, a self-loop, roots that are not one per component.
"""

from typing import Annotated, ClassVar, Literal

import networkx as nx
import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    NonNegativeInt,
    PositiveInt,
    model_validator,
    validate_call,
)

from experiments.base import InstanceDataset, Task
from experiments.gittins.exact import MAX_EXACT_NODES, MAX_JOINT_ENTRIES
from experiments.gittins.frontier import Frontier
from experiments.gittins.graphs import (
    bundled_graph,
    random_forest,
    random_recursive_tree,
    read_edge_list,
    tree_plus_edges,
)
from experiments.gittins.hivlike import planted_theta, sexual_contact_network
from experiments.gittins.instance import Instance, build_instance
from experiments.gittins.mrf import covariate_mrf, n_theta

Beta = Annotated[float, Field(gt=0, lt=1)]
FIXED = ("networkx", "edge_list")  # graph sources that do not change from instance to instance


class Block(BaseModel):
    """One family of instances."""

    model_config = ConfigDict(extra="forbid")

    graph: Literal["random_tree", "forest", "tree_plus_edges", "networkx", "edge_list", "sexual_network"]
    count: PositiveInt = 1  # instances in the family
    nodes: tuple[PositiveInt, PositiveInt] = (10, 10)  # n drawn uniformly in [lo, hi] (generated graphs)
    labels: Annotated[int, Field(ge=2)] = 2  # K = |Sigma|
    reward: list[float] | None = None  # r(a) for a = 0..K-1; default a / (K - 1)
    betas: list[Beta] = Field(default=[0.9], min_length=1)  # discount of instance j: betas[j % len]
    covariates: NonNegativeInt = 5  # d binary covariates per node
    theta_scale: Annotated[float, Field(gt=0)] = 1.0  # theta ~ N(0, theta_scale^2)
    removed_edges: tuple[NonNegativeInt, NonNegativeInt] = (1, 2)  # forest: tree edges deleted, range
    extra_edges: NonNegativeInt = 0  # tree_plus_edges: random extra edges
    name: Literal["karate_club", "florentine_families", "davis_southern_women", "les_miserables"] | None = (
        None
    )
    path: FilePath | None = None  # edge_list: the file
    roots: list[NonNegativeInt] | None = None  # fixed graphs: one designated root per component
    label_prior: list[float] | None = None  # match the mean node marginal to this distribution
    clustering: float = 2.0  # sexual_network: extra weight on the 'both positive' pairwise feature

    @model_validator(mode="after")
    def _consistent(self) -> "Block":
        K = self.labels
        if self.nodes[0] > self.nodes[1]:
            raise ValueError(f"nodes range {list(self.nodes)} is empty")
        if self.reward is not None and len(self.reward) != K:
            raise ValueError(f"reward has {len(self.reward)} entries for {K} labels")
        if self.label_prior is not None:
            p = np.asarray(self.label_prior)
            if len(p) != K or np.any(p <= 0):
                raise ValueError(f"label_prior must have {K} positive entries, got {self.label_prior}")
            if abs(p.sum() - 1.0) > 1e-9:
                raise ValueError(f"label_prior must sum to 1, got {self.label_prior} (sum {p.sum():.6g})")
        if (self.graph == "networkx") != (self.name is not None):
            raise ValueError("`name` (a bundled networkx graph) goes with graph=networkx and only with it")
        if (self.graph == "edge_list") != (self.path is not None):
            raise ValueError("`path` (an edge-list file) goes with graph=edge_list and only with it")
        if self.roots is not None and self.graph not in FIXED:
            raise ValueError(
                f"explicit roots need a fixed graph ({', '.join(FIXED)}), not graph={self.graph}"
            )
        return self

    def fixed_graph(self) -> nx.Graph:
        return bundled_graph(self.name) if self.graph == "networkx" else read_edge_list(self.path)


class GittinsTask(Task):
    offers: ClassVar[tuple[str, ...]] = ("frontier_exploration",)
    exact_only: ClassVar[bool] = False  # refuse blocks too big to enumerate

    @validate_call
    def __init__(
        self,
        blocks: Annotated[list[Block], Field(min_length=1)],
        samples: PositiveInt = 200,
        exact_up_to: Annotated[int, Field(ge=0, le=MAX_EXACT_NODES)] = MAX_EXACT_NODES,
        seed: int = 0,
    ):
        super().__init__(seed)
        self.blocks, self.samples, self.exact_up_to = blocks, samples, exact_up_to
        self.fixed = {}  # block index -> parsed graph, checked now (before any compute)
        for b, block in enumerate(blocks):
            if block.graph in FIXED:
                graph = block.fixed_graph()
                if block.roots is not None:
                    Frontier.given(graph, block.roots)
                self.fixed[b] = graph
        self.starts = np.cumsum([0] + [block.count for block in blocks])
        sizes = [
            self.fixed[b].number_of_nodes() if b in self.fixed else block.nodes[1]
            for b, block in enumerate(blocks)
        ]
        self.max_nodes = max(sizes)
        for b, (block, n) in enumerate(zip(blocks, sizes)):
            if self.exact_only and (n > exact_up_to or block.labels**n > MAX_JOINT_ENTRIES):
                raise ValueError(
                    f"blocks.{b} ({block.graph}) has up to {n} nodes and {block.labels} labels: this task "
                    f"enumerates every instance (n <= exact_up_to = {exact_up_to}, "
                    f"K^n <= {MAX_JOINT_ENTRIES})"
                )

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _graph(self, b: int, block: Block, rng: np.random.Generator) -> tuple[nx.Graph, np.ndarray, tuple]:
        """Graph, covariates [n, d] and (theta_u, theta_p) of one instance of ``block``."""
        d, K = block.covariates, block.labels
        n = int(rng.integers(block.nodes[0], block.nodes[1] + 1))
        if block.graph == "sexual_network":
            graph, c = sexual_contact_network(n, d, rng)
            return graph, c, planted_theta(d, K, rng, block.theta_scale, block.clustering)
        if block.graph in FIXED:
            graph = self.fixed[b]
        elif block.graph == "random_tree":
            graph = random_recursive_tree(n, rng)
        elif block.graph == "forest":
            graph = random_forest(
                n, int(rng.integers(block.removed_edges[0], block.removed_edges[1] + 1)), rng
            )
        else:
            graph = tree_plus_edges(n, block.extra_edges, rng)
        c = rng.integers(0, 2, size=(graph.number_of_nodes(), d))
        nu, npair = n_theta(K, d)
        return graph, c, (rng.normal(0, block.theta_scale, nu), rng.normal(0, block.theta_scale, npair))

    def make(self, index: int) -> Instance:
        b = int(np.searchsorted(self.starts, index, side="right") - 1)
        block, j = self.blocks[b], index - int(self.starts[b])
        rng = self.rng(index, "graph")
        graph, c, (theta_u, theta_p) = self._graph(b, block, rng)
        K, n = block.labels, graph.number_of_nodes()
        reward = np.asarray(
            block.reward if block.reward is not None else np.arange(K) / (K - 1), dtype=np.float64
        )
        exact = n <= self.exact_up_to and K**n <= MAX_JOINT_ENTRIES
        return build_instance(
            name=f"{block.graph}[{j}]",
            graph=graph,
            mrf=covariate_mrf(graph, c, theta_u, theta_p, K),
            reward=reward,
            beta=block.betas[j % len(block.betas)],
            rng=self.rng(index, "realisations"),
            samples=self.samples,
            exact=exact,
            roots=block.roots,
            label_prior=block.label_prior,
        )

    def instances(self) -> InstanceDataset:
        return InstanceDataset(len(self), self.make)


class ExactGittinsTask(GittinsTask):
    """Instances small enough to enumerate, so methods that need the exact optimum (DP) can run on it."""

    offers = ("frontier_exploration", "frontier_exploration_exact")
    exact_only = True
