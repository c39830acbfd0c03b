"""Supervised fine-tuning of the offline LLM on NaiAD rows, with LoRA (NaiAD, arXiv 2605.09918; notes N7).

NaiAD fine-tunes models on its data so they "internalize these strategies to simultaneously improve
user and commercial utility" (+28.2 % average across dimensions [S]; base model and hyperparameters
unknown). Ours [R]: LoRA adapters (``peft``) on the attention projections of the offline LLM, trained
with the causal-LM loss on the response tokens only (prompt tokens masked with -100), prompt =
(query, ad) with a neutral "embed the product natively" instruction. Evaluation (``test_step``, one
held-out seed pair each): greedy answers of the base and the fine-tuned model, compared by brand-mention
rate and user proxy. Both go through ``modules.llm.LanguageModel`` (the tuned model is merged and saved to
``<run_dir>/sft_model`` and loaded from there), so every generation is cached.

DDP: Lightning shards the training rows over ranks and averages LoRA gradients; rank 0 saves the
merged model and all ranks then answer their share of the held-out pairs. Checkpoints keep only the
LoRA weights (the frozen base is reloaded from its package).
"""

import copy
from typing import Annotated

import numpy as np
import torch
from matplotlib.figure import Figure
from peft import LoraConfig, get_peft_model
from pydantic import Field, PositiveInt
from torch.utils.data import DataLoader

from experiments.naiad.seeds import ADS, Ad, pairs
from modules.base import AtlasModule
from modules.llm import LLM_MODELS, LanguageModel
from modules.naiad.scoring import Proxies


def sft_prompt(query: str, ad: Ad) -> str:
    return (
        f"User question: {query}\nProduct: {ad.name}, a {ad.label} that {ad.info}.\n"
        "Answer the question and embed the product natively."
    )


class SFTAds(AtlasModule):
    needs = "ad_sft"
    models = LLM_MODELS
    stages = ("fit", "test")
    saved_parameters = "lora_"  # checkpoints hold the LoRA weights only

    def __init__(
        self,
        task,
        model: LanguageModel,
        lora_r: PositiveInt = 8,
        lora_alpha: PositiveInt = 16,
        lora_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.05,
        lr: Annotated[float, Field(gt=0)] = 2e-4,
        batch_size: PositiveInt = 4,
        max_length: Annotated[int, Field(ge=16)] = 256,
        response_tokens: PositiveInt = 48,
    ):
        super().__init__(task, model)
        self.save_hyperparameters(ignore=["task", "model"])
        self.strict_loading = False
        base, self.tokenizer = model.load()
        lora = LoraConfig(
            r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
        )
        self.net = get_peft_model(
            copy.deepcopy(base), lora
        ).train()  # a copy: the cached base stays untouched
        self.proxies = Proxies(model)
        self.losses: list[tuple[int, float]] = []  # (epoch, training loss) per step

    # ---- training --------------------------------------------------------------------------
    def encode(self, row: dict) -> tuple[list[int], list[int]]:
        """Token ids of prompt + response and labels with the prompt masked (-100), truncated."""
        ad = next((a for a in ADS if a.name == row["ad_name"]), None) or Ad(
            row["ad_name"], row["ad_label"], row["ad_info"], (row["category"] or [""])[0]
        )
        prompt = [{"role": "user", "content": sft_prompt(row["query"], ad)}]
        full = prompt + [{"role": "assistant", "content": row["response"]}]
        prompt_ids = self.tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        ids = self.tokenizer.apply_chat_template(full, tokenize=True, return_dict=True)["input_ids"]
        ids = ids[: self.hparams.max_length]
        labels = [-100] * min(len(prompt_ids), len(ids)) + ids[len(prompt_ids) :]
        return ids, labels

    def collate(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        encoded = [self.encode(r) for r in rows]
        width = max(len(ids) for ids, _ in encoded)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in encoded])  # [B, T]
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in encoded])  # [B, T]
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in encoded])  # [B, T]
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.task.train_data(),
            batch_size=self.hparams.batch_size,
            shuffle=True,
            collate_fn=self.collate,
            generator=self.torch_generator("shuffle"),
        )

    def training_step(self, batch, batch_idx):
        loss = self.net(**batch).loss
        self.losses.append((self.current_epoch, float(loss.detach())))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW([p for p in self.net.parameters() if p.requires_grad], lr=self.hparams.lr)

    def learner_state(self) -> dict:
        return {"losses": self.losses}

    def load_learner_state(self, state: dict) -> None:
        self.losses = [tuple(x) for x in state["losses"]]

    # ---- evaluation: base vs fine-tuned on held-out pairs ----------------------------------
    def on_test_start(self) -> None:
        path = self.run_dir / "sft_model"
        if self.trainer.is_global_zero:
            merged = copy.deepcopy(self.net).merge_and_unload()
            merged.hf_quantizer = None  # GGUF weights were dequantized at load: plain fp32
            if hasattr(merged.config, "quantization_config"):
                del merged.config.quantization_config
            merged.save_pretrained(path)
            self.tokenizer.save_pretrained(path)
        self.trainer.strategy.barrier()
        self.base = self.model_factory
        self.tuned = LanguageModel(str(path), encoder=self.base.encoder_name, cache=str(self.base.cache_path))

    def test_step(self, batch, batch_idx):
        index, item = batch
        query, ad = pairs()[item["pair"]]
        prompt = sft_prompt(query.text, ad)
        texts = [
            g.generate(
                [prompt], seed=self.task.seed, max_new_tokens=self.hparams.response_tokens, temperature=0.0
            )[0]
            for g in (self.base, self.tuned)
        ]
        proxy = self.proxies([query.text] * 2, [ad] * 2, texts)
        self.record(index, user=proxy["user"], mention=proxy["mention"], commercial=proxy["commercial"])

    def summarize(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        epochs, losses = np.array(self.losses).T  # [steps] each
        m = {
            "naiad/sft_steps": len(losses),
            "naiad/sft_loss_first_epoch": losses[epochs == epochs.min()].mean(),
            "naiad/sft_loss_last_epoch": losses[epochs == epochs.max()].mean(),
        }
        for i, model in enumerate(("base", "tuned")):
            for key in ("user", "mention", "commercial"):
                m[f"naiad/sft_{key}_{model}"] = rows[key][:, i].mean()
        fig = Figure(figsize=(5, 3))
        ax = fig.subplots()
        ax.plot(losses)
        ax.set(xlabel="step", ylabel="train loss (response tokens)", title="LoRA SFT on NaiAD rows")
        self.save_figure(fig, "sft_loss")
        return {k: float(v) for k, v in m.items()}
