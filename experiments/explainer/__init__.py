"""Policy-to-Language (Yang et al., arXiv:2502.12530): decision contexts, explanation grammar,
judges and the held-out evaluator for explaining a gymnasium policy."""
