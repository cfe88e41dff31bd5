r"""Ground-truth simulator for three-level session data (docs/methods.md, section 'The
decomposition').

The data-generating model, for session t of patient i treated by therapist j::

    x_ti = mu_x + a_x[j] + b_x[i] + s_x[i] (t - 1) + xw_ti
    y_ti = mu_y + a_y[j] + b_y[i] + beta_T a_x[j] + beta_P b_x[i] + s_y[i] (t - 1) + yw_ti
    b_x[i] = a g_i + e_x[i],   b_y[i] = c' g_i + e_y[i]     (between-level mediation)
    a_x[j] = a_T h_j + u_x[j], a_y[j] = c'_T h_j + u_y[j]   (the same at therapist level)

    xw_ti = phi_xx xw_(t-1)i + phi_xy yw_(t-1)i [+ b0 yw_ti] + e_x,ti
    yw_ti = phi_yx[i] xw_(t-1)i + phi_yy yw_(t-1)i [+ b0 xw_ti] + e_y,ti,  (e_x, e_y) ~ MVN(0, Sigma_w)
    phi_yx[i] = phi_yx + c[j] + d[i] + lambda z_i

with the bracketed same-session (lag-0) term in one equation when ``same_session`` asks for it
(innovations are then uncorrelated). Therapist and patient deviations are independent normals
(the y deviations are residuals after the trait effects; docs/methods.md, section
'The decomposition'); the slope deviations are drawn from the stationary region, as the model's
prior truncates them (:mod:`bayes_alliance.model.within`): a therapist's deviation is redrawn while any
of their patients is not stationary at zero patient deviation, then a patient's deviation while
the patient's dynamics are not stationary. With a baseline characteristic g (a standard normal
patient covariate ``baseline``; a = ``baseline_effect_predictor``, c' =
``baseline_effect_outcome``) the patient parts carry its effects, so g acts on the outcome's
latent mean directly (c') and through the predictor's (a beta_P). A therapist characteristic h
(a standard normal column ``therapist_baseline``, constant within therapist; a_T =
``therapist_baseline_effect_predictor``, c'_T = ``therapist_baseline_effect_outcome``) moves
the therapist parts instead, so it acts on the outcome's latent means directly (c'_T) and
through the predictor's therapist part (a_T beta_T); one of the two levels at a time, as the
model fits one. The within process starts from its stationary distribution, so
session 1 is a draw from the same process as every later session.
An optional second informant rates x: ``x2_ti = mu_2 + l_T (a_x + b_x) + l_S xw_ti + e_2``.

With measurement error (the "VAR(1) plus white noise" model of Schuurman & Hamaker 2019) the
scores above are the error-free ones and each observed score adds an independent error::

    x_ti^obs = x_ti + eps_x,ti,   eps_x,ti ~ N(0, omega_x^2)   (and y with omega_y)

so the states xw, yw (``Truth.states``) stay the VAR(1)'s, the observed within variance is
``Var(xw) + omega_x^2`` and the observed lag-1 autocovariance is the states'. The errors are
drawn after every other draw, and only for a variable with ``omega > 0``: settings without
error give the same data as before measurement error existed.

References
----------
Schuurman, N. K., & Hamaker, E. L. (2019). Measurement error and person-specific reliability in
multilevel autoregressive modeling. *Psychological Methods, 24*\(1), 70-91.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance.kernels import dynamics, moments
from bayes_alliance.sim.settings import (
    SimulationDesign,
    TrueParameters,
    check_design,
    split_settings,
    splits_baseline,
    with_therapist_baseline,
)
from bayes_alliance.sim.truth import Truth, fill_analytic


def _draw_sizes(rng: np.random.Generator, spec: int | tuple[int, int], n: int) -> np.ndarray:
    if isinstance(spec, int):
        return np.full(n, spec, dtype=np.int64)
    lo, hi = spec
    return rng.integers(lo, hi + 1, size=n)


@dataclass
class _Units:
    """What the simulator draws per therapist and patient (codes, series lengths, deviations,
    covariates, trends); the y deviations are residuals after the trait effects."""

    ther: np.ndarray  # therapist code of each patient
    planned: np.ndarray  # planned number of sessions per patient
    a_x: np.ndarray
    a_y: np.ndarray
    c_slope: np.ndarray  # therapist slope deviations
    b_x: np.ndarray
    b_y: np.ndarray
    d_slope: np.ndarray  # patient slope deviations
    z: np.ndarray  # moderator (zeros without)
    g: np.ndarray  # patient baseline (zeros without)
    h: np.ndarray  # therapist baseline (zeros without)
    s_x: np.ndarray
    s_y: np.ndarray
    with_baseline: bool
    with_top: bool


def _draw_units(rng: np.random.Generator, p: TrueParameters, d: SimulationDesign) -> _Units:
    """Sizes and the therapist- and patient-level draws, in the order that fixes the random
    streams of every seed (new draws go last and only when asked for)."""
    n_per = _draw_sizes(rng, d.patients_per_therapist, d.n_therapists)
    ther = np.repeat(np.arange(d.n_therapists), n_per)
    n_pat = len(ther)
    planned = _draw_sizes(rng, d.sessions, n_pat)
    a_x = rng.normal(0, p.sd_therapist_predictor, d.n_therapists)
    a_y = rng.normal(0, p.sd_therapist_outcome, d.n_therapists)
    c_slope = rng.normal(0, p.sd_state_effect_therapist, d.n_therapists)
    b_x = rng.normal(0, p.sd_patient_predictor, n_pat)
    b_y = rng.normal(0, p.sd_patient_outcome, n_pat)
    d_slope = rng.normal(0, p.sd_state_effect_patient, n_pat)
    z = rng.normal(0, 1, n_pat) if d.moderator else np.zeros(n_pat)
    split = splits_baseline(p)
    with_baseline = (
        d.baseline or bool(p.baseline_effect_predictor or p.baseline_effect_outcome) or split
    )
    # Drawn only when asked for, so that data sets without one keep their random streams.
    g = rng.normal(0, 1, n_pat) if with_baseline else np.zeros(n_pat)
    # A therapist characteristic moves the therapist parts; drawn last (same streams without).
    with_top = with_therapist_baseline(d, p)
    h = rng.normal(0, 1, d.n_therapists) if with_top else np.zeros(d.n_therapists)
    a_x = a_x + p.therapist_baseline_effect_predictor * h
    a_y = a_y + p.therapist_baseline_effect_outcome * h
    if with_baseline and d.baseline_icc > 0:
        # The patient baseline's therapist component, drawn after the others (same streams
        # without one).
        t = rng.normal(0, 1, d.n_therapists)
        g = np.sqrt(d.baseline_icc) * t[ther] + np.sqrt(1.0 - d.baseline_icc) * g
    if split:
        (b_x, b_y), (a_x, a_y) = _split_baseline(p, g, ther, (b_x, b_y), (a_x, a_y))
    else:
        b_x = b_x + p.baseline_effect_predictor * g
        b_y = b_y + p.baseline_effect_outcome * g
    s_x = rng.normal(p.trend_predictor, p.sd_trend_predictor, n_pat)
    s_y = rng.normal(p.trend_outcome, p.sd_trend_outcome, n_pat)
    return _Units(
        ther, planned, a_x, a_y, c_slope, b_x, b_y, d_slope, z, g, h, s_x, s_y,
        with_baseline, with_top,
    )  # fmt: skip


def _split_baseline(
    p: TrueParameters,
    g: np.ndarray,
    ther: np.ndarray,
    patient: tuple[np.ndarray, np.ndarray],
    top: tuple[np.ndarray, np.ndarray],
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The patient baseline split at the therapists as the model splits it: its within part
    g_i - gbar_j moves the patient parts (a, c'), its between part gbar_j - mean_j gbar_j the
    therapist parts (a_B, c'_B; None: as the within path)."""
    n_t = len(top[0])
    counts = np.bincount(ther, minlength=n_t)
    means = np.bincount(ther, weights=g, minlength=n_t) / np.maximum(counts, 1)
    between = means - means[counts > 0].mean()
    within = g - means[ther]
    a_b = p.baseline_effect_predictor_between
    c_b = p.baseline_effect_outcome_between
    a_b = p.baseline_effect_predictor if a_b is None else a_b
    c_b = p.baseline_effect_outcome if c_b is None else c_b
    return (
        (
            patient[0] + p.baseline_effect_predictor * within,
            patient[1] + p.baseline_effect_outcome * within,
        ),
        (top[0] + a_b * between, top[1] + c_b * between),
    )


def _draw_states(
    rng: np.random.Generator, p: TrueParameters, slope: np.ndarray, t_max: int
) -> np.ndarray:
    """The within process of every patient (patients x sessions x 2), started from its
    stationary distribution under the patient's own slope."""
    n_pat = len(slope)
    s0 = p.stationary_within(slope)
    chol_w = np.linalg.cholesky(p.sigma_within)
    scale = np.ones((n_pat, 2))
    log_sd = np.array([p.sd_log_innovation_predictor_patient, p.sd_log_innovation_outcome_patient])
    if np.any(log_sd > 0):  # patients who fluctuate more: Sigma_i = D_i Sigma D_i
        scale = np.exp(rng.normal(size=(n_pat, 2)) * log_sd)
        s0 = _stationary_scaled(p, slope, scale)
    a, b, d_ar, b0 = (
        p.predictor_autoregression,
        p.reverse_state_effect,
        p.outcome_autoregression,
        p.same_session_effect,
    )
    z_state = np.empty((n_pat, t_max, 2))
    z_state[:, 0] = np.einsum("pij,pj->pi", np.linalg.cholesky(s0), rng.normal(size=(n_pat, 2)))
    for t in range(1, t_max):
        e = (rng.normal(size=(n_pat, 2)) @ chol_w.T) * scale
        px, py = z_state[:, t - 1, 0], z_state[:, t - 1, 1]
        # The structural equations, in the order the same-session path needs.
        if p.same_session == "outcome_to_predictor":
            yt = slope * px + d_ar * py + e[:, 1]
            xt = a * px + b * py + b0 * yt + e[:, 0]
        else:
            xt = a * px + b * py + e[:, 0]
            yt = slope * px + d_ar * py + e[:, 1]
            if p.same_session == "predictor_to_outcome":
                yt = yt + b0 * xt
        z_state[:, t, 0], z_state[:, t, 1] = xt, yt
    return z_state


def _stationary_scaled(p: TrueParameters, slope: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Each patient's stationary state covariance (P, 2, 2) with the structural innovation
    covariance scaled to ``D_i Sigma D_i`` (``D_i = diag(scale_i)``), in reduced form."""
    sig = p.sigma_within
    s_i = (
        sig[0, 0] * scale[:, 0] ** 2,
        sig[0, 1] * scale[:, 0] * scale[:, 1],
        sig[1, 1] * scale[:, 1] ** 2,
    )
    lags = (p.predictor_autoregression, p.reverse_state_effect, slope, p.outcome_autoregression)
    phi, s_red = dynamics.reduced_form(lags, s_i, p.same_session_effect, p.same_session)
    return moments.sym_matrix(*dynamics.stationary_cov(phi, s_red))


@dataclass
class _Kept:
    """Which planned cells become rows, and which values in them are missing."""

    last: np.ndarray  # one past each patient's last session after dropout
    drops: np.ndarray
    in_plan: np.ndarray
    kept: np.ndarray
    miss_x: np.ndarray
    miss_y: np.ndarray


def _draw_missingness(
    rng: np.random.Generator, d: SimulationDesign, planned: np.ndarray, t_max: int
) -> _Kept:
    """Series length, dropout, then skipped sessions, then missing values (MCAR)."""
    n_pat = len(planned)
    tt = np.arange(t_max)[None, :]
    last = planned.copy()
    drops = rng.random(n_pat) < d.dropout
    for i in np.flatnonzero(drops):
        last[i] = rng.integers(2, planned[i]) if planned[i] > 2 else planned[i]
    in_plan = tt < planned[:, None]
    kept = tt < last[:, None]
    skip = rng.random((n_pat, t_max)) < d.p_missing_session
    skip[:, 0] = False  # the first session defines the start of treatment
    kept &= ~skip
    miss_x = rng.random((n_pat, t_max)) < d.p_missing_value
    miss_y = rng.random((n_pat, t_max)) < d.p_missing_value
    return _Kept(last, drops, in_plan, kept, miss_x, miss_y)


def _add_measurement_error(
    rng: np.random.Generator, p: TrueParameters, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The observed scores: ``x + eps_x``, ``y + eps_y`` on every cell of the grid. Called after
    every other draw, and a variable without error draws nothing, so the random streams (and
    the data) of error-free settings are those of the simulator before measurement error."""
    if p.measurement_error_sd_predictor > 0:
        x = x + rng.normal(0.0, p.measurement_error_sd_predictor, x.shape)
    if p.measurement_error_sd_outcome > 0:
        y = y + rng.normal(0.0, p.measurement_error_sd_outcome, y.shape)
    return x, y


def simulate(*, seed: int, **settings: Any) -> tuple[pd.DataFrame, Truth]:
    """Draw a three-level session data set with known truth.

    Parameters
    ----------
    seed
        Seed of the random generator; the same seed and settings give the same data.
    **settings
        Any field of :class:`TrueParameters` or :class:`SimulationDesign`, e.g.
        ``state_effect=-0.3, n_therapists=20, p_missing_session=0.1``, or a within-person
        reliability in (0, 1] in place of a measurement-error SD: ``reliability`` (both
        variables), ``reliability_predictor``, ``reliability_outcome``
        (:meth:`TrueParameters.with_reliability`; ``truth.params`` holds the SDs they imply).
        An unknown name is an error with a suggestion.

    Returns
    -------
    data : pandas.DataFrame
        Long table: ``therapist, patient, session, <predictor_name>, <outcome_name>`` and, when
        asked for, ``moderator`` and ``<predictor_name>_therapist``.
    truth : Truth
        Parameters, latent draws (the states without measurement error) and analytic
        population quantities.
    """
    pkw, dkw = split_settings(settings)
    p = TrueParameters(**pkw)
    d = SimulationDesign(**dkw)
    check_design(d, p)
    rng = np.random.default_rng(seed)
    u = _draw_units(rng, p, d)
    t_max = int(u.planned.max())
    fixed = p.state_effect + p.moderator_effect * u.z
    _redraw_slopes(rng, p, u.ther, fixed, u.c_slope, u.d_slope)
    _correlate_therapist_slopes(p, u)
    slope = fixed + u.c_slope[u.ther] + u.d_slope
    z_state = _draw_states(rng, p, slope, t_max)

    ther = u.ther
    mean_x = p.intercept_predictor + u.a_x[ther] + u.b_x
    mean_y = (
        p.intercept_outcome
        + u.a_y[ther]
        + u.b_y
        + p.trait_effect_therapist * u.a_x[ther]
        + p.trait_effect_patient * u.b_x
    )
    tt = np.arange(t_max)[None, :]
    x = mean_x[:, None] + u.s_x[:, None] * tt + z_state[..., 0]
    y = mean_y[:, None] + u.s_y[:, None] * tt + z_state[..., 1]
    x2 = (
        p.informant_intercept
        + p.informant_loading_trait * (u.a_x[ther] + u.b_x)[:, None]
        + p.informant_loading_state * z_state[..., 0]
        + rng.normal(0, p.informant_sd, (len(ther), t_max))
    )
    k = _draw_missingness(rng, d, u.planned, t_max)
    x, y = _add_measurement_error(rng, p, x, y)

    pid = np.array([f"P{i + 1:04d}" for i in range(len(ther))], dtype=object)
    tid = np.array([f"T{j + 1:03d}" for j in range(d.n_therapists)], dtype=object)
    ii, tk = np.nonzero(k.kept)
    out = pd.DataFrame(
        {
            "therapist": tid[ther[ii]],
            "patient": pid[ii],
            "session": tk + 1,
            d.predictor_name: np.where(k.miss_x[ii, tk], np.nan, x[ii, tk]),
            d.outcome_name: np.where(k.miss_y[ii, tk], np.nan, y[ii, tk]),
        }
    )
    if d.moderator:
        out["moderator"] = u.z[ii]
    if u.with_baseline:
        out["baseline"] = u.g[ii]
    if u.with_top:
        out["therapist_baseline"] = u.h[ther[ii]]
    if d.informant:
        out[f"{d.predictor_name}_therapist"] = x2[ii, tk]
    truth = _truth(p, d, seed, u, k, pid, tid, slope, (mean_x, mean_y), z_state)
    return out, truth


def _truth(
    p: TrueParameters,
    d: SimulationDesign,
    seed: int,
    u: _Units,
    k: _Kept,
    pid: np.ndarray,
    tid: np.ndarray,
    slope: np.ndarray,
    means: tuple[np.ndarray, np.ndarray],
    z_state: np.ndarray,
) -> Truth:
    """The drawn latent quantities as tables, with the analytic population quantities."""
    ther = u.ther
    pi, pk = np.nonzero(k.in_plan)
    states = pd.DataFrame(
        {
            "patient": pid[pi],
            "session": pk + 1,
            "state_predictor": z_state[pi, pk, 0],
            "state_outcome": z_state[pi, pk, 1],
            "kept": k.kept[pi, pk],
        }
    )
    patients = pd.DataFrame(
        {
            "patient": pid,
            "therapist": tid[ther],
            "trait_predictor": means[0],
            "trait_outcome": means[1],
            "therapist_dev_predictor": u.a_x[ther],
            "therapist_dev_outcome": u.a_y[ther],
            "patient_dev_predictor": u.b_x,
            "patient_dev_outcome": u.b_y,
            "state_effect": slope,
            "state_effect_therapist_dev": u.c_slope[ther],
            "state_effect_patient_dev": u.d_slope,
            "moderator": u.z,
            "baseline": u.g,
            "therapist_baseline": u.h[ther],
            "trend_predictor": u.s_x,
            "trend_outcome": u.s_y,
            "planned_sessions": u.planned,
            "dropped_out": k.drops & (k.last < u.planned),
        }
    )
    truth = Truth(
        params=p,
        design=d,
        seed=seed,
        patients=patients,
        states=states,
        stationary_within_cov=p.stationary_within(),
    )
    fill_analytic(
        truth,
        u.z - u.z.mean() if d.moderator else None,
        ther,
        u.c_slope[ther],
        u.d_slope,
        u.g - u.g.mean() if u.with_baseline else None,
        u.h - u.h.mean() if u.with_top else None,
    )
    return truth


def _correlate_therapist_slopes(p: TrueParameters, u: _Units) -> None:
    r"""Make the therapist parts of the latent means correlate with the therapist's slope
    deviation c_j (in place), as the model does: given c_j the parts are normal with mean
    ``g c_j / s_c``, ``g = (r_xc s_x, r_yc s_y)`` (``s_y`` the outcome part's whole SD), and
    covariance ``Sigma - g g'``. The standard normal draws behind ``a_x``, ``a_y`` are reused
    (so the data sets without correlations keep their random streams)."""
    r_xc, r_yc = p.slope_trait_corr_therapist_predictor, p.slope_trait_corr_therapist_outcome
    if not (r_xc or r_yc) or not p.sd_state_effect_therapist:
        return
    s_x, s_y, beta = p.sd_therapist_predictor, p.sd_therapist_outcome, p.trait_effect_therapist
    # The draws before the therapist baseline's shift, standardised.
    base_x = u.a_x - p.therapist_baseline_effect_predictor * u.h
    base_y = u.a_y - p.therapist_baseline_effect_outcome * u.h
    u_x, u_y = base_x / s_x, base_y / s_y
    total = p.sd_therapist_outcome_total
    cov = np.array([[s_x**2, beta * s_x**2], [beta * s_x**2, total**2]])
    g = np.array([r_xc * s_x, r_yc * total])
    chol = np.linalg.cholesky(cov - np.outer(g, g))  # fails: the correlations are not valid
    c_std = u.c_slope / p.sd_state_effect_therapist
    part_x = g[0] * c_std + chol[0, 0] * u_x
    part_tot = g[1] * c_std + chol[1, 0] * u_x + chol[1, 1] * u_y
    u.a_x[:] = part_x + p.therapist_baseline_effect_predictor * u.h
    u.a_y[:] = part_tot - beta * part_x + p.therapist_baseline_effect_outcome * u.h


def _redraw_slopes(
    rng: np.random.Generator,
    p: TrueParameters,
    ther: np.ndarray,
    fixed: np.ndarray,
    c_slope: np.ndarray,
    d_slope: np.ndarray,
) -> None:
    """Redraw slope deviations (in place) until every patient's dynamics are stationary: the
    model's truncated prior. A therapist's deviation is redrawn until all of the therapist's
    patients are stationary at zero patient deviation, then each patient's deviation given it."""
    lo, hi, ok = dynamics.slope_interval(
        p.predictor_autoregression,
        p.reverse_state_effect,
        p.outcome_autoregression,
        p.same_session_effect,
        p.same_session,
    )
    if not ok or ((fixed <= lo) | (fixed >= hi)).any():
        raise ValueError(
            "the fixed dynamics (with the moderator) are not stationary for every patient"
        )
    for _ in range(1000):
        centre = fixed + c_slope[ther]
        bad = (centre <= lo) | (centre >= hi)
        if not bad.any():
            break
        worse = np.unique(ther[bad])
        c_slope[worse] = rng.normal(0, p.sd_state_effect_therapist, len(worse))
    else:
        raise ValueError(
            "could not draw stationary therapist slopes; lower sd_state_effect_therapist"
        )
    for _ in range(1000):
        slope = fixed + c_slope[ther] + d_slope
        bad = (slope <= lo) | (slope >= hi)
        if not bad.any():
            return
        d_slope[bad] = rng.normal(0, p.sd_state_effect_patient, int(bad.sum()))
    raise ValueError(
        "could not draw stationary slopes for every patient; lower sd_state_effect_patient / "
        "sd_state_effect_therapist / moderator_effect"
    )
