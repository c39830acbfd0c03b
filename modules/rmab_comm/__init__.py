"""Communication learning for restless bandits (Zhao, Wang et al., "The Bandit Whisperer",
AAAI 2025, arXiv:2408.05686), method side.

Per-arm Q-learners batched over arms (tabular or C51), the budgeted index-style joint action,
messages (a similar arm's Q-function as the receiver's behaviour policy), the learned VDN
communication strategy and the baselines (no comm, topline, oracle, worst, random comm, random).
"""
