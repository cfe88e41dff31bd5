"""The report's prior sensitivity section: power-scaling sensitivity of the key effects
(:mod:`bayes_alliance.analysis.sensitivity`), computed when the report is written (not during
the fit), with the time it took."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bayes_alliance.analysis.sensitivity import THRESHOLD, prior_sensitivity
from bayes_alliance.report.labels import label_level, parameter_label
from bayes_alliance.report.render import ReportSection, Table

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult

TITLE = "Prior sensitivity"


def sensitivity_section(result: FitResult) -> ReportSection:
    """The section: one row per key effect with its prior and likelihood sensitivity and the
    plain-words diagnosis; a note instead of the table when it cannot be computed."""
    intro = (
        "How much would each key estimate move if the prior, or the likelihood, were made a "
        "little stronger or weaker? Power-scaling (Kallioinen et al. 2024, Statistics and "
        "Computing 34:57) raises the prior (or the patients' likelihood) to a power near 1 and "
        "reweights the posterior draws (Pareto-smoothed importance sampling, no refit). "
        f"Following arviz-stats' psense, a sensitivity of {THRESHOLD} or more counts: "
        "'prior-sensitive' estimates depend on the prior with these data (with 'prior-data "
        "conflict' when the likelihood pulls elsewhere, 'likelihood weak' when the data say "
        "little); 'fine' ones are determined by the data."
    )
    try:
        sens = prior_sensitivity(result)
    except ValueError as exc:
        return ReportSection(TITLE, [intro, f"Not computed: {exc}."])
    roles, spec = result.data.roles, result.spec
    t = sens.table
    frame = pd.DataFrame(
        {
            "label": [
                parameter_label(
                    n, roles.predictor, roles.outcome, spec.same_session, label_level(spec)
                )
                for n in t.index
            ],
            "prior sensitivity": t["prior"].round(3),
            "likelihood sensitivity": t["likelihood"].round(3),
            "diagnosis": t["diagnosis"],
        },
        index=t.index,
    )
    flagged = [str(n) for n, d in t["diagnosis"].items() if d != "fine"]
    words = (
        "Every key estimate is determined by the data, not the prior."
        if not flagged
        else f"Not determined by the data alone: {', '.join(flagged)}; read them with their "
        "prior (Model section) in mind, and check them under another prior."
    )
    return ReportSection(
        TITLE,
        [intro, words, f"Computed when this report was written, in {sens.seconds:.1f} s."],
        tables=[
            Table(
                frame,
                "Power-scaling sensitivity of the key estimates",
                [
                    "Prior: the named parameters' priors as used by the fit. Likelihood: each "
                    "patient's density of their observed sessions, latent means integrated "
                    "out. Sensitivity: rate of change of the cumulative Jensen-Shannon distance at power 1."
                ],
            )
        ],
    )


__all__ = ["TITLE", "sensitivity_section"]
