r"""Feedback for one patient from a mechanism fit (the k-series multilevel VAR(1) of
:mod:`bayes_alliance.mechanisms`): every design holds the alliance as its ``predictor`` series
(alone, with the symptoms, a mediator, a second informant, or both).

Per thinned posterior draw (200 by default) the patient's latent levels and k-series states are
drawn from their exact conditional given the data (:func:`bayes_alliance.mechanisms.states.
patient_states`: every patient's latent means and every therapist's part given the data, then
this patient's states by forward filtering, backward sampling with its own lag matrix,
innovation covariance and measurement error). The page then reads the alliance as the main
model's page does (:mod:`bayes_alliance.feedback.patient_feedback`): the trait-like alliance as
a percentile among all patients and the therapist's caseload (the other patients' levels drawn
in the same draw), the current state and its recent trend, and the two Zilcha-Mano & Fisher
(2022) patterns with probabilities calibrated against the draw's own null. For the k-series
model that null is the stationary-start VAR(1) of the draw -- its k x k lag matrix, innovation
and first-session covariances, the patient's own with random lags or innovations -- under which
the alliance state's change over the last sessions is Gaussian with the exact variance ``c' C
c`` (:func:`bayes_alliance.analysis.pattern_null.state_covariance_k`). A posterior draw of the
states has, over the data sets the model generates, the model's own law, so for a patient
without change the probability averages ``alpha``.

With two informants the therapist-rated alliance's trait, percentile, state and trend stand
beside the patient's; with a mediator, the mediator's state and trend. New sessions of a fitted
patient are conditioned on the same way (the patient's rows added to the fitted table, the
parameters kept at their draws). A patient the fit does not have (their rows in the new
sessions) becomes one more row of the data: their latent levels are drawn exactly as every
patient's, and their random lags and innovation offsets, which no draw holds, by importance
sampling from the model's prior (:mod:`bayes_alliance.mechanisms.new_patient`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayes_alliance.analysis import pattern_null
from bayes_alliance.analysis.pattern_table import feedback_patterns
from bayes_alliance.core import vocab
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.feedback.patient_feedback import (
    FeedbackOptions,
    interval,
    least_squares_slope,
    percentile_among,
    plain,
    summary_sentences,
    trend_flags,
)
from bayes_alliance.mechanisms.fit import MechanismResult
from bayes_alliance.mechanisms.new_patient import (
    N_PROPOSALS,
    NewDraws,
    NewPatient,
    extend,
    sample_new_patient,
)
from bayes_alliance.mechanisms.records import series_data_from_table, series_table
from bayes_alliance.mechanisms.states import PatientStates, draw_picks, patient_states

v = vocab
N_DRAWS = 200
SEED_TAG = 20260518  # the feedback's stream, apart from the fit's

__all__ = ["MechanismFeedback", "mechanism_feedback", "mechanism_plot", "with_new_sessions"]

# What each design's extra series is called on the page.
SERIES_WORDS = {
    v.SECOND_PREDICTOR: "therapist-rated alliance",
    v.MEDIATOR: "mediator",
}


@dataclass
class MechanismFeedback:
    """The feedback of :func:`mechanism_feedback`: ``summary`` is what feedback.json holds."""

    states: PatientStates
    data: SeriesData
    options: FeedbackOptions
    summary: dict[str, Any] = field(default_factory=dict)
    sentences: list[str] = field(default_factory=list)


def _match(ids: list[object], patient: object) -> int | None:
    for i, p in enumerate(ids):
        if p == patient or str(p) == str(patient):
            return i
    return None


def with_new_sessions(
    result: MechanismResult, patient: object, new: pd.DataFrame | None
) -> tuple[SeriesData, int, int, NewPatient | None]:
    """The data to condition on: the fit's, with the patient's new rows (in the fit's column
    names) added; the patient's row, the number of new sessions and, for a patient the fit does
    not have (an id with rows in ``new`` only), where that new patient sits in the data
    (:func:`bayes_alliance.mechanisms.new_patient.extend`; None for a fitted patient).

    Raises
    ------
    ValueError
        An unknown patient without rows (naming the id, with examples), a new patient of a fit
        with sampled traits, a missing column, a session the fit already has.
    """
    data = result.data
    ids = list(data.coords()[v.PATIENT])
    row = _match(ids, patient)
    mine = None
    if new is not None and len(new):
        pcol = data.base.roles.patient
        if pcol not in new.columns:
            raise ValueError(f"the new sessions lack the patient column {pcol!r}")
        mine = new[new[pcol].astype(str) == str(patient)]
        if mine.empty:
            mine = None
    if row is None and mine is None:
        hint = "; a new patient needs their session ratings (new_sessions / --new-sessions)"
        raise ValueError(f"unknown patient id {patient!r}; e.g. {ids[:5]}{hint}")
    if row is None:
        assert mine is not None
        if result.spec.resolved(data).traits != "integrated":
            raise ValueError(
                f"patient {patient!r} is not in the fit: feedback for a new patient needs the "
                "integrated form (this fit samples its traits, for a binary end outcome)"
            )
        ext, where = extend(data, result.spec.resolved(data), result.provenance, patient, mine)
        return ext, where.row, len(mine), where
    if mine is None:
        return data, row, 0, None
    roles = data.base.roles
    need = [roles.session, *data.columns]
    missing = [c for c in need if c not in mine.columns]
    if missing:
        raise ValueError(f"the new sessions lack the column(s) {missing} (the fit's names)")
    table = series_table(data).to_dataframe().reset_index(drop=True)
    pid = str(ids[row])
    old = table[table[roles.patient] == pid]
    dup = sorted(set(mine[roles.session].astype(int)) & set(old[roles.session].astype(int)))
    if dup:
        raise ValueError(f"patient {pid!r} already has session(s) {dup[:5]} in the fit")
    rows = pd.DataFrame({c: old.iloc[0][c] for c in table.columns}, index=range(len(mine)))
    rows[roles.patient] = pid
    rows[roles.session] = mine[roles.session].to_numpy(dtype=float)
    for c in data.columns:
        rows[c] = pd.to_numeric(mine[c], errors="raise").to_numpy(dtype=float)
    if roles.therapist is not None and roles.therapist in mine.columns:
        given = {str(g) for g in mine[roles.therapist].dropna()}
        if given - {str(old.iloc[0][roles.therapist])}:
            raise ValueError(
                f"patient {pid!r} was fitted with therapist {old.iloc[0][roles.therapist]!r}, "
                f"not {sorted(given)}"
            )
    both = pd.concat([table, rows], ignore_index=True)
    extended = series_data_from_table(xr.Dataset.from_dataframe(both), result.provenance)
    if [str(p) for p in extended.coords()[v.PATIENT]] != [str(p) for p in ids]:
        raise ValueError("the new sessions changed the fit's patients; give one patient's rows")
    return extended, row, len(mine), None


def _series_summary(
    fs: PatientStates,
    data: SeriesData,
    col: int,
    opt: FeedbackOptions,
    sessions: np.ndarray,
) -> dict[str, Any]:
    """Trait, percentiles, current state, trend (with its calibrated probabilities) of one
    series; ``draws`` holds the per-draw arrays the flags and patterns read."""
    row, ci = fs.row, opt.ci_prob
    observed = data.z[row, fs.columns, col]
    seen = np.flatnonzero(np.isfinite(observed))
    trait = fs.level[:, row, col]
    others = np.setdiff1d(np.arange(data.n_patients), [row])
    pct_all = percentile_among(trait, fs.level[:, others, col])
    pct_case = None
    tj = data.patient_therapist
    if tj is not None:
        case = np.setdiff1d(np.flatnonzero(tj == tj[row]), [row])
        if case.size:
            pct_case = percentile_among(trait, fs.level[:, case, col])
    states = np.where(np.isfinite(observed), fs.states[:, :, col], np.nan)
    out: dict[str, Any] = {
        "series": data.columns[col],
        "trait": interval(trait, ci),
        "trait_percentile": {
            "all_patients": interval(pct_all, ci),
            "caseload": None if pct_case is None else interval(pct_case, ci),
        },
        "state_deviation": None,
        "state_trend": None,
        "draws": {"percentile": pct_all, "states": states, "up": None, "down": None},
    }
    if seen.size == 0:
        return out
    out["latest_session"] = int(sessions[seen[-1]])
    out["state_deviation"] = interval(states[:, seen[-1]], ci)
    recent = seen[-opt.last :]
    if recent.size < 2:
        return out
    t = sessions[recent].astype(float)
    trend = least_squares_slope(t, states[:, recent])
    change = trend * float(t[-1] - t[0])
    if opt.calibration == "null":
        cov = pattern_null.state_covariance_k(fs.phi, fs.sigma, fs.first_cov, len(sessions), col)
        sub = cov[:, recent][:, :, recent]
        sd = pattern_null.linear_null_sd(sub, np.ones(recent.size, dtype=bool), t)
        unit = stats.norm.ppf(1 - opt.alpha) * sd
    else:
        unit = opt.min_trend * np.sqrt(fs.sigma[:, col, col])
    up, down = change > unit, change < -unit
    out["state_trend"] = {
        **interval(trend, ci),
        "sessions": [int(s) for s in sessions[recent]],
        "probability_strengthening": float(up.mean()),
        "probability_weakening": float(down.mean()),
    }
    out["draws"] |= {"up": up, "down": down}
    return out


def _patterns(
    fs: PatientStates,
    states: np.ndarray,
    sessions: np.ndarray,
    col: int,
    opt: FeedbackOptions,
    seed: int,
) -> dict[str, Any]:
    """The dynamic patterns of the alliance states, calibrated against the draw's k-series
    null at the patient's observed sessions (or, ``calibration="fixed"``, in units of the
    patient's innovation SD per draw)."""
    seen = np.isfinite(states[0])
    if opt.calibration != "null" or not seen.any():
        return feedback_patterns(states, sessions, np.sqrt(fs.sigma[:, col, col]))
    lo, hi = int(np.flatnonzero(seen)[0]), int(np.flatnonzero(seen)[-1]) + 1
    cov = pattern_null.state_covariance_k(fs.phi, fs.sigma, fs.first_cov, len(sessions), col)
    rng = np.random.default_rng([seed, SEED_TAG])
    q = pattern_null.null_thresholds(
        cov[:, lo:hi, lo:hi], seen[lo:hi], sessions[lo:hi].astype(float), alpha=opt.alpha, rng=rng
    )
    return feedback_patterns(states, sessions, None, null=q)


def _model(result: MechanismResult, n_draws: int) -> dict[str, Any]:
    spec = result.spec
    return {
        "family": "mechanism",
        "design": result.design,
        "series": dict(zip(result.data.roles, result.data.columns, strict=True)),
        "traits": spec.traits,
        "therapist_level": spec.therapist_level,
        "random_lags": [f"{to}<-{fr}" for to, fr in spec.random_paths or ()],
        "measurement_error": list(spec.measurement_error),
        "random_innovations": spec.random_innovations,
        "trend": bool(spec.trend),
        "posterior_draws": n_draws,
    }


def mechanism_feedback(
    result: MechanismResult,
    patient: object,
    new_sessions: pd.DataFrame | None = None,
    options: FeedbackOptions | None = None,
    n_draws: int = N_DRAWS,
    random_seed: int | None = None,
    n_proposals: int = N_PROPOSALS,
) -> MechanismFeedback:
    """Feedback for one patient of a mechanism fit at their latest session (see the module):
    the same numbers as :func:`bayes_alliance.feedback.patient_feedback.patient_feedback`
    under the same keys, plus ``model`` (which model and options), ``change`` (the patient's
    alliance slope per session, with a trend), ``other_series`` (a second informant's or a
    mediator's trait, state and trend) and ``instability`` (random innovations).

    Parameters
    ----------
    result
        A mechanism fit (any design: the alliance is its ``predictor`` series).
    patient
        A fitted patient's id (``"7"`` finds 7), or a new patient's, whose rows are then in
        ``new_sessions`` (with their therapist, a fitted one or a new one, in three-level
        data; see :mod:`bayes_alliance.mechanisms.new_patient`).
    new_sessions
        A long table in the fit's column names; the patient's rows are added (other patients'
        rows are ignored).
    options
        Thresholds (:class:`FeedbackOptions`; ``variable`` must be the predictor).
    n_draws
        Posterior draws used (evenly thinned).
    random_seed
        Seeds the state draws and the patterns' null series (default: the fit's seed).
    n_proposals
        A new patient's importance-sampling proposals per draw (random lags or innovations).
    """
    t0 = time.perf_counter()
    opt = options or FeedbackOptions()
    if opt.variable != v.PREDICTOR:
        raise ValueError(
            "in a mechanism fit the alliance is the predictor series (--alliance predictor); "
            f"got {opt.variable!r}"
        )
    seed = int(result.provenance.get("random_seed") or 0) if random_seed is None else random_seed
    data, row, n_new, where = with_new_sessions(result, patient, new_sessions)
    post = result.idata.posterior.to_dataset()
    arrays = {str(n): np.asarray(a.values) for n, a in post.data_vars.items()}
    new = None
    if where is not None:
        n_chain, n_draw = arrays["lag"].shape[:2]
        picks = draw_picks(n_chain, n_draw, n_draws)
        spec = result.spec.resolved(result.data)
        rng = np.random.default_rng([seed, SEED_TAG, 1])
        new = sample_new_patient(
            arrays, result.data, data, spec, where, picks, result.provenance, rng, n_proposals
        )
    fs = patient_states(arrays, data, result.spec, row, n_draws, seed, new)
    sessions = np.asarray(data.base.sessions)[fs.columns]
    col = data.index(v.PREDICTOR)
    main = _series_summary(fs, data, col, opt, sessions)
    if main["state_deviation"] is None:
        raise ValueError(
            f"patient {data.coords()[v.PATIENT][row]!r} has no observed "
            f"{data.columns[col]!r} rating: the feedback on alliance needs at least one"
        )
    draws = main.pop("draws")
    flags: dict[str, Any] = {}
    if draws["up"] is not None:
        pct = draws["percentile"]
        flags = trend_flags(
            opt, pct < opt.low_trait, pct > opt.high_trait, draws["up"], draws["down"]
        )
    others = {}
    for role in (v.SECOND_PREDICTOR, v.MEDIATOR):
        if role in data.roles:
            part = _series_summary(fs, data, data.index(role), opt, sessions)
            part.pop("draws")
            others[role] = part | {"label": SERIES_WORDS[role]}
    tj = data.patient_therapist
    therapist = None if tj is None else data.coords()[v.THERAPIST][int(tj[row])]
    instability = None
    if result.spec.random_innovations:
        own = np.sqrt(fs.sigma[:, col, col])
        typical = arrays["sd_innovation"].reshape(-1, data.k)[fs.source, col]
        instability = {
            "innovation_sd": interval(own, opt.ci_prob),
            "relative_to_typical": interval(own / typical, opt.ci_prob),
        }
    summary: dict[str, Any] = {
        "patient": plain(data.coords()[v.PATIENT][row]),
        "therapist": plain(therapist),
        "new_patient": where is not None,
        "new_therapist": bool(where is not None and where.new_therapist),
        "new_sessions": n_new,
        "importance_sampling": _importance(new),
        "variable": data.columns[col],
        "model": _model(result, int(fs.source.size)),
        "latest_session": main["latest_session"],
        "interval": f"{opt.ci_prob * 100:.4g}% equal-tailed",
        "trait": main["trait"],
        "trait_percentile": main["trait_percentile"],
        "state_deviation": main["state_deviation"],
        "state_trend": main["state_trend"],
        "change": None if fs.slope is None else interval(fs.slope, opt.ci_prob),
        "flags": flags,
        "instability": instability,
        "other_series": others,
        "patterns": _patterns(fs, draws["states"], sessions, col, opt, seed),
        "options": asdict(opt),
        "random_seed": seed,
        "seconds_conditioning": time.perf_counter() - t0,
        "converged": result.convergence.ok,
        "convergence": result.convergence.message(),
    }
    fb = MechanismFeedback(fs, data, opt, summary)
    fb.sentences = _sentences(summary, opt)
    summary["sentences"] = fb.sentences
    return fb


def _importance(new: NewDraws | None) -> dict[str, Any] | None:
    """The new patient's effective sample sizes, with a warning when they are low."""
    out = None if new is None else new.summary()
    if out is not None and out["low"]:
        warnings.warn(
            f"the new patient's random lags were drawn with a median effective sample size of "
            f"{out['ess_median']:.1f} of {out['proposals']} proposals per draw: raise "
            "n_proposals for draws closer to their conditional",
            RuntimeWarning,
            stacklevel=3,
        )
    return out


def _sentences(s: dict[str, Any], opt: FeedbackOptions) -> list[str]:
    """The main model's sentences on the alliance, then the other series' and what the model
    and the probabilities are."""
    out = summary_sentences(s, opt)
    tail = out.pop()  # "statistical signals ... not diagnoses": kept last
    if s["new_patient"]:
        out += _new_sentences(s)
    if s["change"] is not None:
        c = s["change"]
        out.append(
            f"The patient's own linear change of {s['variable']} over treatment is "
            f"{c['mean']:.3f} per session ({c['ci_low']:.3f} to {c['ci_high']:.3f}); the "
            "states above are deviations from that line."
        )
    for part in s["other_series"].values():
        if part["state_deviation"] is None:
            continue
        text = f"The {part['label']} ({part['series']}): trait-like level {_fmt(part['trait'])}"
        text += f", at the {_fmt(part['trait_percentile']['all_patients'], 0)} percentile; "
        text += f"state at session {part['latest_session']} {_fmt(part['state_deviation'])}"
        tr = part["state_trend"]
        if tr is not None:
            text += (
                f", changing by {_fmt(tr)} per session (probability strengthening "
                f"{tr['probability_strengthening']:.2f}, weakening "
                f"{tr['probability_weakening']:.2f})"
            )
        out.append(text + ".")
    m = s["model"]
    series = ", ".join(f"{c} ({r})" for r, c in m["series"].items())
    out.append(
        f"Model: the k-series multilevel VAR(1) of a mechanism fit, design {m['design']}, series "
        f"{series}; numbers from {m['posterior_draws']} posterior draws, each patient's latent "
        "levels and states drawn from their exact conditional given the data and the draw."
    )
    if opt.calibration == "null":
        out.append(
            "A probability of strengthening or weakening is the share of draws in which the "
            "state's change over those sessions exceeds what the draw's own VAR(1) gives "
            f"without change in {1 - opt.alpha:.0%} of series; for a patient whose alliance "
            f"does not change it averages {opt.alpha:g}."
        )
    out.append(tail)
    return out


def _new_sentences(s: dict[str, Any]) -> list[str]:
    """What a new patient's numbers rest on."""
    text = (
        f"Patient {s['patient']} was not in the fit: their latent levels are drawn given their "
        f"{s['new_sessions']} session(s), the fitted patients and each posterior draw"
    )
    imp = s["importance_sampling"]
    if imp is not None:
        text += (
            "; their own random lags or fluctuation, which the fit does not hold, from the "
            "model's distribution of patients, weighted by how well each fits their sessions "
            f"(effective sample size {imp['ess_median']:.0f} of {imp['proposals']} per draw, "
            "median)"
        )
    out = [text + "."]
    if s["new_therapist"]:
        out.append(
            f"Therapist {s['therapist']} was not in the fit either: their part comes from the "
            "model's distribution of therapists and this patient's sessions."
        )
    if imp is not None and imp["low"]:
        out.append(
            "Few of those proposals fit the sessions well (a low effective sample size): the "
            "patient's own lags are drawn roughly; more proposals would sharpen them."
        )
    return out


def _fmt(d: dict[str, float], digits: int = 2) -> str:
    return f"{d['mean']:.{digits}f} ({d['ci_low']:.{digits}f} to {d['ci_high']:.{digits}f})"


def mechanism_plot(fb: MechanismFeedback) -> Any:
    """The patient's observed alliance, latent level band and mean states over sessions."""
    from bayes_alliance.report import plots

    fs, data = fb.states, fb.data
    col = data.index(v.PREDICTOR)
    sessions = np.asarray(data.base.sessions)[fs.columns]
    observed = data.z[fs.row, fs.columns, col]
    states = np.where(np.isfinite(observed), fs.states[:, :, col], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        state_mean = np.nanmean(states, axis=0)
    return plots.decomposition(
        sessions,
        observed,
        fs.level[:, fs.row, col],
        state_mean,
        str(fb.summary["patient"]),
        fb.summary["variable"],
        fb.options.ci_prob,
    )
