"""An LLM-grounded population: measured approval, predicted exclusion, and steering (claim 5).

LLM Active Alignment (arXiv:2602.06836), social-media setting. One ``test_step`` = one replica:

1. Every persona posts ``calibration + heldout`` times (``model.generate`` with its system prompt;
   cached, so settings share posts and reruns generate nothing).
2. Separability first: posts are embedded (``model.encoder()``, MiniLM); the mean cosine of two
   posts of one persona minus that of two posts of different personas, and the accuracy of
   classifying each post by its nearest persona statement.
3. Approval is measured, not assumed: cos[d, e] = mean over persona e's calibration posts of
   cos(statement_d, post); M[d] = softmax(cos[d] / temperature) (a reconstruction: how the paper
   turns approval into numbers is not known).
4. The NE (closed form) of the plain, reasoning and steered settings (steered = reasoning plus the
   minimal subsidy of ``steering.py``); each agent posts ``samples_per_agent`` times as persona
   d ~ w_k, each post drawn from persona d's held-out posts (cycled: the pool is small because
   generation is the cost).
5. Each sampled post is classified by its nearest persona statement, and the classified shares are
   compared with the NE's group weights.

DDP: the replicas shard over ranks; every rank loads its own model.
"""

from typing import ClassVar

import numpy as np
from pydantic import PositiveFloat, PositiveInt
from scipy.special import softmax
from scipy.stats import spearmanr

from experiments.population_ne.game import Game, excluded_groups
from experiments.population_ne.personas import post_seed
from experiments.population_ne.social_media import SETTINGS
from experiments.population_ne.utilities import Quadratic
from modules.base import AtlasModule
from modules.llm import LLM_MODELS
from modules.population_ne.closed_form import closed_form_ne
from modules.population_ne.steering import minimal_subsidy


def separability(E: np.ndarray, labels: np.ndarray) -> float:
    """Mean cosine of two distinct posts of one persona minus that of two posts of different personas."""
    S = E @ E.T
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(E), dtype=bool)
    return float(S[same & off].mean() - S[~same].mean())


class LLMPopulation(AtlasModule):
    needs: ClassVar[str] = "persona_population"
    models = LLM_MODELS
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        max_new_tokens: PositiveInt = 40,
        temperature: PositiveFloat = 0.7,
        top_p: PositiveFloat = 0.95,
        approval_temperature: PositiveFloat = 0.05,
        eps: PositiveFloat = 0.02,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.lm = model
        self.decoding = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        self.approval_temperature, self.eps = approval_temperature, eps

    def posts(self, replica: int) -> list[list[str]]:
        """posts[d][j]: persona d's j-th post (calibration first, then held-out)."""
        n = self.task.calibration_posts + self.task.heldout_posts
        return [
            [
                self.lm.generate([p.prompt], seed=post_seed(replica, j), system=p.system, **self.decoding)[0]
                for j in range(n)
            ]
            for p in self.task.personas
        ]

    def test_step(self, batch, batch_idx):
        index, inst = batch
        task, D, C = self.task, self.task.D, self.task.calibration_posts
        posts = self.posts(inst["replica"])
        encoder = self.lm.encoder()
        S = encoder.encode([p.statement for p in task.personas], normalize_embeddings=True)  # [D, e]
        E = encoder.encode([t for texts in posts for t in texts], normalize_embeddings=True)
        E = E.reshape(D, len(posts[0]), -1)  # [D, n, e]
        labels = np.repeat(np.arange(D), E.shape[1])
        flat = E.reshape(-1, E.shape[-1])
        nearest = np.argmax(flat @ S.T, axis=1)
        cos = np.einsum("de,fje->dfj", S, E[:, :C]).mean(-1)  # [D, D]
        M = softmax(cos / self.approval_temperature, axis=1)
        u = Quadratic()
        shares, sigma = {}, np.zeros(D)
        for s in SETTINGS:
            game = Game(task.rho, M, inst["w0"], task.alpha[s], task.beta, task.gamma)
            if s == "steered":
                sigma = minimal_subsidy(game, self.eps)
                game = game.subsidised(sigma)
            shares[s] = closed_form_ne(game, u)  # [K, D]
        counts = np.zeros((len(SETTINGS), D))
        for i, s in enumerate(SETTINGS):
            cdf = np.cumsum(shares[s], axis=1)  # [K, D]
            persona = np.minimum(
                (inst["uniforms"][i][..., None] > cdf[:, None, :]).sum(-1), D - 1
            )  # [K, samples]
            for k, row in enumerate(persona):
                for n_d, d in enumerate(row):
                    j = C + (k * len(row) + n_d) % task.heldout_posts  # cycle the held-out posts
                    counts[i, np.argmax(S @ E[d, j])] += 1
        predicted = np.stack([shares[s].sum(0) / task.K for s in SETTINGS])  # [3, D]
        self.record(
            index,
            separability=separability(flat, labels),
            accuracy=float((nearest == labels).mean()),
            predicted=predicted,
            counts=counts,
            M=M,
            sigma=sigma,
            excluded=np.stack([excluded_groups(shares[s], 1e-9) for s in SETTINGS]).astype(float),
        )

    def summarize(self, rows):
        plain, reasoning, steered = range(len(SETTINGS))
        excluded, counts, predicted = rows["excluded"], rows["counts"], rows["predicted"]
        classified = counts / counts.sum(-1, keepdims=True)
        rho = [spearmanr(predicted[r].ravel(), classified[r].ravel()).statistic for r in range(len(counts))]
        m = {
            "llm/replicas": len(counts),
            "llm/separability_margin_min": rows["separability"].min(),
            "llm/separability_margin_mean": rows["separability"].mean(),
            "llm/persona_accuracy_mean": rows["accuracy"].mean(),
            "llm/excluded_plain_max": excluded[:, plain].sum(-1).max(),
            "llm/excluded_reasoning_min": excluded[:, reasoning].sum(-1).min(),
            "llm/excluded_steered_max": excluded[:, steered].sum(-1).max(),
            "llm/posts_in_excluded_groups_max": (counts[:, reasoning] * excluded[:, reasoning]).sum(-1).max(),
            # the same groups' classified posts in the plain setting, where nobody excludes them
            "llm/posts_in_those_groups_plain_min": (counts[:, plain] * excluded[:, reasoning]).sum(-1).min(),
            "llm/steered_min_posts": counts[:, steered].min(),
            "llm/steered_expected_min_posts": (
                predicted[:, steered] * counts[:, steered].sum(-1, keepdims=True)
            ).min(),
            "llm/spearman_min": float(np.nan_to_num(np.min(rho), nan=-1.0)),
            "llm/spearman_mean": float(np.nan_to_num(np.mean(rho), nan=-1.0)),
            "llm/sigma_norm_mean": float(np.linalg.norm(rows["sigma"], axis=-1).mean()),
        }
        self.plot(rows, classified)
        return m

    def plot(self, rows, classified):
        import matplotlib.pyplot as plt

        names = [p.name for p in self.task.personas]
        fig, axes = plt.subplots(1, 4, figsize=(15, 3.5))
        axes[0].imshow(rows["M"][0], cmap="viridis")
        axes[0].set(
            title="measured approval M (replica 0)", xticks=range(len(names)), yticks=range(len(names))
        )
        axes[0].set_xticklabels(names, rotation=45, fontsize=7)
        axes[0].set_yticklabels(names, fontsize=7)
        x = np.arange(len(names))
        for ax, s in zip(axes[1:], SETTINGS):
            i = SETTINGS.index(s)
            ax.bar(x - 0.2, rows["predicted"][0, i], 0.4, label="NE sum_k w_kd / K")
            ax.bar(x + 0.2, classified[0, i], 0.4, label="classified posts")
            ax.set(title=s, xticks=x)
            ax.set_xticklabels(names, rotation=45, fontsize=7)
        axes[1].legend(fontsize=7)
        self.save_figure(fig, "llm_population")
