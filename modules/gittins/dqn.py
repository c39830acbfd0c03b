"""GNN DQN baseline for adaptive frontier exploration (Choo et al., arXiv:2505.21671, ``dqn_policy.py``).

Q(s, v) for every node v of the graph comes from a 2-layer edge-conditioned GNN
(:class:`modules.graph_nets.EdgeGNN`, ``model=edge_gnn``): node features are the node's centred
unary log-potentials psi_v(.) and a one-hot of its status (untested or its label), edge features
the centred pairwise log-potential table psi_uv(x_v, x_u) of the directed edge u -> v. The agent
acts epsilon-greedily over the frontier; the TD target masks invalid actions,

    y = r + beta (1 - done) max_{v' in frontier(s')} Q_target(s', v'),    loss = (Q(s, v) - y)^2,

with gamma = beta, a replay buffer, and a target network synchronised every ``target_every``
episodes (epsilon x ``epsilon_decay`` per episode). Every instance gets ``episodes`` episodes,
interleaved (the graphs and MRFs are known to every policy); each episode's labels are a fresh
exact sample from the instance's MRF, never the evaluation realisations. After training,
``test_step`` is the paired evaluation of :class:`~modules.gittins.solver.FrontierPolicies` with
``dqn`` among the policies.

Lightning: one ``training_step`` = one environment step + one gradient step (automatic
optimisation; no step until the buffer holds a batch). Randomness: the named streams
``self.rng("episodes")`` (each episode's labels), ``"exploration"`` (epsilon-greedy) and ``"replay"``
(minibatches); the replay buffer, episode counter, epsilon and the running episode are the
``learner_state`` of the checkpoint, so a run stopped after any step resumes exactly and can be
evaluated at any step. DDP: every rank runs its own episodes and replay buffer (streams seeded by
(seed, rank)) and DDP averages the gradients -- data-parallel RL; evaluation shards the instances
over ranks.
"""

import copy
from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt
from torch.utils.data import DataLoader

from experiments.gittins.frontier import FrontierState, one_hot_argmax
from experiments.gittins.instance import Instance
from modules.base import tensors_to_arrays
from modules.buffers import ReplayBuffer
from modules.gittins.solver import FrontierPolicies
from modules.rl import hard_update, td_target

Probability = Annotated[float, Field(ge=0, le=1)]


class GraphInputs:
    """Static GNN inputs of the subgraph on ``nodes`` (default: every node), labels padded to ``K``.

    ``features(status)`` adds the status one-hot; label axes beyond the instance's own K are zero.
    """

    def __init__(self, mrf, K: int, nodes: np.ndarray | None = None):
        nodes = np.arange(mrf.n) if nodes is None else np.asarray(nodes)
        pad = K - mrf.K
        self.K = K
        local = np.full(mrf.n, -1)
        local[nodes] = np.arange(len(nodes))
        unary = mrf.unary[nodes] - mrf.unary[nodes].mean(1, keepdims=True)
        self.unary = torch.tensor(np.pad(unary, ((0, 0), (0, pad))), dtype=torch.float32)  # [n, K]
        inside = (local[mrf.edges[:, 0]] >= 0) & (local[mrf.edges[:, 1]] >= 0)
        u, v = local[mrf.edges[inside]].T
        table = mrf.pairwise[inside] - mrf.pairwise[inside].mean((1, 2), keepdims=True)  # [m, x_u, x_v]
        table = np.pad(table, ((0, 0), (0, pad), (0, pad)))
        self.edge_index = torch.tensor(np.stack([np.concatenate([u, v]), np.concatenate([v, u])]))  # [2, 2m]
        attr = np.concatenate([table.transpose(0, 2, 1), table]).reshape(
            -1, K * K
        )  # oriented [x_target, x_source]
        self.edge_attr = torch.tensor(attr, dtype=torch.float32)  # [2m, K^2]

    def features(self, status: np.ndarray) -> torch.Tensor:
        """[B, n] statuses -> node features [B, n, 2K + 1]."""
        one_hot = F.one_hot(torch.as_tensor(status + 1), self.K + 1).float()  # 0 = untested, 1 + a = label a
        return torch.cat([self.unary.expand(len(status), -1, -1), one_hot], dim=-1)


def union(inputs: list[GraphInputs], statuses: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
    """Several (graph, status) pairs as one disjoint-union graph.

    Returns x [1, N, 2K+1], edges [2, E], the distinct graphs' edge features [E', K^2] and each
    edge's row among them [E] (a graph repeated in the batch shares its edge-network outputs).
    """
    x = torch.cat([inp.features(s[None])[0] for inp, s in zip(inputs, statuses)])[None]
    start = np.cumsum([0] + [len(s) for s in statuses])[:-1]
    edge_index = torch.cat([inp.edge_index + int(o) for inp, o in zip(inputs, start)], dim=1)
    distinct = list({id(inp): inp for inp in inputs}.values())
    first = np.cumsum([0] + [len(inp.edge_attr) for inp in distinct])[:-1]
    row = {id(inp): int(f) for inp, f in zip(distinct, first)}
    edge_type = torch.cat([row[id(inp)] + torch.arange(len(inp.edge_attr)) for inp in inputs])
    return x, edge_index, torch.cat([inp.edge_attr for inp in distinct]), edge_type


def q_values(net, inputs: GraphInputs, status: np.ndarray) -> torch.Tensor:
    """Q(s, v) for B statuses of one instance: [B, n], on the network's device."""
    device = next(net.parameters()).device
    return net(
        inputs.features(status).to(device), inputs.edge_index.to(device), inputs.edge_attr.to(device)
    ).squeeze(-1)


class DQNPolicy:
    """Greedy in Q over the frontier. Between successive states of a rollout only the components
    holding newly tested nodes are re-evaluated (a GNN's receptive field stays inside a component)."""

    name = "dqn"

    def __init__(self, net, instance: Instance, K: int):
        self.net, self.whole = net, GraphInputs(instance.mrf, K)
        self.parts = [(c.nodes, GraphInputs(instance.mrf, K, c.nodes)) for c in instance.inference.components]
        self.component = instance.inference.component
        self.status: np.ndarray | None = None  # the last state seen, and its Q-values [B, n]
        self.q: np.ndarray | None = None

    @torch.no_grad()
    def probs(self, state: FrontierState) -> np.ndarray:
        status, last = state.status, self.status
        if last is not None and last.shape == status.shape and np.all((last < 0) | (last == status)):
            rows, nodes = np.nonzero(last != status)
            for c in np.unique(self.component[nodes]):
                r = np.unique(rows[self.component[nodes] == c])
                idx, inputs = self.parts[c]
                self.q[np.ix_(r, idx)] = (
                    q_values(self.net, inputs, status[np.ix_(r, idx)]).double().cpu().numpy()
                )
        else:
            self.q = q_values(self.net, self.whole, status).double().cpu().numpy()
        self.status = status.copy()
        return one_hot_argmax(np.where(state.allowed, self.q, -np.inf))


class FrontierDQN(FrontierPolicies):
    needs = "frontier_exploration"
    models = ("edge_gnn",)
    stages = ("fit", "test")

    def __init__(
        self,
        task,
        model=None,
        policies: Annotated[
            list[Literal["dqn", "gittins", "greedy", "random", "optimal"]], Field(min_length=1)
        ] = ("dqn", "gittins", "greedy", "random"),
        budgets: list[Annotated[float, Field(gt=0, le=1)]] = (0.1, 0.25, 0.5),
        episodes: PositiveInt = 50,
        buffer_size: PositiveInt = 10000,
        batch_size: PositiveInt = 32,
        lr: PositiveFloat = 1e-3,
        epsilon: Probability = 1.0,
        epsilon_final: Probability = 0.05,
        epsilon_decay: Annotated[float, Field(gt=0, le=1)] = 0.995,
        target_every: PositiveInt = 10,
    ):
        super().__init__(task, model, policies=policies, budgets=budgets)
        self.save_hyperparameters(ignore=["task", "model"])
        self.train_set = [task.make(i) for i in range(len(task))]
        K = self.K = max(inst.K for inst in self.train_set)  # smaller label sets are zero-padded
        self.inputs = [GraphInputs(inst.mrf, K) for inst in self.train_set]
        self.net = model(in_features=2 * K + 1, edge_features=K * K, out_features=1)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.buffer = ReplayBuffer(buffer_size)
        self.updates = episodes * sum(inst.n for inst in self.train_set)  # episodes per instance
        self.episode, self.epsilon, self.env = 0, epsilon, None

    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(self.updates), batch_size=None)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)

    def make_policy(self, name: str, instance: Instance):
        return DQNPolicy(self.net, instance, self.K) if name == "dqn" else super().make_policy(name, instance)

    # ---- environment: one epsilon-greedy step of the running episode -----------------------
    def act(self) -> None:
        if self.env is None:
            i = self.episode % len(self.train_set)
            inst = self.train_set[i]
            self.env = {
                "instance": i,
                "labels": inst.inference.sample(1, self.rng("episodes"))[0],
                "status": np.full(inst.n, -1),
                "allowed": inst.frontier.is_root.copy(),
            }
        env = self.env
        inst = self.train_set[env["instance"]]
        status, allowed = env["status"], env["allowed"]
        explore = self.rng("exploration")
        if explore.random() < self.epsilon:
            v = int(explore.choice(np.flatnonzero(allowed)))
        else:
            with torch.no_grad():
                q = q_values(self.net, self.inputs[env["instance"]], status[None])[0].cpu().numpy()
            v = int(np.argmax(np.where(allowed, q, -np.inf)))
        nxt = status.copy()
        nxt[v] = env["labels"][v]
        done = bool(np.all(nxt >= 0))
        pad = self.task.max_nodes - inst.n
        self.buffer.add(
            instance=np.array([env["instance"]]),
            action=np.array([v]),
            reward=np.array([inst.reward[nxt[v]]]),
            done=np.array([done]),
            status=np.pad(status, (0, pad), constant_values=-1)[None],
            next_status=np.pad(nxt, (0, pad), constant_values=-1)[None],
        )
        inst.frontier.advance(allowed[None], np.array([v]), (nxt >= 0)[None])
        env["status"] = nxt
        if done:
            self.env, self.episode = None, self.episode + 1
            self.epsilon = max(self.hparams.epsilon_final, self.epsilon * self.hparams.epsilon_decay)
            if self.episode % self.hparams.target_every == 0:
                hard_update(self.target, self.net)

    def td_loss(self, batch: dict[str, np.ndarray]) -> torch.Tensor:
        """Mean squared TD error; the batch's graphs go through the network as one disjoint union."""
        dev, rows = self.device, range(len(batch["action"]))
        insts = [self.train_set[i] for i in batch["instance"]]
        inputs = [self.inputs[i] for i in batch["instance"]]
        status = [batch["status"][r, : inst.n] for r, inst in zip(rows, insts)]
        nxt = [batch["next_status"][r, : inst.n] for r, inst in zip(rows, insts)]
        x, edge_index, edge_attr, edge_type = (t.to(dev) for t in union(inputs, status))
        start = torch.as_tensor(np.cumsum([0] + [inst.n for inst in insts])[:-1], device=dev)
        q = self.net(x, edge_index, edge_attr, edge_type)[0, :, 0]  # [N] all nodes of all graphs
        q_sa = q[start + torch.as_tensor(batch["action"], device=dev)]
        with torch.no_grad():
            q_next = self.target(union(inputs, nxt)[0].to(dev), edge_index, edge_attr, edge_type)[0, :, 0]
            allowed = torch.as_tensor(
                np.concatenate([inst.frontier.allowed(s >= 0)[0] for inst, s in zip(insts, nxt)]), device=dev
            )
            owner = torch.repeat_interleave(
                torch.arange(len(insts), device=dev), torch.as_tensor([inst.n for inst in insts], device=dev)
            )
            best = torch.full((len(insts),), -torch.inf, device=dev).scatter_reduce(
                0, owner, torch.where(allowed, q_next, -torch.inf), reduce="amax"
            )
            done = torch.as_tensor(batch["done"], device=dev)
            beta = torch.as_tensor([inst.beta for inst in insts], dtype=torch.float32, device=dev)
            reward = torch.as_tensor(batch["reward"], dtype=torch.float32, device=dev)
            y = td_target(reward, done, torch.where(done, 0.0, best), beta)  # -inf-free at terminal states
        return F.mse_loss(q_sa, y)

    def training_step(self, step, batch_idx):
        self.act()
        self.log("train/epsilon", self.epsilon)
        if len(self.buffer) < self.hparams.batch_size:
            return None
        loss = self.td_loss(self.buffer.sample(self.hparams.batch_size, self.rng("replay")))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        """Adds the DQN's place between random and Gittins: the share of the gap it closes, and its
        paired difference to greedy."""
        out = super().summarize(rows)
        if {"dqn", "gittins", "random"} <= set(self.policies):
            v = {p: rows[f"{p}/discounted"].mean() for p in ("dqn", "gittins", "random")}
            out["dqn/gap_closed"] = (v["dqn"] - v["random"]) / max(v["gittins"] - v["random"], 1e-12)
        if "greedy" in self.policies:
            out["dqn/minus_greedy"] = np.mean(rows["dqn/discounted"] - rows["greedy/discounted"])
        return out

    # ---- exact resume: replay, episode counter, epsilon and the running episode ---------------
    def learner_state(self) -> dict:
        return {
            "buffer": self.buffer.state_dict(),
            "episode": self.episode,
            "epsilon": self.epsilon,
            "env": self.env,
        }

    def load_learner_state(self, state: dict) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.episode, self.epsilon = state["episode"], state["epsilon"]
        self.env = tensors_to_arrays(state["env"])
