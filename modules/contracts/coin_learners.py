"""Building blocks of the Coin Game learners (Ivanov et al., arXiv 2407.18074, Sec. 5 / Alg. 3).

* :func:`features` -- what every network sees: the agent-centric 4-channel grid of the state plus a
  one-hot of the time step (the episode has a fixed horizon, so values depend on t).
* :class:`Games` -- ``games`` Coin Games per replica stepped in lockstep.
* :class:`IndependentDQN` -- plain selfish DQN learners, one network per (replica, agent).
* :class:`LearnerPhase` -- fresh independent learners trained from scratch in one of three worlds:
  ``contract`` (they see the frozen principal's recommendation and are paid iff they follow: the
  validation of Alg. 3), ``selfish`` (own reward only) or ``sharing`` (own reward plus a constant
  share p of the step's welfare, p·(r_1 + r_2)/2 each: the constant-proportion heuristic of
  Christoffersen et al. 2023, "Get It in Writing") [R].
* :func:`exact_play` -- exact welfare / payments / occupancy of a tabulated joint policy, by the DP.
"""

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from experiments.contracts.coin_game import CoinGameEnv, CoinGameSpec, observe
from experiments.contracts.coin_game_dp import CoinModel, evaluate, occupancy
from modules.buffers import ReplayBuffer
from modules.nets import Ensemble
from modules.rl import hard_update

N_MOVES = 4
KINDS = ("contract", "selfish", "sharing")


def features(spec: CoinGameSpec, state: np.ndarray, t: np.ndarray, device=None) -> torch.Tensor:
    """Per-agent inputs of states [...] at times [...] (t clipped to H - 1)   [..., 2, 4 n² + H]."""
    grids = torch.from_numpy(observe(spec, state.reshape(-1)).reshape(*state.shape, 2, -1))
    clock = F.one_hot(torch.as_tensor(np.minimum(t, spec.horizon - 1)), spec.horizon).float()
    return torch.cat([grids, clock[..., None, :].expand(*state.shape, 2, spec.horizon)], -1).to(device)


def feature_size(spec: CoinGameSpec) -> int:
    return 4 * spec.cells + spec.horizon


def one_hot(a: torch.Tensor | np.ndarray, device=None) -> torch.Tensor:
    return F.one_hot(torch.as_tensor(a, device=device).long(), N_MOVES).float()


def exact_play(model: CoinModel, start: np.ndarray, policy: np.ndarray, paid: np.ndarray) -> dict:
    """Welfare and discounted payments of a joint table policy [H, S] (4 a_red + a_blue) that pays
    ``paid`` [H, S, 2], and its state occupancy [H, S], all exact."""
    spec = model.spec
    d = occupancy(model, policy, start)
    return {
        "welfare": float(start @ evaluate(model, policy)[0].sum(-1)),
        "payments": float(spec.gamma ** np.arange(spec.horizon) @ (d * paid.sum(-1)).sum(1)),
        "occupancy": d,
    }


@torch.no_grad()
def greedy_tables(spec: CoinGameSpec, q_of, chunk: int = 8192) -> np.ndarray:
    """A greedy policy at every (t, s): ``q_of(features [N, 2, F], t [N], s [N])`` returns Q-values
    [R, N, 2, 4] of R replicas   -> actions [R, H, S, 2]."""
    t, s = np.divmod(np.arange(spec.horizon * spec.n_states), spec.n_states)
    parts = [
        q_of(features(spec, s[k : k + chunk], t[k : k + chunk]), t[k : k + chunk], s[k : k + chunk])
        .argmax(-1)
        .cpu()
        .numpy()
        for k in range(0, t.size, chunk)
    ]
    return np.concatenate(parts, 1).reshape(parts[0].shape[0], spec.horizon, spec.n_states, 2).astype(np.int8)


class Games:
    """``games`` Coin Games for each of ``replicas`` replicas (replica-major), stepped together."""

    def __init__(self, spec: CoinGameSpec, replicas: int, games: int):
        self.replicas = replicas
        self.env = CoinGameEnv(spec, num_envs=replicas * games)

    def reset(self, seed: int | None = None) -> None:
        self.env.reset(seed=seed)

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """States [R, games] and their time step (same shape)."""
        s = self.env.state().reshape(self.replicas, -1)
        return s, np.full(s.shape, self.env.t)

    def play(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Step with actions [R, games, 2] -> (rewards [R, games, 2], next states, episode over); a
        finished episode restarts."""
        _, rewards, _, truncations, _ = self.env.step(
            {"red": actions[..., 0].reshape(-1), "blue": actions[..., 1].reshape(-1)}
        )
        r = np.stack([rewards["red"], rewards["blue"]], -1).reshape(self.replicas, -1, 2)
        s2 = self.env.state().reshape(self.replicas, -1)
        done = bool(truncations["red"][0])
        if done:
            self.env.reset()
        return r, s2, done

    def state_dict(self) -> dict:
        return {"state": self.env.state(), "t": self.env.t, "rng": self.env.np_random.bit_generator.state}

    def load_state_dict(self, saved: dict) -> None:
        """Restore :meth:`state_dict` (arrays may come back as tensors from a checkpoint)."""
        self.env.set_state(np.asarray(saved["state"]), int(saved["t"]))
        self.env.np_random.bit_generator.state = saved["rng"]


def store(buffer: ReplayBuffer, s, t, a, r, s2, done: bool) -> None:
    """Add one step of every game (s, t [R, G]; a, r [R, G, 2]) as G rows of R replicas each."""
    buffer.add(
        s=s.T, t=t[0], a=a.transpose(1, 0, 2), r=r.transpose(1, 0, 2), s2=s2.T, done=np.full(s.shape[1], done)
    )


def unpack(batch: dict[str, np.ndarray], device=None):
    """A sampled batch as replica-major arrays: s, t, s2 [R, B]; tensors a, r [R, B, 2] and live [1, B]."""
    s, s2 = batch["s"].T, batch["s2"].T
    t = np.broadcast_to(batch["t"][None], s.shape)
    a = torch.as_tensor(batch["a"].transpose(1, 0, 2), device=device)
    r = torch.as_tensor(batch["r"].transpose(1, 0, 2), device=device).float()
    live = 1.0 - torch.as_tensor(batch["done"], dtype=torch.float32, device=device)[None, :]
    return s, t, a, r, s2, live


class IndependentDQN(nn.Module):
    """``replicas`` × 2 independent DQN agents (ensemble members replica-major, then agent)."""

    def __init__(self, model, replicas: int, in_features: int, buffer_size: int):
        super().__init__()
        self.q = Ensemble(lambda: model(in_features=in_features, out_features=N_MOVES), 2 * replicas)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.buffer = ReplayBuffer(buffer_size)

    @property
    def device(self) -> torch.device:
        return self.q.stacked[0].device

    def values(self, x: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Q-values of inputs [R, N, 2, in]   -> [R, N, 2, 4]."""
        R, N = x.shape[:2]
        members = x.to(self.device).permute(0, 2, 1, 3).reshape(2 * R, N, -1)  # member (r, i) sees x[r, :, i]
        out = (self.q_target if target else self.q)(members)
        return out.reshape(R, 2, N, N_MOVES).permute(0, 2, 1, 3)

    @torch.no_grad()
    def act(self, x: torch.Tensor, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        greedy = self.values(x).argmax(-1).cpu().numpy()  # [R, N, 2]
        explore = rng.random(greedy.shape) < epsilon
        return np.where(explore, rng.integers(0, N_MOVES, greedy.shape), greedy)

    def loss(
        self,
        x: torch.Tensor,
        a: torch.Tensor,
        reward: torch.Tensor,
        x2: torch.Tensor,
        live: torch.Tensor,
        gamma: float,
    ) -> torch.Tensor:
        """Huber TD loss of every member on its own transitions (x [R, B, 2, in], a/reward [R, B, 2])."""
        with torch.no_grad():
            y = reward + gamma * live[..., None] * self.values(x2, target=True).amax(-1)
        q = self.values(x).gather(-1, a[..., None]).squeeze(-1)
        return F.smooth_l1_loss(q, y, reduction="none").mean((1, 2)).sum()

    def sync(self) -> None:
        hard_update(self.q_target, self.q)


class LearnerPhase(nn.Module):
    """Fresh independent learners in the ``kind`` world (see the module docstring)."""

    def __init__(
        self, kind: str, spec: CoinGameSpec, model, replicas: int, buffer_size: int, share: float | None = 0.0
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"learner kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.spec, self.replicas, self.share = kind, spec, replicas, share
        self.dqn = IndependentDQN(
            model, replicas, feature_size(spec) + N_MOVES * (kind == "contract"), buffer_size
        )
        self.rec: np.ndarray | None = None  # contract world: the frozen recommendation [R, H, S, 2]
        self.pay: np.ndarray | None = None  # ... and what following it pays               [R, H, S, 2]
        # sharing world: p (None until the budget is known)

    def recommendation(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The principal's recommendation at states s [R, N], times t [R, N]   -> [R, N, 2]."""
        return self.rec[np.arange(s.shape[0])[:, None], np.minimum(t, self.spec.horizon - 1), s]

    def inputs(self, s: np.ndarray, t: np.ndarray) -> torch.Tensor:
        device = self.dqn.device
        x = features(self.spec, s, t, device)
        return (
            torch.cat([x, one_hot(self.recommendation(s, t), device)], -1) if self.kind == "contract" else x
        )

    def reward(self, s: np.ndarray, t: np.ndarray, a: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Game rewards r [R, N, 2] plus what this world pays on top."""
        if self.kind == "contract":
            return r + self.pay[np.arange(s.shape[0])[:, None], t, s] * (a == self.recommendation(s, t))
        if self.kind == "sharing":
            return r + self.share * r.sum(-1, keepdims=True) / 2
        return r

    def collect(self, games: Games, epsilon: float, rng: np.random.Generator) -> None:
        s, t = games.observe()
        a = self.dqn.act(self.inputs(s, t), epsilon, rng)
        r, s2, done = games.play(a)
        store(self.dqn.buffer, s, t, a, self.reward(s, t, a, r), s2, done)

    def step(
        self,
        games: Games,
        epsilon: float,
        explore: np.random.Generator,
        batch_size: int,
        replay: np.random.Generator,
    ) -> torch.Tensor | None:
        """Play one step of every game (ε-greedy from ``explore``) and return the TD loss of a replay
        batch drawn with ``replay`` (None until the buffer holds a batch)."""
        self.collect(games, epsilon, explore)
        if len(self.dqn.buffer) < batch_size:
            return None
        return self.loss(self.dqn.buffer.sample(batch_size, replay))

    def loss(self, batch: dict[str, np.ndarray]) -> torch.Tensor:
        s, t, a, r, s2, live = unpack(batch, self.dqn.device)
        return self.dqn.loss(self.inputs(s, t), a, r, self.inputs(s2, t + 1), live, self.spec.gamma)

    @torch.no_grad()
    def evaluate(self, model: CoinModel, start: np.ndarray) -> dict[str, np.ndarray]:
        """Greedy play, exactly: welfare, payments received and (contract world) how often they follow."""
        R = self.replicas

        def q_of(x, t, s):
            tt, ss = np.broadcast_to(t, (R, t.size)), np.broadcast_to(s, (R, s.size))
            x = x.expand(R, *x.shape)
            if self.kind == "contract":
                x = torch.cat([x, one_hot(self.recommendation(ss, tt), x.device)], -1)
            return self.dqn.values(x)

        actions = greedy_tables(self.spec, q_of)  # [R, H, S, 2]
        results = []
        for r in range(R):
            policy = actions[r, ..., 0] * N_MOVES + actions[r, ..., 1]
            if self.kind == "contract":
                followed = actions[r] == self.rec[r]  # [H, S, 2]
                result = exact_play(model, start, policy, self.pay[r] * followed)
                result["followed"] = float(
                    (result["occupancy"] * followed.mean(-1)).sum() / self.spec.horizon
                )
            else:
                result = exact_play(model, start, policy, np.zeros((*policy.shape, 2)))
                result["payments"] = self.share * result["welfare"]  # p · welfare (0 if selfish)
            results.append(result)
        return {key: np.array([x[key] for x in results]) for key in results[0] if key != "occupancy"}
