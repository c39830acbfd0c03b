"""Strategy clustering of logic bridges (NaiAD, arXiv 2605.09918: "reasoning paths cluster into four
distinct semantic strategies"). The procedure is our reconstruction [R]:

1. embed every ``logic_bridge`` with a sentence encoder (all-MiniLM-L6-v2, L2-normalised);
2. ``deconfound="category"``: subtract each ad category's mean embedding and renormalise. Raw
   MiniLM embeddings of bridges cluster by *topic* (the product and the query), not by strategy;
   a strategy is by definition topic-free, and the NaiAD schema carries each row's category;
3. k-means (n_init = 10) for k in [k_min, k_max], k chosen by the cosine silhouette; HDBSCAN as a
   cross-check of the number of clusters;
4. name each cluster (pluggable: c-TF-IDF keywords, or the offline LLM summarising its members);
5. relate membership to joint utility when the rows carry scores (mean U_user, U_comm per cluster).

Per instance (one set of bridges) the solver records the chosen k, the silhouette curve, the ARI
against planted/declared strategies (when present) and, as a diagnostic, the same on raw embeddings;
cluster names and members go to ``<run_dir>/clusters/<index>.json``. Under DDP the instances shard.
"""

import json
from typing import Annotated, Literal

import numpy as np
from matplotlib.figure import Figure
from pydantic import Field
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score, silhouette_score

from experiments.naiad.bridges import STRATEGIES, planted_bridges
from modules.base import AtlasModule
from modules.llm import LLM_MODELS, LanguageModel, load_sentence_encoder


def embed(texts: list[str], encoder) -> np.ndarray:
    """L2-normalised sentence embeddings [m, dim] from a ``SentenceTransformer``."""
    return encoder.encode(list(texts), normalize_embeddings=True, batch_size=64)


def centre_by_group(E: np.ndarray, groups: list[str]) -> np.ndarray:
    """Subtract each group's mean embedding (the topic), then renormalise rows."""
    groups = np.asarray(groups)
    E = E.copy()
    for g in np.unique(groups):
        E[groups == g] -= E[groups == g].mean(0)
    return E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)


def silhouette_curve(E: np.ndarray, ks: range, seed: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Cosine silhouette of k-means for every k in ``ks`` [len(ks)], and each k's labels."""
    if len(E) <= max(ks):
        raise ValueError(f"{len(E)} bridges are too few for k up to {max(ks)}; need more than {max(ks)}")
    labels = {k: KMeans(k, n_init=10, random_state=seed).fit_predict(E) for k in ks}
    return np.array([silhouette_score(E, labels[k], metric="cosine") for k in ks]), labels


def cluster_bridges(
    texts: list[str], categories: list[str], ks: range, deconfound: str, encoder, seed: int
) -> dict:
    """Steps 1-3 on one bridge set: the silhouette curve and chosen k, deconfounded and raw."""
    raw = embed(texts, encoder)
    E = centre_by_group(raw, categories) if deconfound == "category" else raw
    curve, labels = silhouette_curve(E, ks, seed)
    raw_curve, raw_labels = silhouette_curve(raw, ks, seed)
    best_k, raw_k = ks[int(np.argmax(curve))], ks[int(np.argmax(raw_curve))]
    return {
        "E": E,
        "curve": curve,
        "best_k": best_k,
        "labels": labels[best_k],
        "raw_curve": raw_curve,
        "raw_k": raw_k,
        "raw_labels": raw_labels[raw_k],
    }


def assign_strategy(texts: list[str], encoder) -> list[str]:
    """The nearest of the four strategy families (cosine to each family's mean embedding, estimated
    on a planted set of paraphrased seed bridges): a ``strategy`` label for generated rows."""
    planted = planted_bridges(np.random.default_rng(0), per_family=12)
    E = embed(planted["texts"], encoder)
    centroids = np.stack([E[planted["labels"] == f].mean(0) for f in range(len(STRATEGIES))])  # [4, dim]
    return [STRATEGIES[i] for i in np.argmax(embed(texts, encoder) @ centroids.T, axis=1)]


class KeywordNamer:
    """Names a cluster by its top c-TF-IDF terms (each cluster's members joined into one document)."""

    def __init__(self, top: int = 3):
        self.top = top

    def __call__(self, texts: list[str], labels: np.ndarray) -> list[str]:
        clusters = np.unique(labels)
        docs = [" ".join(t for t, c in zip(texts, labels) if c == k) for k in clusters]
        tfidf = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), sublinear_tf=True)
        weights = tfidf.fit_transform(docs).toarray()  # [clusters, vocabulary]
        vocab = tfidf.get_feature_names_out()
        return [" / ".join(vocab[np.argsort(-w)[: self.top]]) for w in weights]


class LLMNamer:
    """Names a cluster by asking the offline LLM to summarise a few members (cached generations)."""

    PROMPT = (
        "Here are sentences that explain why a product fits a user's question:\n{members}\n"
        "In 2 to 4 words, what persuasion strategy do they share? Answer with the name only."
    )

    def __init__(self, model: LanguageModel, seed: int, shown: int = 4):
        self.generator, self.seed, self.shown = model, seed, shown

    def __call__(self, texts: list[str], labels: np.ndarray) -> list[str]:
        prompts = []
        for k in np.unique(labels):
            members = [t for t, c in zip(texts, labels) if c == k][: self.shown]
            prompts.append(self.PROMPT.format(members="\n".join(f"- {m}" for m in members)))
        names = self.generator.generate(prompts, seed=self.seed, max_new_tokens=12, temperature=0.0)
        return [n.splitlines()[0].strip(" .-\"'") if n.strip() else "(unnamed)" for n in names]


class StrategyClustering(AtlasModule):
    """With ``model=none`` the encoder is named by ``encoder``; with an LLM model (needed for
    ``namer=llm``) both the namer and the encoder come from the model group."""

    needs = "bridges"
    models = ("none", *LLM_MODELS)
    stages = ("test",)

    def __init__(
        self,
        task,
        model=None,
        k_min: Annotated[int, Field(ge=2)] = 2,
        k_max: Annotated[int, Field(ge=2)] = 8,
        deconfound: Literal["none", "category"] = "category",
        encoder: str = "all-MiniLM-L6-v2",
        namer: Literal["keywords", "llm"] = "keywords",
        hdbscan_min_cluster: Annotated[int, Field(ge=2)] = 5,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        if k_max < k_min:
            raise ValueError(f"k_max ({k_max}) must be >= k_min ({k_min})")
        if namer == "llm" and not isinstance(model, LanguageModel):
            raise ValueError(f"namer=llm needs an LLM from the model group (model={'|'.join(LLM_MODELS)})")
        self.ks = range(k_min, k_max + 1)
        self.encoder = model.encoder() if isinstance(model, LanguageModel) else load_sentence_encoder(encoder)

    def namer(self):
        return LLMNamer(self.model_factory, self.task.seed) if self.hparams.namer == "llm" else KeywordNamer()

    def test_step(self, batch, batch_idx):
        index, bridges = batch
        c = cluster_bridges(
            bridges["texts"],
            bridges["categories"],
            self.ks,
            self.hparams.deconfound,
            self.encoder,
            self.task.seed,
        )
        planted = bridges.get("labels")
        has_planted = planted is not None and len(np.unique(planted)) > 1
        hdbscan = HDBSCAN(min_cluster_size=self.hparams.hdbscan_min_cluster, copy=True).fit_predict(c["E"])
        self.write_clusters(index, bridges, c["labels"])
        self.record(
            index,
            best_k=c["best_k"],
            raw_best_k=c["raw_k"],
            curve=c["curve"],
            raw_curve=c["raw_curve"],
            n_planted=len(np.unique(planted)) if has_planted else np.nan,
            ari=adjusted_rand_score(planted, c["labels"]) if has_planted else np.nan,
            raw_ari=adjusted_rand_score(planted, c["raw_labels"]) if has_planted else np.nan,
            hdbscan_k=len(set(hdbscan) - {-1}),
        )

    def write_clusters(self, index: int, bridges: dict, labels: np.ndarray) -> None:
        """Names, sizes, example members and (when scored) mean utilities of each cluster."""
        names = self.namer()(bridges["texts"], labels)
        clusters = []
        for k, name in zip(np.unique(labels), names):
            members = np.flatnonzero(labels == k)
            entry = {
                "cluster": int(k),
                "name": name,
                "size": int(len(members)),
                "examples": [bridges["texts"][i] for i in members[:3]],
            }
            if "scores" in bridges:  # [m, 4]: q1..q4
                scores = np.asarray(bridges["scores"])[members]
                entry["mean_user_utility"] = float(scores[:, :2].mean())
                entry["mean_commercial_utility"] = float(scores[:, 2:].mean())
            clusters.append(entry)
        path = self.run_dir / "clusters" / f"{index}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(clusters, indent=2))

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        m = {
            "naiad/strategies_best_k_mean": rows["best_k"].mean(),
            "naiad/strategies_raw_best_k_mean": rows["raw_best_k"].mean(),
            "naiad/strategies_hdbscan_k_mean": rows["hdbscan_k"].mean(),
            "naiad/strategies_silhouette_max_mean": rows["curve"].max(1).mean(),
        }
        if np.isfinite(rows["ari"]).all():
            m["naiad/strategies_k_hit_rate"] = (rows["best_k"] == rows["n_planted"]).mean()
            m["naiad/strategies_ari_min"] = rows["ari"].min()
            m["naiad/strategies_ari_mean"] = rows["ari"].mean()
            m["naiad/strategies_raw_ari_mean"] = rows["raw_ari"].mean()
        self.plot(rows)
        return {k: float(v) for k, v in m.items()}

    def plot(self, rows: dict[str, np.ndarray]) -> None:
        fig = Figure(figsize=(5.5, 3.5))
        ax = fig.subplots()
        ks = list(self.ks)
        for i, (curve, raw) in enumerate(zip(rows["curve"], rows["raw_curve"])):
            ax.plot(
                ks,
                curve,
                "o-",
                color="tab:blue",
                alpha=0.6,
                label=f"{self.hparams.deconfound}" if i == 0 else None,
            )
            ax.plot(ks, raw, "s--", color="tab:gray", alpha=0.4, label="raw embeddings" if i == 0 else None)
        ax.set_xlabel("k (k-means)")
        ax.set_ylabel("cosine silhouette")
        ax.set_title(f"strategy clustering: {len(rows['index'])} bridge set(s)")
        ax.legend()
        self.save_figure(fig, "silhouette")
