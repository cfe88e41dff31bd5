"""The interval convention of every table, report, figure and short view of this package.

Posterior intervals are highest-density intervals (HDI: the narrowest interval that holds the
chosen share of the draws) for the parameters and effects of both model families
(:data:`CI_KIND`), at :data:`DEFAULT_CI_PROB` unless the caller chooses another level.
Equal-tailed intervals (:data:`BAND_KIND`) are kept where a quantity is a bounded share or a
band over units or cells: R-squared components, the per-patient panels and the feedback's
numbers, therapist profiles, and the predictive check of replicated data; their tables say so.
The tables of parameters and effects take their intervals from ArviZ's summary
(:func:`bayes_alliance.core.diagnostics.summarise`, with the kinds named here: its HDI is the one
:func:`interval_bounds` computes); every other interval is computed by :func:`interval_bounds`.
So the convention lives here alone.
(Simulation studies record equal-tailed intervals too: their coverage rows must stay comparable
across the runs of a resumable study; :mod:`bayes_alliance.study.tasks`.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from arviz_stats.base import array_stats

DEFAULT_CI_PROB = 0.94
"""Probability of every interval when none is chosen (``--ci``, ``ci_prob=``)."""

FEEDBACK_CI_PROB = 0.9
"""The feedback page's level (``bayes-alliance feedback --ci``): clinicians read 90% intervals
of a patient's numbers."""

CI_KIND = "hdi"
"""Kind of the parameters' and effects' intervals: highest density."""

BAND_KIND = "eti"
"""Kind of the intervals of bounded shares, per-unit and per-cell bands and predictive checks:
equal-tailed."""


def interval_name(ci_prob: float, kind: str = CI_KIND) -> str:
    """The interval as a header names it: ``"95% HDI"`` or ``"95% interval"`` (equal-tailed).

    Parameters
    ----------
    ci_prob
        Probability mass of the interval, in (0, 1).
    kind
        ``"hdi"`` (highest density) or ``"eti"`` (equal-tailed).
    """
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must lie in (0, 1), got {ci_prob}")
    pct = f"{ci_prob * 100:.4g}%"
    return f"{pct} HDI" if kind == "hdi" else f"{pct} interval"


def interval_bounds(
    draws: Any, ci_prob: float = DEFAULT_CI_PROB, kind: str = CI_KIND, axis: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the interval of ``draws`` along ``axis``.

    ``"hdi"``: the narrowest interval holding ``ci_prob`` of the draws (ArviZ's HDI, as in
    every summary table); ``"eti"``: the ``(1 - ci_prob) / 2`` and ``(1 + ci_prob) / 2``
    quantiles (numpy's linear interpolation). The draws must be finite.
    """
    x = np.asarray(draws, dtype=float)
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must lie in (0, 1), got {ci_prob}")
    if kind == "eti":
        lo, hi = np.quantile(x, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=axis)
        return lo, hi
    if kind != "hdi":
        raise ValueError(f"kind must be 'hdi' or 'eti', got {kind!r}")
    bounds = array_stats.hdi(x, ci_prob, axis=axis)
    return bounds[..., 0], bounds[..., 1]


__all__ = [
    "BAND_KIND",
    "CI_KIND",
    "DEFAULT_CI_PROB",
    "FEEDBACK_CI_PROB",
    "interval_bounds",
    "interval_name",
]
