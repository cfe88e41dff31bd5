"""The classic two-step comparison of a joint-model report: observed person-mean centring
with OLS, and one raw slope against the decomposed within and between slopes (REML).

Its citations (Nickell 1981; Lüdtke et al. 2008; Rights 2023) are listed in the report's
references by :mod:`bayes_alliance.report.citations`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bayes_alliance.analysis import classic
from bayes_alliance.report.render import ReportSection, Table

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult


def classic_sections(result: FitResult) -> list[ReportSection]:
    """The two-step estimates and the raw-against-decomposed slopes, each a section."""
    from bayes_alliance.analysis.conflation import conflation_table

    data = result.data
    x, y = data.roles.predictor, data.roles.outcome
    return [
        ReportSection(
            "Classic two-step analysis, for comparison",
            [
                "Person-mean centring and OLS with patient-clustered SEs. Observed means are unreliable with "
                "short series, which biases lagged effects downward (Nickell 1981) and blends trait with "
                "state effects (Lüdtke et al. 2008)."
            ],
            tables=[
                Table(
                    classic.two_step_regression(data).round(4),
                    "Two-step estimates (observed person-mean centring)",
                )
            ],
        ),
        ReportSection(
            "Why decompose: one raw slope mixes within and between effects",
            [
                f"REML random-intercept fits of {y} at t on {x} at t-1: one raw slope (conflated) against "
                "separate within and between slopes (observed centring), with R-squared of the fixed part "
                "(Rights 2023). The raw slope is a blend of the two and describes neither."
            ],
            tables=[Table(conflation_table(data).round(4), "Raw against decomposed slopes")],
        ),
    ]


__all__ = ["classic_sections"]
