"""LLM Active Alignment: A Nash Equilibrium Perspective (arXiv:2602.06836), method side.

The closed-form Nash equilibrium (symmetric formula, support-given linear KKT solve with an active-set
search), best-response and projected-gradient dynamics (baselines and checks), the minimal steering
subsidy, and the solver modules that evaluate them.
"""
