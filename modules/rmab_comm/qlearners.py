"""Per-arm Q-learners batched over arms: K = (replicas x arms) independent learners, one array op.

Both learners answer ``values(env, state, owner)`` -> Q [B, N, A] where ``owner[b, n]`` names the
learner whose Q-function is used for arm n of row b: the arm's own learner, or -- for a receiver --
the sender's (a message is a Q-function used as the behaviour policy). ``learn`` stores each arm's
OWN transitions; once per epoch (the released code's schedule: 20 environment steps, then one
gradient step) ``loss`` is minimised by one optimizer step owned by the Lightning module, and
``after_update`` syncs targets. ``copy`` overwrites learners (the code's fixed-pattern baselines).

* :class:`TabularQ`: Q-learning on the environment's discrete states. The loss
  0.5 sum (Q(s, a) - y)^2 / n(s, a) over the epoch's transitions (y = r + gamma max Q'(s', .) with the
  epoch-start table, n(s, a) the visits in the epoch), minimised by one SGD step of size ``lr``, is the
  update Q(s, a) <- Q(s, a) + lr (mean y - Q(s, a)).
* :class:`C51Q`: the paper's categorical distributional critic (51 atoms on [0, R_max / (1 - gamma)],
  2 x 16 tanh), one network per arm, trained on each arm's last ``buffer_size`` transitions with the
  projected target r + gamma Z'(s', a*) of a target network (a* greedy in the target's mean).
"""

import itertools
import math

import numpy as np
import torch
from torch import nn

from modules.rl import hard_update, td_target


class TabularQ(nn.Module):
    def __init__(self, K: int, n_states: int, n_actions: int, gamma: float):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(K, n_states, n_actions, dtype=torch.float64))
        self.gamma = gamma
        self.epoch: list[tuple[np.ndarray, ...]] = []  # this epoch's (k, s, a, r, s')

    @torch.no_grad()
    def values(self, env, state: np.ndarray, owner: np.ndarray) -> np.ndarray:
        return self.table[torch.as_tensor(owner), torch.as_tensor(env.state_index(state))].numpy()

    def learn(self, env, own, state, action, reward, nxt) -> None:
        self.epoch.append((own, env.state_index(state), action, reward, env.state_index(nxt)))

    def loss(self) -> torch.Tensor:
        k, s, a, r, s2 = (torch.as_tensor(np.stack(x)).reshape(-1) for x in zip(*self.epoch))  # [T * R * N]
        with torch.no_grad():
            y = td_target(r, torch.zeros_like(r), self.table[k, s2].max(-1).values, self.gamma)  # continuing
            visits = torch.zeros_like(self.table).index_put_((k, s, a), torch.ones_like(r), accumulate=True)
        q = self.table[k, s, a]
        return 0.5 * ((q - y) ** 2 / visits[k, s, a]).sum()

    def after_update(self, epoch: int) -> None:
        self.epoch = []

    @torch.no_grad()
    def copy(self, dst: np.ndarray, src: np.ndarray) -> None:
        self.table[torch.as_tensor(dst)] = self.table[torch.as_tensor(src)].clone()

    def state(self) -> dict:
        return {}

    def load(self, state: dict) -> None:
        """The table is a parameter: it travels in the state dict."""


class ArmMLP(nn.Module):
    """K independent MLPs (tanh hidden layers) as stacked weights; row k is arm k's network."""

    def __init__(self, K: int, sizes: list[int], generator: torch.Generator):
        super().__init__()
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default init
            self.weights.append(
                nn.Parameter((torch.rand(K, fan_in, fan_out, generator=generator) * 2 - 1) * bound)
            )
            self.biases.append(nn.Parameter((torch.rand(K, fan_out, generator=generator) * 2 - 1) * bound))

    def forward(self, x: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, K', d_in]; owner [B, K'] picks each entry's network (default: entry k -> network k)."""
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            if owner is None:
                x = torch.einsum("bki,kio->bko", x, w) + b  # [B, K, d_out]
            else:
                x = torch.einsum("bki,bkio->bko", x, w[owner]) + b[owner]
            if layer < len(self.weights) - 1:
                x = torch.tanh(x)
        return x


class C51Q(nn.Module):
    def __init__(
        self,
        K: int,
        n_actions: int,
        gamma: float,
        v_max: float,
        generator: torch.Generator,
        hidden: int = 16,
        atoms: int = 51,
        batch_size: int = 64,
        buffer_size: int = 600,
        target_every: int = 10,
    ):
        super().__init__()
        self.K, self.A, self.atoms, self.gamma = K, n_actions, atoms, gamma
        self.net = ArmMLP(K, [1, hidden, hidden, n_actions * atoms], generator)
        self.target = ArmMLP(K, [1, hidden, hidden, n_actions * atoms], generator).requires_grad_(False)
        hard_update(self.target, self.net)
        self.register_buffer("support", torch.linspace(0.0, v_max, atoms))
        self.batch_size, self.buffer_size, self.target_every = batch_size, buffer_size, target_every
        self.buffer: dict[str, list[np.ndarray]] = {k: [] for k in ("s", "a", "r", "s2")}  # [R * N] per step
        self.sample_rng = np.random.default_rng(0)  # replaced by the module's stream

    def logits(self, net: ArmMLP, x: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        out = net(x.unsqueeze(-1), owner)  # [B, K', A * atoms]
        return out.view(*out.shape[:2], self.A, self.atoms)

    @torch.no_grad()
    def values(self, env, state: np.ndarray, owner: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(env.scaled(state), dtype=torch.float32)
        if owner.size == self.K and np.array_equal(owner.ravel(), np.arange(self.K)):  # every arm its own
            p = self.logits(self.net, x.reshape(1, self.K)).softmax(-1).reshape(*state.shape, self.A, -1)
        else:
            p = self.logits(self.net, x, torch.as_tensor(owner)).softmax(-1)
        return (p * self.support).sum(-1).double().numpy()  # [B, N, A]

    def learn(self, env, own, state, action, reward, nxt) -> None:
        """Store the step's transitions ([R, N] each, arm order = learner order)."""
        for key, v in zip(("s", "a", "r", "s2"), (env.scaled(state), action, reward, env.scaled(nxt))):
            self.buffer[key] = (self.buffer[key] + [np.asarray(v).reshape(-1)])[-self.buffer_size :]

    def loss(self) -> torch.Tensor:
        """The loss on ``batch_size`` stored steps drawn uniformly (the same steps for every arm)."""
        t = self.sample_rng.integers(0, len(self.buffer["s"]), self.batch_size)
        s, a, r, s2 = (torch.as_tensor(np.stack(self.buffer[k])[t]) for k in ("s", "a", "r", "s2"))
        return self.distributional_loss(s.float(), a.long(), r.float(), s2.float())

    def after_update(self, epoch: int) -> None:
        if (epoch + 1) % self.target_every == 0:
            hard_update(self.target, self.net)

    def distributional_loss(self, s, a, r, s2) -> torch.Tensor:
        """Cross-entropy to the projected target distribution; s, a, r, s2: [batch, K]."""
        with torch.no_grad():
            p_next = self.logits(self.target, s2).softmax(-1)  # [batch, K, A, atoms]
            a_star = (p_next * self.support).sum(-1).argmax(-1)  # [batch, K]
            p_star = p_next.gather(2, a_star[..., None, None].expand(-1, -1, 1, self.atoms))[:, :, 0]
            tz = td_target(r[..., None], torch.zeros_like(r[..., None]), self.support, self.gamma)
            tz = tz.clamp(self.support[0], self.support[-1])  # [batch, K, atoms]
            pos = (tz - self.support[0]) / (self.support[1] - self.support[0])
            lo, hi = pos.floor().long(), pos.ceil().long()
            m = torch.zeros_like(p_star)
            m.scatter_add_(-1, lo, p_star * (hi.float() - pos + (lo == hi).float()))
            m.scatter_add_(-1, hi, p_star * (pos - lo.float()))
        logp = self.logits(self.net, s).log_softmax(-1)
        logp_a = logp.gather(2, a[..., None, None].expand(-1, -1, 1, self.atoms))[:, :, 0]
        return -(m * logp_a).sum(-1).mean(0).sum()  # per-arm losses, summed

    @torch.no_grad()
    def copy(self, dst: np.ndarray, src: np.ndarray) -> None:
        for p in self.net.parameters():
            p[torch.as_tensor(dst)] = p[torch.as_tensor(src)].clone()

    def state(self) -> dict:
        return {"buffer": {k: np.stack(v) if v else np.zeros((0, self.K)) for k, v in self.buffer.items()}}

    def load(self, state: dict) -> None:
        self.buffer = {k: list(np.asarray(v)) for k, v in state["buffer"].items()}
