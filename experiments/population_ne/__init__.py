"""LLM Active Alignment: A Nash Equilibrium Perspective (Wang, Pan, Yang, Jiang, Tambe, Parkes;
arXiv:2602.06836), task side.

The population game (agents mixing over human subpopulations), its pluggable utilities, the KKT
residual used as ground truth, exclusion detection, the instance generators and the LLM-grounded
social-media setting.
"""
