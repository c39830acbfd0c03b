"""Budgeted restless bandits with systematic data errors (Zhao, Wang et al., "The Bandit Whisperer:
Communication Learning for Restless Bandits", AAAI 2025, arXiv:2408.05686), task side.

Environments vectorised over (replica, arm), the systematic data-error model, arm features for
similarity, and the exact chain optimum used as ground truth.
"""
