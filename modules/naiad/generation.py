"""Decoupled generation on the offline LLM (NaiAD, arXiv 2605.09918; notes N4 and N5-exploratory).

Per (query, ad) pair (one ``test_step``): Stage-1 bridge, then one response per arm (the four
(U, C) target quadrants and the "standard" prompt; ``modules/naiad/pipeline.py``), scored with the
embedding proxies and, when ``judge=true``, the LLM-as-judge per dimension.

``summarize`` then tests the decoupling on ``scorer`` (the proxies when nothing was rejected on
them, else the judge): one-sided Mann-Whitney tests that the C target raises the commercial score
and the U target the user score, and rank-biserial main and cross effects (the cross effect -- C
target on the user score, U target on the commercial score -- should be smaller). Identical texts
within an arm (the same prompt and seed) count once. It writes ``naiad_rows.jsonl`` in the
``llm_ads`` schema, with ``ppied_scores`` = variance-calibrated labels of the cross-fitted
recalibrated judge, fitted on a random "human" subset whose four stand-in labels each have their
own signal [R] (q1 relevance, q2 fluency, q3 ad fit, q4 explicit recommendation), and, with
``cluster_bridges=true``, clusters the generated bridges. ``arms=[]`` generates bridges only.

Under DDP the pairs shard over ranks; each rank writes its pairs' texts to ``<run_dir>/rows/``;
every rank computes the same summary from them (same metric keys on every rank) and rank 0 writes
the JSONL (a shared run directory is assumed).
"""

import hashlib
import json
import re
from typing import Annotated, Literal

import numpy as np
from matplotlib.figure import Figure
from pydantic import Field, PositiveInt
from scipy.stats import mannwhitneyu, spearmanr

from experiments.base import stream_id
from experiments.naiad.schema import LLMAd, write_jsonl
from experiments.naiad.seeds import ADS, pairs
from modules.base import AtlasModule
from modules.llm import LLM_MODELS, LanguageModel
from modules.naiad.estimators import CrossFitPPI
from modules.naiad.labels import VarianceCalibratedLabels
from modules.naiad.pipeline import ARMS, QUADRANTS, DecoupledPipeline
from modules.naiad.scoring import RUBRICS, LLMJudge, Proxies
from modules.naiad.strategies import KeywordNamer, LLMNamer, assign_strategy, cluster_bridges

Arm = Literal["hiU_hiC", "hiU_loC", "loU_hiC", "loU_loC", "standard"]


def rank_biserial(x: np.ndarray, y: np.ndarray) -> float:
    """Effect size of x > y in [-1, 1]: 2 U / (n_x n_y) - 1."""
    return 2 * mannwhitneyu(x, y).statistic / (len(x) * len(y)) - 1


def shift_test(high: np.ndarray, low: np.ndarray) -> tuple[float, float]:
    """(one-sided Mann-Whitney p that ``high`` > ``low``, rank-biserial effect)."""
    return mannwhitneyu(high, low, alternative="greater").pvalue, rank_biserial(high, low)


def text_id(text: str) -> float:
    """A 48-bit hash of a text, exact as a float64 record (to count identical texts once)."""
    return float(int(hashlib.sha256(text.encode()).hexdigest()[:12], 16))


def fluency(text: str) -> float:
    """Stand-in q2 [R]: share of distinct words (repetition and degenerate loops score low)."""
    words = re.findall(r"[a-z']+", text.lower())
    return len(set(words)) / len(words) if words else 0.0


class DecoupledGeneration(AtlasModule):
    needs = "ad_pairs"
    models = LLM_MODELS
    stages = ("test",)

    def __init__(
        self,
        task,
        model: LanguageModel,
        arms: tuple[Arm, ...] = ARMS,
        user_cut: float = 0.35,
        commercial_cut: float = 0.9,
        max_tries: PositiveInt = 1,
        bridge_tokens: PositiveInt = 32,
        response_tokens: PositiveInt = 48,
        temperature: Annotated[float, Field(ge=0)] = 0.7,
        judge: bool = True,
        human_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.5,
        cluster_bridges: bool = False,
        k_max: Annotated[int, Field(ge=2)] = 6,
        namer: Literal["keywords", "llm"] = "keywords",
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        if max_tries > 1 and not judge:
            raise ValueError(
                "max_tries > 1 rejects responses on the proxies, so the decoupling must be judged by "
                "another scorer: set judge=true"
            )
        self.proxies = Proxies(model)
        self.pipeline = DecoupledPipeline(
            model,
            self.proxies,
            user_cut,
            commercial_cut,
            max_tries,
            bridge_tokens,
            response_tokens,
            temperature,
        )
        self.judge = LLMJudge(model) if judge else None
        self.arms = list(arms)

    def test_step(self, batch, batch_idx):
        index, item = batch
        query, ad = pairs()[item["pair"]]
        seed = self.task.seed * 1000 + item["repeat"] * 10
        bridge = self.pipeline.bridge(query, ad, seed)
        responses = [self.pipeline.response(query, ad, bridge, arm, seed) for arm in self.arms]
        judged = [
            self.judge.score(query.text, ad, r.text) if self.judge else np.full(4, np.nan) for r in responses
        ]
        path = self.run_dir / "rows" / f"{index}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "query": query.text,
                    "ad": ad.name,
                    "bridge": bridge,
                    "category": ad.category,
                    "responses": [r.__dict__ for r in responses],
                    "judge": [j.tolist() for j in judged],
                }
            )
        )
        self.record(
            index,
            **{
                k: np.array([getattr(r, k) for r in responses], float)
                for k in ("user", "commercial", "mention", "accepted", "tries")
            },
            judge=np.array(judged).reshape(len(responses), 4),
            text=np.array([text_id(r.text) for r in responses]),
        )

    # ---- summary -------------------------------------------------------------------------
    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        m = {"naiad/gen_pairs": len(rows["index"])}
        arm = {a: i for i, a in enumerate(self.arms)}
        for a, i in arm.items():
            for key in ("user", "commercial", "mention", "accepted"):
                m[f"naiad/gen_{key}_{a}"] = rows[key][:, i].mean()
        if set(QUADRANTS) <= set(arm):
            unique = self.first_occurrence(rows["text"])  # [pairs, arms]
            m["naiad/gen_duplicate_share"] = 1 - unique.mean()
            if self.hparams.max_tries == 1:  # proxies selected nothing: they may judge
                m.update(self.decoupling(arm, rows["user"], rows["commercial"], unique, "proxy"))
            if self.judge is not None:
                user_j, comm_j = (
                    rows["judge"][..., :2].mean(-1),
                    rows["judge"][..., 2:].mean(-1),
                )  # [pairs, arms]
                m.update(self.decoupling(arm, user_j, comm_j, unique, "judge"))
            self.plot(rows, arm)
        m.update(self.write_rows(rows))
        return {k: float(v) for k, v in m.items()}

    @staticmethod
    def first_occurrence(text: np.ndarray) -> np.ndarray:
        """[pairs, arms] mask: True where a response's text is the first of its arm with that text."""
        keep = np.zeros(text.shape, bool)
        for j in range(text.shape[1]):
            _, first = np.unique(text[:, j], return_index=True)
            keep[first, j] = True
        return keep

    @staticmethod
    def decoupling(
        arm: dict[str, int], user: np.ndarray, commercial: np.ndarray, unique: np.ndarray, scorer: str
    ) -> dict[str, float]:
        """Main and cross effects of the U and C targets on one scorer's user/commercial scores [pairs, arms],
        over the distinct texts of each arm (``unique``)."""
        hi_c, lo_c = ([arm[a] for a, (_, c) in QUADRANTS.items() if c == high] for high in (True, False))
        hi_u, lo_u = ([arm[a] for a, (u, _) in QUADRANTS.items() if u == high] for high in (True, False))

        def pool(score: np.ndarray, columns: list[int]) -> np.ndarray:
            return score[:, columns][unique[:, columns]]

        p_c, main_c = shift_test(pool(commercial, hi_c), pool(commercial, lo_c))
        p_u, main_u = shift_test(pool(user, hi_u), pool(user, lo_u))
        cross_c = rank_biserial(pool(user, hi_c), pool(user, lo_c))  # C target -> user score
        cross_u = rank_biserial(pool(commercial, hi_u), pool(commercial, lo_u))  # U target -> commercial
        s = f"naiad/gen_{scorer}"
        return {
            f"{s}_p_commercial_target": p_c,
            f"{s}_p_user_target": p_u,
            f"{s}_effect_commercial_target": main_c,
            f"{s}_effect_user_target": main_u,
            f"{s}_cross_commercial_target_on_user": abs(cross_c),
            f"{s}_cross_user_target_on_commercial": abs(cross_u),
        }

    def collect(self) -> list[dict]:
        return [
            json.loads(p.read_text())
            for p in sorted((self.run_dir / "rows").glob("*.json"), key=lambda p: int(p.stem))
        ]

    def human_standin(self, flat: list) -> np.ndarray:
        """Stand-in "human" labels [m, 4] on 0-100 [R], one signal per dimension: q1 relevance (copy-penalised
        query similarity), q2 fluency (distinct-word share), q3 ad fit (copy-penalised similarity to the ad
        info), q4 explicit recommendation (the ad is named)."""
        ads = {a.name: a for a in ADS}
        proxy = self.proxies(
            [p["query"] for p, _, _ in flat],
            [ads[p["ad"]] for p, _, _ in flat],
            [r["text"] for _, r, _ in flat],
        )
        q1 = 100 * proxy["user"]
        q2 = 100 * np.array([fluency(r["text"]) for _, r, _ in flat])
        q3 = 100 * (proxy["commercial"] - proxy["mention"])
        q4 = 100 * proxy["mention"]
        return np.clip(np.stack([q1, q2, q3, q4], axis=1), 0, 100)

    def write_rows(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        """naiad_rows.jsonl in the llm_ads schema (ppied_scores calibrated), and bridge clustering."""
        items = self.collect()
        ads = {a.name: a for a in ADS}
        strategies = assign_strategy([p["bridge"] for p in items], self.model_factory.encoder())
        m = {}
        if self.arms:
            flat = [
                (dict(p, strategy=s), r, np.array(j))
                for p, s in zip(items, strategies)
                for r, j in zip(p["responses"], p["judge"])
            ]
            human = self.human_standin(flat)
            judge = np.array([j for _, _, j in flat]) if self.judge else human
            labelled = self.human_subset(len(flat))
            scores = np.clip(self.calibrate(human, judge, labelled), 0, 100)
            m["naiad/gen_ppied_spearman_user"] = spearmanr(scores[:, 0], human[:, 0])[0]
            m["naiad/gen_judge_spearman_user"] = spearmanr(judge[:, 0], human[:, 0])[0]
            out = [
                LLMAd(
                    id=f"{i}",
                    query=p["query"],
                    category=[p["category"]],
                    ad_name=p["ad"],
                    ad_label=ads[p["ad"]].label,
                    ad_info=ads[p["ad"]].info,
                    logic_bridge=p["bridge"],
                    strategy=p["strategy"],
                    response=r["text"],
                    ppied_scores=dict(zip(RUBRICS, s)),
                )
                for i, ((p, r, _), s) in enumerate(zip(flat, scores))
            ]
            if self.trainer.is_global_zero:
                write_jsonl(self.run_dir / "naiad_rows.jsonl", out)
        if self.hparams.cluster_bridges:
            m.update(self.cluster([p["bridge"] for p in items], [p["category"] for p in items]))
        return m

    @staticmethod
    def calibrate(human: np.ndarray, judge: np.ndarray, labelled: np.ndarray) -> np.ndarray:
        """ppied_scores [m, 4]: the cross-fitted recalibration of all four judge scores (VC-PPI option A;
        it can undo a judge that ranks backwards), mapped by the variance-calibrated labels (option B)."""
        n = int(labelled.sum())
        f_lab, f_unl = CrossFitPPI(folds=max(2, min(5, n // 2))).cross_predict(
            human[labelled], judge[labelled], judge[~labelled]
        )
        f = np.empty_like(judge)
        f[labelled], f[~labelled] = f_lab, f_unl
        return VarianceCalibratedLabels().fit(human[labelled], f_lab, f_unl).transform(f)

    def human_subset(self, m: int) -> np.ndarray:
        """A random mask of round(human_fraction * m) "human-labelled" rows (>= 4 for 2-fold cross-fitting,
        and >= 1 row left unlabelled)."""
        if m < 5:
            raise ValueError(
                f"{m} generated rows are too few to calibrate scores: need >= 5 (4 labelled + 1 unlabelled)"
            )
        n = min(max(4, round(self.hparams.human_fraction * m)), m - 1)
        mask = np.zeros(m, bool)
        mask[np.random.default_rng([self.task.seed, stream_id("human_subset")]).permutation(m)[:n]] = True
        return mask

    def cluster(self, texts: list[str], categories: list[str]) -> dict[str, float]:
        ks = range(2, min(self.hparams.k_max, len(texts) - 1) + 1)
        c = cluster_bridges(texts, categories, ks, "category", self.model_factory.encoder(), self.task.seed)
        namer = (
            LLMNamer(self.model_factory, self.task.seed) if self.hparams.namer == "llm" else KeywordNamer()
        )
        names = namer(texts, c["labels"])
        summary = [
            {
                "cluster": int(k),
                "name": n,
                "size": int((c["labels"] == k).sum()),
                "examples": [t for t, lab in zip(texts, c["labels"]) if lab == k][:3],
            }
            for k, n in zip(np.unique(c["labels"]), names)
        ]
        (self.run_dir / "bridge_clusters.json").write_text(
            json.dumps(
                {
                    "ks": list(ks),
                    "silhouette": c["curve"].tolist(),
                    "raw_silhouette": c["raw_curve"].tolist(),
                    "clusters": summary,
                },
                indent=2,
            )
        )
        fig = Figure(figsize=(5, 3.2))
        ax = fig.subplots()
        ax.plot(list(ks), c["curve"], "o-", label="category-centred")
        ax.plot(list(ks), c["raw_curve"], "s--", color="gray", label="raw")
        ax.set(xlabel="k", ylabel="cosine silhouette", title=f"{len(texts)} LLM-generated bridges")
        ax.legend()
        self.save_figure(fig, "bridge_silhouette")
        return {"naiad/gen_bridges_best_k": c["best_k"], "naiad/gen_bridges_silhouette_max": c["curve"].max()}

    def plot(self, rows: dict[str, np.ndarray], arm: dict[str, int]) -> None:
        """Score distributions per target quadrant: proxies (and judge) scatter, one colour per arm."""
        panels = [("user", "commercial", "proxies")] + (
            [("judge_u", "judge_c", "LLM judge")] if self.judge else []
        )
        fig = Figure(figsize=(5 * len(panels), 4))
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        series = {
            "user": rows["user"],
            "commercial": rows["commercial"],
            "judge_u": rows["judge"][..., :2].mean(-1),
            "judge_c": rows["judge"][..., 2:].mean(-1),
        }
        for ax, (x, y, title) in zip(axes, panels):
            for a, i in arm.items():
                ax.scatter(series[x][:, i], series[y][:, i], label=a, alpha=0.7)
            ax.set(xlabel=f"user utility ({title})", ylabel=f"commercial utility ({title})", title=title)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"score distributions per target quadrant ({len(rows['index'])} pairs)")
        self.save_figure(fig, "quadrants")
