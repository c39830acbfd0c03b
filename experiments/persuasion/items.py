"""A tokenized set of paired multiple-choice items: what every persuasion analysis consumes.

All arms of an item have the same length and the same option positions, so the clean run is a
position-aligned patching partner of the persuaded run (Sun et al., arXiv:2605.09314, Eq. 2: the
context is either the persuasion span or a token-length-matched padding span).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

ARMS = ("clean", "pers", "mention", "keyword", "truthful")  # padding, persuasion, and the three controls


@dataclass
class ItemBatch:
    ids: dict[str, Tensor]  # arm -> [N, T] token ids (left-padded to a common T)
    mask: Tensor  # [N, T] 1 = real token
    option_pos: Tensor  # [N, 4] position of each option's key token (the readout token) in the options list
    answer_ids: Tensor  # [N, 4] the token that answers each option at the last position
    correct: Tensor  # [N] index of the correct option
    target: Tensor  # [N] index of the persuasion target
    mentions: Tensor  # [N, T] bool: target mentions inside the persuasion span
    bias: Tensor | None = None  # [T, T] additive attention bias of every layer (route forcing)
    value_pos: Tensor | None = None  # [N, 4] each option's value token, where it is not the key token
    bare_ids: Tensor | None = None  # [N, T] the prompt with an empty context field (padding control;
    bare_mask: Tensor | None = None  # [N, T]  not position-aligned with the arms, behaviour only)

    def __len__(self) -> int:
        return self.mask.shape[0]


def check_first_tokens(answer_ids: Tensor, names: list[str]) -> None:
    """Options must be told apart by their first token (the readout reads one token)."""
    for row, name in zip(answer_ids.tolist(), names):
        if len(set(row)) < 4:
            raise ValueError(
                f"item {name!r}: two options share a first token ({row}); "
                "the one-token readout cannot tell them apart"
            )
