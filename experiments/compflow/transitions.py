"""Transition sets and the estimator-check instance shared by every environment pair.

A :class:`TransitionPair` holds source and target transitions ``(s, a, s')`` and held-out evaluation
pairs ``(s, a)`` with the true gap ``||E P_tar(.|s,a) - E P_src(.|s,a)||`` computed by the task (closed
form or both simulators stepped from the same state): the ground truth no estimator sees.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Transitions:
    """``n`` transitions: states ``s`` [n, ds], actions ``a`` [n, da], next states ``s2`` [n, ds]."""

    s: np.ndarray
    a: np.ndarray
    s2: np.ndarray

    def __len__(self) -> int:
        return len(self.s)

    def take(self, index: np.ndarray) -> "Transitions":
        return Transitions(self.s[index], self.a[index], self.s2[index])


@dataclass
class TransitionPair:
    """One estimator-check instance.

    ``true_gap`` [m] is the ground-truth gap at the evaluation pairs ``eval_s`` [m, ds], ``eval_a``
    [m, da] (``eval_s2``: a source next state there); ``shifted`` [m] marks the region where the
    dynamics differ; ``target_samples``
    [m, k, ds] (optional) are exact draws from P_tar(.|s,a) and ``target_mean`` [m, ds] its mean,
    for scoring learned target flows. ``labels`` name the instance's setting (scale, sigma, ...) and carry
    per-instance ground-truth figures (``true_tail99``: the exact log-ratio tail, synthetic pair).
    """

    source: Transitions
    target: Transitions
    eval_s: np.ndarray
    eval_a: np.ndarray
    eval_s2: np.ndarray
    true_gap: np.ndarray
    shifted: np.ndarray
    target_mean: np.ndarray | None = None
    target_samples: np.ndarray | None = None
    labels: dict[str, float] = field(default_factory=dict)
