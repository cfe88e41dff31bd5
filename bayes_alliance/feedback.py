r"""Feedback for one patient from a fitted result, with new sessions and without refitting.

Given the parameters of a posterior draw, everything in the model is Gaussian: the therapist
parts of the latent means, each patient's latent mean, and the patient's states
(:mod:`bayes_alliance.posthoc`). A patient's new session ratings therefore update the patient's
trait and states exactly, draw by draw, with the parameters held at their posterior draws:

1. the patient's caseload (the other patients of the same therapist, as fitted, plus this
   patient with their old and new sessions) gives each patient's Gaussian factor in their
   latent mean (:func:`bayes_alliance.marginal.series_factor`, or the Kalman filter of
   :mod:`bayes_alliance.gaps` with missing cells);
2. the therapist part of the latent means is drawn from its conditional posterior given the
   caseload (the therapist deviations of different therapists are independent given the
   parameters, so the caseload is all it needs);
3. the patient's latent mean is drawn from its conditional ``N(m0 + K r, K)`` given that draw,
   and the states ``w = z - known mean - M`` follow.

This is what :func:`bayes_alliance.posthoc.complete` computes for that patient had the new
sessions been in the fitted data set, with the same parameter draws (``tests/test_feedback.py``
checks the conditional against a dense Gaussian). What is *not* updated: the parameters
themselves (a refit would move them, slightly for one patient among many), and a patient's
own random slope or trend deviation (kept at their draws; a new patient's are drawn from their
prior).

:func:`patient_feedback` turns the updated posterior into feedback at the patient's latest
session: the trait-like alliance as a percentile among all patients and the therapist's
caseload, the current state deviation and its recent trend, and the two patterns the review of
Zilcha-Mano & Fisher (2022) singles out, with their posterior probabilities:

* low trait-like alliance with a strengthening state: a possible corrective experience;
* high trait-like alliance with a weakening state: a possible rupture.

Zilcha-Mano, S., & Fisher, H. (2022). Distinct roles of state-like and trait-like
patient-therapist alliance in psychotherapy. *Nature Reviews Psychology*, 1, 194-210.
"""

from __future__ import annotations

import html
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance import dynamics, gaps, marginal, posthoc, vocab
from bayes_alliance.data import SessionData
from bayes_alliance.fit import FitResult
from bayes_alliance.likelihood import GridIndex, SeriesGrid
from bayes_alliance.within import baseline_level, baseline_values, moderator_values

v = vocab
__all__ = [
    "FeedbackOptions",
    "PatientPosterior",
    "feedback_html",
    "patient_feedback",
    "therapist_profiles",
    "update_patient",
    "write_feedback",
]

_SEED_TAG = 20260515  # separates the feedback's random stream from the fit's


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
        The state counts as strengthening when its trend is above ``min_trend`` (alliance
        units per session), weakening when below ``-min_trend``.
    flag_probability
        A flag is raised when the posterior probability of its pattern reaches this.
    """

    variable: str = v.PREDICTOR
    ci_prob: float = 0.9
    last: int = 4
    low_trait: float = 25.0
    high_trait: float = 75.0
    min_trend: float = 0.0
    flag_probability: float = 0.75

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


@dataclass
class PatientPosterior:
    """One patient's trait and states per posterior draw, after conditioning on new sessions.

    ``trait_*``: (chain, draw); ``state_*``: (chain, draw, session) over ``sessions`` (the
    patient's first to last session; NaN where a value is missing); ``moments``: (chain, draw,
    5), the conditional mean and covariance entries (mx, my, c11, c12, c22) of the latent-mean
    deviations given the parameters and the drawn therapist part; ``therapist_part``: (chain,
    draw, 2), the drawn therapist part (a_x, a_y + trait_effect_therapist a_x), or None.
    """

    patient: object
    therapist: object | None
    new_patient: bool
    n_new_sessions: int
    sessions: np.ndarray
    observed_predictor: np.ndarray
    observed_outcome: np.ndarray
    trait_predictor: np.ndarray
    trait_outcome: np.ndarray
    state_predictor: np.ndarray
    state_outcome: np.ndarray
    moments: np.ndarray
    therapist_part: np.ndarray | None
    seconds: float = 0.0

    def trait(self, which: str) -> np.ndarray:
        return self.trait_predictor if which == v.PREDICTOR else self.trait_outcome

    def state(self, which: str) -> np.ndarray:
        return self.state_predictor if which == v.PREDICTOR else self.state_outcome

    def observed(self, which: str) -> np.ndarray:
        return self.observed_predictor if which == v.PREDICTOR else self.observed_outcome


# --------------------------------------------------------------------------- the conditioning


def _match_id(ids: np.ndarray, patient: object) -> object | None:
    """The fitted id equal to ``patient``, or equal as text (``"7"`` finds 7); else None."""
    for p in ids.tolist():
        if p == patient:
            return p
    text = {str(p): p for p in ids.tolist()}
    return text.get(str(patient))


def _unknown(kind: str, value: object, known: np.ndarray, hint: str = "") -> ValueError:
    return ValueError(f"unknown {kind} id {value!r}; e.g. {known.tolist()[:5]}{hint}")


def _supported(result: FitResult) -> None:
    spec = result.spec
    if spec.traits != "integrated" and "trait_predictor" not in result.idata.posterior:
        raise ValueError("feedback needs a result with latent means (traits) in its posterior")
    if spec.session_means or spec.innovations == "session":
        raise ValueError(
            "feedback does not support session-specific parameters (session_means, "
            "innovations='session'): new session numbers have no parameters there"
        )
    if result.data.roles.crossed:
        raise ValueError("feedback does not support crossed data (a patient with two therapists)")


def _new_rows(
    result: FitResult, patient: object, new: pd.DataFrame | None
) -> tuple[object, pd.DataFrame, bool]:
    """The fitted id (or the new one), the patient's new rows in the fit's column names, and
    whether the patient is new."""
    data, roles = result.data, result.data.roles
    fitted = _match_id(data.patients, patient)
    if new is None or len(new) == 0:
        if fitted is None:
            raise _unknown(
                "patient",
                patient,
                data.patients,
                "; a new patient needs their session ratings (new_sessions / --new-sessions)",
            )
        return fitted, data.frame.iloc[:0][_columns(result)], False
    need = [roles.patient, roles.session, roles.predictor, roles.outcome]
    missing = [c for c in need if c not in new.columns]
    if missing:
        raise ValueError(f"the new sessions lack the column(s) {missing} (the fit's names)")
    mine = new[new[roles.patient].astype(str) == str(patient)].copy()
    if mine.empty and fitted is not None:
        return fitted, data.frame.iloc[:0][_columns(result)], False
    if mine.empty:
        raise ValueError(
            f"the new sessions have no rows of patient {patient!r}; they hold "
            f"{pd.unique(new[roles.patient]).tolist()[:5]}"
        )
    is_new = fitted is None
    pid = patient if is_new else fitted
    mine[roles.patient] = np.asarray([pid] * len(mine), dtype=object)
    if roles.therapist is not None:
        if is_new:
            if roles.therapist not in mine.columns or mine[roles.therapist].isna().all():
                raise ValueError(
                    f"patient {patient!r} is new: their rows need the therapist column "
                    f"{roles.therapist!r} naming a therapist of the fit"
                )
            given = pd.unique(mine[roles.therapist]).tolist()
            assert data.therapists is not None
            ther = _match_id(data.therapists, given[0])
            if len(given) > 1 or ther is None:
                raise _unknown("therapist", given[0] if ther is None else given, data.therapists)
        else:
            assert data.therapists is not None and data.patient_therapist is not None
            ther = data.therapists[data.patient_therapist[_row(data, pid)]]
            if roles.therapist in mine.columns:
                given = [g for g in pd.unique(mine[roles.therapist]).tolist() if g == g]
                if any(_match_id(np.asarray([ther], dtype=object), g) is None for g in given):
                    raise ValueError(
                        f"patient {pid!r} was fitted with therapist {ther!r}, not {given}"
                    )
        mine[roles.therapist] = np.asarray([ther] * len(mine), dtype=object)
    for c in roles.covariates:
        if c not in mine.columns:
            mine[c] = np.nan if is_new else data.covariates[c].iloc[_row(data, pid)]
    if not is_new:
        old = set(data.frame.loc[data.frame["patient_code"] == _row(data, pid), roles.session])
        dup = sorted(set(mine[roles.session].tolist()) & old)
        if dup:
            raise ValueError(f"patient {pid!r} already has session(s) {dup[:5]} in the fit")
    return pid, mine[_columns(result)], is_new


def _columns(result: FitResult) -> list[str]:
    r = result.data.roles
    cols = [r.patient, r.session, r.predictor, r.outcome, *r.covariates]
    return cols + ([r.therapist] if r.therapist is not None else [])


def _row(data: SessionData, pid: object) -> int:
    return int(np.flatnonzero(data.patients == pid)[0]) if pid is not None else -1


def _caseload(result: FitResult, pid: object, rows: pd.DataFrame, is_new: bool) -> np.ndarray:
    """Fitted rows (patient indices) of the patients conditioned on together: the therapist's
    caseload (without the patient when new) with the therapist level, else the patient alone."""
    data = result.data
    if result.spec.therapist_level and data.patient_therapist is not None:
        assert data.therapists is not None
        ther = rows[data.roles.therapist].iloc[0] if len(rows) else None
        code = (
            int(np.flatnonzero(data.therapists == ther)[0])
            if ther is not None
            else int(data.patient_therapist[_row(data, pid)])
        )
        return np.flatnonzero(data.patient_therapist == code)
    return np.zeros(0, dtype=int) if is_new else np.array([_row(data, pid)])


def _covariate_rows(
    result: FitResult, sub: SessionData, fitted_rows: np.ndarray, target: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Moderator and baseline rows of the sub data set, centred as in the fit (a new patient's
    with the fit's means)."""
    data, spec = result.data, result.spec
    out: list[np.ndarray | None] = []
    for names, full in (
        (spec.moderators, moderator_values(data, spec)),
        (spec.baseline, baseline_values(data, spec)),
    ):
        if full is None:
            out.append(None)
            continue
        z = np.empty((sub.n_patients, full.shape[1]))
        sub_rows = np.arange(sub.n_patients)
        known = sub_rows != target if len(fitted_rows) < sub.n_patients else sub_rows >= 0
        z[known] = full[fitted_rows]
        if not known.all():
            raw = sub.covariates[list(names)].to_numpy(dtype=float)[target]
            if np.isnan(raw).any():
                raise ValueError(
                    f"the new patient's rows need the covariate(s) {list(names)} of this model"
                )
            means = data.covariates[list(names)].to_numpy(dtype=float).mean(axis=0)
            z[target] = raw - means
        out.append(z)
    return out[0], out[1]


def _sub_arrays(
    result: FitResult, fitted_rows: np.ndarray, new_at: int | None, sub: SessionData
) -> dict[str, np.ndarray]:
    """The posterior arrays the conditioning reads, restricted to the sub data set: patient
    vectors to its patients (a new patient's raw deviations drawn from their prior), therapist
    vectors to its therapist."""
    post = result.idata.posterior
    arrays = {n: np.asarray(post[n].values) for n in posthoc.POSTERIOR_NAMES if n in post}
    data = result.data
    seed = int(result.provenance.get("random_seed", 0))
    rng = np.random.default_rng([seed, _SEED_TAG, 1])
    for n in ("state_effect_patient_raw", "trend_predictor_raw", "trend_outcome_raw"):
        if n not in arrays:
            continue
        known = arrays[n][..., fitted_rows]
        if new_at is not None:
            prior = rng.standard_normal(known.shape[:2])[..., None]
            known = np.concatenate([known[..., :new_at], prior, known[..., new_at:]], axis=-1)
        arrays[n] = known
    if "state_effect_therapist_raw" in arrays and sub.therapists is not None:
        assert data.therapists is not None
        codes = [int(np.flatnonzero(data.therapists == t)[0]) for t in sub.therapists.tolist()]
        arrays["state_effect_therapist_raw"] = arrays["state_effect_therapist_raw"][..., codes]
    return arrays


@dataclass
class _Prepared:
    sub: SessionData
    lay: posthoc._Layout
    target: int
    arrays: dict[str, np.ndarray]
    pid: object
    therapist: object | None
    is_new: bool
    n_new: int


def _prepare(result: FitResult, patient: object, new_sessions: pd.DataFrame | None) -> _Prepared:
    _supported(result)
    data, spec = result.data, result.spec
    pid, rows, is_new = _new_rows(result, patient, new_sessions)
    fitted = _caseload(result, pid, rows, is_new)
    cols = _columns(result)
    old = data.frame[data.frame["patient_code"].isin(fitted)][cols]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub = SessionData.from_roles(pd.concat([old, rows], ignore_index=True), data.roles)
    target = int(np.flatnonzero(sub.patients == pid)[0])
    new_at = target if is_new else None
    grid = SeriesGrid.of(sub)
    z, zb = _covariate_rows(result, sub, fitted, target)
    lay = posthoc._Layout(
        grid=grid,
        idx=GridIndex.of(sub),
        cells=grid.containers(),
        # Trends count sessions from the fitted grid's first session, as in the fit.
        t=(sub.sessions - data.sessions[0]).astype(float),
        z=z,
        gaps=bool(grid.miss_x.size or grid.miss_y.size),
        baseline=zb,
        baseline_level=baseline_level(data, spec) if zb is not None else v.PATIENT,
    )
    ther = None
    if sub.therapists is not None and sub.patient_therapist is not None:
        ther = sub.therapists[sub.patient_therapist[target]]
    arrays = _sub_arrays(result, fitted, new_at, sub)
    return _Prepared(sub, lay, target, arrays, pid, ther, is_new, len(rows))


def _flat(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Posterior arrays with the draws of all chains on the last axis: (D,) or (k, D)."""
    out = {}
    for k, val in arrays.items():
        flat = val.reshape(val.shape[0] * val.shape[1], *val.shape[2:])
        out[k] = np.moveaxis(flat, 0, -1)
    return out


@dataclass
class _Conditionals:
    """Every draw at once (draws on the last axis): the caseload's factors in their
    latent-mean deviations (entries (patient, D)), the prior covariance entries of those
    deviations given the therapist part (``tau``) and of the therapist part (``tau_t``, None
    without a therapist level), and the known part of the cell means (patient, session, D)."""

    factor: marginal.MeanFactor
    tau: tuple[np.ndarray, np.ndarray, np.ndarray]
    tau_t: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    kx: np.ndarray
    ky: np.ndarray
    shift: tuple[np.ndarray, np.ndarray]  # the target's baseline shift of the latent means (D,)


def _conditionals(result: FitResult, prep: _Prepared) -> _Conditionals:
    """The numpy twin of :func:`bayes_alliance.posthoc.draw_dynamics`, ``_known`` and the
    factors of ``_one_draw``, vectorised over draws (patients on the first axis, draws on the
    last). Complete and gappy series alike go through the Kalman filter of
    :func:`bayes_alliance.gaps.filter_factor`, which gives a complete series the same factor
    as its sufficient statistics (exactly)."""
    spec, sub, lay = result.spec, prep.sub, prep.lay
    p = _flat(prep.arrays)
    n_d = p[v.INTERCEPT_PREDICTOR].shape[-1]

    def row(name: str, default: float = 0.0) -> np.ndarray:
        return p[name][None, :] if name in p else np.full((1, n_d), default)

    slope = row(v.STATE_EFFECT)
    if lay.z is not None:
        slope = slope + lay.z @ np.atleast_2d(p[v.MODERATOR_EFFECT])
    if v.THERAPIST in spec.random_slopes:
        assert sub.patient_therapist is not None
        raw = p["state_effect_therapist_raw"][sub.patient_therapist]  # (P, D)
        slope = slope + row(v.SD_STATE_EFFECT_THERAPIST) * raw
    if v.PATIENT in spec.random_slopes:
        slope = slope + row(v.SD_STATE_EFFECT_PATIENT) * p["state_effect_patient_raw"]
    b0 = row(v.SAME_SESSION_EFFECT) if spec.same_session != "none" else 0.0
    sx, sy = row(v.INNOVATION_SD_PREDICTOR), row(v.INNOVATION_SD_OUTCOME)
    rho = row(v.INNOVATION_CORR) if spec.same_session == "none" else 0.0
    structural = (
        row(v.PREDICTOR_AUTOREGRESSION),
        row(v.REVERSE_STATE_EFFECT),
        slope,
        row(v.OUTCOME_AUTOREGRESSION),
    )
    phi, sigma = dynamics.reduced_form(
        structural, (sx**2, rho * sx * sy, sy**2), b0, spec.same_session
    )
    if spec.first_session == "free":
        fx, fy = row("first_sd_predictor"), row("first_sd_outcome")
        first: tuple[Any, ...] = (fx**2, row("first_corr") * fx * fy, fy**2)
    elif spec.dynamics == "var1":
        first = dynamics.stationary_cov(phi, sigma)
    else:
        first = sigma
    # Known part of the cell means: intercept, trend, baseline shift (patient, session, D).
    kx: Any = row(v.INTERCEPT_PREDICTOR)[:, None, :]
    ky: Any = row(v.INTERCEPT_OUTCOME)[:, None, :]
    t = lay.t[None, :, None]
    if spec.trend:
        tx = row(v.TREND_PREDICTOR) + row(v.SD_TREND_PREDICTOR) * p["trend_predictor_raw"]
        ty = row(v.TREND_OUTCOME) + row(v.SD_TREND_OUTCOME) * p["trend_outcome_raw"]
        kx = kx + tx[:, None, :] * t
        ky = ky + ty[:, None, :] * t
    shift = (np.zeros(n_d), np.zeros(n_d))
    if lay.baseline is not None:
        a = np.atleast_2d(p[v.BASELINE_EFFECT_PREDICTOR])  # (k, D)
        c = np.atleast_2d(p[v.BASELINE_EFFECT_OUTCOME])
        bx = lay.baseline @ a
        by = lay.baseline @ (c + p[v.BASELINE_MEDIATOR[lay.baseline_level]][None, :] * a)
        kx, ky = kx + bx[:, None, :], ky + by[:, None, :]
        shift = (bx[prep.target], by[prep.target])
    n_p, n_s = sub.n_patients, sub.n_sessions
    kx = np.broadcast_to(kx, (n_p, n_s, n_d))
    ky = np.broadcast_to(ky, (n_p, n_s, n_d))
    g = lay.grid
    cells = gaps.GapCells(
        (g.x[..., None] - kx) * g.obs_x[..., None],
        (g.y[..., None] - ky) * g.obs_y[..., None],
        g.obs_x[..., None],
        g.obs_y[..., None],
        g.first[..., None],
    )
    _, factor, _ = gaps.filter_factor(cells, phi, sigma, first, n_s)
    var_px = row(v.SD_PATIENT_PREDICTOR) ** 2
    beta_p = row(v.TRAIT_EFFECT_PATIENT)
    tau = (var_px, beta_p * var_px, beta_p**2 * var_px + row(v.SD_PATIENT_OUTCOME) ** 2)
    tau_t = None
    if spec.therapist_level:
        var_tx = p[v.SD_THERAPIST_PREDICTOR] ** 2
        beta_t = p[v.TRAIT_EFFECT_THERAPIST]
        tau_t = (var_tx, beta_t * var_tx, beta_t**2 * var_tx + p[v.SD_THERAPIST_OUTCOME] ** 2)
    return _Conditionals(factor, tau, tau_t, kx, ky, shift)


def _target(f: marginal.MeanFactor, i: int) -> marginal.MeanFactor:
    return marginal.MeanFactor(*(np.asarray(e)[i] for e in f.__dict__.values()))


def _therapist_moments(cond: _Conditionals) -> tuple[np.ndarray, ...]:
    """Conditional moments of the therapist part given the caseload, per draw (5 x (D,))."""
    assert cond.tau_t is not None
    _, pseudo = marginal.pseudo_observation(cond.factor, cond.tau)
    caseload = marginal.MeanFactor(*(np.sum(e, axis=0) for e in pseudo.__dict__.values()))
    return tuple(np.asarray(e) for e in marginal.mean_given(caseload, (0.0, 0.0), cond.tau_t))


def _tau_row(cond: _Conditionals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t11, t12, t22 = (np.ravel(e) for e in cond.tau)
    return t11, t12, t22


def _shape_draws(result: FitResult) -> tuple[int, int]:
    post = result.idata.posterior
    return int(post.sizes["chain"]), int(post.sizes["draw"])


def conditional_moments(
    result: FitResult,
    patient: object,
    new_sessions: pd.DataFrame | None = None,
    therapist_part: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The Gaussian conditionals of the update for every draw, (chain, draw, 5) each as
    (mean_x, mean_y, c11, c12, c22): ``therapist``, of the therapist part
    ``(a_x, a_y + trait_effect_therapist a_x)`` given the caseload's cells (with a therapist
    level), and ``patient``, of the patient's latent-mean deviations (from the known part:
    intercept, baseline shift) given the parameters, the patient's cells and the therapist part
    ``therapist_part`` (two arrays (chain, draw); default zero), for checks against other
    routes; ``known``: the known part of the patient's cell means (chain, draw, 2, session)."""
    prep = _prepare(result, patient, new_sessions)
    cond = _conditionals(result, prep)
    n_c, n_d = _shape_draws(result)
    m0: tuple[Any, Any] = (0.0, 0.0)
    if therapist_part is not None:
        m0 = (np.ravel(therapist_part[0]), np.ravel(therapist_part[1]))
    mom = marginal.mean_given(_target(cond.factor, prep.target), m0, _tau_row(cond))
    out = {"patient": np.stack([np.broadcast_to(e, (n_c * n_d,)) for e in mom], -1)}
    if cond.tau_t is not None:
        out["therapist"] = np.stack(_therapist_moments(cond), -1)
    known = np.stack([cond.kx[prep.target], cond.ky[prep.target]], 0)  # (2, S, D)
    out["known"] = np.moveaxis(known, -1, 0)
    return {k: val.reshape(n_c, n_d, *val.shape[1:]) for k, val in out.items()} | {
        "sessions": prep.sub.sessions
    }


def update_patient(
    result: FitResult,
    patient: object,
    new_sessions: pd.DataFrame | None = None,
    random_seed: int | None = None,
) -> PatientPosterior:
    """Condition one patient's trait and states on their sessions, old and new, per draw.

    Parameters
    ----------
    result
        A fitted result (integrated traits; no session-specific parameters).
    patient
        A fitted patient's id (``"7"`` finds 7), or a new patient's id, whose rows are then in
        ``new_sessions`` with a therapist of the fit (three-level fits).
    new_sessions
        A long table in the fit's column names with the patient's new sessions (rows of
        other patients are ignored); sessions the fit already has for the patient are refused.
    random_seed
        Seeds the draws (default: the fit's seed).

    Raises
    ------
    ValueError
        Unknown patient (naming it, with examples of fitted ids) or therapist, a repeated
        session, a missing column, an unsupported model.
    """
    t0 = time.perf_counter()
    prep = _prepare(result, patient, new_sessions)
    cond = _conditionals(result, prep)
    seed = int(result.provenance.get("random_seed", 0)) if random_seed is None else random_seed
    rng = np.random.default_rng([seed, _SEED_TAG])
    n_c, n_d = _shape_draws(result)
    m0: tuple[Any, Any] = (0.0, 0.0)
    tpart = None
    if cond.tau_t is not None:
        a_x, a_tot = marginal.draw_means(_therapist_moments(cond), rng)
        m0 = (a_x, a_tot)
        tpart = np.stack([a_x, a_tot], -1).reshape(n_c, n_d, 2)
    mom = marginal.mean_given(_target(cond.factor, prep.target), m0, _tau_row(cond))
    mx, my = marginal.draw_means(mom, rng)
    post = result.idata.posterior
    ix, iy = (np.ravel(post[n].values) for n in (v.INTERCEPT_PREDICTOR, v.INTERCEPT_OUTCOME))
    sub, t = prep.sub, prep.target
    lo, hi = int(sub.first[t]), int(sub.last[t]) + 1
    # States w = z - known mean - M: (D, session), NaN where a value is missing.
    wx = sub.x[t, lo:hi][None, :] - cond.kx[t, lo:hi].T - mx[:, None]
    wy = sub.y[t, lo:hi][None, :] - cond.ky[t, lo:hi].T - my[:, None]
    moments = np.stack([np.broadcast_to(e, mx.shape) for e in mom], -1)
    return PatientPosterior(
        patient=prep.pid,
        therapist=prep.therapist,
        new_patient=prep.is_new,
        n_new_sessions=prep.n_new,
        sessions=sub.sessions[lo:hi],
        observed_predictor=sub.x[t, lo:hi],
        observed_outcome=sub.y[t, lo:hi],
        trait_predictor=(ix + cond.shift[0] + mx).reshape(n_c, n_d),
        trait_outcome=(iy + cond.shift[1] + my).reshape(n_c, n_d),
        state_predictor=wx.reshape(n_c, n_d, -1),
        state_outcome=wy.reshape(n_c, n_d, -1),
        moments=moments.reshape(n_c, n_d, 5),
        therapist_part=tpart,
        seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- the feedback


def _interval(draws: np.ndarray, ci_prob: float) -> dict[str, float]:
    flat = np.ravel(draws)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    lo, hi = np.quantile(flat, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
    return {"mean": float(flat.mean()), "ci_low": float(lo), "ci_high": float(hi)}


def _percentile(value: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Per draw, the share (in %) of ``others`` (chain, draw, n) below ``value`` (chain, draw),
    ties counted half."""
    below = (others < value[..., None]).sum(axis=-1)
    ties = (others == value[..., None]).sum(axis=-1)
    return 100.0 * (below + 0.5 * ties) / others.shape[-1]


def _slope(sessions: np.ndarray, states: np.ndarray) -> np.ndarray:
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
) -> Feedback:
    """Feedback for one patient at their latest session (see the module's description):
    trait percentiles, current state deviation, recent trend and the two flags, each number a
    posterior mean with its equal-tailed interval, each flag a posterior probability."""
    opt = options or FeedbackOptions()
    pp = posterior or update_patient(result, patient, new_sessions)
    which = opt.variable
    ci = opt.ci_prob
    trait = pp.trait(which)
    post = result.idata.posterior
    others_all = np.asarray(post[f"trait_{which}"].values)
    data = result.data
    pid_rows: Any = [] if pp.new_patient else np.flatnonzero(data.patients == pp.patient)
    keep = np.setdiff1d(np.arange(data.n_patients), pid_rows)
    pct_all = _percentile(trait, others_all[..., keep])
    pct_case = None
    if pp.therapist is not None and data.patient_therapist is not None:
        assert data.therapists is not None
        code = int(np.flatnonzero(data.therapists == pp.therapist)[0])
        case = np.setdiff1d(np.flatnonzero(data.patient_therapist == code), pid_rows)
        if case.size:
            pct_case = _percentile(trait, others_all[..., case])
    states = pp.state(which)
    seen = np.flatnonzero(np.isfinite(pp.observed(which)))
    latest = seen[-1]
    current = states[..., latest]
    recent = seen[-opt.last :]
    trend = (
        _slope(pp.sessions[recent].astype(float), states[..., recent]) if recent.size >= 2 else None
    )
    low = pct_all < opt.low_trait
    high = pct_all > opt.high_trait
    flags: dict[str, Any] = {}
    if trend is not None:
        up, down = trend > opt.min_trend, trend < -opt.min_trend
        for name, both, rule in (
            (
                "corrective_experience",
                low & up,
                f"trait-like alliance below the {opt.low_trait:g}th percentile and state "
                f"trend above {opt.min_trend:g} per session",
            ),
            (
                "rupture",
                high & down,
                f"trait-like alliance above the {opt.high_trait:g}th percentile and state "
                f"trend below {-opt.min_trend:g} per session",
            ),
        ):
            prob = float(both.mean())
            flags[name] = {
                "probability": prob,
                "raised": prob >= opt.flag_probability,
                "rule": rule,
            }
    label = getattr(data.roles, which)
    summary: dict[str, Any] = {
        "patient": _plain(pp.patient),
        "therapist": _plain(pp.therapist),
        "new_patient": pp.new_patient,
        "new_sessions": pp.n_new_sessions,
        "variable": label,
        "latest_session": int(pp.sessions[latest]),
        "interval": f"{ci * 100:.4g}% equal-tailed",
        "trait": _interval(trait, ci),
        "trait_percentile": {
            "all_patients": _interval(pct_all, ci),
            "caseload": None if pct_case is None else _interval(pct_case, ci),
        },
        "state_deviation": _interval(current, ci),
        "state_trend": None
        if trend is None
        else {
            **_interval(trend, ci),
            "sessions": [int(s) for s in pp.sessions[recent]],
            "probability_strengthening": float((trend > opt.min_trend).mean()),
            "probability_weakening": float((trend < -opt.min_trend).mean()),
        },
        "flags": flags,
        "patterns": _patterns(result, pp),
        "options": asdict(opt),
        "seconds_conditioning": pp.seconds,
    }
    fb = Feedback(pp, opt, summary)
    fb.sentences = _sentences(summary, opt)
    summary["sentences"] = fb.sentences
    return fb


def _plain(x: object) -> object:
    return x.item() if isinstance(x, np.generic) else x


def _patterns(result: FitResult, pp: PatientPosterior) -> dict[str, Any]:
    """Filled by ``bayes_alliance.patterns.feedback_patterns(result, posterior)`` when that
    module exists; else empty."""
    try:
        from bayes_alliance import patterns
    except ImportError:
        return {}
    hook = getattr(patterns, "feedback_patterns", None)
    return dict(hook(result, pp)) if callable(hook) else {}


def _fmt(d: dict[str, float], digits: int = 2) -> str:
    return f"{d['mean']:.{digits}f} ({d['ci_low']:.{digits}f} to {d['ci_high']:.{digits}f})"


def _sentences(s: dict[str, Any], opt: FeedbackOptions) -> list[str]:
    var = s["variable"]
    out = [
        f"Patient {s['patient']}'s trait-like {var} is {_fmt(s['trait'])}, at the "
        f"{_fmt(s['trait_percentile']['all_patients'], 0)} percentile of all patients "
        f"({s['interval']} intervals throughout)."
    ]
    if s["trait_percentile"]["caseload"] is not None:
        out.append(
            f"Among therapist {s['therapist']}'s other patients it stands at the "
            f"{_fmt(s['trait_percentile']['caseload'], 0)} percentile."
        )
    sd = s["state_deviation"]
    word = "above" if sd["mean"] > 0 else "below"
    out.append(
        f"At session {s['latest_session']} the state-like {var} is {abs(sd['mean']):.2f} "
        f"{word} the patient's own level ({sd['ci_low']:.2f} to {sd['ci_high']:.2f})."
    )
    tr = s["state_trend"]
    if tr is None:
        out.append("There are too few sessions for a trend of the states.")
    else:
        out.append(
            f"Over sessions {tr['sessions'][0]}-{tr['sessions'][-1]} the state changes by "
            f"{_fmt(tr)} per session; probability that it is strengthening "
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
    from bayes_alliance import plots

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


# --------------------------------------------------------------------------- therapist profiles


def therapist_profiles(result: FitResult, ci_prob: float = 0.9) -> pd.DataFrame:
    """Each therapist's trait deviation (the therapist part of the alliance latent mean) and,
    with therapist random slopes, their patients' average state-effect deviation (therapist
    plus any patient slope deviation, averaged over the caseload), each as posterior mean with
    an equal-tailed interval; one row per therapist, sorted by the trait deviation.

    ``df.attrs["correlation"]``: the correlation across therapists of the two, computed per
    draw (mean and interval), or None; ``df.attrs["note"]`` says what is missing and why.
    """
    data, spec = result.data, result.spec
    post = result.idata.posterior
    if not spec.therapist_level or data.therapists is None or data.patient_therapist is None:
        raise ValueError("therapist profiles need a fit with the therapist level")
    trait = np.asarray(post["therapist_dev_predictor"].values)  # (chain, draw, therapist)
    n_t = len(data.therapists)
    counts = np.bincount(data.patient_therapist, minlength=n_t)
    rows: dict[str, Any] = {v.THERAPIST: data.therapists.tolist(), "n_patients": counts}
    for k, val in _columns_of(trait, ci_prob).items():
        rows[f"trait_dev_{k}"] = val
    slope = None
    note = ""
    if v.THERAPIST in spec.random_slopes:
        devs = result.slope_deviations()
        total = sum(devs.values())  # (chain, draw, patient)
        assert isinstance(total, np.ndarray)
        onehot = np.zeros((data.n_patients, n_t))
        onehot[np.arange(data.n_patients), data.patient_therapist] = 1.0
        slope = total @ onehot / np.maximum(counts, 1)
        for k, val in _columns_of(slope, ci_prob).items():
            rows[f"state_effect_dev_{k}"] = val
    else:
        note = (
            "This fit has no therapist random slopes (random_slopes without 'therapist'), so "
            "therapists do not differ in the state effect in the model: only the trait part "
            "is reported. Refit with therapist random slopes to profile both."
        )
        for k in ("mean", "ci_low", "ci_high"):
            rows[f"state_effect_dev_{k}"] = np.full(n_t, np.nan)
    df = pd.DataFrame(rows).sort_values("trait_dev_mean", kind="stable").reset_index(drop=True)
    df.attrs["correlation"] = None
    if slope is not None and n_t > 2:
        a = trait - trait.mean(axis=-1, keepdims=True)
        b = slope - slope.mean(axis=-1, keepdims=True)
        r = (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
        df.attrs["correlation"] = _interval(r, ci_prob)
    df.attrs["note"] = note
    df.attrs["ci_prob"] = ci_prob
    return df


def _columns_of(draws: np.ndarray, ci_prob: float) -> dict[str, np.ndarray]:
    flat = draws.reshape(-1, draws.shape[-1])
    lo, hi = np.quantile(flat, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
    return {"mean": flat.mean(axis=0), "ci_low": lo, "ci_high": hi}


def caterpillar(profiles: pd.DataFrame, variable: str = "alliance") -> Any:
    """Caterpillar plot of the therapist profiles: one panel per part, therapists in the
    order of their trait deviation."""
    import matplotlib.pyplot as plt

    parts = [("trait_dev", f"therapist part of the latent {variable} mean")]
    if profiles["state_effect_dev_mean"].notna().any():
        parts.append(("state_effect_dev", "patients' average state-effect deviation"))
    n = len(profiles)
    fig, axes = plt.subplots(
        1, len(parts), figsize=(4.2 * len(parts), 1.2 + 0.18 * n), sharey=True, squeeze=False
    )
    ypos = np.arange(n)
    for ax, (key, title) in zip(axes[0], parts, strict=True):
        m = profiles[f"{key}_mean"].to_numpy()
        lo, hi = profiles[f"{key}_ci_low"].to_numpy(), profiles[f"{key}_ci_high"].to_numpy()
        ax.hlines(ypos, lo, hi, color="#6baed6", lw=2)
        ax.plot(m, ypos, "o", color="#08519c", ms=3)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(title, fontsize=9)
    axes[0][0].set_yticks(ypos, [str(t) for t in profiles[v.THERAPIST]], fontsize=7)
    axes[0][0].set_ylabel("therapist")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- output


def feedback_html(
    fb: Feedback | None, profiles: pd.DataFrame | None, pngs: dict[str, bytes]
) -> str:
    """A small self-contained page: sentences, numbers, the plot, the profiles."""
    import base64

    from bayes_alliance.report_render import CSS

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><style>{CSS}</style>"]
    title = (
        "Feedback"
        if fb is None
        else f"Feedback for patient {html.escape(str(fb.summary['patient']))}"
    )
    parts.append(f"<title>{title}</title></head><body><h1>{title}</h1>")

    def img(key: str, caption: str) -> None:
        if key in pngs:
            b64 = base64.b64encode(pngs[key]).decode()
            parts.append(
                f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{b64}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )

    if fb is not None:
        s = fb.summary
        parts.append("".join(f"<p>{html.escape(t)}</p>" for t in fb.sentences))
        rows = [
            ("trait", s["trait"]),
            ("percentile, all patients", s["trait_percentile"]["all_patients"]),
        ]
        if s["trait_percentile"]["caseload"] is not None:
            rows.append(("percentile, therapist's caseload", s["trait_percentile"]["caseload"]))
        rows.append((f"state deviation at session {s['latest_session']}", s["state_deviation"]))
        if s["state_trend"] is not None:
            rows.append(("state trend per session", s["state_trend"]))
        parts.append(
            f"<table><caption>Posterior means and {html.escape(s['interval'])} intervals"
            "</caption><tr><th>quantity</th><th>mean</th><th>low</th><th>high</th></tr>"
        )
        for name, d in rows:
            parts.append(
                f"<tr><td>{html.escape(name)}</td><td>{d['mean']:.3f}</td>"
                f"<td>{d['ci_low']:.3f}</td><td>{d['ci_high']:.3f}</td></tr>"
            )
        parts.append("</table>")
        img("feedback", f"Observed {s['variable']}, latent trait band and states")
    if profiles is not None:
        parts.append("<h2>Therapist profiles</h2>")
        if profiles.attrs.get("note"):
            parts.append(f"<p>{html.escape(profiles.attrs['note'])}</p>")
        r = profiles.attrs.get("correlation")
        if r is not None:
            parts.append(
                "<p>Correlation across therapists of the trait part and the average state "
                f"effect, per draw: {_fmt(r)}.</p>"
            )
        parts.append(
            "<p>Each therapist's estimates are shrunk toward zero, more so with fewer "
            "patients: see docs/feedback.md.</p>"
        )
        img("profiles", "Therapist profiles (posterior means and intervals)")
    parts.append("</body></html>")
    return "".join(parts)


def write_feedback(
    result: FitResult,
    out: str | Path,
    patient: object | None = None,
    new_sessions: pd.DataFrame | None = None,
    options: FeedbackOptions | None = None,
    profiles: bool = False,
    force: bool = False,
) -> Path:
    """Write ``out/feedback.html`` and ``out/feedback.json`` (and with ``profiles``
    ``out/profiles.csv``), atomically; returns the HTML path. The JSON holds the summary of
    :func:`patient_feedback` under its keys (patient, trait_percentile, state_deviation,
    state_trend, flags, patterns, ...) and, with ``profiles``, ``therapist_profiles``."""
    from bayes_alliance.io import atomic_dir
    from bayes_alliance.report_render import fig_png

    if patient is None and not profiles:
        raise ValueError("name a patient, or ask for the therapist profiles")
    opt = options or FeedbackOptions()
    fb = None if patient is None else patient_feedback(result, patient, new_sessions, opt)
    table = therapist_profiles(result, opt.ci_prob) if profiles else None
    pngs: dict[str, bytes] = {}
    doc: dict[str, Any] = {} if fb is None else dict(fb.summary)
    if fb is not None:
        pngs["feedback"] = fig_png(feedback_plot(fb))
    if table is not None:
        pngs["profiles"] = fig_png(caterpillar(table, result.data.roles.predictor))
        doc["therapist_profiles"] = {
            "note": table.attrs["note"],
            "correlation": table.attrs["correlation"],
            "rows": json.loads(table.to_json(orient="records")),
        }
    with atomic_dir(out, force=force) as tmp:
        (tmp / "feedback.json").write_text(json.dumps(doc, indent=2, default=_plain) + "\n")
        (tmp / "feedback.html").write_text(feedback_html(fb, table, pngs))
        if table is not None:
            table.to_csv(tmp / "profiles.csv", index=False)
    return Path(out) / "feedback.html"
