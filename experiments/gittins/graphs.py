"""Graph sources for adaptive frontier exploration (Choo et al., arXiv:2505.21671, experiments 1-3).

Every source returns an undirected ``nx.Graph`` on nodes 0..n-1 with no self-loops:

* ``random_recursive_tree``: node i of a random permutation attaches to a uniform earlier node
  (the paper's synthetic trees, experiment 1);
* ``random_forest``: such a tree with a few edges deleted;
* ``tree_plus_edges``: such a tree plus uniformly random extra edges (experiment 2);
* ``path``: the path 0 - 1 - ... - n-1 (long chains, for the cost of the index recursion);
* ``bundled_graph``: networkx's bundled real graphs (non-tree, small treewidth);
* ``read_edge_list``: a whitespace-separated edge-list file (``u v`` per line, ``#`` comments).
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np

BUNDLED = {
    "karate_club": nx.karate_club_graph,  # 34 nodes, 78 edges
    "florentine_families": nx.florentine_families_graph,  # 15 nodes, 20 edges
    "davis_southern_women": nx.davis_southern_women_graph,  # 32 nodes, 89 edges, bipartite
    "les_miserables": nx.les_miserables_graph,  # 77 nodes, 254 edges
}


def check_simple(graph: nx.Graph, source: str) -> nx.Graph:
    """Refuse self-loops; return the graph relabelled to 0..n-1 (in its node order), attributes dropped."""
    loops = list(nx.selfloop_edges(graph))
    if loops:
        raise ValueError(
            f"{source}: self-loop on node {loops[0][0]!r}; frontier exploration needs a simple graph"
        )
    if graph.number_of_nodes() == 0:
        raise ValueError(f"{source}: the graph has no nodes")
    index = {v: i for i, v in enumerate(graph.nodes)}
    out = nx.Graph()
    out.add_nodes_from(range(len(index)))
    out.add_edges_from((index[u], index[v]) for u, v in graph.edges)
    return out


def random_recursive_tree(n: int, rng: np.random.Generator) -> nx.Graph:
    perm = rng.permutation(n)
    tree = nx.empty_graph(n)
    tree.add_edges_from((int(perm[i]), int(perm[rng.integers(i)])) for i in range(1, n))
    return tree


def random_forest(n: int, removed: int, rng: np.random.Generator) -> nx.Graph:
    forest = random_recursive_tree(n, rng)
    edges = list(forest.edges)
    forest.remove_edges_from(
        edges[i] for i in rng.choice(len(edges), size=min(removed, len(edges)), replace=False)
    )
    return forest


def tree_plus_edges(n: int, extra: int, rng: np.random.Generator) -> nx.Graph:
    graph = random_recursive_tree(n, rng)
    missing = [e for e in nx.non_edges(graph)]
    if extra > len(missing):
        raise ValueError(f"cannot add {extra} extra edges to a {n}-node tree ({len(missing)} non-edges)")
    graph.add_edges_from(missing[i] for i in rng.choice(len(missing), size=extra, replace=False))
    return graph


def bundled_graph(name: str) -> nx.Graph:
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled graph {name!r}; choose one of {sorted(BUNDLED)}")
    return check_simple(BUNDLED[name](), f"networkx graph {name}")


def read_edge_list(path: str | Path) -> nx.Graph:
    """Parse ``u v`` lines (integer or string node names; blank lines and ``#`` comments skipped)."""
    graph = nx.Graph()
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(
                f"edge list {path}, line {number}: expected two node names 'u v', got {line.strip()!r}"
            )
        u, v = (int(f) if f.lstrip("-").isdigit() else f for f in fields)
        if u == v:
            raise ValueError(f"edge list {path}, line {number}: self-loop on node {u!r}")
        graph.add_edge(u, v)
    return check_simple(graph, f"edge list {path}")
