"""A synthetic sexual-contact network standing in for the paper's HIV data. [R]

Choo et al. (arXiv:2505.21671), experiment 3, use ICPSR 22140 (sexual ties of eight network
studies; ~640 nodes and ~75 HIV positives in the full HIV graph), which needs a licence. Sexual
networks sampled by contact tracing are sparse, tree-like and heavy-tailed (Liljeros et al. 2001),
so this generator draws:

* component sizes from a discrete power law P(s) ~ s^-exponent on 2..max_component (many dyads
  and triads, a few components of 50-150 nodes), until the total reaches ``n_nodes``;
* each component as a preferential-attachment tree (networkx's Barabasi-Albert with m = 1), plus
  Poisson(chord_rate * size) random chords (few cycles, small treewidth);
* d binary covariates with homophily: along a BFS of each component a node copies each of its
  parent's covariates with probability ``homophily`` and redraws it otherwise;
* MRF parameters planted around the paper's parameterisation: theta ~ N(0, theta_scale^2) plus a
  ``clustering`` bonus on the "both positive" pairwise feature (infections cluster on ties). The
  prevalence (~12%, the paper's 75/640) is matched afterwards by the task's label prior.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from experiments.gittins.mrf import n_theta


def component_sizes(n_nodes: int, exponent: float, max_component: int, rng: np.random.Generator) -> list[int]:
    support = np.arange(2, max_component + 1)
    p = support ** -float(exponent)
    sizes: list[int] = []
    while sum(sizes) < n_nodes:
        sizes.append(min(int(rng.choice(support, p=p / p.sum())), n_nodes - sum(sizes)))
    return sizes


def sexual_contact_network(
    n_nodes: int,
    d: int,
    rng: np.random.Generator,
    exponent: float = 2.0,
    max_component: int = 150,
    chord_rate: float = 0.02,
    homophily: float = 0.8,
) -> tuple[nx.Graph, np.ndarray]:
    """A forest-like contact graph on nodes 0..n_nodes-1 and its binary covariates [n, d]."""
    graph = nx.Graph()
    for size in component_sizes(n_nodes, exponent, max_component, rng):
        part = (
            nx.barabasi_albert_graph(size, 1, seed=int(rng.integers(2**31)))
            if size > 1
            else nx.empty_graph(1)
        )
        chords = [e for e in nx.non_edges(part)] if size > 3 else []
        k = min(rng.poisson(chord_rate * size), len(chords))
        part.add_edges_from(chords[i] for i in rng.choice(len(chords), size=k, replace=False))
        graph = nx.disjoint_union(graph, part)
    prevalence = rng.uniform(0.2, 0.5, size=d)  # covariate frequencies
    c = np.zeros((n_nodes, d), dtype=np.int64)
    for comp in nx.connected_components(graph):
        start = int(rng.choice(sorted(comp)))
        c[start] = rng.random(d) < prevalence
        for p, v in nx.bfs_edges(graph, start):
            copy = rng.random(d) < homophily
            c[v] = np.where(copy, c[p], rng.random(d) < prevalence)
    return graph, c


def planted_theta(
    d: int, K: int, rng: np.random.Generator, theta_scale: float = 0.5, clustering: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """theta_u, theta_p ~ N(0, theta_scale^2), with ``clustering`` added to the 'both positive' weight."""
    nu, npair = n_theta(K, d)
    theta_u = rng.normal(0.0, theta_scale, size=nu)
    theta_p = rng.normal(0.0, theta_scale, size=npair)
    theta_p[1] += clustering  # f_p[1] = [x_u = x_v != 0]
    return theta_u, theta_p
