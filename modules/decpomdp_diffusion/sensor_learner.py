"""Per-agent conditional DDPMs on the nonlinear sensor ring, judged against the exact grid posterior
(Wang, Dong, Jiang, Parkes & Tambe, "On Diffusion Models for Multi-Agent Partial Observability: Shared
Attractors, Error Bounds, and Composite Flow", AAMAS 2025, arXiv:2410.13953; sensor-network benchmark).

Training and the models are those of the linear-Gaussian learner (:class:`AgentDDPMs`: n agents' DDPMs
and a centralized one over the state ``(cos theta, sin theta)``). The composite (reconstructed, pluggable
by ``composite``: ``fixed_point`` | ``round_robin``) is the same strategy object as there.

``test_step`` on one instance (``B`` histories, ``M`` samples per history; every posterior below is the
task's grid Bayes filter, which no model sees):

* reconstruction error: sample MSE against the true state of every model, of both composites, and of
  exact samplers of every agent's and of the joint grid posterior (claim a: composite vs agents);
* multimodality: for each (agent, history) whose exact posterior has two modes (arcs of mass
  ``>= mode_min_mass``), the circular W1 distance (POT, ``ot.wasserstein_circle``) from the agent's ``M``
  samples to its grid posterior, next to the distance of ``M`` held-out exact samples (the reference),
  the mode shares, and the fraction of composite samples in the mode the joint posterior selects (the
  union resolves it; within ``mode_margin`` observation stds of that arc) (claim b);
* the jointly uncovered arc: on histories whose target no sensor sees, the composite samples' angular
  spread around the joint posterior's circular mean against the posterior's own, and the composite's
  error on the other histories (claim c).

DDP: evaluation instances are sharded over ranks and gathered (see :class:`AgentDDPMs` for training).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import ot
import scipy.ndimage
import torch
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from experiments.decpomdp_diffusion.grid_filter import modes
from experiments.decpomdp_diffusion.sensor_ring import TAU, wrap
from experiments.decpomdp_diffusion.sensor_task import SensorRingTask
from modules.decpomdp_diffusion.composite import FixedPoint, RoundRobin
from modules.decpomdp_diffusion.ddpm import AgentDDPMs
from modules.diffusion import ancestral_sample

M = "decpomdp_diffusion"


def circle_w1(angles: np.ndarray, grid: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Circular W1 (radians) between samples ``angles`` [S, M] and grid posteriors ``p`` [S, G]."""
    u = np.mod(angles, TAU).T / TAU  # [M, S] on [0, 1)
    v = np.broadcast_to(grid[:, None] / TAU, (grid.size, len(p)))  # [G, S]
    return TAU * ot.wasserstein_circle(u, v, None, p.T)


class SensorDiffusion(AgentDDPMs):
    needs = "decpomdp_sensor_reconstruction"
    models = ("none",)

    def __init__(
        self,
        task: SensorRingTask,
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
        composite: Literal["fixed_point", "round_robin"] = "fixed_point",
        composite_k0: NonNegativeInt = 1,
        composite_rounds: PositiveInt = 5,
        mode_min_mass: Annotated[float, Field(gt=0, lt=0.5)] = 0.1,
        mode_margin: PositiveFloat = 3.0,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        if composite_k0 >= T:
            raise ValueError(f"composite_k0={composite_k0} must be a diffusion step below T={T}")
        self.build_models()
        self.strategies = {
            "round_robin": RoundRobin(),
            "fixed_point": FixedPoint(composite_k0, composite_rounds),
        }
        # mode arcs are widened by this many cells when samples are assigned to them
        self.margin_cells = int(np.ceil(mode_margin * task.ring.obs_std / (TAU / task.cells)))

    @torch.no_grad()
    def test_step(self, batch, batch_idx):
        index, inst = batch
        task, hp, n = self.task, self.hparams, self.task.n_agents
        f32 = {"dtype": torch.float32, "device": self.device}
        B, S = len(inst["theta"]), task.samples  # histories, samples per history
        views = self.views.unsqueeze(1) * torch.tensor(inst["history"], **f32)  # [n + 1, B, C]
        views = views.repeat_interleave(S, dim=1)  # [n + 1, B * S, C]: S copies of every history
        state = torch.tensor(inst["state"], **f32)[:, None]  # [B, 1, 2]
        gen = torch.Generator().manual_seed(int(inst["noise_seed"]))

        def noise(*shape):
            return torch.randn(shape, generator=gen).to(self.device)

        def eps(m, x, k):  # model m's epsilon on its own view of each history
            return self.eps(m, x, k, views[m])

        x = ancestral_sample(
            lambda x, k: self.all_eps(x, k, views), noise(n + 1, B * S, 2), self.schedule, gen
        )
        x = x.reshape(n + 1, B, S, 2)
        out = {"mse_model": (x - state).square().mean((1, 2, 3)).cpu().numpy()}
        angles = {"model": torch.atan2(x[..., 1], x[..., 0]).cpu().numpy()}  # [n + 1, B, S]
        errors = {}  # composite MSE per history [B]
        for name, strategy in self.strategies.items():
            c = strategy(eps, list(range(n)), noise(B * S, 2), self.schedule, gen).reshape(B, S, 2)
            errors[name] = (c - state).square().mean((1, 2)).cpu().numpy()
            out[f"mse_{name}"] = errors[name].mean()
            angles[name] = torch.atan2(c[..., 1], c[..., 0]).cpu().numpy()  # [B, S]

        post, grid = inst["posterior"], task.grid  # [n + 1, B, G], [G]
        points = task.point(grid)  # [G, 2]
        sq = ((points[None] - inst["state"][:, None]) ** 2).mean(-1)  # [B, G]
        out["mse_exact"] = (post * sq).sum(-1).mean(-1)  # [n + 1]: exact posterior samplers
        out |= self.bimodal(inst, angles["model"], angles[hp.composite])
        out |= self.uncovered(inst, angles, errors)
        self.record(index, **out)

    def bimodal(self, inst: dict, own: np.ndarray, composite: np.ndarray) -> dict[str, np.ndarray]:
        """Per agent: sums over its bimodal histories of W1 (model, reference, a one-mode sampler), mode-share
        errors, and the composite's samples in the mode the joint posterior selects."""
        task, n = self.task, self.task.n_agents
        post, grid, cells = inst["posterior"], task.grid, task.cells
        stats = {k: np.zeros(n) for k in ("count", "w1", "w1_ref", "w1_one_mode", "share", "share_ref")}
        stats |= {k: np.zeros(n) for k in ("resolvable", "resolved", "own_resolved")}
        widen = 2 * self.margin_cells + 1

        def share(a: np.ndarray, arcs: np.ndarray) -> float:  # fraction of angles a [S] in the first arc
            hits = arcs[:, (np.mod(a, TAU) / TAU * cells).astype(int) % cells].sum(1)  # [2]
            return hits[0] / max(hits.sum(), 1)

        pairs = []
        for i in range(n):
            for b in range(post.shape[1]):
                masks, masses = modes(post[i, b], self.hparams.mode_min_mass)
                if len(masses) != 2:
                    continue
                pairs.append((i, b))
                arcs = scipy.ndimage.maximum_filter1d(masks, widen, axis=1, mode="wrap")  # [2, G]
                exact = masses[0] / masses.sum()
                stats["count"][i] += 1
                stats["share"][i] += abs(share(own[i, b], arcs) - exact)
                stats["share_ref"][i] += abs(share(inst["reference"][i, b], arcs) - exact)
                one_mode = np.where(masks[0], post[i, b], 0.0)
                stats["w1_one_mode"][i] += (
                    TAU
                    * ot.wasserstein_circle(
                        grid / TAU, grid / TAU, one_mode / one_mode.sum(), post[i, b]
                    ).item()
                )
                joint = arcs @ post[n, b]  # [2] joint posterior mass in each (widened) mode
                if joint.max() >= 0.99:  # the union observes which mode holds the target
                    right = arcs[int(joint.argmax())]
                    cell = (np.mod(composite[b], TAU) / TAU * cells).astype(int) % cells
                    own_cell = (np.mod(own[i, b], TAU) / TAU * cells).astype(int) % cells
                    stats["resolvable"][i] += 1
                    stats["resolved"][i] += right[cell].mean()
                    stats["own_resolved"][i] += right[own_cell].mean()
        if pairs:
            i, b = map(np.array, zip(*pairs))
            w1 = circle_w1(own[i, b], grid, post[i, b])
            ref = circle_w1(inst["reference"][i, b], grid, post[i, b])
            np.add.at(stats["w1"], i, w1)
            np.add.at(stats["w1_ref"], i, ref)
        out = {f"bimodal_{k}": v for k, v in stats.items()}
        # one example for the plot: the first bimodal (agent, history), NaN if there is none
        i, b = pairs[0] if pairs else (0, 0)
        blank = np.nan if not pairs else 1.0
        out["example_bimodal_agent"] = float(i) * blank
        out["example_bimodal_post"] = post[[i, n], b] * blank  # [2, G]: the agent's and the joint posterior
        out["example_bimodal_samples"] = np.stack([own[i, b], composite[b]]) * blank  # [2, S]
        return out

    def uncovered(self, inst: dict, angles: dict, errors: dict) -> dict[str, np.ndarray]:
        """Spread on the histories whose target nobody sees (sums of squared angular deviations from the
        joint posterior's circular mean, exact and sampled), and the composites' MSE on the others."""
        n, grid = self.task.n_agents, self.task.grid
        gap = inst["uncovered"].astype(bool)  # [B]
        joint = inst["posterior"][n]  # [B, G]
        mean = np.angle(joint @ np.exp(1j * grid))  # [B] circular mean
        var_exact = (joint * wrap(grid - mean[:, None]) ** 2).sum(-1)
        out = {"gap_count": gap.sum(), "gap_var_exact": var_exact[gap].sum()}
        sampled = {**{s: angles[s] for s in self.strategies}, "centralized": angles["model"][n]}
        for name, a in sampled.items():
            out[f"gap_var_{name}"] = (wrap(a[gap] - mean[gap, None]) ** 2).mean(-1).sum()
        for name, mse in errors.items():
            out[f"covered_mse_{name}"] = mse[~gap].sum()
        out["covered_count"] = (~gap).sum()
        i = int(np.flatnonzero(gap)[0]) if gap.any() else 0
        blank = 1.0 if gap.any() else np.nan
        out["example_gap_post"] = joint[i] * blank  # [G]
        out["example_gap_samples"] = (
            np.stack([angles[self.hparams.composite][i], angles["model"][n, i]]) * blank
        )
        return out

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        n, c = self.task.n_agents, self.hparams.composite
        mse, exact = rows["mse_model"].mean(0), rows["mse_exact"].mean(0)
        m = {f"{M}/mse/agent_{i}": mse[i] for i in range(n)}
        m |= {f"{M}/mse/exact_agent_{i}": exact[i] for i in range(n)}
        m |= {f"{M}/mse/centralized": mse[n], f"{M}/mse/best_agent": mse[:n].min()}
        m |= {f"{M}/mse/exact_joint": exact[n], f"{M}/mse/exact_best_agent": exact[:n].min()}
        m |= {f"{M}/mse/composite_{s}": rows[f"mse_{s}"].mean() for s in self.strategies}
        m["claim/composite_mse"] = m[f"{M}/mse/composite_{c}"]
        m["claim/composite_over_best_agent"] = m["claim/composite_mse"] / m[f"{M}/mse/best_agent"]
        m["claim/composite_over_centralized"] = m["claim/composite_mse"] / m[f"{M}/mse/centralized"]
        m["claim/composite_over_exact_joint"] = m["claim/composite_mse"] / m[f"{M}/mse/exact_joint"]

        total = {k[len("bimodal_") :]: rows[k].sum(0) for k in rows if k.startswith("bimodal_")}  # [n] each
        for i in range(n):
            if total["count"][i]:
                for k in ("w1", "w1_ref", "w1_one_mode", "share", "share_ref"):
                    m[f"{M}/bimodal_{k}/agent_{i}"] = total[k][i] / total["count"][i]
            m[f"{M}/bimodal_histories/agent_{i}"] = total["count"][i]
        if total["count"].sum():
            m["claim/bimodal_w1_over_reference"] = total["w1"].sum() / total["w1_ref"].sum()
            m[f"{M}/bimodal_one_mode_w1_over_reference"] = total["w1_one_mode"].sum() / total["w1_ref"].sum()
            m[f"{M}/bimodal_share_error"] = total["share"].sum() / total["count"].sum()
            m[f"{M}/bimodal_share_error_reference"] = total["share_ref"].sum() / total["count"].sum()
        if total["resolvable"].sum():
            m["claim/bimodal_resolved_fraction"] = total["resolved"].sum() / total["resolvable"].sum()
            m[f"{M}/bimodal_own_samples_in_joint_mode"] = (
                total["own_resolved"].sum() / total["resolvable"].sum()
            )

        covered = rows["covered_count"].sum()
        for s in self.strategies:
            m[f"{M}/covered_mse/composite_{s}"] = rows[f"covered_mse_{s}"].sum() / max(covered, 1)
        m["claim/covered_mse"] = m[f"{M}/covered_mse/composite_{c}"]
        if rows["gap_count"].sum():
            exact_var = rows["gap_var_exact"].sum()
            for s in [*self.strategies, "centralized"]:
                m[f"{M}/uncovered_std_ratio/{s}"] = np.sqrt(rows[f"gap_var_{s}"].sum() / exact_var)
            m[f"{M}/uncovered_histories"] = rows["gap_count"].sum()
            m[f"{M}/uncovered_exact_std_deg"] = np.rad2deg(np.sqrt(exact_var / rows["gap_count"].sum()))
            m["claim/uncovered_std_rel_error"] = abs(m[f"{M}/uncovered_std_ratio/{c}"] - 1)
        self.plot(m, rows)
        return {k: float(v) for k, v in m.items()}

    def plot(self, m: dict[str, float], rows: dict[str, np.ndarray]) -> None:
        import matplotlib.pyplot as plt

        task, grid = self.task, np.rad2deg(self.task.grid)
        names = [k.split("/")[-1] for k in m if k.startswith(f"{M}/mse/")]
        fig, axes = plt.subplots(1, 3, figsize=(17, 4))
        axes[0].bar(names, [m[f"{M}/mse/{k}"] for k in names])
        layout = "collectively observable" if task.collectively_observable else "gap nobody sees"
        axes[0].set(yscale="log", ylabel="MSE vs true state", title=f"reconstruction error ({layout})")
        axes[0].tick_params(axis="x", rotation=70)

        def ring(ax, post, samples, labels, title, sensors):
            bins = np.linspace(0, 360, 121)
            density = post / (360.0 / task.cells)  # per degree
            for p, label, style in zip(density, labels[: len(post)], ("-", ":")):
                ax.plot(grid, p, style, color="k", label=label)
            for s, label in zip(samples, labels[len(post) :]):
                ax.hist(np.rad2deg(np.mod(s, TAU)), bins=bins, density=True, alpha=0.45, label=label)
            for j in sensors:
                c, r = np.rad2deg(task.ring.centers[j]), np.rad2deg(task.ring.radii[j])
                for lo in (c - r - 360, c - r, c - r + 360):  # the arc and its copies one turn away
                    ax.axvspan(lo, lo + 2 * r, color="tab:green", alpha=0.12, lw=0)
            ax.set(
                xlim=(0, 360), ylim=(0, 2.5 * density[0].max()), ylabel="density (per degree)", title=title
            )
            ax.set_xlabel("target angle (degrees); green: the sensors' coverage")
            ax.legend(fontsize=7)

        found = np.flatnonzero(~np.isnan(rows["example_bimodal_agent"]))
        if found.size:
            r = found[0]
            i = int(rows["example_bimodal_agent"][r])
            ring(
                axes[1],
                rows["example_bimodal_post"][r],
                rows["example_bimodal_samples"][r],
                [f"exact p(s | tau_{i})", "exact p(s | tau)", f"agent {i} samples", "composite samples"],
                f"bimodal posterior of agent {i} (instance {int(rows['index'][r])}; clipped)",
                task.ring.owners[i],
            )
        found = np.flatnonzero(~np.isnan(rows["example_gap_post"][:, 0]))
        if found.size:
            r = found[0]
            ring(
                axes[2],
                rows["example_gap_post"][r][None],
                rows["example_gap_samples"][r],
                ["exact p(s | tau)", "composite samples", "centralized samples"],
                f"target in the uncovered arc (instance {int(rows['index'][r])})",
                range(len(task.ring.centers)),
            )
        else:
            axes[2].set_axis_off()
        self.save_figure(fig, "decpomdp_diffusion_sensor")
