"""The report's section on state patterns: how many patients show each pattern (posterior
probability at least 0.75), with the probabilities calibrated against the fitted model's own
null (:mod:`bayes_alliance.analysis.pattern_null`). The per-patient table is
``bayes-alliance patterns FITDIR --out DIR`` (patterns.csv)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_alliance.analysis.pattern_table import patterns_table
from bayes_alliance.analysis.patterns import PATTERNS
from bayes_alliance.report.render import ReportSection, Table

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult

AT_LEAST = 0.75  # the probability at which the feedback raises a flag
WORDS = {
    "strengthening": "strengthening (a linear rise)",
    "weakening": "weakening (a linear fall)",
    "u_shape": "U-shape (high, low, high)",
    "rupture_repair": "rupture and repair (a dip of one or two sessions)",
    "sudden_gain": "sudden gain (a large, lasting rise)",
}


def patterns_section(result: FitResult) -> ReportSection | None:
    """Counts of patients by pattern for the predictor's states (the alliance); None when the
    result holds no states it can compute (``store_states=False``) or has no lagged dynamics."""
    if not result.spec.store_states or result.spec.dynamics != "var1":
        return None
    try:
        table = patterns_table(result)
    except ValueError:
        return None
    x = result.data.roles.predictor
    rows = []
    for name in PATTERNS:
        prob = table[f"p_{name}"].to_numpy(dtype=float)
        rows.append(
            {
                "pattern": WORDS[name],
                f"patients with P >= {AT_LEAST:g}": int((prob >= AT_LEAST).sum()),
                "share": f"{(prob >= AT_LEAST).mean():.1%}",
                "mean probability": round(float(np.nanmean(prob)), 3),
                "probabilities exactly 0 or 1": f"{np.isin(prob, (0.0, 1.0)).mean():.0%}",
            }
        )
    frame = pd.DataFrame(rows)
    paragraphs = [
        f"Each patient's states of {x} were classified in every posterior draw. A pattern "
        "holds in a draw when its statistic exceeds the 95% quantile of that statistic under "
        "the fitted model's own null (its stationary dynamics at the patient's observed "
        "sessions), so a patient without the pattern shows it in 5% of draws on average; the "
        "probability is the share of draws (docs/patterns.md). "
        f"{len(table)} patients; the per-patient table is written by "
        "`bayes-alliance patterns FITDIR --out DIR`."
    ]
    if not result.spec.measurement_error and not result.spec.predictor_indicators:
        paragraphs.append(
            "Without measurement error the states of observed sessions are the ratings minus "
            "the patient's latent mean, the same shape in every draw, so most probabilities are "
            "0 or 1 and a single noisy rating can make a pattern; fit with "
            "--measurement-error (or several indicators) for probabilities that carry the "
            "rating's error."
        )
    return ReportSection(
        "State patterns",
        paragraphs,
        tables=[
            Table(
                frame,
                f"Patients by state pattern of {x} (posterior probability at least {AT_LEAST:g})",
            )
        ],
    )


__all__ = ["patterns_section"]
