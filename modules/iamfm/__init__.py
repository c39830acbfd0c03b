"""IAMFM (Liu et al., arXiv:2604.06263): incentive-aware multi-fidelity optimisation for generative ads."""
