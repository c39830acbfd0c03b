"""Who receives a message from whom: the communication strategies (Bandit Whisperer, Sec. 4).

A strategy maps the current epoch to ``receive`` [R, N] (bool) and ``sender`` [R, N] (the local index
of each receiver's sender, -1 for non-receivers). Fixed patterns are baselines that use ground
truth (which arms are noisy); the learned strategy only sees its own influence measurements.

* ``none``: nobody receives (no comm, topline).
* ``oracle``: the noisy arms receive from their nearest clean arm (feature space).
* ``worst``: the clean arms receive from their nearest noisy arm.
* ``random_comm``: the clean arms receive from one fixed random other arm.
* learned (:class:`VDN` + :func:`senders_of`, driven by ``RMABComm.comm_round``): binary receive actions c_i
  from a value-decomposition network,
  Q_comm(c) = sum_i q_i(c_i) (each q_i a 1 -> 1 -> 1 tanh MLP on c_i), regressed on measured
  influence; the sender of a receiver is its nearest NON-receiver (the released code's
  ``num_neighbors = 1`` case). Reconstruction, pluggable: the paper's general pairwise (i <- j)
  action space is replaced by this per-arm binary action with a fixed sender rule.
"""

import numpy as np
import torch
from torch import nn

from experiments.rmab_comm.features import nearest


def fixed_pattern(pattern: str, z: np.ndarray, noisy: np.ndarray, rng: np.random.Generator):
    """z [R, N, d] features, noisy [N] -> (receive [R, N], sender [R, N]) of a fixed pattern."""
    R, N = z.shape[:2]
    noisy = np.broadcast_to(noisy, (R, N))
    if pattern == "none":
        return np.zeros((R, N), dtype=bool), np.full((R, N), -1)
    if pattern == "oracle":
        receive, sender = noisy, nearest(z, ~noisy)
    elif pattern == "worst":
        receive, sender = ~noisy, nearest(z, noisy)
    elif pattern == "random_comm":
        offset = rng.integers(1, N, (R, N))  # any arm but itself
        receive, sender = ~noisy, (np.arange(N) + offset) % N
    else:
        raise ValueError(f"unknown communication pattern {pattern!r}")
    receive = receive & (sender >= 0)
    return receive, np.where(receive, sender, -1)


def senders_of(receive: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The learned strategy's sender rule: the nearest non-receiver, -1 for non-receivers."""
    sender = nearest(z, ~receive)
    return np.where(receive & (sender >= 0), sender, -1)


class VDN(nn.Module):
    """Q_comm(c) = sum_i q_i(c_i), q_i(c) = w2 tanh(w1 c + b1) + b2, one q_i per (replica, arm)."""

    def __init__(self, R: int, N: int, generator: torch.Generator):
        super().__init__()
        self.w = nn.Parameter(torch.rand(4, R, N, generator=generator) * 2 - 1)  # w1, b1, w2, b2

    def per_arm(self, c: torch.Tensor) -> torch.Tensor:
        """c [..., R, N] in {0, 1} -> q_i(c_i) [..., R, N]."""
        w1, b1, w2, b2 = self.w
        return w2 * torch.tanh(w1 * c + b1) + b2

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.per_arm(c).sum(-1)  # [..., R]

    @torch.no_grad()
    def greedy(self) -> np.ndarray:
        """The decentralised argmax c_i = 1[q_i(1) > q_i(0)]: [R, N] bool."""
        ones = torch.ones(self.w.shape[1:])
        return (self.per_arm(ones) > self.per_arm(torch.zeros_like(ones))).numpy()
