r"""Conditioning one patient's trait and states on new sessions, per posterior draw.

Given the parameters of a posterior draw, everything in the model is Gaussian: the therapist
parts of the latent means, each patient's latent mean, and the patient's states
(:mod:`bayes_alliance.inference.posthoc`). A patient's new session ratings therefore update the patient's
trait and states exactly, draw by draw, with the parameters held at their posterior draws:

1. the patient's caseload (the other patients of the same therapist, as fitted, plus this
   patient with their old and new sessions) gives each patient's Gaussian factor in their
   latent mean (:func:`bayes_alliance.kernels.marginal.series_factor`, or the Kalman filter of
   :mod:`bayes_alliance.kernels.gaps` with missing cells);
2. the therapist part of the latent means is drawn from its conditional posterior given the
   caseload (the therapist deviations of different therapists are independent given the
   parameters, so the caseload is all it needs);
3. the patient's latent mean is drawn from its conditional ``N(m0 + K r, K)`` given that draw,
   and the states ``w = z - known mean - M`` follow.

This is what :func:`bayes_alliance.inference.posthoc.complete` computes for that patient had the new
sessions been in the fitted data set, with the same parameter draws (``tests/test_feedback.py``
checks the conditional against a dense Gaussian). What is *not* updated: the parameters
themselves (a refit would move them, slightly for one patient among many), and a patient's
own random slope or trend deviation (kept at their draws; a new patient's are drawn from their
prior, the slope deviation truncated to the stationary interval as in the fit, and a new
patient's baseline rows are centred as the fit centres their level:
:mod:`bayes_alliance.feedback.caseload`).

:mod:`bayes_alliance.feedback.caseload` gathers the caseload and the posterior arrays; the feedback built
from the updated posterior is :mod:`bayes_alliance.feedback.patient_feedback`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.feedback.caseload import SEED_TAG, Prepared, prepare
from bayes_alliance.kernels import gaps, marginal
from bayes_alliance.model.structure import draws_last, lookup, trait_cov

if TYPE_CHECKING:  # a result is passed in; this module computes on its arrays
    from bayes_alliance.inference.fit import FitResult

v = vocab
__all__ = ["PatientPosterior", "conditional_moments", "update_patient"]


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
    # With random innovation variances: the patient's own innovation SDs of x and y per draw
    # (chain, draw, 2); a new patient's come from the population (their prior).
    innovation_sd: np.ndarray | None = None

    def trait(self, which: str) -> np.ndarray:
        return self.trait_predictor if which == v.PREDICTOR else self.trait_outcome

    def state(self, which: str) -> np.ndarray:
        return self.state_predictor if which == v.PREDICTOR else self.state_outcome

    def observed(self, which: str) -> np.ndarray:
        return self.observed_predictor if which == v.PREDICTOR else self.observed_outcome


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
    level: tuple[Any, Any]  # the known part of the target's latent means (D,)
    dyn: Any = None  # the draws' dynamics (for the smoothing draws of states with error)


def _conditionals(result: FitResult, prep: Prepared) -> _Conditionals:
    """The dynamics, known means and factors of :func:`bayes_alliance.inference.posthoc.complete`,
    vectorised over draws (:mod:`bayes_alliance.model.structure` with the draws of all chains on
    the last axis). Complete and gappy series alike go through the Kalman filter of
    :func:`bayes_alliance.kernels.gaps.filter_factor`, which gives a complete series the same
    factor as its sufficient statistics (exactly)."""
    spec, sub, lay = result.spec, prep.sub, prep.lay
    get = lookup(draws_last(prep.arrays), spec)
    dyn = lay.dynamics(get, spec)
    # Known part of the cell means: intercept, trend, baseline shift (patient, session, D).
    known = lay.known(get, spec)
    kx, ky = known.cells(lay.t[:, None])
    n_p, n_s, n_d = sub.n_patients, sub.n_sessions, int(np.prod(_shape_draws(result)))
    kx = np.broadcast_to(kx, (n_p, n_s, n_d))
    ky = np.broadcast_to(ky, (n_p, n_s, n_d))
    lx, ly = known.level()
    if known.shift is not None:
        lx, ly = lx[prep.target], ly[prep.target]
    g = lay.grid
    cells = gaps.GapCells(
        (g.x[..., None] - kx) * g.obs_x[..., None],
        (g.y[..., None] - ky) * g.obs_y[..., None],
        g.obs_x[..., None],
        g.obs_y[..., None],
        g.first[..., None],
    )
    _, factor, _ = gaps.filter_factor(cells, dyn.phi, dyn.sigma, dyn.first, n_s, error=dyn.error)
    tau_t = trait_cov(get, v.THERAPIST) if spec.therapist_level else None
    return _Conditionals(factor, trait_cov(get, v.PATIENT), tau_t, kx, ky, (lx, ly), dyn)


def _smoothed_states(
    cond: _Conditionals, target: int, wx: np.ndarray, wy: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """With measurement error ``z - known mean - M`` is the state plus error: the states are
    drawn from their smoothing distribution given each draw (the draws play the part of the
    filter's rows), NaN where a value is missing, as without error. ``wx``, ``wy``: (D,
    session) of the target patient's series."""
    dyn = cond.dyn
    n_d, n_s = wx.shape
    ox, oy = (~np.isnan(wx)).astype(float), (~np.isnan(wy)).astype(float)
    first = np.zeros((n_d, n_s))
    first[:, 0] = 1.0
    cells = gaps.GapCells(np.nan_to_num(wx) * ox, np.nan_to_num(wy) * oy, ox, oy, first)

    def per_draw(entries: tuple[Any, ...]) -> tuple[Any, ...]:
        # per-patient entries are (P, D) when slopes vary: the target's row
        out: list[Any] = []
        for e in entries:
            arr = np.asarray(e, dtype=float)
            arr = arr[target] if arr.ndim == 2 else arr
            out.append(np.broadcast_to(arr, (n_d,)))
        return tuple(out)

    sx, sy = gaps.draw_missing(
        cells,
        per_draw(dyn.phi),
        per_draw(dyn.sigma),
        per_draw(dyn.first),
        False,
        np.ones((n_d, n_s), dtype=bool),
        rng,
        error=per_draw(dyn.error),
    )
    return np.where(ox > 0, sx, np.nan), np.where(oy > 0, sy, np.nan)


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
    prep = prepare(result, patient, new_sessions)
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
    seed = int(result.provenance.get("random_seed", 0)) if random_seed is None else random_seed
    prep = prepare(result, patient, new_sessions, seed)
    cond = _conditionals(result, prep)
    rng = np.random.default_rng([seed, SEED_TAG])
    n_c, n_d = _shape_draws(result)
    m0: tuple[Any, Any] = (0.0, 0.0)
    tpart = None
    if cond.tau_t is not None:
        a_x, a_tot = marginal.draw_means(_therapist_moments(cond), rng)
        m0 = (a_x, a_tot)
        tpart = np.stack([a_x, a_tot], -1).reshape(n_c, n_d, 2)
    mom = marginal.mean_given(_target(cond.factor, prep.target), m0, _tau_row(cond))
    mx, my = marginal.draw_means(mom, rng)
    sub, t = prep.sub, prep.target
    lo, hi = int(sub.first[t]), int(sub.last[t]) + 1
    # States w = z - known mean - M: (D, session), NaN where a value is missing.
    wx = sub.x[t, lo:hi][None, :] - cond.kx[t, lo:hi].T - mx[:, None]
    wy = sub.y[t, lo:hi][None, :] - cond.ky[t, lo:hi].T - my[:, None]
    if result.spec.measurement_error:
        wx, wy = _smoothed_states(cond, t, wx, wy, rng)
    moments = np.stack([np.broadcast_to(e, mx.shape) for e in mom], -1)
    inn_sd = None
    if result.spec.random_innovations:
        parts = cond.dyn.parts
        inn_sd = np.stack([np.sqrt(np.asarray(parts.sigma[k])[t]) for k in (0, 2)], -1).reshape(
            n_c, n_d, 2
        )
    return PatientPosterior(
        patient=prep.pid,
        therapist=prep.therapist,
        new_patient=prep.is_new,
        n_new_sessions=prep.n_new,
        sessions=sub.sessions[lo:hi],
        observed_predictor=sub.x[t, lo:hi],
        observed_outcome=sub.y[t, lo:hi],
        trait_predictor=(cond.level[0] + mx).reshape(n_c, n_d),
        trait_outcome=(cond.level[1] + my).reshape(n_c, n_d),
        state_predictor=wx.reshape(n_c, n_d, -1),
        state_outcome=wy.reshape(n_c, n_d, -1),
        moments=moments.reshape(n_c, n_d, 5),
        therapist_part=tpart,
        seconds=time.perf_counter() - t0,
        innovation_sd=inn_sd,
    )
