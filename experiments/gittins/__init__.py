"""Adaptive frontier exploration on graphs (Choo et al., arXiv:2505.21671), task side.

Graphs, label MRFs, exact inference, the frontier rule, the exact DP and the evaluators.
"""
