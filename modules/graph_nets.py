"""Message-passing graph networks in plain PyTorch (no torch-geometric).

``EdgeConditionedConv`` is the edge-conditioned convolution of Gilmer et al. 2017 / Simonovsky &
Komodakis 2017 (torch-geometric's ``NNConv``) with mean aggregation:

    x'_i = W_root x_i + b + mean_{j -> i} Theta(e_ji) x_j,     Theta(e) = MLP(e) reshaped [in, out].

Inputs are a batch of B node-feature sets on ONE graph -- x [B, n, F] with directed edges
``edge_index`` [2, E] (row 0 = source j, row 1 = target i) and edge features [E, F_e] -- so the
edge network runs once per edge, not once per edge and batch element (e.g. B states of one graph).
For a disjoint union of graphs that share edges, pass the distinct edge features once and
``edge_type`` [E] (which row of ``edge_attr`` each edge uses).
"""

import torch
from torch import nn

from modules.nets import MLP


class EdgeConditionedConv(nn.Module):
    def __init__(self, in_features: int, out_features: int, edge_features: int, hidden: int = 64):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.theta = MLP(edge_features, in_features * out_features, hidden=(hidden,))
        self.root = nn.Linear(in_features, out_features)

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        edge_type: torch.Tensor | None = None,
    ) -> torch.Tensor:
        src, dst = edge_index
        weight = self.theta(edge_attr).view(
            -1, self.in_features, self.out_features
        )  # [distinct edges, in, out]
        if edge_type is not None:
            weight = weight[edge_type]  # [E, in, out]
        message = torch.einsum("bei,eio->beo", x[:, src], weight)  # [B, E, out]
        total = x.new_zeros(x.shape[0], x.shape[1], self.out_features).index_add_(1, dst, message)
        degree = torch.bincount(dst, minlength=x.shape[1]).clamp(min=1).to(x.dtype)  # [n]
        return self.root(x) + total / degree[None, :, None]


class EdgeGNN(nn.Module):
    """``layers`` edge-conditioned convolutions with ReLU, then a linear read-out per node: [B, n, out]."""

    def __init__(
        self, in_features: int, edge_features: int, out_features: int = 1, hidden: int = 64, layers: int = 2
    ):
        super().__init__()
        sizes = [in_features] + [hidden] * layers
        self.convs = nn.ModuleList(
            EdgeConditionedConv(a, b, edge_features, hidden) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.head = nn.Linear(hidden, out_features)

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        edge_type: torch.Tensor | None = None,
    ) -> torch.Tensor:
        for conv in self.convs:
            x = torch.relu(conv(x, edge_index, edge_attr, edge_type))
        return self.head(x)
