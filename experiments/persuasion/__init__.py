"""The persuasion circuit (Sun et al., "How LLMs Are Persuaded: A Few Attention Heads, Rerouted",
arXiv:2605.09314), task side: paired clean/persuaded multiple-choice items (a synthetic token task,
FARM NQ2 text items, user JSONL files), the planted-circuit model with its ground truth.
"""
