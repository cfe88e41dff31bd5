"""Plain-language sentences of a report: the main effects with their numbers, and how the
model treats stationarity."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import CI_KIND
from bayes_alliance.report import tables
from bayes_alliance.spec.model_spec import ModelSpec

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult

PROVISIONAL = "Provisional (the convergence check failed; do not report): "


def _interval(summary: pd.DataFrame, name: str) -> str:
    r = summary.loc[name]
    return f"{r['mean']:.3f} ({r['ci_low']:.3f} to {r['ci_high']:.3f})"


def _direction(value: float) -> str:
    return "a rise" if value > 0 else "a fall"


def sentences(
    result: FitResult, summary: pd.DataFrame, r2_table: pd.DataFrame, ci_prob: float
) -> list[str]:
    """Plain-language statements of the main effects with their numbers (posterior mean and
    highest-density interval of probability ``ci_prob``)."""
    x, y = result.data.roles.predictor, result.data.roles.outcome
    pct = tables.interval_name(ci_prob, CI_KIND)
    means = {str(k): float(val) for k, val in summary["mean"].items()}
    out = []
    if vocab.STATE_EFFECT in summary.index:
        m = means[vocab.STATE_EFFECT]
        out.append(
            f"State-like effect: a session in which a patient's {x} is one point above their own usual "
            f"(trait) level is followed at the next session by {_direction(m)} of {abs(m):.3f} points in "
            f"{y}, given the previous {y}; estimate {_interval(summary, vocab.STATE_EFFECT)}, {pct}."
        )
    if vocab.REVERSE_STATE_EFFECT in summary.index:
        m = means[vocab.REVERSE_STATE_EFFECT]
        out.append(
            f"Reverse path: a one-point rise in {y} above the patient's usual level is followed by "
            f"{_direction(m)} of {abs(m):.3f} points in the next session's {x}; "
            f"{_interval(summary, vocab.REVERSE_STATE_EFFECT)}, {pct}."
        )
    if vocab.TRAIT_EFFECT_PATIENT in summary.index:
        m = means[vocab.TRAIT_EFFECT_PATIENT]
        out.append(
            f"Trait-like effect between patients: a patient whose usual {x} is one point higher than "
            f"another's (same therapist) has a usual {y} level {abs(m):.3f} points "
            f"{'higher' if m > 0 else 'lower'}; {_interval(summary, vocab.TRAIT_EFFECT_PATIENT)}, {pct}."
        )
    if vocab.TRAIT_EFFECT_THERAPIST in summary.index:
        m = means[vocab.TRAIT_EFFECT_THERAPIST]
        out.append(
            f"Between therapists: patients of a therapist whose patients' average {x} is one point "
            f"higher have a usual {y} {abs(m):.3f} points {'higher' if m > 0 else 'lower'}; "
            f"{_interval(summary, vocab.TRAIT_EFFECT_THERAPIST)}, {pct}. With few therapists this interval is wide."
        )
    sel = r2_table[(r2_table.equation == "outcome") & (r2_table.denominator == "total")]
    share = {str(c): float(val) for c, val in zip(sel[vocab.COMPONENT], sel["mean"], strict=True)}
    if "f1" in share:
        parts = [f"state effects and autoregression (f1) {share['f1']:.1%}"]
        if "f2" in share:
            parts.append(f"the patient trait effect (f2) {share['f2']:.1%}")
        if "f3" in share:
            parts.append(f"the therapist trait effect (f3) {share['f3']:.1%}")
        m_key = "m2" if "m2" in share else "m"
        parts.append(
            f"stable patient differences not explained by {x} ({m_key}) {share[m_key]:.1%}"
        )
        out.append(f"Of the total variance of {y}: " + "; ".join(parts) + ".")
    return out


def stationarity_note(spec: ModelSpec) -> str:
    """One sentence on how the model treats stationarity (for the report and the CLI)."""
    if spec.dynamics != "var1":
        return "The model has no lagged dynamics, so stationarity does not arise."
    if spec.first_session == "stationary":
        return (
            "Stationarity is imposed, not estimated: each patient's first session is drawn from "
            "the stationary distribution of their own dynamics, so the prior is truncated to "
            "stationary dynamics (with random slopes, each patient's or therapist's slope to its "
            "stationary interval, with the truncated normal's normalising constant). No posterior "
            "probability of stationarity is reported."
        )
    return (
        "Stationarity is not imposed (free first-session covariance); 'stationary' is the "
        "posterior probability that the average dynamics are stationary."
    )
