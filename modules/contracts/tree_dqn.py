"""Deep contractual Q-learning (Alg. 2) of Ivanov et al., "Principal-Agent Reinforcement Learning:
Orchestrating AI Agents with Contracts" (arXiv 2407.18074), Sec. 4 / App. D.1, on tree MDPs.

Two Q-networks are trained *together* from the same replay data: the principal's contractual
q_θ(s, a_p) and the agent's truncated Q̄_φ(s, a) (its value of an action without the current
payment). Data follow the principal's ε-greedy recommendation (the agent is assumed to
best-respond, so it plays a_p). With target networks θ', φ' and the min-pay contract b*_φ'(s, a_p)
computed in closed form from Q̄_φ' (two actions: pay on the best-likelihood-ratio outcome):

    y_p = R^p(s, o) - b*_φ'(s, a_p)(o) + γ q_θ'(s', a'_p),            a'_p = argmax q_θ(s', ·)
    y_a = R(s, a_p) + γ [Q̄_φ'(s', a'_p) + E_{o' ~ 𝒪(s', a'_p)} b*_φ'(s', a'_p)(o')]

The outcome function 𝒪 is known. ξ > 0 *nudges* every contract (a_p strictly optimal by ξ), which
keeps an agent whose Q-values differ slightly from flipping (Prop. 4.1); ``ablation_xi`` trains a
second set of replicas with another ξ (e.g. 0) in the same run to show the discontinuity.

Pessimistic contracts [R] (``agent_heads`` = H > 1; the paper: one Q̄ network): each learner fits H
independently initialised Q̄ heads on the same data and offers the *largest* of the H min-pay
contracts, so an agent whose true Q̄ differs from one head's estimate by more than ξ is still
covered when another head errs the other way (Prop. 4.1 asks for ξ >= 2 E_t; the heads' spread is a
data-driven stand-in for E_t). Every head's target values the next state under the offered
(pessimistic) contract, and the principal's target pays it.

The exact ξ-nudged SPE (backward induction with the nudged LP, against the oracle agent) is reported
as ``nudged_spe_ratio``: the utility a learner with perfect Q-values would get at that ξ, i.e. what
the nudge itself costs.

Validation: the learned principal (a_p = argmax q_θ, contract from Q̄_φ) faces an *exactly*
best-responding oracle agent (backward induction on the true MDP, ties to the principal); its
utility is compared with the SPE (``experiments.contracts.spe.backward_induction``).
Replicas: every instance tree × ``seeds`` × ξ variant is an independent learner; all of them train
in lockstep as one :class:`modules.nets.Ensemble` (states one-hot over the largest tree).
Randomness: the named streams ``self.rng("exploration")`` (ε-greedy recommendations),
``"environment"`` (outcomes, transitions, restarts) and ``"replay"`` (minibatches); the replay buffer,
the running episodes and the learning curve are the ``learner_state``, so a run stopped after any
step resumes exactly and evaluates (the oracle-agent validation needs only the networks).
DDP: every rank trains all replicas on its own experience (streams seeded by (seed, rank)) and DDP
averages their gradients -- data-parallel RL; evaluation shards the trees over ranks.
"""

import copy
from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt
from torch.utils.data import DataLoader

from experiments.contracts.contract import two_action_payments
from experiments.contracts.spe import ContractPolicy, agent_best_response, backward_induction
from modules.base import AtlasModule
from modules.buffers import ReplayBuffer
from modules.nets import Ensemble
from modules.rl import LinearSchedule, hard_update

Fraction = Annotated[float, Field(ge=0, le=1)]


def pad(arrays: list[np.ndarray], size: int) -> np.ndarray:
    """Stack per-tree arrays [S_i, ...] into [R, size, ...] (zeros beyond a tree's states)."""
    out = np.zeros((len(arrays), size, *arrays[0].shape[1:]))
    for r, x in enumerate(arrays):
        out[r, : len(x)] = x
    return out


def next_state_cdf(mdp, size: int) -> np.ndarray:
    """CDF of s' ~ T(s, o) over ``size`` states; a draw above the row's mass (count = size) ends it."""
    T = np.zeros((size, mdp.n_outcomes, size))
    T[: mdp.n_states, :, : mdp.n_states] = mdp.transition
    return np.cumsum(T, -1)


class TreeContractDQN(AtlasModule):
    """Alg. 2 on every instance tree, ``seeds`` replicas each, validated with an oracle agent."""

    needs = "binary_contract_trees"  # the two-action closed form
    models = ("mlp",)
    stages = ("fit", "test")

    def __init__(
        self,
        task,
        model=None,
        seeds: PositiveInt = 3,
        updates: PositiveInt = 4000,
        env_steps: PositiveInt = 8,
        batch_size: PositiveInt = 128,
        lr: PositiveFloat = 1e-3,
        lr_final: PositiveFloat = 1e-4,
        epsilon: Fraction = 1.0,
        epsilon_final: Fraction = 0.0,
        target_every: PositiveInt = 100,
        xi: NonNegativeFloat = 0.02,
        ablation_xi: NonNegativeFloat | None = 0.0,
        agent_head: Literal["action", "outcome"] = "action",
        agent_heads: PositiveInt = 1,
        random_starts: Fraction = 0.0,
        buffer_size: PositiveInt = 100000,
        eval_every: PositiveInt = 250,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.automatic_optimization = False
        self.trees = [task.instances()[i][1] for i in range(len(task.instances()))]
        if any(mdp.n_actions != 2 for mdp in self.trees):
            raise ValueError(
                "TreeContractDQN computes contracts in the two-action closed form: every tree needs "
                "2 actions (task.actions=[2,2], e.g. task=contracts_paper_trees)"
            )
        self.spe = [backward_induction(mdp) for mdp in self.trees]  # ground truth, for evaluation only
        self.variants = [xi] if ablation_xi is None else [xi, ablation_xi]
        # replica r = (variant, tree, seed), variant-major
        self.replica_tree = np.tile(np.repeat(np.arange(len(self.trees)), seeds), len(self.variants))
        self.replica_variant = np.repeat(np.arange(len(self.variants)), len(self.trees) * seeds)
        self.register_buffer(
            "xi", torch.tensor(self.variants).float()[self.replica_variant][:, None]
        )  # [R, 1]
        mdps = [self.trees[t] for t in self.replica_tree]
        self.S = max(mdp.n_states for mdp in mdps)  # one-hot width
        self.n_states = np.array([mdp.n_states for mdp in mdps])
        self.register_buffer(
            "outcome", torch.tensor(pad([m.outcome for m in mdps], self.S)).float()
        )  # [R, S, A, O]
        self.register_buffer(
            "reward", torch.tensor(pad([m.reward for m in mdps], self.S)).float()
        )  # [R, S, A]
        self.register_buffer(
            "principal_reward", torch.tensor(pad([m.principal_reward for m in mdps], self.S)).float()
        )
        self.register_buffer("gamma", torch.tensor([m.gamma for m in mdps]).float()[:, None])  # [R, 1]
        self.cumulative_next = np.stack([next_state_cdf(m, self.S) for m in mdps])  # [R, S, O, S]
        R = len(mdps)
        self.principal = Ensemble(lambda: model(in_features=self.S, out_features=2), R)
        n_o = mdps[0].n_outcomes
        self.H = agent_heads  # agent member r * H + h = head h of replica r
        self.agent = Ensemble(
            lambda: model(in_features=self.S, out_features=2 + n_o * (agent_head == "outcome")),
            R * agent_heads,
        )
        self.principal_target, self.agent_target = copy.deepcopy(self.principal), copy.deepcopy(self.agent)
        for net in (self.principal_target, self.agent_target):
            net.requires_grad_(False)
        self.buffer = ReplayBuffer(buffer_size)  # rows = one step of every replica
        self.state = np.zeros((R, env_steps), dtype=np.int64)  # the running episodes (root = 0)
        self.epsilon = LinearSchedule(epsilon, epsilon_final, max(updates - 1, 1))
        self.curves: list[np.ndarray] = []  # per evaluation: utility ratio [R]

    @property
    def replicas(self) -> int:
        return len(self.replica_tree)

    def features(self, s: torch.Tensor) -> torch.Tensor:
        return F.one_hot(s, self.S).float()

    def contract(self, Qbar: torch.Tensor, s: torch.Tensor, a_p: torch.Tensor) -> torch.Tensor:
        """b*(s, a_p) from the heads' Q̄(s, ·) [R, H, B, 2] for states s, a_p [R, B]: the largest of the
        heads' min-pay contracts; not implementable -> no payment   [R, B, O]."""
        P = self.lookup(self.outcome, s)[:, None].expand(-1, self.H, -1, -1, -1)  # [R, H, B, A, O]
        b = two_action_payments(P, Qbar, a_p[:, None].expand(-1, self.H, -1), self.xi[:, None])
        return torch.nan_to_num(b, nan=0.0).amax(1)

    def agent_q(self, s: torch.Tensor, target: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Every head's Q̄_φ(s, ·) [R, H, B, A] and the raw network output. ``agent_head="outcome"`` [R]:
        the network predicts the agent's reward r̂(s, a) and outcome values W(s, o) = E[V(s') | s, o],
        and Q̄(s, a) = r̂(s, a) + γ Σ_o 𝒪(o | s, a) W(s, o) uses the known outcome function."""
        x = self.features(s).repeat_interleave(self.H, 0)  # [R H, B, S]
        out = (self.agent_target if target else self.agent)(x)
        out = out.reshape(len(s), self.H, *out.shape[1:])  # [R, H, B, ·]
        if self.hparams.agent_head == "action":
            return out, out
        P = self.lookup(self.outcome, s)[:, None]  # [R, 1, B, A, O]
        return out[..., :2] + self.gamma[:, None, :, None] * (P @ out[..., 2:, None]).squeeze(-1), out

    def lookup(self, table: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """table[r, s[r, b]]   ([R, S, ...], [R, B] -> [R, B, ...])."""
        return table.gather(
            1, s.reshape(*s.shape, *[1] * (table.dim() - 2)).expand(*s.shape, *table.shape[2:])
        )

    # ---- data -------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(self.hparams.updates), batch_size=None)

    @torch.no_grad()
    def act(self, epsilon: float) -> None:
        """One step of every running episode under the ε-greedy recommendation; stores the transitions."""
        s = self.state  # [R, E]
        rows = np.arange(self.replicas)[:, None]
        explore, env = self.rng("exploration"), self.rng("environment")
        greedy = (
            self.principal(self.features(torch.as_tensor(s, device=self.device))).argmax(-1).cpu().numpy()
        )
        a = np.where(explore.random(s.shape) < epsilon, explore.integers(0, 2, s.shape), greedy)
        P = self.outcome.cpu().numpy()[rows, s, a]  # [R, E, O]
        o = (env.random((*s.shape, 1)) > np.cumsum(P, -1)).sum(-1)
        nxt = (env.random((*s.shape, 1)) > self.cumulative_next[rows, s, o]).sum(-1)
        done = nxt >= self.S
        self.buffer.add(s=s.T, a=a.T, o=o.T, next=np.where(done, 0, nxt).T, done=done.T)  # rows = episodes
        restart = np.where(
            env.random(s.shape) < self.hparams.random_starts,
            (env.random(s.shape) * self.n_states[:, None]).astype(np.int64),
            0,
        )
        self.state = np.where(done, restart, nxt)

    # ---- learning -----------------------------------------------------------------------------
    def loss(self, batch: dict[str, np.ndarray]) -> torch.Tensor:
        s, a, o, s2 = (
            torch.as_tensor(batch[k].T, device=self.device) for k in ("s", "a", "o", "next")
        )  # [R, B]
        live = 1.0 - torch.as_tensor(batch["done"].T, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            b = self.contract(self.agent_q(s, target=True)[0], s, a)  # [R, B, O]
            pay = b.gather(-1, o[..., None]).squeeze(-1)
            a2 = self.principal(self.features(s2)).argmax(-1, keepdim=True)  # a'_p    [R, B, 1]
            q2 = self.principal_target(self.features(s2)).gather(-1, a2).squeeze(-1)
            Qbar2 = self.agent_q(s2, target=True)[0]  # [R, H, B, A]
            P2 = (
                self.lookup(self.outcome, s2)
                .gather(2, a2[..., None].expand(-1, -1, 1, b.shape[-1]))
                .squeeze(2)
            )
            paid2 = (P2 * self.contract(Qbar2, s2, a2.squeeze(-1))).sum(-1)  # E_o' b*(s', a'_p)
            Rp = self.lookup(self.principal_reward, s).gather(-1, o[..., None]).squeeze(-1)
            r = self.lookup(self.reward, s).gather(-1, a[..., None]).squeeze(-1)[:, None]  # [R, 1, B]
            y_p = Rp - pay + self.gamma * live * q2
            at = a2[:, None].expand(-1, self.H, -1, -1)  # [R, H, B, 1]
            V2 = live[:, None] * (Qbar2.gather(-1, at).squeeze(-1) + paid2[:, None])  # each head's V(s')
            y_a = r + self.gamma[:, None] * V2  # [R, H, B]
        q = self.principal(self.features(s)).gather(-1, a[..., None]).squeeze(-1)
        Qbar, out = self.agent_q(s)
        ah = a[:, None, :, None].expand(-1, self.H, -1, 1)  # [R, H, B, 1]
        if self.hparams.agent_head == "action":
            agent_loss = (Qbar.gather(-1, ah).squeeze(-1) - y_a) ** 2
        else:  # r̂(s, a) -> r, W(s, o) -> V(s')
            oh = o[:, None, :, None].expand(-1, self.H, -1, 1)
            agent_loss = (out.gather(-1, ah).squeeze(-1) - r) ** 2 + (
                out.gather(-1, 2 + oh).squeeze(-1) - V2
            ) ** 2
        # every replica (and head) on its own loss
        return ((q - y_p) ** 2).mean(-1).sum() + agent_loss.mean(-1).sum()

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.Adam([*self.principal.parameters(), *self.agent.parameters()], lr=hp.lr)
        decay = (hp.lr_final / hp.lr) ** (1 / hp.updates)
        return [optimizer], [torch.optim.lr_scheduler.ExponentialLR(optimizer, decay)]

    def training_step(self, batch, step):
        # ``step`` = Lightning's batch index, which continues across a resume (a restarted plain
        # dataloader yields its items from the start again, so the batch itself is not the step)
        hp = self.hparams
        self.act(self.epsilon(step))
        if len(self.buffer) >= hp.batch_size:
            loss = self.loss(self.buffer.sample(hp.batch_size, self.rng("replay")))
            optimizer = self.optimizers()
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
            self.lr_schedulers().step()
            self.log("train/loss", loss.item() / self.replicas, prog_bar=True)
        if (step + 1) % hp.target_every == 0:
            hard_update(self.principal_target, self.principal)
            hard_update(self.agent_target, self.agent)
        if (step + 1) % hp.eval_every == 0 or step + 1 == hp.updates:
            policies = self.policies()
            ratios = np.array([self.evaluate(r, *policies)["utility_ratio"] for r in range(self.replicas)])
            self.curves.append(ratios)
            self.log("train/utility_ratio", float(ratios[self.replica_variant == 0].mean()), prog_bar=True)

    # ---- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def policies(self) -> tuple[np.ndarray, np.ndarray]:
        """Every replica's recommendation a_p = argmax q_θ and contract from Q̄_φ  ([R, S], [R, S, O])."""
        s = torch.arange(self.S, device=self.device).expand(self.replicas, -1)
        a_p = self.principal(self.features(s)).argmax(-1)
        return a_p.cpu().numpy(), self.contract(self.agent_q(s)[0], s, a_p).double().cpu().numpy()

    def evaluate(self, r: int, actions: np.ndarray, payments: np.ndarray) -> dict[str, float]:
        """Replica r's principal against the exact oracle agent, relative to the SPE."""
        tree = self.replica_tree[r]
        mdp, spe = self.trees[tree], self.spe[tree]
        a_p, b = actions[r, : mdp.n_states], payments[r, : mdp.n_states]
        result = agent_best_response(mdp, ContractPolicy(a_p, b))
        states = np.arange(mdp.n_states)
        spe_paid = (mdp.outcome[states, spe.policy.action] * spe.policy.payment).sum()
        return {
            "utility_ratio": result.principal_utility / spe.principal_utility,
            "accuracy": float(np.mean(a_p == spe.policy.action)),
            "followed": float(np.mean(result.response == a_p)),
            "payment_ratio": float((mdp.outcome[states, result.response] * b).sum() / max(spe_paid, 1e-12)),
        }

    def test_step(self, batch, batch_idx):
        index, _ = batch
        mine = np.flatnonzero(self.replica_tree == index).reshape(len(self.variants), -1)  # [variants, seeds]
        values, policies = {}, self.policies()
        for v, replicas in enumerate(mine):
            results = [self.evaluate(r, *policies) for r in replicas]
            values |= {f"{name}_{v}": np.array([x[name] for x in results]) for name in results[0]}
        curves = np.array(self.curves).reshape(len(self.curves), len(self.replica_tree))  # [evals, replicas]
        values["curve"] = curves[:, mine.reshape(-1)].T  # [variants*seeds, evals]
        mdp, spe = self.trees[index], self.spe[index]
        for v, xi in enumerate(self.variants):  # the exact xi-nudged SPE: the best a nudged learner can do
            nudged = agent_best_response(mdp, backward_induction(mdp, xi=xi).policy)
            values[f"ceiling_{v}"] = nudged.principal_utility / spe.principal_utility
        self.record(index, **values)

    def summarize(self, rows):
        self.plot_curves(rows)
        metrics = {}
        for v, xi in enumerate(self.variants):
            tag = "tree" if v == 0 else f"tree_xi{xi:g}"
            ratio = rows[f"utility_ratio_{v}"]  # [trees, seeds]
            metrics |= {
                f"{tag}/utility_ratio": ratio.mean(),
                f"{tag}/utility_ratio_min": ratio.min(),
                f"{tag}/utility_ratio_std": ratio.std(),
                f"{tag}/accuracy": rows[f"accuracy_{v}"].mean(),
                f"{tag}/followed": rows[f"followed_{v}"].mean(),
                f"{tag}/payment_ratio": rows[f"payment_ratio_{v}"].mean(),
                f"{tag}/nudged_spe_ratio": rows[f"ceiling_{v}"].mean(),
                f"{tag}/nudged_spe_ratio_min": rows[f"ceiling_{v}"].min(),
            }
            for k in range(ratio.shape[1]):  # seed k's learners, over the trees
                metrics[f"{tag}/seed{k}/utility_ratio"] = ratio[:, k].mean()
                metrics[f"{tag}/seed{k}/utility_ratio_min"] = ratio[:, k].min()
        return metrics

    def plot_curves(self, rows) -> None:
        import matplotlib.pyplot as plt

        hp = self.hparams
        curves = rows["curve"]  # [trees, variants * seeds, evals]
        if curves.shape[-1] == 0:  # stopped before the first evaluation
            return
        steps = np.minimum(np.arange(1, curves.shape[-1] + 1) * hp.eval_every, hp.updates)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for v, xi in enumerate(self.variants):
            block = curves[:, v * hp.seeds : (v + 1) * hp.seeds].reshape(-1, curves.shape[-1])
            (line,) = ax.plot(steps, block.mean(0), label=f"ξ = {xi:g} (mean of {block.shape[0]})")
            ax.fill_between(steps, block.min(0), block.max(0), alpha=0.2, color=line.get_color())
        ax.axhline(1.0, c="k", ls="--", lw=0.8, label="SPE (backward induction)")
        ax.set(
            xlabel="update",
            ylabel="principal utility / SPE utility",
            ylim=(min(0, curves.min()), 1.1),
            title="Tree MDP: learned principal vs oracle agent",
        )
        ax.legend(fontsize=7)
        self.save_figure(fig, "tree_learning_curves")

    # ---- exact resume -------------------------------------------------------------------------
    def learner_state(self) -> dict:
        return {"buffer": self.buffer.state_dict(), "state": self.state, "curves": list(self.curves)}

    def load_learner_state(self, state: dict) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.state = state["state"].numpy()
        self.curves = [c.numpy() for c in state["curves"]]
