"""A tiny transformer trained from scratch on the persuasion token task, then analysed (Sun et al.,
"How LLMs Are Persuaded: A Few Attention Heads, Rerouted", arXiv:2605.09314, reproduced at toy scale).

The network is a ``LlamaForCausalLM`` (pre-norm, RoPE, SwiGLU MLP, tied unembedding over the whole
vocabulary: the answer is a token, so the model must copy it), trained with cross-entropy on the
answer token at the last position of sequences from the arm mixture of
``experiments/persuasion/tokens.py``. ``route_forcing`` (a task key) blocks attention from the answer
position to the context in every layer, during training and analysis: persuasion can then reach
the answer only through the option tokens' residual streams, i.e. by routing (the paper's
hypothesis); without it the model may read the context directly (the "unmasked" comparison).

Lightning: one ``training_step`` = one AdamW step on a fresh batch drawn from the module's
``batches`` stream (checkpointed, so a resumed run draws the same batches). ``test_step`` runs the
whole analysis on one replica of evaluation items. DDP: every rank draws its own batches
(data-parallel); evaluation replicas shard over ranks.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt

from experiments.persuasion import tokens as tk
from modules.hooks import HookedLM
from modules.persuasion.analysis import DEFAULT_ANALYSIS, AnalysisConfig
from modules.persuasion.circuit import CircuitAnalysis


class TinyPersuasion(CircuitAnalysis):
    needs = "persuasion_tokens"
    models = ("none",)
    stages = ("fit", "test")

    def __init__(
        self,
        task,
        model=None,
        analysis: AnalysisConfig = DEFAULT_ANALYSIS,
        n_layers: PositiveInt = 3,
        n_heads: PositiveInt = 4,
        d_model: PositiveInt = 64,
        mlp_ratio: PositiveInt = 4,
        lr: PositiveFloat = 3e-3,
        weight_decay: Annotated[float, Field(ge=0)] = 0.01,
        batch: PositiveInt = 128,
    ):
        super().__init__(task, model, analysis)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(
            vocab_size=tk.VOCAB,
            hidden_size=d_model,
            intermediate_size=mlp_ratio * d_model,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            num_key_value_heads=n_heads,
            max_position_embeddings=2 * tk.LENGTH,
            tie_word_embeddings=True,
        )
        init = torch.Generator().manual_seed(int(task.rng(0, "init").integers(2**31)))
        self.net = LlamaForCausalLM._from_config(cfg, dtype=torch.float32)
        with torch.no_grad():
            for p in self.net.parameters():  # seeded init (no global torch seed)
                if p.dim() > 1:
                    p.copy_(torch.randn(p.shape, generator=init) * cfg.initializer_range)
        self.hooked = HookedLM(self.net)
        self.bias = tk.route_forcing_bias() if task.route_forcing else None

    def train_dataloader(self):
        """One placeholder per step: batches are drawn in ``training_step`` from a checkpointed stream."""
        steps = self.trainer.max_steps if self.trainer.max_steps > 0 else 1
        return torch.utils.data.DataLoader(range(steps), batch_size=None)

    def training_step(self, _, batch_idx):
        ids, answer = tk.training_batch(self.task.spec, self.rng("batches"), self.hparams.batch)
        logits = self.hooked.run(ids, attention_bias=self.bias).logits[:, -1]  # [B, V]
        loss = F.cross_entropy(logits, answer)
        acc = (logits.argmax(-1) == answer).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": acc}, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.net.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )

    def test_step(self, batch, batch_idx):
        index, inst = batch
        metrics = self.analyse(
            index,
            self.hooked,
            inst["items"],
            "tiny, route-forcing" if self.bias is not None else "tiny, unmasked",
        )
        self.record(index, **metrics)
