"""Theorem 1 of Policy-to-Language (Yang et al., arXiv:2502.12530, v2): the flow denoises proxies.

With the known human distribution p (``experiments/explainer/human.py``) and the proxy
q = p + N(0, sigma_r^2 I), a flow trained *on proxy samples only* with source noise sigma obeys
W_2(p_flow, p) <= eps + L sqrt(|A|) |sigma - sigma_r|. Per replica (instance) we draw
``conditions`` (state, SFT explanation) pairs, train one conditional flow per sigma in
``sigma_factors * sigma_r`` and measure W_2 (exact OT, POT) between its samples and fresh human
samples, against W_2(q, p) of the proxy itself.

Source [reconstruction, ``source``]: ``proxy`` trains on pairs (z_0 = z_1 + sigma xi, z_1 = a proxy
sample) and samples from a held-out proxy judgment -- the proxy's own noise plays the forward
process's noise, which is when sigma = sigma_r matters; ``gaussian`` is the plain
z_0 ~ N(1/|A|, sigma^2 I) source, reported alongside (``gaussian_w2_ratio``) for comparison.
The condition of a flow is the one-hot identity of its (state, explanation) pair.

Solver: one instance per ``test_step``; DDP shards the replicas.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import ot
import torch
from pydantic import Field, PositiveInt

from experiments.explainer.grammar import sample_explanation
from experiments.explainer.human import human_samples, proxy_samples
from modules.base import AtlasModule
from modules.explainer.flow import init_
from modules.flow_matching import VelocityMLP, cfm_loss, euler_sample
from modules.stats import mean_std


def w2(x: np.ndarray, y: np.ndarray) -> float:
    """Exact 2-Wasserstein distance between two equal-weight sample clouds [n, d], [m, d]."""
    return float(np.sqrt(ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), ot.dist(x, y))))


class DenoisingFlow(AtlasModule):
    needs = "policy_explanation"

    def __init__(
        self,
        task,
        model=None,
        sigma_factors: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=3)] = (
            0.25,
            0.5,
            1.0,
            2.0,
            4.0,
        ),
        source: Literal["proxy", "gaussian"] = "proxy",
        conditions: PositiveInt = 24,
        samples: PositiveInt = 200,
        train_steps: PositiveInt = 1500,
        batch_size: PositiveInt = 256,
        hidden: PositiveInt = 128,
        euler_steps: PositiveInt = 10,
        lr: Annotated[float, Field(gt=0)] = 1e-3,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        if 1.0 not in sigma_factors:
            raise ValueError(f"sigma_factors={list(sigma_factors)} must contain 1.0 (sigma = sigma_r)")

    def conditions(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Human train/test samples and held-out proxy samples: three [C, n, |A|] arrays."""
        env, hp = self.task.env, self.hparams
        rng = self.task.rng(index, "conditions")
        human_rng = self.task.rng(index, "human")
        train, test = [], []
        for _ in range(hp.conditions):
            s = env.states[int(rng.integers(len(env.states)))]
            words = sample_explanation(
                env.facts(s), env.actions[env.policy[s]], rng, self.task.p_accurate, self.task.max_sentences
            )
            train.append(human_samples(env, s, words, self.task.kappa, hp.samples, human_rng))
            test.append(human_samples(env, s, words, self.task.kappa, hp.samples, human_rng))
        return np.array(train), np.array(test)

    @torch.inference_mode(False)
    @torch.enable_grad()
    def fit_flow(self, proxy: np.ndarray, sigma: float, source: str, g: torch.Generator) -> VelocityMLP:
        """A conditional flow trained on ``proxy`` [C, n, |A|] (test_step runs in inference mode)."""
        C, n, A = proxy.shape
        hp = self.hparams
        v = init_(VelocityMLP(A, C, hp.hidden), g)
        opt = torch.optim.Adam(v.parameters(), lr=hp.lr)
        x1_all = torch.tensor(proxy, dtype=torch.float32).reshape(C * n, A)  # [C n, A]
        cond_all = torch.eye(C).repeat_interleave(n, dim=0)  # [C n, C]
        for _ in range(hp.train_steps):
            i = torch.randint(C * n, (hp.batch_size,), generator=g)
            x1, cond = x1_all[i], cond_all[i]
            noise = sigma * torch.randn(x1.shape, generator=g)
            x0 = x1 + noise if source == "proxy" else 1.0 / A + noise
            loss = cfm_loss(v, x0, x1, cond, generator=g)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return v

    def sample_flow(
        self, v: VelocityMLP, start: np.ndarray, sigma: float, source: str, g: torch.Generator
    ) -> np.ndarray:
        C, n, A = start.shape
        x0 = torch.tensor(start, dtype=torch.float32).reshape(C * n, A)
        if source == "gaussian":
            x0 = 1.0 / A + sigma * torch.randn(x0.shape, generator=g)
        cond = torch.eye(C).repeat_interleave(n, dim=0)
        return euler_sample(v, x0, cond, self.hparams.euler_steps).reshape(C, n, A).numpy()

    def test_step(self, batch, batch_idx):
        index, _ = batch
        hp, sigma_r = self.hparams, self.task.sigma_r
        human_train, human_test = self.conditions(index)
        noise = self.task.rng(index, "proxy")
        proxy_train = proxy_samples(human_train, sigma_r, noise)
        proxy_test = proxy_samples(human_test, sigma_r, noise)  # held-out judgments of the same pairs
        g = torch.Generator().manual_seed(int(self.task.rng(index, "flow").integers(2**62)))

        def error(samples: np.ndarray) -> float:
            return float(np.mean([w2(x, y) for x, y in zip(samples, human_test)]))

        proxy_w2 = error(proxy_test)
        curve = []
        for factor in hp.sigma_factors:
            sigma = factor * sigma_r
            v = self.fit_flow(proxy_train, sigma, hp.source, g)
            samples = self.sample_flow(v, proxy_test, sigma, hp.source, g)
            curve.append(error(samples))
            if factor == 1.0:
                at_sigma_r = samples
        other = "gaussian" if hp.source == "proxy" else "proxy"
        v = self.fit_flow(proxy_train, sigma_r, other, g)
        other_w2 = error(self.sample_flow(v, proxy_test, sigma_r, other, g))
        self.record(
            index,
            proxy_w2=proxy_w2,
            curve=np.array(curve),
            other_w2=other_w2,
            flow=at_sigma_r[0],
            human=human_test[0],
            proxy=proxy_test[0],
        )  # condition 0, [n, |A|]

    def summarize(self, rows):
        factors = np.asarray(self.hparams.sigma_factors)
        at = int(np.flatnonzero(factors == 1.0)[0])
        ratio = rows["curve"][:, at] / rows["proxy_w2"]  # per replica
        curve = rows["curve"].mean(0)
        best = int(np.argmin(curve))
        mean, std = mean_std(ratio)
        self.plot(factors, rows["curve"], rows["proxy_w2"])
        self.plot_simplex(rows["human"][0], rows["proxy"][0], rows["flow"][0])
        other = "gaussian" if self.hparams.source == "proxy" else "proxy"
        return {
            "explainer/proxy_w2": float(rows["proxy_w2"].mean()),
            "explainer/flow_w2_at_sigma_r": float(rows["curve"][:, at].mean()),
            "explainer/w2_ratio_mean": mean,
            "explainer/w2_ratio_std": std,
            "explainer/w2_ratio_max": float(ratio.max()),
            "explainer/argmin_sigma_over_sigma_r": float(factors[best]),
            "explainer/u_shape_margin": float(min(curve[0], curve[-1]) - curve[best]),
            f"explainer/{other}_source_w2_ratio": float((rows["other_w2"] / rows["proxy_w2"]).mean()),
            "explainer/replicas": float(len(ratio)),
            **{f"explainer/w2_at_{f:g}_sigma_r": float(c) for f, c in zip(factors, curve)},
        }

    def plot(self, factors: np.ndarray, curves: np.ndarray, proxy: np.ndarray) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for i, c in enumerate(curves):
            ax.plot(factors, c, "o-", alpha=0.7, label=f"flow, replica {i}")
        ax.axhline(proxy.mean(), color="k", ls="--", label="proxy (no flow)")
        ax.axvline(1.0, color="grey", ls=":")
        ax.set_xscale("log")
        ax.set_xticks(factors, [f"{f:g}" for f in factors], minor=False)
        ax.minorticks_off()
        ax.set(
            xlabel="sigma / sigma_r",
            ylabel="W2 to the human distribution",
            title="Theorem 1: the flow denoises proxy rewards",
        )
        ax.legend(fontsize=7)
        self.save_figure(fig, "denoise_w2_vs_sigma")

    def plot_simplex(self, human: np.ndarray, proxy: np.ndarray, flow: np.ndarray) -> None:
        """One condition's samples: FrozenLake on the plane (p_right - p_left, p_down - p_up) of the
        3-simplex; a 2-action environment (CartPole) as p_right - p_left against the sample index."""
        import matplotlib.pyplot as plt

        four = human.shape[1] == 4
        fig, ax = plt.subplots(figsize=(4.5, 4))
        for name, x, color in (
            ("human p", human, "k"),
            ("proxy q", proxy, "tab:red"),
            ("flow", flow, "tab:blue"),
        ):
            y = x[:, 1] - x[:, 3] if four else np.arange(len(x))
            ax.scatter(x[:, 2 if four else 1] - x[:, 0], y, s=6, alpha=0.5, color=color, label=name)
        ax.set(
            xlabel="p(right) - p(left)",
            ylabel="p(down) - p(up)" if four else "sample",
            title="flow samples vs the true distribution (sigma = sigma_r)",
        )
        ax.legend(fontsize=7)
        self.save_figure(fig, "denoise_simplex")
