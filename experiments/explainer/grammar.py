"""The explanation grammar of the tiny explainer: a word vocabulary, sentence templates, parsing.

Sentences make one claim each about a move ``d``:

    action  "the agent moves d ."   (d is the agent's decision)
    goal    "the goal lies d ."     (d brings the agent closer to the goal)
    hole    "a hole is d ."         (d lands in a hole)
    wall    "a wall blocks d ."     (d leaves the grid)
    filler  "the ice is slippery ." (no claim)

A sentence is *accurate* when its claim is true of the state and the agent's action, *misleading*
otherwise. ``parse`` reads any word sequence (also ungrammatical RL samples): sentences end at
``.``, the kind comes from its keyword and the move from the last direction word in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.explainer.frozenlake import ACTIONS, Facts

SPECIAL = ("<pad>", "<bos>", "<sep>", "<eos>")
CONTEXT_WORDS = ("at", "row", "col", "0", "1", "2", "3")
WORDS = (
    "the",
    "agent",
    "moves",
    "goal",
    "lies",
    "a",
    "hole",
    "is",
    "wall",
    "blocks",
    "ice",
    "slippery",
    *ACTIONS,
    ".",
)
VOCAB = (*SPECIAL, *CONTEXT_WORDS, *WORDS)
INDEX = {w: i for i, w in enumerate(VOCAB)}
PAD, BOS, SEP, EOS, STOP = INDEX["<pad>"], INDEX["<bos>"], INDEX["<sep>"], INDEX["<eos>"], INDEX["."]
TEMPLATES = {
    "action": "the agent moves {d} .",
    "goal": "the goal lies {d} .",
    "hole": "a hole is {d} .",
    "wall": "a wall blocks {d} .",
    "filler": "the ice is slippery .",
}
KEYWORDS = {"moves": "action", "goal": "goal", "hole": "hole", "wall": "wall"}


@dataclass(frozen=True)
class Claim:
    kind: str  # action | goal | hole | wall
    move: str  # a direction word (one of ACTIONS; CartPole uses left / right)


def is_true(claim: Claim, facts: Facts, action: str) -> bool:
    if claim.kind == "action":
        return claim.move == action
    return {"goal": facts.closer, "hole": facts.hole, "wall": facts.wall}[claim.kind][claim.move]


def sentences(words: list[str]) -> list[list[str]]:
    """Split words at ``.`` (an unfinished tail counts as a sentence); no sentence is an error."""
    out, current = [], []
    for w in words:
        current.append(w)
        if w == ".":
            out.append(current)
            current = []
    if current:
        out.append(current)
    if not out:
        raise ValueError("the explanation has no sentences (an explanation needs at least one)")
    return out


def parse(sentence: list[str]) -> Claim | None:
    """The claim of one sentence, or None when it has no keyword or no direction."""
    kinds = [KEYWORDS[w] for w in sentence if w in KEYWORDS]
    moves = [w for w in sentence if w in ACTIONS]
    return Claim(kinds[0], moves[-1]) if kinds and moves else None


def context_tokens(env, state: int) -> list[int]:
    """``<bos> <env.token_words(state)> <sep>``: the tiny explainer's view of the decision context
    (FrozenLake ``at row r col c``, CartPole ``at`` + four bucket digits; 7 tokens either way)."""
    return [BOS, *(INDEX[w] for w in env.token_words(state)), SEP]


def sample_explanation(
    facts: Facts, action: str, rng: np.random.Generator, p_accurate: float, max_sentences: int
) -> list[str]:
    """An SFT explanation: 1..max_sentences sentences, each accurate with probability ``p_accurate``."""
    claims = [Claim(k, d) for k in ("action", "goal", "hole", "wall") for d in facts.wall]  # env's moves
    good = [c for c in claims if is_true(c, facts, action)]
    bad = [c for c in claims if not is_true(c, facts, action)]
    words: list[str] = []
    for _ in range(int(rng.integers(1, max_sentences + 1))):
        if rng.random() < 0.1:
            words += TEMPLATES["filler"].split()
            continue
        pool = good if rng.random() < p_accurate else bad
        claim = pool[int(rng.integers(len(pool)))]
        words += TEMPLATES[claim.kind].format(d=claim.move).split()
    return words
