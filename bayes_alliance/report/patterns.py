"""The report's section on state patterns: how many patients show each pattern (posterior
probability at least 0.75), with the probabilities calibrated against the fitted model's own
null (:mod:`bayes_alliance.analysis.pattern_null`). The per-patient table is
``bayes-alliance patterns FITDIR --out DIR`` (patterns.csv)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_alliance.analysis.pattern_table import patterns_table
from bayes_alliance.analysis.patterns import PATTERNS
from bayes_alliance.report.render import ReportSection, Table

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult

AT_LEAST = 0.75  # the probability at which the feedback raises a flag
# The section's counts are shares, so a random sample of patients estimates them (binomial
# standard error at most 0.5 / sqrt(300), 2.9 percentage points); each patient with its own
# pattern of observed sessions costs its own null simulation in every draw, so a registry's
# 20,000 patients would take hours. The full table is the ``patterns`` command's CSV.
MAX_PATIENTS = 300
# Evenly thinned draws for the same reason: a probability's Monte Carlo SD from 400 draws is at
# most 0.025.
MAX_DRAWS = 400
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
    if result.spec.time_model == "continuous":  # the rules are in session steps
        return ReportSection(
            "State patterns",
            [
                "The state patterns and their null model are defined in session steps and "
                "are not computed for a continuous-time fit; refit with --time-model sessions "
                "(spec file: [model] time_model = 'sessions') for them."
            ],
        )
    sample, ids, words = _bounded(result)
    try:
        table = patterns_table(sample, ids)
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
        "probability is the share of draws. "
        f"{len(table)} patients{words}; the per-patient table of every patient is written "
        "by `bayes-alliance patterns FITDIR --out DIR`."
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
                f"Patients by state pattern of {x} (posterior probability at least {AT_LEAST:g})"
                + (f"; {words.removeprefix(', ')}" if words else ""),
            )
        ],
    )


def _ordinal(n: int) -> str:
    """2nd, 3rd, 4th, 11th, 21st, ..."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{dict(enumerate(('th', 'st', 'nd', 'rd'))).get(n % 10, 'th')}"


def _bounded(result: FitResult) -> tuple[FitResult, list[object], str]:
    """The fit thinned to at most ``MAX_DRAWS`` draws (evenly, per chain), at most
    ``MAX_PATIENTS`` patients drawn at random (seed 0, kept in data order), and the words that
    say so ("" when neither applies)."""
    post = result.idata.posterior
    n_chain, n_draw = int(post.sizes["chain"]), int(post.sizes["draw"])
    words = []
    step = -(-n_chain * n_draw // MAX_DRAWS)
    if step > 1:
        result = dataclasses.replace(
            result, idata=result.idata.isel(draw=slice(None, None, step), missing_dims="ignore")
        )
        kept = n_chain * len(range(0, n_draw, step))
        words.append(f"every {_ordinal(step)} draw ({kept} of {n_chain * n_draw})")
    ids = list(result.data.patients)
    if len(ids) > MAX_PATIENTS:
        rows = np.sort(np.random.default_rng(0).choice(len(ids), MAX_PATIENTS, replace=False))
        words.append(f"a random sample of {MAX_PATIENTS} of {len(ids)} patients (seed 0)")
        ids = [ids[i] for i in rows]
    text = f", estimated from {' and '.join(words)}" if words else ""
    return result, ids, text


__all__ = ["patterns_section"]
