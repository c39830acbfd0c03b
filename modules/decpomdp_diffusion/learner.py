"""Per-agent conditional DDPMs for state reconstruction in Dec-POMDPs: fixed points, Jacobian rank,
surrogate bound and the composite process (Wang, Dong, Jiang, Parkes & Tambe, "On Diffusion Models
for Multi-Agent Partial Observability: Shared Attractors, Error Bounds, and Composite Flow",
AAMAS 2025, arXiv:2410.13953).

There is no official code; every part below the DDPM itself is a reconstruction and pluggable:
the denoising map (Tweedie at step ``k0``), the rank rule (``rank``/``rank_threshold``), the
composite strategy (``composite``: ``fixed_point`` | ``round_robin``, ``modules/.../composite.py``)
and the surrogate bound (``modules/.../fixed_points.py``).

Training (:class:`modules.decpomdp_diffusion.ddpm.AgentDDPMs`, shared with the sensor-ring learner):
agent i's DDPM ``eps_theta_i(x_k, k, enc(tau_i))`` and the centralized one, trained together on fresh
simulator draws, one Adam step per ``training_step``, resumable exactly. DDP: every rank holds all
models and draws its own batches, DDP averages gradients (data-parallel), so with W ranks each runs
``steps / W`` optimizer steps on W times the data per step; evaluation instances are sharded over
ranks. After any number of steps (``trainer.max_steps=2`` too) ``test_step`` works.

``test_step`` on one instance (``states_per_instance`` states, with exact Kalman posteriors):
sample MSE of each agent's model, the centralized model and both composites; fixed points of every
``F_i`` from N(0, I) starts; Jacobian rank at them vs the simulator's count of unobservable
directions; deviation ``||P_i (x* - mu_i)||`` from the Kalman mean on the directions agent i resolves;
the surrogate bound on ``surrogate_points`` fixed points; the composite's worst-direction MSE on the
jointly resolved subspace and its spread on the jointly unresolved one; composite MSE per agent
``group`` (claim 7).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import scipy.stats
import torch
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from experiments.decpomdp_diffusion.task import DecPOMDPTask
from modules.decpomdp_diffusion.composite import FixedPoint, RoundRobin
from modules.decpomdp_diffusion.ddpm import AgentDDPMs
from modules.decpomdp_diffusion.fixed_points import (
    RankRule,
    deviation_bound,
    iterate_to_fixed_point,
    jacobians,
    linear_surrogate,
)
from modules.diffusion import ancestral_sample, denoise

M = "decpomdp_diffusion"


class DecPOMDPDiffusion(AgentDDPMs):
    needs = "decpomdp_reconstruction"
    models = ("none",)

    def __init__(
        self,
        task: DecPOMDPTask,
        model=None,
        hidden: PositiveInt = 128,
        layers: PositiveInt = 3,
        T: Annotated[int, Field(ge=2)] = 50,
        beta_start: Annotated[float, Field(gt=0, lt=1)] = 1e-4,
        beta_end: Annotated[float, Field(gt=0, lt=1)] = 0.2,
        steps: PositiveInt = 3000,
        batch_size: PositiveInt = 256,
        lr: PositiveFloat = 1e-3,
        ema_decay: Annotated[float, Field(ge=0, lt=1)] = 0.99,
        k0: NonNegativeInt = 4,
        fp_iters: PositiveInt = 200,
        fp_tol: PositiveFloat = 1e-3,
        rank: Literal["threshold", "entropy"] = "threshold",
        rank_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5,
        composite: Literal["fixed_point", "round_robin"] = "fixed_point",
        composite_k0: NonNegativeInt = 1,
        composite_rounds: PositiveInt = 5,
        surrogate_points: PositiveInt = 32,
        surrogate_radius: PositiveFloat = 0.05,
        surrogate_samples: PositiveInt = 48,
        groups: list[Annotated[list[NonNegativeInt], Field(min_length=1)]] | None = None,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        if max(k0, composite_k0) >= T:
            raise ValueError(f"k0={k0} and composite_k0={composite_k0} must be diffusion steps below T={T}")
        bad = [g for g in groups or [] if any(i >= task.n_agents for i in g)]
        if bad:
            raise ValueError(f"groups {bad} name agents outside 0..{task.n_agents - 1}")
        system, n = task.system, task.n_agents
        self.build_models()
        self.strategies = {
            "round_robin": RoundRobin(),
            "fixed_point": FixedPoint(composite_k0, composite_rounds),
        }
        self.rank_rule = RankRule(rank, rank_threshold)
        self.groups = groups or []
        # ground truth from the simulator (not from the models): what each agent / everyone resolves
        self.P = [torch.tensor(system.observable_projection([i]), dtype=torch.float32) for i in range(n)]
        self.unobservable = np.array(
            [system.dim - np.linalg.matrix_rank(system.observability([i])) for i in range(n)], dtype=float
        )
        self.joint_null = torch.tensor(system.unobservable_basis(list(range(n))), dtype=torch.float32)
        self.joint_range = torch.tensor(system.observable_projection(list(range(n))), dtype=torch.float32)

    # ---- evaluation -------------------------------------------------------------------------
    def denoiser(self, m: int, history: torch.Tensor):
        """Agent m's denoising map F_m at k0, rows of ``x`` [..., d] paired with ``history`` [..., C]."""
        return lambda x: denoise(
            lambda x_k, k: self.eps(m, x_k, k, history), x, self.hparams.k0, self.schedule
        )

    @torch.no_grad()
    def test_step(self, batch, batch_idx):
        index, inst = batch
        hp, n, d = self.hparams, self.task.n_agents, self.task.system.dim
        f32 = {"dtype": torch.float32, "device": self.device}
        state = torch.tensor(inst["state"], **f32)
        B = len(state)
        views = self.views.unsqueeze(1) * torch.tensor(inst["history"], **f32)  # [n + 1, B, C]
        mu = torch.tensor(inst["post_mean"], **f32)  # [n + 1, B, d]
        gen = torch.Generator().manual_seed(int(inst["noise_seed"]))

        def noise(*shape):
            return torch.randn(shape, generator=gen).to(self.device)

        def eps(m, x, k):  # agent m's epsilon on its own history
            return self.eps(m, x, k, views[m])

        def all_eps(x, k):  # every model at once, x [n + 1, B, d]
            return self.all_eps(x, k, views)

        out = {}
        # sample MSE of every model alone (agents, then centralized), one batched reverse process
        samples = ancestral_sample(all_eps, noise(n + 1, B, d), self.schedule, gen)
        out["mse_model"] = (samples - state).square().mean((1, 2)).cpu().numpy()

        # composites over all agents and over each requested group
        everyone = list(range(n))
        for name, strategy in self.strategies.items():
            x = strategy(eps, everyone, noise(B, d), self.schedule, gen)
            err = x - state  # [B, d]
            out[f"mse_{name}"] = err.square().mean().item()
            second = err.T @ err / B  # error second moment
            out[f"observed_worst_mse_{name}"] = (
                torch.linalg.eigvalsh(self.joint_range @ second @ self.joint_range).max().item()
            )
            if self.joint_null.shape[1]:  # spread vs exact
                resid = (x - mu[-1]) @ self.joint_null.to(self.device)  # [B, r]
                exact = (
                    self.joint_null.T
                    @ torch.tensor(inst["post_cov"][-1], dtype=torch.float32)
                    @ self.joint_null
                )
                out[f"unobserved_std_ratio_{name}"] = (resid.var(0).sum() / exact.trace()).sqrt().item()
        for g, group in enumerate(self.groups):
            x = self.strategies[hp.composite](eps, group, noise(B, d), self.schedule, gen)
            out[f"mse_group_{g}"] = (x - state).square().mean().item()

        # fixed points of every model's map in one batched iteration, x [n + 1, B, d] (agents: [:n])
        x_star, converged = iterate_to_fixed_point(
            lambda x: denoise(all_eps, x, hp.k0, self.schedule), noise(n + 1, B, d), hp.fp_iters, hp.fp_tol
        )
        out["converged"] = converged[:n].float().mean(1).cpu().numpy()
        ranks, deviation, rms, holds, tightness, evidence = [], [], [], [], [], []
        S = min(hp.surrogate_points, B)
        for i in range(n):
            P = self.P[i].to(self.device)
            H = torch.tensor(self.task.system.H[i], **f32)
            last = torch.tensor(inst["last_obs"][i], **f32)
            evidence.append(
                ((x_star[i] @ H.T - last).square().mean().sqrt() / self.task.system.obs_std).item()
            )
            with torch.enable_grad():
                J = jacobians(lambda x, h, i=i: self.denoiser(i, h[None])(x[None])[0], x_star[i], views[i])
            ranks.append(self.rank_rule(J))
            dev = ((x_star[i] - mu[i]) @ P.T).norm(dim=-1)
            deviation.append(dev)
            rms.append(dev / float(torch.linalg.matrix_rank(P)) ** 0.5)
            F_pts = self.denoiser(i, views[i, :S])
            W, _, resid = linear_surrogate(
                self.denoiser(i, views[i, :S, None]),
                x_star[i, :S],
                hp.surrogate_radius,
                hp.surrogate_samples,
                gen,
            )
            measured, bound = deviation_bound(F_pts, x_star[i, :S], mu[i, :S], P, W, resid)
            holds.append((measured <= bound).float().mean().item())
            tightness.append((measured / bound).median().item())
        out["evidence_rms_over_noise"] = np.array(evidence)
        out["rank"] = torch.stack(ranks).cpu().numpy()  # [n, B]
        out["deviation"] = torch.stack(deviation).cpu().numpy()  # [n, B]
        out["deviation_rms"] = torch.stack(rms).mean(1).cpu().numpy()
        out["bound_holds"] = np.array(holds)
        out["bound_tightness"] = np.array(tightness)  # median measured / bound
        # the exact (Gaussian) Tweedie map's rank at k0: eigenvalues lambda / (lambda + sigma^2) > level
        sigma2 = self.schedule.clean_noise_std(hp.k0) ** 2
        lam = np.linalg.eigvalsh(inst["post_cov"][:n])  # [n, d]
        out["analytic_rank"] = (lam / (lam + sigma2) > hp.rank_threshold).sum(1).astype(float)
        self.record(index, **out)

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        n, hp = self.task.n_agents, self.hparams
        mse = rows["mse_model"].mean(0)
        c = hp.composite
        m = {f"{M}/mse/agent_{i}": mse[i] for i in range(n)}
        m |= {f"{M}/mse/centralized": mse[n], f"{M}/mse/best_agent": mse[:n].min()}
        m |= {f"{M}/mse/composite_{s}": rows[f"mse_{s}"].mean() for s in self.strategies}
        m |= {
            f"{M}/observed_worst_mse/composite_{s}": rows[f"observed_worst_mse_{s}"].mean()
            for s in self.strategies
        }
        rank, dev = rows["rank"], rows["deviation"]  # [I, n, B]
        for i in range(n):
            m |= {
                f"{M}/converged/agent_{i}": rows["converged"][:, i].mean(),
                f"{M}/jacobian_rank/agent_{i}": rank[:, i].mean(),
                f"{M}/unobservable_dims/agent_{i}": self.unobservable[i],
                f"{M}/deviation_l2/agent_{i}": dev[:, i].mean(),
                f"{M}/deviation_rms/agent_{i}": rows["deviation_rms"][:, i].mean(),
            }
        m[f"{M}/analytic_rank_error"] = np.abs(rows["analytic_rank"] - self.unobservable).mean()
        m["claim/converged_fraction"] = rows["converged"].mean(0).min()
        m["claim/evidence_rms_over_noise"] = rows["evidence_rms_over_noise"].max()
        m["claim/rank_abs_error"] = np.abs(rank - self.unobservable[None, :, None]).mean()
        if rank.std() > 0:  # Spearman is undefined when every agent has the same rank
            m["claim/rank_deviation_spearman"] = scipy.stats.spearmanr(rank.ravel(), dev.ravel()).statistic
        m["claim/bound_holds_fraction"] = rows["bound_holds"].mean()
        m[f"{M}/bound_tightness_median"] = np.median(rows["bound_tightness"])
        m["claim/composite_mse"] = m[f"{M}/mse/composite_{c}"]
        m["claim/composite_over_best_agent"] = m["claim/composite_mse"] / m[f"{M}/mse/best_agent"]
        m["claim/composite_over_centralized"] = m["claim/composite_mse"] / m[f"{M}/mse/centralized"]
        m["claim/observed_worst_mse"] = m[f"{M}/observed_worst_mse/composite_{c}"]
        if f"unobserved_std_ratio_{c}" in rows:
            for s in self.strategies:
                m[f"{M}/unobserved_std_ratio/composite_{s}"] = rows[f"unobserved_std_ratio_{s}"].mean()
            m["claim/unobserved_std_rel_error"] = abs(m[f"{M}/unobserved_std_ratio/composite_{c}"] - 1)
        groups = [rows[f"mse_group_{g}"].mean() for g in range(len(self.groups))]
        m |= {f"{M}/mse/group_{g}": v for g, v in enumerate(groups)}
        if len(groups) > 1:
            m["claim/overlap_min_increase"] = float(np.diff(groups).min())
        self.plot(m, rank, dev)
        return {k: float(v) for k, v in m.items()}

    def plot(self, m: dict[str, float], rank: np.ndarray, dev: np.ndarray) -> None:
        import matplotlib.pyplot as plt

        names = [k.split("/")[-1] for k in m if k.startswith(f"{M}/mse/")]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        ax1.bar(names, [m[f"{M}/mse/{k}"] for k in names])
        ax1.set(yscale="log", ylabel="MSE vs true state", title="reconstruction error per method")
        ax1.tick_params(axis="x", rotation=60)
        for i in range(rank.shape[1]):
            ax2.scatter(rank[:, i].ravel(), dev[:, i].ravel(), s=6, alpha=0.4, label=f"agent {i}")
        ax2.set(xlabel="Jacobian rank at fixed point", ylabel="||P (x* - mu)||", title="rank vs deviation")
        ax2.legend()
        self.save_figure(fig, "decpomdp_diffusion")
