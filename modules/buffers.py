"""A uniform experience-replay buffer (numpy ring buffer) shared by the RL learners."""

import numpy as np
import torch


class ReplayBuffer:
    """Stores transitions as named arrays (first axis = transition) and samples them uniformly.

    ``add(**arrays)`` takes a batch of transitions (all arrays share their first dimension);
    ``sample(n, rng)`` returns a dict of ``n`` uniformly drawn transitions. ``state_dict`` /
    ``load_state_dict`` let a learner carry the buffer in its checkpoint (as tensors: checkpoints
    load with ``weights_only=True``, which refuses numpy arrays).
    """

    def __init__(self, capacity: int):
        self.capacity, self.size, self.cursor = capacity, 0, 0
        self.data: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self.size

    def add(self, **arrays: np.ndarray) -> None:
        n = len(next(iter(arrays.values())))
        if not self.data:
            self.data = {
                k: np.zeros((self.capacity, *np.shape(v)[1:]), dtype=np.asarray(v).dtype)
                for k, v in arrays.items()
            }
        slots = (self.cursor + np.arange(n)) % self.capacity
        for k, v in arrays.items():
            self.data[k][slots] = v
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        index = rng.integers(0, self.size, n)
        return {k: v[index] for k, v in self.data.items()}

    def state_dict(self) -> dict:
        return {
            "capacity": self.capacity,
            "size": self.size,
            "cursor": self.cursor,
            "data": {k: torch.from_numpy(v[: self.size].copy()) for k, v in self.data.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.capacity, self.size, self.cursor = state["capacity"], state["size"], state["cursor"]
        self.data = {}
        saved = {k: np.asarray(v) for k, v in state["data"].items()}
        if saved:
            self.data = {k: np.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype) for k, v in saved.items()}
            for k, v in saved.items():
                self.data[k][: self.size] = v
