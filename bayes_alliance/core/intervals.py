"""The interval convention of every table, report and short view of this package.

Posterior intervals are highest-density intervals (HDI: the narrowest interval that holds the
chosen share of the draws) for the parameters and effects of both model families, at
:data:`DEFAULT_CI_PROB` unless the caller chooses another level. Equal-tailed intervals remain
where a quantity is a bounded share or a per-cell band (R-squared components, patient panels,
the predictive check), and their tables say so.
"""

from __future__ import annotations

DEFAULT_CI_PROB = 0.94
"""Probability of every interval when none is chosen (``--ci``, ``ci_prob=``)."""

CI_KIND = "hdi"
"""Kind of the parameters' and effects' intervals: highest density."""


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


__all__ = ["CI_KIND", "DEFAULT_CI_PROB", "interval_name"]
