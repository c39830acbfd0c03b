"""Method side of CompFlow (Kong et al., arXiv:2505.23062)."""
