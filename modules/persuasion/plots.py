"""Figures of the persuasion analysis: restoration heatmap, PCA of the decision head's write,
steering dose curve, upstream attribution."""

from __future__ import annotations

import numpy as np


def figures(arrays: dict[str, np.ndarray], title: str) -> dict:
    import matplotlib.pyplot as plt

    out = {}
    for name, label in (
        ("restoration", "restoration R(c), last position"),
        ("upstream", "share of the r-shift restored"),
    ):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        im = ax.imshow(arrays[name], aspect="auto", cmap="viridis")
        ax.set(xlabel="head", ylabel="layer", title=f"{title}: {label}")
        fig.colorbar(im, ax=ax)
        out[name] = fig
    fig, ax = plt.subplots(figsize=(4.5, 4))
    pts, arm, lab = arrays["pca_points"], arrays["pca_arm"], arrays["pca_labels"]
    for a, marker in ((0, "o"), (1, "x")):
        sel = arm == a
        ax.scatter(
            pts[sel, 0],
            pts[sel, 1] if pts.shape[1] > 1 else 0 * pts[sel, 0],
            c=lab[sel],
            marker=marker,
            cmap="tab10",
            s=18,
            label="clean" if a == 0 else "persuaded",
        )
    ax.set(xlabel="PC1", ylabel="PC2", title=f"{title}: decision head write")
    ax.legend()
    out["pca"] = fig
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot(arrays["dose_alpha"], arrays["dose_flip"], "o-")
    ax.set(
        xlabel="alpha (x std of the projection)",
        ylabel="clean runs flipped to the target",
        ylim=(-0.02, 1.02),
        title=f"{title}: steering along r",
    )
    out["steering"] = fig
    return out
