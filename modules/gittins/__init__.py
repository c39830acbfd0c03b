"""Adaptive frontier exploration on graphs (Choo et al., arXiv:2505.21671), method side: the Gittins index policy, its baselines and their evaluation."""
