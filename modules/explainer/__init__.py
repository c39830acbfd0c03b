"""Policy-to-Language (Yang et al., arXiv:2502.12530): rectified-flow rewards for LLM explanations."""
