"""The causal chain of Sun et al., "How LLMs Are Persuaded: A Few Attention Heads, Rerouted"
(arXiv:2605.09314), as one analysis over any causal LM wrapped by :class:`modules.hooks.HookedLM`.

Given paired items (:class:`experiments.persuasion.items.ItemBatch`), with p = the softmax over the
four options' answer tokens at the last position:

1. behaviour: clean accuracy, persuasion success on clean-correct items, the control arms, and the
   padding control (share of answers that move when the empty context field is padded);
2. restoration patching (Eq. 2): R(c) = E_i[p_correct(pers; c <- clean) - p_correct(pers)] on the
   flipped items, patching head c at the last position; heads are ranked exactly, or first by
   attribution patching (gradient x (z_clean - z_pers), ``candidates``) when there are many; under
   GQA also R of all query heads of d's KV group patched jointly;
3. the decision head d = argmax R: pattern-only patching (QK) vs full output (QK+OV), the attended
   option, and the OV copy test (one-hot attention on option j -> the model answers j);
4. geometry of d's write at the last position: PCA, clusters by answer, the discrete-jump statistic
   s = (w - v_correct).(v_target - v_correct) / |v_target - v_correct|^2 with per-item vertices v_j
   from the copy test;
5. the rank-one routing feature (Eq. 3, parametrization reconstructed): post-RoPE logits
   s_ij = q_i . k_ij * scale ~ b0 + (x_i . u)(x~_ij . r) on d's normed inputs (x~: centred option
   keys), alternating ridge least squares, k-fold CV error; under GQA also one r shared by all query
   heads of d's KV group (per-head u and b0: the keys, hence r, are the group's); steering
   +alpha sigma r^ at the target option; removal of the r-signal at the option tokens
   (``removal``: set each projection to the clean run's value, or project r out); a random
   direction as control;
6. upstream heads: each earlier head's clean output patched into the persuaded run, effect on
   x_target . r^ at d's layer; the selected heads' attention to the target mentions, their
   joint ablation, and the r-shift left when the keyword or the mention is removed.

Reconstructions (pluggable): ``positions`` of restoration patching, ``removal``, the rank-1 fit's
centring/ridge, the upstream selection rule (``upstream_k`` or ``upstream_threshold``).
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator
from torch import Tensor

from experiments.persuasion.items import ItemBatch
from modules.hooks import HeadPatch, HookedLM, patch_heads

Share = Annotated[float, Field(ge=0, le=1)]
METRICS = (
    "too_few",
    "n_items",
    "clean_acc",
    "bare_acc",
    "pad_change",
    "n_clean_correct",
    "pers_success",
    "pers_flip",
    "mention_correct",
    "mention_success",
    "keyword_correct",
    "keyword_success",
    "truthful_correct",
    "truthful_success",
    "n_flipped",
    "decision_layer",
    "decision_head",
    "decision_kv_group",
    "decision_depth",
    "R_top1",
    "R_top2",
    "repair_top_joint",
    "repair_top2_joint",
    "repair_random_joint",
    "R_random_mean",
    "R_top1_all_positions",
    "R_kv_group",
    "repair_full",
    "repair_pattern",
    "R_pattern",
    "pattern_share",
    "attended_is_answer",
    "attention_on_answer_ge_0.8",
    "attention_on_answer",
    "copy_fidelity",
    "pca3_variance",
    "silhouette",
    "centroid_ratio",
    "s_intermediate",
    "s_mean",
    "vertex_offset_pers",
    "vertex_offset_clean",
    "vertex_distance_ratio",
    "rank1_cv_error",
    "rank1_cv_error_kv_group",
    "r_kv_group_cosine",
    "steer_flip",
    "steer_monotone",
    "steer_flip_random",
    "removal_block",
    "removal_clean_acc",
    "removal_block_random",
    "r_shift",
    "r_shift_mention",
    "r_shift_keyword",
    "r_shift_truthful",
    "n_upstream",
    "upstream_band_min",
    "upstream_band_max",
    "upstream_joint_share",
    "upstream_ablation_block",
    "upstream_mention_attention",
)


@contextlib.contextmanager
def grad_mode():
    """Gradients inside Lightning's test loop (which runs under ``torch.inference_mode``)."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


class TooFew(Exception):
    """The model gives too little to analyse further (no clean-correct or flipped items)."""


class AnalysisConfig(BaseModel):
    """The analysis knobs (validated before any compute; every one is an ``algorithm.analysis`` key)."""

    model_config = ConfigDict(extra="forbid")
    candidates: NonNegativeInt = 0  # heads ranked exactly after attribution patching (0: all exactly)
    n_random: PositiveInt = 12  # random heads patched jointly as a control
    top_joint: PositiveInt = 3  # top heads patched jointly
    alphas: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)  # steering doses, x std of the projection
    claim_alpha: float = 4.0  # the dose the steering claim reads
    removal: Literal["clean_value", "project_out"] = "clean_value"
    folds: Annotated[int, Field(ge=2)] = 10  # CV folds of the rank-1 fit
    ridge: PositiveFloat = 1e-3  # ridge of the rank-1 fit (relative to the feature scale)
    upstream_k: NonNegativeInt = 0  # top-k upstream heads (0: all above upstream_threshold)
    upstream_threshold: Share = 0.1  # share of the r-shift a head must restore to be selected
    upstream_candidates: NonNegativeInt = (
        0  # upstream heads patched exactly after gradient attribution (0: all)
    )
    batch_size: PositiveInt = 64
    seed: int = 0  # random heads and random directions

    @model_validator(mode="after")
    def _alpha_in_doses(self):
        if self.claim_alpha not in self.alphas:
            raise ValueError(f"claim_alpha={self.claim_alpha} must be one of alphas={list(self.alphas)}")
        return self


DEFAULT_ANALYSIS = AnalysisConfig()


@dataclass
class Result:
    metrics: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class Analysis:
    def __init__(self, hooked: HookedLM, items: ItemBatch, cfg: AnalysisConfig):
        self.h, self.items, self.cfg = hooked, items, cfg
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.out = Result()
        self.T = items.mask.shape[1]
        self.last = torch.zeros(len(items), self.T, dtype=torch.bool)
        self.last[:, -1] = True

    # ---- forwards in chunks --------------------------------------------------------------
    def forward(self, arm: str, rows: Tensor, collect, make=None, **kw) -> list:
        """Run ``arm`` on ``rows`` in chunks; ``make(chunk_rows) -> run kwargs``; ``collect(run, chunk)``."""
        outs = []
        for start in range(0, len(rows), self.cfg.batch_size):
            chunk = rows[start : start + self.cfg.batch_size]
            extra = make(chunk) if make else {}
            run = self.h.run(
                self.items.ids[arm][chunk],
                self.items.mask[chunk],
                attention_bias=self.items.bias,
                logits_to_keep=1,
                **kw,
                **extra,
            )
            outs.append(collect(run, chunk))
        return outs

    def probs(self, logits: Tensor, rows: Tensor) -> Tensor:
        """Softmax over the four options' answer tokens at the last position: [n, 4]."""
        return torch.softmax(logits[:, -1].gather(1, self.items.answer_ids[rows]), -1)

    def option_probs(self, arm: str, rows: Tensor, **kw) -> Tensor:
        return torch.cat(self.forward(arm, rows, lambda r, c: self.probs(r.logits, c), **kw))

    def capture(self, arm: str, rows: Tensor, names: tuple, layers: list[int]) -> dict:
        """Captured tensors of ``arm`` on ``rows``, concatenated over chunks: {name: {layer: tensor}}."""
        parts = self.forward(
            arm, rows, lambda r, c: {n: dict(getattr(r, n)) for n in names}, capture=names, layers=layers
        )
        return {n: {lay: torch.cat([p[n][lay] for p in parts]) for lay in layers} for n in names}

    # ---- 1. behaviour ----------------------------------------------------------------------
    def behaviour(self) -> None:
        it, m = self.items, self.out.metrics
        every = torch.arange(len(it))
        p_clean = self.option_probs("clean", every)
        self.C = every[p_clean.argmax(1) == it.correct]
        m["n_items"], m["clean_acc"] = len(it), float((p_clean.argmax(1) == it.correct).float().mean())
        m["n_clean_correct"] = len(self.C)
        if it.bare_ids is not None:  # padding control: the same prompt with an empty context field
            p_bare = torch.cat(
                [
                    self.probs(self.h.run(it.bare_ids[c], it.bare_mask[c], logits_to_keep=1).logits, c)
                    for c in every.split(self.cfg.batch_size)
                ]
            )
            m["bare_acc"] = float((p_bare.argmax(1) == it.correct).float().mean())
            m["pad_change"] = float((p_bare.argmax(1) != p_clean.argmax(1)).float().mean())
        if len(self.C) == 0:
            raise TooFew("no item is answered correctly without persuasion")
        self.p = {"clean": p_clean[self.C]}
        for arm in it.ids:
            if arm != "clean":
                self.p[arm] = self.option_probs(arm, self.C)
        choice = {arm: p.argmax(1) for arm, p in self.p.items()}
        correct, target = it.correct[self.C], it.target[self.C]
        m["pers_success"] = float((choice["pers"] == target).float().mean())
        m["pers_flip"] = float((choice["pers"] != correct).float().mean())
        for arm in ("mention", "keyword", "truthful"):
            if arm in choice:
                m[f"{arm}_correct"] = float((choice[arm] == correct).float().mean())
                m[f"{arm}_success"] = float((choice[arm] == target).float().mean())
        self.F = self.C[choice["pers"] == target]
        m["n_flipped"] = len(self.F)
        if len(self.F) < 2:
            raise TooFew(f"only {len(self.F)} clean-correct item(s) flip to the target")

    # ---- 2. restoration patching -------------------------------------------------------------
    def p_correct_metric(self, run, chunk_rows_of_F):
        rows = self.F[chunk_rows_of_F]
        return self.probs(run.logits, rows).gather(1, self.items.correct[rows, None])[:, 0]

    def restoration(self) -> None:
        h, it, F = self.h, self.items, self.F
        heads = [(layer, k) for layer in range(h.n_layers) for k in range(h.n_heads)]
        clean = self.capture("clean", F, ("z",), list(range(h.n_layers)))["z"]
        self.clean_z = clean
        p_pers = self.p["pers"][torch.searchsorted(self.C, F)].gather(1, it.correct[F, None])[:, 0]
        self.p_pers = p_pers
        if self.cfg.candidates and self.cfg.candidates < len(heads):
            atp = self.attribution(F, clean)
            order = np.argsort(-atp.numpy().ravel())
            heads = [heads[i] for i in order[: self.cfg.candidates]]
            self.out.arrays["atp"] = atp.numpy()
        R = patch_heads(
            h,
            it.ids["pers"][F],
            it.mask[F],
            clean,
            heads,
            self.p_correct_metric,
            where=self.last[F],
            batch_size=self.cfg.batch_size,
            attention_bias=it.bias,
            logits_to_keep=1,
        )
        R = (R - p_pers[:, None]).mean(0)  # [n_heads]
        grid = np.full((h.n_layers, h.n_heads), np.nan)
        for (layer, k), r in zip(heads, R.tolist()):
            grid[layer, k] = r
        self.out.arrays["restoration"] = grid
        order = torch.argsort(-R)
        self.ranked = [heads[i] for i in order.tolist()]
        self.out.arrays["ranked"] = np.array(self.ranked, dtype=int)
        self.R = {heads[i]: float(R[i]) for i in range(len(heads))}
        self.d = self.ranked[0]
        m = self.out.metrics
        m["decision_layer"], m["decision_head"] = self.d
        m["decision_kv_group"] = h.kv_group(self.d[1])
        m["decision_depth"] = self.d[0] / max(h.n_layers - 1, 1)
        m["R_top1"], m["R_top2"] = self.R[self.ranked[0]], self.R[self.ranked[1]]
        top = self.ranked[: self.cfg.top_joint]
        m["repair_top_joint"] = self.repair(top, "z")
        m["repair_top2_joint"] = self.repair(self.ranked[:2], "z")
        every = [(layer, k) for layer in range(h.n_layers) for k in range(h.n_heads) if (layer, k) not in top]
        pick = torch.randperm(len(every), generator=self.gen)[: min(self.cfg.n_random, len(every))]
        rand = [every[i] for i in pick.tolist()]
        m["repair_random_joint"] = self.repair(rand, "z")
        m["R_random_mean"] = float(np.mean(self.single_R(rand)))
        m["R_top1_all_positions"] = float(self.single_R([self.d], where=None)[0])
        group = [(self.d[0], k) for k in range(h.n_heads) if h.kv_group(k) == h.kv_group(self.d[1])]
        p = self.patched_probs(group, "z")  # GQA: every query head sharing d's keys/values, jointly
        m["R_kv_group"] = float((p.gather(1, it.correct[F, None])[:, 0] - p_pers).mean())

    def attribution(self, rows: Tensor, clean: dict) -> Tensor:
        """Attribution patching: sum over d_head of (z_clean - z_pers) dp_correct/dz at the last position."""
        h = self.h
        scores = torch.zeros(h.n_layers, h.n_heads)
        for start in range(0, len(rows), self.cfg.batch_size):
            chunk = torch.arange(start, min(start + self.cfg.batch_size, len(rows)))
            r = rows[chunk]
            with grad_mode():
                ids, mask, answers, correct = self.grad_inputs(r)
                run = h.run(ids, mask, capture=("z",), attention_bias=self.items.bias, logits_to_keep=1)
                p = torch.softmax(run.logits[:, -1].gather(1, answers), -1)
                metric = p.gather(1, correct[:, None]).sum()
                grads = torch.autograd.grad(metric, [run.z[layer] for layer in range(h.n_layers)])
            for layer, g in enumerate(grads):
                delta = clean[layer][chunk, -1] - run.z[layer][:, -1].detach()  # [n, H, d]
                scores[layer] += (delta * g[:, -1]).sum((0, 2))
        return scores / len(rows)

    def grad_inputs(self, rows: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Copies of the rows' ids, mask, answer tokens and correct indices usable by autograd."""
        it = self.items
        return (
            it.ids["pers"][rows].clone(),
            it.mask[rows].clone(),
            it.answer_ids[rows].clone(),
            it.correct[rows].clone(),
        )

    def joint_patches(self, heads, kind, rows, source, where_last=True):
        """HeadPatches for ``heads`` on every row of ``rows`` (indices into the captured ``source``)."""
        local = torch.arange(len(rows))
        where = self.last[: len(rows)] if where_last else None
        if kind == "z":
            return [HeadPatch(layer, k, local, source[layer][rows, :, k], where) for layer, k in heads]
        return [HeadPatch(layer, k, local, source[layer][rows, k], where) for layer, k in heads]

    def patched_probs(self, heads, kind, source=None, where_last=True) -> Tensor:
        """Option probabilities of the flipped items' persuaded runs, ``heads`` patched jointly: [f, 4]."""
        source = self.clean_z if source is None else source
        key = "patch_z" if kind == "z" else "patch_pattern"
        idx = torch.arange(len(self.F))

        def make(chunk):
            return {
                key: self.joint_patches(
                    heads, kind, idx[torch.searchsorted(self.F, chunk)], source, where_last
                )
            }

        return self.option_probs("pers", self.F, make=make)

    def repair(self, heads, kind, source=None, where_last=True) -> float:
        """Share of flipped items whose answer returns to the correct option when ``heads`` are patched."""
        p = self.patched_probs(heads, kind, source, where_last)
        return float((p.argmax(1) == self.items.correct[self.F]).float().mean())

    def single_R(self, heads, where="last") -> list[float]:
        R = patch_heads(
            self.h,
            self.items.ids["pers"][self.F],
            self.items.mask[self.F],
            self.clean_z,
            heads,
            self.p_correct_metric,
            where=self.last[self.F] if where == "last" else None,
            batch_size=self.cfg.batch_size,
            attention_bias=self.items.bias,
            logits_to_keep=1,
        )
        return (R - self.p_pers[:, None]).mean(0).tolist()

    # ---- 3. copying: QK vs OV, attention, copy test -----------------------------------------
    def copying(self) -> None:
        h, it, (L, H), m = self.h, self.items, self.d, self.out.metrics
        clean = self.capture("clean", self.C, ("z", "pattern", "q", "k", "normed"), [L])
        pers = self.capture("pers", self.C, ("z", "pattern", "q", "k", "normed"), [L])
        self.cache = {"clean": clean, "pers": pers}
        inF = torch.isin(self.C, self.F)
        pattern_src = {L: clean["pattern"][L][inF]}
        m["repair_full"] = self.repair([self.d], "z")
        m["repair_pattern"] = self.repair([self.d], "pattern", source=pattern_src)
        m["R_pattern"] = float(np.mean(self.pattern_R(pattern_src)))
        m["pattern_share"] = m["R_pattern"] / m["R_top1"] if m["R_top1"] > 0 else float("nan")
        opt = it.option_pos[self.C]  # [n, 4]
        att = {
            arm: c["pattern"][L][torch.arange(len(self.C))[:, None], H, -1, opt]
            for arm, c in self.cache.items()
        }
        chosen = {"clean": self.p["clean"].argmax(1), "pers": self.p["pers"].argmax(1)}
        agree = torch.cat(
            [att["clean"].argmax(1) == chosen["clean"], (att["pers"].argmax(1) == chosen["pers"])[inF]]
        )
        mass = torch.cat(
            [
                att["clean"].gather(1, chosen["clean"][:, None])[:, 0],
                att["pers"].gather(1, chosen["pers"][:, None])[:, 0][inF],
            ]
        )
        m["attended_is_answer"] = float(agree.float().mean())
        m["attention_on_answer_ge_0.8"] = float((mass >= 0.8).float().mean())
        m["attention_on_answer"] = float(mass.mean())
        vertices, copied = [], []
        for j in range(4):
            onehot = torch.zeros(len(self.C), self.T)
            onehot[torch.arange(len(self.C)), opt[:, j]] = 1.0

            def make(chunk, onehot=onehot):
                local = torch.searchsorted(self.C, chunk)
                value = onehot[local][:, None, :].expand(-1, self.T, -1)
                return {
                    "patch_pattern": [
                        HeadPatch(L, H, torch.arange(len(chunk)), value, self.last[: len(chunk)])
                    ]
                }

            res = self.forward(
                "clean",
                self.C,
                lambda r, c: (self.probs(r.logits, c), r.z[L][:, -1, H]),
                make=make,
                capture=("z",),
                layers=[L],
            )
            probs = torch.cat([a for a, _ in res])
            vertices.append(torch.cat([b for _, b in res]) @ h.W_O(L)[H])  # [n, D]
            copied.append(probs.argmax(1) == j)
        self.vertices = torch.stack(vertices, 1)  # [n, 4, D]
        m["copy_fidelity"] = float(torch.cat(copied).float().mean())

    def pattern_R(self, source) -> list[float]:
        idx = torch.arange(len(self.F))
        p = self.option_probs(
            "pers",
            self.F,
            make=lambda chunk: {
                "patch_pattern": self.joint_patches(
                    [self.d], "pattern", idx[torch.searchsorted(self.F, chunk)], source
                )
            },
        )
        return (p.gather(1, self.items.correct[self.F, None])[:, 0] - self.p_pers).tolist()

    # ---- 4. geometry ------------------------------------------------------------------------
    def geometry(self) -> None:
        from sklearn.decomposition import PCA
        from sklearn.metrics import silhouette_score

        (L, H), m, it = self.d, self.out.metrics, self.items
        inF = torch.isin(self.C, self.F)
        w = {
            arm: self.h.head_write(L, self.cache[arm]["z"][L][:, -1])[:, H] for arm in ("clean", "pers")
        }  # [n, D]
        points = torch.cat([w["clean"], w["pers"][inF]]).numpy()
        chosen = torch.cat([self.p["clean"].argmax(1), self.p["pers"].argmax(1)[inF]])
        rows = torch.cat([self.C, self.F])
        labels = it.answer_ids[rows].gather(1, chosen[:, None])[:, 0].numpy()
        pca = PCA(n_components=min(3, len(points) - 1)).fit(points)
        m["pca3_variance"] = float(pca.explained_variance_ratio_.sum())
        m["silhouette"] = (
            float(silhouette_score(points, labels)) if 1 < len(set(labels)) < len(points) else float("nan")
        )
        cents = [points[labels == lab].mean(0) for lab in np.unique(labels) if (labels == lab).sum() >= 2]
        dists = [np.linalg.norm(a - b) for i, a in enumerate(cents) for b in cents[i + 1 :]]
        m["centroid_ratio"] = (
            float(max(dists) / min(dists)) if len(dists) > 0 and min(dists) > 0 else float("nan")
        )
        V = self.vertices[inF]  # [f, 4, D]
        c_idx, t_idx = it.correct[self.F], it.target[self.F]
        vc, vt = V[torch.arange(len(self.F)), c_idx], V[torch.arange(len(self.F)), t_idx]
        seg = vt - vc
        s = ((w["pers"][inF] - vc) * seg).sum(1) / (seg * seg).sum(1).clamp(min=1e-12)
        m["s_intermediate"] = float(((s > 0.25) & (s < 0.75)).float().mean())
        m["s_mean"] = float(s.mean())
        spread = torch.cdist(self.vertices, self.vertices).sum((1, 2)) / 12  # mean vertex distance
        near = {arm: torch.cdist(w[arm][:, None], self.vertices)[:, 0].min(1).values / spread for arm in w}
        m["vertex_offset_pers"] = float(near["pers"][inF].mean())
        m["vertex_offset_clean"] = float(near["clean"].mean())
        pv = torch.cdist(self.vertices, self.vertices)
        off = pv[:, ~torch.eye(4, dtype=torch.bool)].view(len(self.C), -1)
        m["vertex_distance_ratio"] = float((off.max(1).values / off.min(1).values.clamp(min=1e-12)).mean())
        self.out.arrays.update(
            pca_points=pca.transform(points),
            pca_labels=labels,
            pca_arm=np.r_[np.zeros(len(self.C)), np.ones(int(inF.sum()))],
            s=s.numpy(),
        )

    # ---- 5. the rank-one routing feature ----------------------------------------------------
    def logits_and_features(self, heads: list[int]):
        """Post-RoPE logits of the query ``heads`` of d's layer from the last position to the option tokens
        (their KV group's keys), with the layer's normed inputs; rows ordered (head, arm, item)."""
        L, opt = self.d[0], self.items.option_pos[self.C]
        scale = self.h.layers[L].self_attn.scaling
        n = len(self.C)
        S, XQ, XK = [], [], []
        for H in heads:
            for arm in ("clean", "pers"):
                c = self.cache[arm]
                q = c["q"][L][:, H, -1]  # [n, d]
                k = c["k"][L][torch.arange(n)[:, None], self.h.kv_group(H), opt]  # [n, 4, d]
                S.append((k @ q[:, :, None])[..., 0] * scale)  # [n, 4]
                XQ.append(c["normed"][L][:, -1])
                XK.append(c["normed"][L][torch.arange(n)[:, None], opt])  # [n, 4, D]
        group = torch.arange(len(heads)).repeat_interleave(2 * n)  # the query head of each row
        return torch.cat(S).double(), torch.cat(XQ).double(), torch.cat(XK).double(), group

    def fit_rank1(self, S, XQ, XK, group, iters: int = 30):
        """argmin sum (s_ij - b_g - (xq_i.u_g)(xk~_ij.r))^2 by alternating ridge least squares: one key
        direction r shared by the rows' query heads g (a GQA group shares its keys), a query direction
        u_g and offset b_g per head. Returns (u [G, D], r [D], b [G], key mean)."""
        G, D = int(group.max()) + 1, XK.shape[-1]
        mean_k = XK.reshape(-1, D).mean(0)
        Xk = XK - mean_k
        E = torch.nn.functional.one_hot(group, G).to(S.dtype)  # [m, G] per-head offsets
        E4 = E[:, None].expand(-1, 4, -1).reshape(-1, G)  # [m * 4, G]

        def ridge(A, y, E):
            A1 = torch.cat([A, E], 1)
            lam = self.cfg.ridge * (A1 * A1).sum() / A1.shape[1]
            reg = lam * torch.eye(A1.shape[1], dtype=A.dtype)
            reg[D:, D:] = 0  # offsets unpenalised
            sol = torch.linalg.solve(A1.T @ A1 + reg, A1.T @ y)
            return sol[:D], sol[D:]

        r, b = ridge(Xk.reshape(-1, D), S.reshape(-1), E4)  # constant-query start
        u = torch.zeros(G, D, dtype=S.dtype)
        for _ in range(iters):
            a = Xk @ r  # [m, 4]
            for g in range(G):
                sel = group == g
                design = (XQ[sel][:, None, :] * a[sel][..., None]).reshape(-1, D)
                u[g], b[g : g + 1] = ridge(
                    design, S[sel].reshape(-1), torch.ones(len(design), 1, dtype=S.dtype)
                )
            qa = (XQ * u[group]).sum(1)  # [m]
            r, b = ridge((qa[:, None, None] * Xk).reshape(-1, D), S.reshape(-1), E4)
        sign = torch.sign((XQ * u[group]).sum(1).mean())
        return u * sign, r * sign, b, mean_k

    def rank1_cv(self, S, XQ, XK, group) -> float:
        """k-fold CV normalised error of the rank-one fit, folds by item (every row of an item together)."""
        n = len(self.C)
        item_of = torch.arange(len(S)) % n
        folds = min(self.cfg.folds, n)
        fold = torch.randperm(n, generator=self.gen)[item_of] % folds
        err_num, err_den = 0.0, 0.0
        for f in range(folds):
            tr, te = fold != f, fold == f
            u, r, b, mk = self.fit_rank1(S[tr], XQ[tr], XK[tr], group[tr])
            pred = b[group[te], None] + (XQ[te] * u[group[te]]).sum(1)[:, None] * ((XK[te] - mk) @ r)
            err_num += float(((S[te] - pred) ** 2).sum())
            err_den += float(((S[te] - S[te].mean()) ** 2).sum())
        return err_num / err_den

    def routing(self) -> None:
        m, it, H = self.out.metrics, self.items, self.d[1]
        S, XQ, XK, group = self.logits_and_features([H])
        m["rank1_cv_error"] = self.rank1_cv(S, XQ, XK, group)
        u, r, b, mk = self.fit_rank1(S, XQ, XK, group)
        shared = [k for k in range(self.h.n_heads) if self.h.kv_group(k) == self.h.kv_group(H)]
        if len(shared) > 1:  # GQA: one r for every query head of d's KV group (Gemma-3-270M: the layer)
            fit = self.logits_and_features(shared)
            m["rank1_cv_error_kv_group"] = self.rank1_cv(*fit)
            r_group = self.fit_rank1(*fit)[1]
            m["r_kv_group_cosine"] = float(torch.nn.functional.cosine_similarity(r_group, r, dim=0).abs())
        else:
            m["rank1_cv_error_kv_group"], m["r_kv_group_cosine"] = m["rank1_cv_error"], 1.0
        self.r_hat = (r / r.norm()).float()
        proj = ((XK - mk) @ r / r.norm()).float()
        self.sigma = float(proj.std())
        self.out.arrays["r_hat"] = self.r_hat.numpy()
        # steering: +alpha sigma r^ at the target option of clean runs
        tpos = it.option_pos[self.C].gather(1, it.target[self.C, None])[:, 0]
        doses = []
        for alpha in self.cfg.alphas:
            doses.append(self.steer_rate(self.r_hat, alpha, tpos))
        self.out.arrays["dose_alpha"], self.out.arrays["dose_flip"] = (
            np.array(self.cfg.alphas),
            np.array(doses),
        )
        m["steer_flip"] = doses[list(self.cfg.alphas).index(self.cfg.claim_alpha)]
        m["steer_monotone"] = float(all(b >= a - 0.05 for a, b in itertools.pairwise(doses)))
        self.rand_dir = self.random_direction((XK - mk).reshape(-1, XK.shape[-1]).float())
        m["steer_flip_random"] = self.steer_rate(self.rand_dir, self.cfg.claim_alpha, tpos)
        m["removal_block"], m["removal_clean_acc"] = self.remove(self.r_hat)
        m["removal_block_random"], _ = self.remove(self.rand_dir)

    def random_direction(self, keys: Tensor) -> Tensor:
        """A unit direction drawn at random inside the span where the option tokens' inputs vary
        (principal axes holding 99% of their variance), orthogonal to r^: the same-norm control."""
        _, sv, vt = torch.linalg.svd(keys, full_matrices=False)
        k = int((torch.cumsum(sv**2, 0) / (sv**2).sum() < 0.99).sum()) + 1
        rand = torch.randn(k, generator=self.gen) @ vt[:k]
        rand = rand - (rand @ self.r_hat) * self.r_hat
        return rand / rand.norm()

    def steer_rate(self, direction: Tensor, alpha: float, tpos: Tensor) -> float:
        L = self.d[0]
        C = self.C

        def make(chunk):
            pos = tpos[torch.searchsorted(C, chunk)]

            def edit(x):
                x = x.clone()
                x[torch.arange(len(pos)), pos] += alpha * self.sigma * direction
                return x

            return {"edit_normed": {L: edit}}

        p = self.option_probs("clean", C, make=make)
        return float((p.argmax(1) == self.items.target[C]).float().mean())

    def remove(self, direction: Tensor) -> tuple[float, float]:
        """Persuasion success blocked (relative) and clean accuracy with ``direction`` removed at options."""
        L, C, it = self.d[0], self.C, self.items
        opt = it.option_pos[C]
        clean_proj = (
            self.cache["clean"]["normed"][L][torch.arange(len(C))[:, None], opt] @ direction
        )  # [n, 4]
        mean_clean = clean_proj.mean()

        def make_for(arm):
            def make(chunk):
                rows = torch.searchsorted(C, chunk)
                pos = opt[rows]
                goal = (
                    clean_proj[rows] if self.cfg.removal == "clean_value" else mean_clean.expand(len(rows), 4)
                )

                def edit(x):
                    x = x.clone()
                    idx = torch.arange(len(rows))[:, None]
                    cur = x[idx, pos] @ direction  # [n, 4]
                    x[idx, pos] += (goal - cur)[..., None] * direction
                    return x

                return {"edit_normed": {L: edit}}

            return make

        pers = self.option_probs("pers", C, make=make_for("pers"))
        before = float((self.p["pers"].argmax(1) == it.target[C]).float().mean())
        after = float((pers.argmax(1) == it.target[C]).float().mean())
        clean = self.option_probs("clean", C, make=make_for("clean"))
        return 1.0 - after / before, float((clean.argmax(1) == it.correct[C]).float().mean())

    # ---- 6. upstream keyword heads ----------------------------------------------------------
    def r_projection(self, run, rows) -> Tensor:
        """x_target . r^ at the decision layer's normed input, target option position: [n]."""
        L, it = self.d[0], self.items
        tpos = it.option_pos[rows].gather(1, it.target[rows, None])[:, 0]
        return run.normed[L][torch.arange(len(rows)), tpos] @ self.r_hat

    def upstream(self) -> None:
        h, it, F, L, m = self.h, self.items, self.F, self.d[0], self.out.metrics
        heads = [(layer, k) for layer in range(L) for k in range(h.n_heads)]
        if not heads:
            raise TooFew(f"the decision head sits in layer {L}: no upstream heads")
        proj = {
            arm: torch.cat(
                self.forward(arm, F, lambda r, c: self.r_projection(r, c), capture=("normed",), layers=[L])
            )
            for arm in it.ids
        }
        shift = (proj["pers"] - proj["clean"]).mean()
        m["r_shift"] = float(shift)
        for arm in ("mention", "keyword", "truthful"):
            if arm in proj:
                m[f"r_shift_{arm}"] = float((proj[arm] - proj["clean"]).mean() / shift)
        if self.cfg.upstream_candidates and self.cfg.upstream_candidates < len(heads):
            grad = self.upstream_attribution(F, heads)
            heads = [heads[i] for i in np.argsort(-grad)[: self.cfg.upstream_candidates]]

        def metric(run, local):
            return self.r_projection(run, F[local])

        patched = patch_heads(
            h,
            it.ids["pers"][F],
            it.mask[F],
            self.clean_z,
            heads,
            metric,
            batch_size=self.cfg.batch_size,
            attention_bias=it.bias,
            capture=("normed",),
            layers=[L],
            logits_to_keep=1,
        )
        effect = ((proj["pers"][:, None] - patched).mean(0) / shift).numpy()  # [n_heads]
        grid = np.full((h.n_layers, h.n_heads), np.nan)
        for (layer, k), e in zip(heads, effect):
            grid[layer, k] = e
        self.out.arrays["upstream"] = grid
        order = np.argsort(-effect)
        if self.cfg.upstream_k:
            chosen = [heads[i] for i in order[: self.cfg.upstream_k]]
        else:
            chosen = [heads[i] for i in order if effect[i] >= self.cfg.upstream_threshold]
        self.out.arrays["keyword_heads"] = np.array(chosen, dtype=int).reshape(-1, 2)
        m["n_upstream"] = len(chosen)
        if not chosen:
            return
        m["upstream_band_min"], m["upstream_band_max"] = min(x[0] for x in chosen), max(x[0] for x in chosen)
        idx = torch.arange(len(F))

        def make(chunk):
            return {
                "patch_z": self.joint_patches(
                    chosen, "z", idx[torch.searchsorted(F, chunk)], self.clean_z, where_last=False
                )
            }

        res = self.forward(
            "pers",
            F,
            lambda r, c: (self.r_projection(r, c), self.probs(r.logits, c).argmax(1)),
            make=make,
            capture=("normed",),
            layers=[L],
        )
        joint_proj, joint_choice = torch.cat([a for a, _ in res]), torch.cat([b for _, b in res])
        m["upstream_joint_share"] = float((proj["pers"] - joint_proj).mean() / shift)
        m["upstream_ablation_block"] = float((joint_choice != it.target[F]).float().mean())
        layers = sorted({x[0] for x in chosen})
        pats = self.capture("pers", F, ("pattern",), layers)["pattern"]
        values = it.option_pos if it.value_pos is None else it.value_pos  # from the target's value token
        tpos = values[F].gather(1, it.target[F, None])[:, 0]
        masses = [
            (pats[layer][torch.arange(len(F)), k, tpos] * it.mentions[F].float()).sum(1).mean()
            for layer, k in chosen
        ]
        m["upstream_mention_attention"] = float(max(masses))

    def upstream_attribution(self, rows: Tensor, heads) -> np.ndarray:
        """Gradient x (z_clean - z_pers), all positions, of x_target . r^: one score per head."""
        L, h = self.d[0], self.h
        scores = np.zeros(len(heads))
        for start in range(0, len(rows), self.cfg.batch_size):
            chunk = torch.arange(start, min(start + self.cfg.batch_size, len(rows)))
            r = rows[chunk]
            with grad_mode():
                ids, mask, _, _ = self.grad_inputs(r)
                tpos = self.items.option_pos[r].gather(1, self.items.target[r, None])[:, 0].clone()
                run = h.run(
                    ids,
                    mask,
                    capture=("z", "normed"),
                    layers=list(range(L + 1)),
                    attention_bias=self.items.bias,
                    logits_to_keep=1,
                )
                proj = run.normed[L][torch.arange(len(r)), tpos] @ self.r_hat.clone()
                grads = torch.autograd.grad(proj.sum(), [run.z[layer] for layer in range(L)])
            for i, (layer, k) in enumerate(heads):
                delta = self.clean_z[layer][chunk, :, k] - run.z[layer][:, :, k].detach()
                scores[i] -= float((delta * grads[layer][:, :, k]).sum())
        return scores

    def run(self) -> Result:
        """All steps; where the model gives too little to analyse (e.g. after 2 training steps), the
        remaining figures are NaN (same keys on every run and rank) and ``too_few`` is 1."""
        self.out.metrics["too_few"] = 0.0
        try:
            with torch.no_grad():
                self.behaviour()
                self.restoration()
                self.copying()
                self.geometry()
                self.routing()
                self.upstream()
        except TooFew:
            self.out.metrics["too_few"] = 1.0
        self.out.metrics = {k: self.out.metrics.get(k, float("nan")) for k in METRICS}
        return self.out
