"""Adaptive frontier exploration on graphs (Choo et al., arXiv:2505.21671), task side: graphs, label MRFs, exact inference, the frontier rule, exact DP and evaluators."""
