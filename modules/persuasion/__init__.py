"""The persuasion circuit (Sun et al., arXiv:2605.09314), method side: the analysis of the causal
chain over any hooked causal LM, the planted-circuit and LLM analyses, and the tiny transformer.
"""
