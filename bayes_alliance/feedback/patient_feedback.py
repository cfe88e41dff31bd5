"""Feedback for one patient from a fitted result, at their latest session.

The patient's trait and states are first conditioned on their sessions, old and new, without
refitting (:func:`bayes_alliance.feedback.patient_update.update_patient`); :func:`patient_feedback` turns
that posterior into feedback at the patient's latest session: the trait-like alliance as a
percentile among all patients and the therapist's caseload, the current state deviation and its
recent trend, and the two patterns the review of Zilcha-Mano & Fisher (2022) singles out, with
their posterior probabilities:

* low trait-like alliance with a strengthening state: a possible corrective experience;
* high trait-like alliance with a weakening state: a possible rupture.

Strengthening (weakening) means, in a posterior draw, that the change of the state over the
last sessions exceeds (falls below minus) its ``1 - alpha`` quantile under the fitted model
without change: the draw's stationary within-person VAR(1) at those sessions, under which the
change is Gaussian with a variance computed exactly
(:mod:`bayes_alliance.analysis.pattern_null`). A posterior state draw has, over data sets of the
model, the model's null law, so on patients without change the probability averages at most
``alpha`` and a flag raised at probability 0.75 is raised for at most ``alpha / 0.75`` of them
(docs/feedback.md gives the rates measured on fits). ``calibration="fixed"`` keeps the rule of
a change beyond ``min_trend`` innovation SDs.

Zilcha-Mano, S., & Fisher, H. (2022). Distinct roles of state-like and trait-like
patient-therapist alliance in psychotherapy. *Nature Reviews Psychology*, 1, 194-210.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bayes_alliance.analysis import pattern_null
from bayes_alliance.analysis.pattern_table import (
    CALIBRATIONS,
    NullModel,
    feedback_patterns,
    innovation_scale,
    session_model_only,
)
from bayes_alliance.analysis.patterns import PATTERNS
from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND, FEEDBACK_CI_PROB, interval_bounds
from bayes_alliance.feedback.patient_update import PatientPosterior, update_patient
from bayes_alliance.inference.fit import FitResult
from bayes_alliance.inference.unit_group import posterior_of

v = vocab
__all__ = [
    "NOT_CONVERGED_SENTENCE",
    "Feedback",
    "FeedbackOptions",
    "feedback_plot",
    "interval",
    "least_squares_slope",
    "patient_feedback",
    "percentile_among",
    "summary_sentences",
    "trend_flags",
]

NOT_CONVERGED_SENTENCE = (
    "NOT CONVERGED: the fit's convergence check failed, so these numbers may be wrong; they are "
    "for checking the analysis, not for clinical decisions."
)


@dataclass(frozen=True)
class FeedbackOptions:
    """Thresholds of the feedback (all documented in docs/feedback.md).

    Attributes
    ----------
    variable
        Which variable is the alliance: ``"predictor"`` (default) or ``"outcome"``.
    ci_prob
        Probability of the equal-tailed intervals.
    last
        Number of latest observed sessions whose states give the recent trend (slope per
        session, least squares, per draw).
    low_trait, high_trait
        Percentiles (among all patients) below / above which the trait-like alliance counts as
        low / high for the flags.
    min_trend
        With ``calibration="fixed"``: the state counts as strengthening when its change over
        the last sessions (the slope times their span) exceeds ``min_trend`` times the model's
        innovation SD of the alliance in that draw, weakening when below minus that.
    flag_probability
        A flag is raised when the posterior probability of its pattern reaches this.
    calibration
        ``"null"`` (default): the state counts as strengthening in a draw when its change over
        the last sessions exceeds the ``1 - alpha`` quantile of that change under the draw's
        model without change (stationary states at those sessions; the change's null SD is
        exact), weakening when below minus it; the dynamic patterns are calibrated the same
        way (:mod:`bayes_alliance.analysis.pattern_null`). ``"fixed"``: ``min_trend``
        innovation SDs, and the patterns' fixed thresholds.
    alpha
        The calibrated rules' false-positive rate per draw.
    """

    variable: str = v.PREDICTOR
    ci_prob: float = FEEDBACK_CI_PROB
    last: int = 4
    low_trait: float = 25.0
    high_trait: float = 75.0
    min_trend: float = 1.0
    flag_probability: float = 0.75
    calibration: str = "null"
    alpha: float = pattern_null.DEFAULT_ALPHA

    def __post_init__(self) -> None:
        v.check_names([self.variable], v.VARIABLES, "variable")
        if not 0 < self.ci_prob < 1 or not 0 < self.flag_probability <= 1:
            raise ValueError("ci_prob and flag_probability must lie between 0 and 1")
        if self.last < 2:
            raise ValueError(f"last must be at least 2 sessions, got {self.last}")
        if not 0 <= self.low_trait <= self.high_trait <= 100:
            raise ValueError("need 0 <= low_trait <= high_trait <= 100 (percentiles)")
        if self.min_trend < 0:
            raise ValueError(f"min_trend must be non-negative, got {self.min_trend}")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie between 0 and 1, got {self.alpha}")


def interval(draws: np.ndarray, ci_prob: float) -> dict[str, float]:
    flat = np.ravel(draws)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    lo, hi = interval_bounds(flat, ci_prob, BAND_KIND)
    return {"mean": float(flat.mean()), "ci_low": float(lo), "ci_high": float(hi)}


def percentile_among(value: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Per draw, the share (in %) of ``others`` (chain, draw, n) below ``value`` (chain, draw),
    ties counted half."""
    below = (others < value[..., None]).sum(axis=-1)
    ties = (others == value[..., None]).sum(axis=-1)
    return 100.0 * (below + 0.5 * ties) / others.shape[-1]


def least_squares_slope(sessions: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Least-squares slope of the states (chain, draw, k) on the session numbers, per draw."""
    s = sessions - sessions.mean()
    w = states - states.mean(axis=-1, keepdims=True)
    return np.asarray((w * s).sum(axis=-1) / (s * s).sum())


@dataclass
class Feedback:
    """The feedback of :func:`patient_feedback`: ``summary`` is what feedback.json holds."""

    posterior: PatientPosterior
    options: FeedbackOptions
    summary: dict[str, Any] = field(default_factory=dict)
    sentences: list[str] = field(default_factory=list)


def patient_feedback(
    result: FitResult,
    patient: object,
    new_sessions: pd.DataFrame | None = None,
    options: FeedbackOptions | None = None,
    posterior: PatientPosterior | None = None,
    random_seed: int | None = None,
) -> Feedback:
    """Feedback for one patient at their latest session (see the module's description):
    trait percentiles, current state deviation, recent trend and the two flags, each number a
    posterior mean with its equal-tailed interval, each flag a posterior probability.
    ``random_seed`` seeds the conditioning's draws (default: the fit's seed); it is recorded
    in the summary."""
    session_model_only(result, "patient feedback")
    opt = options or FeedbackOptions()
    seed = int(result.provenance.get("random_seed", 0)) if random_seed is None else random_seed
    pp = posterior or update_patient(result, patient, new_sessions, random_seed=seed)
    which = opt.variable
    ci = opt.ci_prob
    trait = pp.trait(which)
    data = result.data
    pct_all, pct_case = _percentiles(result, pp, trait, which)
    states = pp.state(which)
    seen = np.flatnonzero(np.isfinite(pp.observed(which)))
    if seen.size == 0:
        raise ValueError(
            f"patient {pp.patient!r} has no observed {getattr(result.data.roles, which)!r} "
            "rating: the feedback on alliance needs at least one"
        )
    latest = seen[-1]
    current = states[..., latest]
    recent = seen[-opt.last :]
    trend = (
        least_squares_slope(pp.sessions[recent].astype(float), states[..., recent])
        if recent.size >= 2
        else None
    )
    flags: dict[str, Any] = {}
    up = down = np.zeros(0, dtype=bool)
    null = NullModel(result, which, alpha=opt.alpha) if opt.calibration == "null" else None
    if trend is not None:
        span = float(pp.sessions[recent][-1] - pp.sessions[recent][0])
        if null is not None:
            unit = _trend_null(null, pp, recent, opt.alpha).reshape(trend.shape)
        else:
            unit = opt.min_trend * innovation_scale(result, which).reshape(trend.shape)
        change = trend * span
        up, down = change > unit, change < -unit
        flags = trend_flags(opt, pct_all < opt.low_trait, pct_all > opt.high_trait, up, down)
    label = getattr(data.roles, which)
    summary: dict[str, Any] = {
        "patient": plain(pp.patient),
        "therapist": plain(pp.therapist),
        "new_patient": pp.new_patient,
        "new_sessions": pp.n_new_sessions,
        "variable": label,
        "latest_session": int(pp.sessions[latest]),
        "interval": f"{ci * 100:.4g}% equal-tailed",
        "trait": interval(trait, ci),
        "trait_percentile": {
            "all_patients": interval(pct_all, ci),
            "caseload": None if pct_case is None else interval(pct_case, ci),
        },
        "state_deviation": interval(current, ci),
        "state_trend": None
        if trend is None
        else {
            **interval(trend, ci),
            "sessions": [int(s) for s in pp.sessions[recent]],
            "probability_strengthening": float(up.mean()),
            "probability_weakening": float(down.mean()),
        },
        "flags": flags,
        "instability": _instability(result, pp, which, ci),
        "patterns": _patterns(result, pp, which, null),
        "options": asdict(opt),
        "random_seed": seed,
        "seconds_conditioning": pp.seconds,
        # The fit's convergence check travels with its numbers (a failed one opens the text).
        "converged": result.convergence.ok,
        "convergence": result.convergence.message(),
    }
    fb = Feedback(pp, opt, summary)
    fb.sentences = summary_sentences(summary, opt)
    summary["sentences"] = fb.sentences
    return fb


def _instability(
    result: FitResult, pp: PatientPosterior, which: str, ci: float
) -> dict[str, Any] | None:
    """With random innovation variances: the patient's own session-to-session fluctuation (the
    innovation SD) and its ratio to the typical patient's (the population median), per draw."""
    if pp.innovation_sd is None:
        return None
    k = 0 if which == "predictor" else 1
    name = "innovation_sd_predictor" if k == 0 else "innovation_sd_outcome"
    typical = np.asarray(result.idata.posterior[name].values)
    own = pp.innovation_sd[..., k]
    return {"innovation_sd": interval(own, ci), "relative_to_typical": interval(own / typical, ci)}


def _percentiles(
    result: FitResult, pp: PatientPosterior, trait: np.ndarray, which: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The patient's trait as a percentile among all other patients and among the other
    patients of the same therapist (None without a therapist or without others), per draw."""
    data = result.data
    others_all = np.asarray(posterior_of(result.idata)[f"trait_{which}"].values)
    pid_rows: Any = [] if pp.new_patient else np.flatnonzero(data.patients == pp.patient)
    keep = np.setdiff1d(np.arange(data.n_patients), pid_rows)
    pct_all = percentile_among(trait, others_all[..., keep])
    pct_case = None
    if pp.therapist is not None and data.patient_therapist is not None:
        assert data.therapists is not None
        code = int(np.flatnonzero(data.therapists == pp.therapist)[0])
        case = np.setdiff1d(np.flatnonzero(data.patient_therapist == code), pid_rows)
        if case.size:
            pct_case = percentile_among(trait, others_all[..., case])
    return pct_all, pct_case


def _trend_null(
    null: NullModel, pp: PatientPosterior, recent: np.ndarray, alpha: float
) -> np.ndarray:
    """The ``1 - alpha`` null quantile per draw of the change over the recent sessions (slope
    times span): ``z_(1-alpha)`` times its exact null SD, from the states' covariance over the
    patient's series (:meth:`NullModel.covariance`) at the recent sessions."""
    cov = null.covariance(len(pp.sessions), patient=pp.patient)
    sub = cov[:, recent][:, :, recent]
    t = pp.sessions[recent].astype(float)
    sd = pattern_null.linear_null_sd(sub, np.ones(len(recent), dtype=bool), t)
    return np.asarray(stats.norm.ppf(1 - alpha) * sd)


def trend_flags(
    opt: FeedbackOptions, low: np.ndarray, high: np.ndarray, up: np.ndarray, down: np.ndarray
) -> dict[str, Any]:
    """The two flags per draw and their posterior probabilities: a low trait with a rising
    state (a possible corrective experience), a high trait with a falling state (a possible
    rupture)."""
    flags: dict[str, Any] = {}
    if opt.calibration == "null":
        size = (
            f"beyond what the fitted model gives without change in {1 - opt.alpha:.0%} of "
            "series (its null quantile)"
        )
    else:
        size = f"beyond {opt.min_trend:g} innovation SD"
    for name, both, rule in (
        (
            "corrective_experience",
            low & up,
            f"trait-like alliance below the {opt.low_trait:g}th percentile and a state "
            f"rise over the last sessions {size}",
        ),
        (
            "rupture",
            high & down,
            f"trait-like alliance above the {opt.high_trait:g}th percentile and a state "
            f"fall over the last sessions {size}",
        ),
    ):
        prob = float(both.mean())
        flags[name] = {"probability": prob, "raised": prob >= opt.flag_probability, "rule": rule}
    return flags


def plain(x: object) -> object:
    return x.item() if isinstance(x, np.generic) else x


def _patterns(
    result: FitResult, pp: PatientPosterior, which: str, null: NullModel | None
) -> dict[str, Any]:
    """The patient's dynamic patterns of state-like alliance (docs/patterns.md) from the
    updated state draws (:func:`bayes_alliance.analysis.pattern_table.feedback_patterns`):
    calibrated against the fitted model's null, or with ``null=None`` in units of the model's
    innovation SD per draw."""

    states = np.asarray(pp.state(which), dtype=float)
    flat = states.reshape(-1, states.shape[-1])
    sessions = np.asarray(pp.sessions)
    if null is None:
        return feedback_patterns(flat, sessions, innovation_scale(result, which))
    seen = np.isfinite(flat[0])
    if not seen.any():
        return feedback_patterns(flat, sessions, None, null=_no_thresholds(flat.shape[0]))
    lo, hi = int(np.flatnonzero(seen)[0]), int(np.flatnonzero(seen)[-1]) + 1
    q = null.thresholds_for(seen[lo:hi], sessions[lo:hi].astype(float), patient=pp.patient)
    return feedback_patterns(flat, sessions, None, null=q)


def _no_thresholds(n_draws: int) -> dict[str, np.ndarray]:
    return {k: np.full(n_draws, np.nan) for k in PATTERNS}


def fmt(d: dict[str, float], digits: int = 2) -> str:
    return f"{d['mean']:.{digits}f} ({d['ci_low']:.{digits}f} to {d['ci_high']:.{digits}f})"


def summary_sentences(s: dict[str, Any], opt: FeedbackOptions) -> list[str]:
    var = s["variable"]
    out = [] if s.get("converged", True) else [NOT_CONVERGED_SENTENCE]
    out += [
        f"Patient {s['patient']}'s trait-like {var} is {fmt(s['trait'])}, at the "
        f"{fmt(s['trait_percentile']['all_patients'], 0)} percentile of all patients "
        f"({s['interval']} intervals throughout)."
    ]
    if s["trait_percentile"]["caseload"] is not None:
        out.append(
            f"Among therapist {s['therapist']}'s other patients it stands at the "
            f"{fmt(s['trait_percentile']['caseload'], 0)} percentile."
        )
    sd = s["state_deviation"]
    word = "above" if sd["mean"] > 0 else "below"
    out.append(
        f"At session {s['latest_session']} the state-like {var} is {abs(sd['mean']):.2f} "
        f"{word} the patient's own level ({sd['ci_low']:.2f} to {sd['ci_high']:.2f})."
    )
    inst = s.get("instability")
    if inst is not None:
        out.append(
            f"Its session-to-session fluctuation is {fmt(inst['relative_to_typical'])} times "
            "the typical patient's."
        )
    tr = s["state_trend"]
    if tr is None:
        out.append("There are too few sessions for a trend of the states.")
    else:
        out.append(
            f"Over sessions {tr['sessions'][0]}-{tr['sessions'][-1]} the state changes by "
            f"{fmt(tr)} per session; probability that it is strengthening "
            f"{tr['probability_strengthening']:.2f}, weakening {tr['probability_weakening']:.2f}."
        )
    names = {
        "corrective_experience": "a possible corrective experience (low trait-like, "
        "strengthening state-like alliance)",
        "rupture": "a possible rupture (high trait-like, weakening state-like alliance)",
    }
    for key, flag in s["flags"].items():
        verb = "Flag raised" if flag["raised"] else "Not flagged"
        out.append(f"{verb}: {names[key]}, posterior probability {flag['probability']:.2f}.")
    out.append(
        "These are statistical signals for the clinician's judgement, not diagnoses "
        "(Zilcha-Mano & Fisher, 2022)."
    )
    return out


def feedback_plot(fb: Feedback) -> Any:
    """The patient's observed alliance, latent trait band and states over sessions."""
    from bayes_alliance.report import plots

    pp, which = fb.posterior, fb.options.variable
    with warnings.catch_warnings():  # sessions with the value missing: NaN, no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        state_mean = np.nanmean(pp.state(which).reshape(-1, len(pp.sessions)), axis=0)
    return plots.decomposition(
        pp.sessions,
        pp.observed(which),
        pp.trait(which),
        state_mean,
        str(pp.patient),
        fb.summary["variable"],
        fb.options.ci_prob,
    )
