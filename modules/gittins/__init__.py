"""Adaptive frontier exploration on graphs (Choo et al., arXiv:2505.21671), method side.

The Gittins index policy, its baselines (greedy, random, exact DP, GNN DQN) and their evaluation.
"""
