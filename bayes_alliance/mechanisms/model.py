r"""Model builder of the mechanism models: k latent-centred series (alliance, a mediator or a
second informant's rating, symptoms) in one multilevel VAR(1), and an end-of-treatment outcome.

For session t of patient i treated by therapist j, with the series stacked in a vector
(outcome last)::

    z_ti = mu + u_j + v_i + s_i c_ti e_1 + w_ti              (trait-like part: mu + u_j + v_i)
    w_ti = Phi_i w_(t-1)i + e_ti,   e_ti ~ MVN(0, Sigma_e)    (state-like part)
    Phi_i = Phi + sum_r d_ir E_r,   d_i ~ MVN(0, Sigma_d)     (random lagged paths)
    v_i ~ MVN(0, Sigma_P),  u_j ~ MVN(0, Sigma_T),  w_(first)i ~ MVN(0, Sigma_1)
    (with a trend: (v_i, delta_i) ~ MVN(0, Sigma_P), the change in the same covariance)

``E_r`` puts path r's deviation in its (to, from) entry of the lag matrix. Latent means are
parameters (latent person-mean centring: the observed mean never enters), centred on their
therapist's mean (hierarchical centring: a series of 10 or more sessions informs its mean well,
where a non-centred form mixed several times slower), the therapists' deviations non-centred; the trait
covariances are unstructured, so the trait-level regression of symptoms on the other series
(``Sigma_P[y, x] / Sigma_P[x, x]`` and its multivariate form) and the informants' trait
correlation are functions of them (:mod:`bayes_alliance.mechanisms.effects`). A patient's first
session has its own covariance ``Sigma_1`` (a free first session: no stationarity is imposed
on the random paths). Cells missing inside a series are parameters with a flat prior, so their
density is the model's (data augmentation: missing predictors at a lag are imputed, not
dropped). With a trend (``c_ti``: session number minus the middle of the patient's series, so
that ``v_i`` stays the patient's mean) the predictor's slope ``s_i = s + delta_i`` is the
patient's state-like change; an end-of-treatment outcome is regressed on the two parts of the
predictor's trait, each with its own coefficient, and on that change::

    O_i = g_0 + u^O_j + g_P v_i1 + g_T u_j1 + g_S delta_i + eps_i   (or logit P(O_i = 1))
    u^O_j ~ N(0, sd_end_therapist^2)

``g_P`` (``end_trait_effect_patient``) compares patients of the same therapist, ``g_T``
(``end_trait_effect_therapist``) therapists, and ``u^O_j`` is the outcome's own therapist
part, so a therapist effect on the outcome is not credited to the patients' alliance (one
coefficient of ``u_j1 + v_i1`` without ``u^O_j`` mixed the levels: with an outcome driven by
the therapist part only it gave a patient effect far from 0, and the changes, weakly resolved
by the series, took up the rest). Two-level data have ``g_P`` and no therapist terms. ``g_T``
is sampled per unit, not per SD of the therapists' means as the change is: per SD, ``b_T
u_j1 / tau_T`` is ``b_T`` times the therapist's standardised offset, which with ``tau_T`` near
0 no longer carries the series' information and becomes a second therapist intercept of the
outcome (a chain stuck there in a 30-therapist simulation, R-hat 2.2); per unit the term
vanishes with ``tau_T``. The change is sampled
as ``b_S = g_S tau_S`` (the effect per SD of the changes, ``end_change_per_sd``) and
each ``delta_i`` as ``m_i + s_i z_i`` with ``m_i, s_i`` its exact Gaussian conditional moments
given everything else (series, prior given the means, a Gaussian end outcome) and the
Jacobian ``sum log s_i`` added: the geometry in ``z`` is then the same whatever a series says
about its slope. ``change_reliability`` = ``mean_i tau_S^2 / (tau_S^2 + Var(delta_i | series))``
tells how well the series resolve the changes.

A baseline z (between-level mediation, :mod:`bayes_alliance.mechanisms.baseline`: each
patient's own centred row z_i, or at the therapist level its therapist's w_j) shifts the latent
means' prior mean and enters the end outcome through its direct path and the predictor's level
parts as a whole::

    z_ti = mu + gamma z_i + u_j + v_i + ...,     v_i = m_i - mu - gamma z_i - u_j
    O_i = g_0 + u^O_j + g_P v_i1 + g_T u_j1 + g_S delta_i + z_i' (c_O + g gamma_1) + eps_i

with g = g_P (patient level: ``g_P (gamma_1' z_i + v_i1) + c_O' z_i``) or g_T (therapist
level: ``g_T (gamma_1' w_j + u_j1) + c_O' w_j``), the integrated form's regression exactly
(the same random variables ``baseline_effect``, ``baseline_effect_end``); with a binary
outcome ``c_O`` and every path onto the outcome are log-odds.

The same lag matrix holds the lagged 1-1-1 mediation ``x_t -> m_(t+1) -> y_(t+2)``:
a = Phi[m, x], b = Phi[y, m], c' = Phi[y, x], with random a and b and their covariance
(Kenny, Korchmaros & Bolger 2003; Bauer, Preacher & Gil 2006).

Priors follow the joint model's scaling rules (:mod:`bayes_alliance.model.priors`, one rule per
kind of parameter): intercepts N(mean, 2.5 SD); autoregressions N(0, 0.5); a lagged path from
series s to series t N(0, SD_t / SD_s); the SDs of random paths half-normal with scale
0.25 SD_t / SD_s; the patients' trait SDs half-normal with scale SD and the therapists'
Gamma(2) with mean 0.5 SD (the joint model's boundary-avoiding prior), LKJ(1) trait
correlations (LKJ(2) for the innovations', first states' and random paths'); innovation and
first-state SDs half-normal with scale SD; with a trend the mean slope N(0, 0.1 SD_x) and the SD
of the patients' slopes half-normal with scale 0.05 SD_x per session (SD: the series' SD over
all observed cells; nothing depends on the number of sessions); the end outcome's trait effects
N(0, SD_O / SD_x) per unit (patients) and N(0, SD_O / (0.5 SD_x)) (therapists), the change's
N(0, SD_O) per SD, its therapist SD Gamma(2) with mean 0.5 SD_O (logit 1 for
SD_O with a binary outcome). :func:`bayes_alliance.mechanisms.priors.mechanism_priors`
gives the numbers, which the report lists.

References: Asparouhov, Hamaker & Muthen (2018), Struct Equ Modeling 25:359 (DSEM); Lüdtke et al.
(2008), Psych Methods 13:203 (latent centring); Bauer, Preacher & Gil (2006), Psych Methods
11:142 (random indirect effects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_alliance.core.vocab import PATIENT, SERIES, THERAPIST
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.baseline import baseline_variables, shifts
from bayes_alliance.mechanisms.baseline_data import baseline_values
from bayes_alliance.mechanisms.integrated import change_reliability, integrated_likelihood
from bayes_alliance.mechanisms.parts import (
    cov_chol,
    lag_matrices,
    model_coords,
    therapist_chol,
    therapist_sd,
)
from bayes_alliance.mechanisms.priors import (
    EndPriors,
    MechanismGrid,
    MechanismPriors,
    mechanism_priors,
)
from bayes_alliance.mechanisms.spec import MechanismSpec

LOG_2PI = float(np.log(2 * np.pi))


def _mvn_logp(resid: pt.TensorVariable, chol: pt.TensorVariable) -> pt.TensorVariable:
    """Sum of MVN(0, L L') log densities of the rows of ``resid`` (n, k)."""
    k = resid.shape[1]
    sol = pt.linalg.solve_triangular(chol, resid.T, lower=True)
    n = resid.shape[0]
    return -0.5 * pt.sum(sol**2) - n * pt.sum(pt.log(pt.diag(chol))) - 0.5 * n * k * LOG_2PI


@dataclass(frozen=True)
class _EndTerms:
    """The end-of-treatment outcome's pieces: who has it, its values, the linear predictor
    without the change, the change effect per SD and (Gaussian) the residual SD."""

    seen: np.ndarray
    observed: np.ndarray
    linear: pt.TensorVariable
    change_per_sd: pt.TensorVariable | None
    sd: pt.TensorVariable | None


@dataclass(frozen=True)
class _Baseline:
    """A baseline's values and random variables in the sampled form: each patient's centred
    row ``z`` (patients x columns; its therapist's at the therapist level), ``gamma``
    (series x columns), the direct path onto the end outcome ``c_O`` (None without one) and
    the level."""

    z: np.ndarray
    gamma: pt.TensorVariable
    end_direct: pt.TensorVariable | None
    level: str

    def mean(self) -> pt.TensorVariable:
        """The shift of every patient's latent means, ``z gamma'`` (patients x series)."""
        return shifts(self.z, self.gamma)[0]


def _end_parameters(
    data: SeriesData,
    prior: EndPriors,
    trait: pt.TensorVariable,
    intercept: pt.TensorVariable,
    therapists: pt.TensorVariable | None,
    sd_change: pt.TensorVariable | None,
    gamma: bool = True,
    baseline: _Baseline | None = None,
) -> _EndTerms:
    """The end-of-treatment regression's parameters (inside the model's context): the patient
    and therapist parts of the predictor's trait with their own coefficients and, with
    therapists, the outcome's therapist intercepts. ``sd_change`` is the SD of the patients'
    changes with a trend, else None. With a baseline the parts are those the baseline leaves
    (``v_i1``, ``u_j1``) and the linear predictor gains the known shift ``z_i' (c_O + g
    gamma_1)`` (:func:`bayes_alliance.mechanisms.baseline.shifts`, g the effect at the
    baseline's level): the regression on the parts as a whole (module docstring of
    :mod:`bayes_alliance.mechanisms.baseline`)."""
    assert data.end_outcome is not None
    seen = np.flatnonzero(np.isfinite(data.end_outcome))
    obs = data.end_outcome[seen]
    g0 = pm.Normal("end_intercept", prior.intercept_mu, prior.intercept_sigma)
    g_p = pm.Normal("end_trait_effect_patient", 0.0, prior.trait_sigma)
    centre = intercept[0]
    linear = g0
    if therapists is not None:
        assert data.patient_therapist is not None
        assert prior.therapist_sigma is not None and prior.sd_therapist_sigma is not None
        tj = data.patient_therapist[seen]
        centre = centre + therapists[data.patient_therapist, 0]
        g_t = pm.Normal("end_trait_effect_therapist", 0.0, prior.therapist_sigma)
        sd_o = therapist_sd("sd_end_therapist", prior.sd_therapist_sigma, gamma)
        off_o = pm.Normal("end_therapist_offset", 0.0, 1.0, dims=THERAPIST)
        linear = linear + sd_o * off_o[tj] + g_t * therapists[tj, 0]
    if baseline is not None:
        g = g_t if baseline.level == THERAPIST else g_p
        mean, shift = shifts(baseline.z, baseline.gamma, baseline.end_direct, g)
        centre = centre + mean[:, 0]
        linear = linear + shift[seen]
    patient_part = trait[:, 0] - centre  # v_i1: the patient's deviation from its therapist
    b_s = None
    if sd_change is not None:
        # Sampled per SD of the changes: with few sessions that SD is weakly known, and the
        # effect per unit of slope, its ratio to it, lies on a ridge g_S ~ 1 / SD.
        b_s = pm.Normal("end_change_per_sd", 0.0, prior.change_per_sd_sigma)
        pm.Deterministic("end_change_effect", b_s / sd_change)
    sd = None if prior.sd_sigma is None else pm.HalfNormal("end_sd", prior.sd_sigma)
    linear = linear + g_p * patient_part[seen]
    return _EndTerms(seen, obs, linear, b_s, sd)


def _whiten(v: pt.TensorVariable, chol: pt.TensorVariable) -> pt.TensorVariable:
    """Rows of ``v`` (..., k) times L^-1: |L^-1 r|^2 = r' Sigma^-1 r."""
    k = v.shape[-1]
    flat = v.reshape((-1, k))
    return pt.linalg.solve_triangular(chol, flat.T, lower=True).T.reshape(v.shape)


def _change_given_data(
    w0: pt.TensorVariable,
    phi: pt.TensorVariable,
    chol_e: pt.TensorVariable,
    chol_1: pt.TensorVariable,
    lay: MechanismGrid,
    prior: tuple[pt.TensorVariable, pt.TensorVariable],
    end: _EndTerms | None,
    sd_change: pt.TensorVariable,
) -> tuple[pt.TensorVariable, pt.TensorVariable, pt.TensorVariable]:
    r"""Mean and SD of each patient's change ``delta_i`` given everything else, and the
    precision about it of the series alone (per patient).

    With ``w0`` the states at ``delta = 0``, the states are ``w0 - delta c_t e_1``, so every
    innovation is linear in ``delta``: ``r_t = r0_t + delta d_t`` with
    ``d_t = -(c_t e_1 - Phi_i e_1 c_(t-1))`` (first session: ``d = -c_1 e_1``). The series
    give ``-1/2 (A delta^2 + 2 B delta)`` with ``A = sum d' S^-1 d``, ``B = sum d' S^-1 r0``;
    the prior ``N(m_0, s_0^2)`` and a Gaussian end outcome ``N(l_i + g delta, sd^2)`` add
    precisions ``1/s_0^2`` and ``g^2/sd^2``.
    """
    n, _, k = lay.filled.shape
    e1 = np.zeros(k)
    e1[0] = 1.0
    time = lay.time
    d = -(time[:, 1:, None] * e1 - phi[:, None, :, 0] * time[:, :-1, None])
    r0 = w0[:, 1:, :] - pt.sum(phi[:, None, :, :] * w0[:, :-1, None, :], axis=-1)
    mask = np.zeros(n * (time.shape[1] - 1))
    mask[lay.transitions] = 1.0
    mask = mask.reshape((n, -1))
    dw, rw = _whiten(d, chol_e), _whiten(r0, chol_e)
    rows = np.arange(n)
    d1 = _whiten(pt.as_tensor(-time[rows, lay.first][:, None] * e1), chol_1)
    s1 = _whiten(w0[rows, lay.first], chol_1)
    prec = pt.sum(mask * pt.sum(dw**2, axis=-1), axis=1) + pt.sum(d1**2, axis=-1)
    lin = -pt.sum(mask * pt.sum(dw * rw, axis=-1), axis=1) - pt.sum(d1 * s1, axis=-1)
    series_prec = prec
    p_mean, p_sd = prior
    prec = prec + 1.0 / p_sd**2
    lin = lin + p_mean / p_sd**2
    if end is not None and end.sd is not None and end.change_per_sd is not None:
        g = end.change_per_sd / sd_change
        prec = pt.inc_subtensor(prec[end.seen], g**2 / end.sd**2)
        lin = pt.inc_subtensor(lin[end.seen], g * (end.observed - end.linear) / end.sd**2)
    return lin / prec, 1.0 / pt.sqrt(prec), series_prec


def build_mechanism_model(data: SeriesData, spec: MechanismSpec | None = None) -> pm.Model:
    """The mechanism model as an unsampled ``pm.Model`` (see the module docstring).

    Parameters
    ----------
    data
        Two or three series of the same patients.
    spec
        Options; defaults settled by :meth:`MechanismSpec.resolved`.
    """
    spec = (spec or MechanismSpec(therapist_level=data.patient_therapist is not None)).resolved(
        data
    )
    lay = MechanismGrid.of(data)
    priors = mechanism_priors(data, spec, lay)
    with pm.Model(coords=model_coords(data, spec)) as model:
        if spec.traits == "integrated":
            integrated_likelihood(data, spec, priors, lay)
            return model
        baseline = None
        if spec.baseline:
            assert priors.baseline is not None
            gamma, end_direct = baseline_variables(
                spec.baseline, priors.baseline, priors.end is not None
            )
            z = baseline_values(data, spec.baseline, spec.baseline_level)
            baseline = _Baseline(z, gamma, end_direct, spec.baseline_level)
        intercept, trait, change_prior, therapists = _traits(data, spec, priors, baseline)
        phi = lag_matrices(data, spec, priors)
        sd_change = model["sd_trend"] if spec.trend else None
        end = (
            _end_parameters(
                data,
                priors.end,
                trait,
                intercept,
                therapists,
                sd_change,
                priors.therapist_gamma,
                baseline,
            )
            if priors.end is not None
            else None
        )
        w = _states(model, lay, trait)
        chol_e = cov_chol("innovation", SERIES, priors.sd_innovation, data.k)
        chol_1 = cov_chol("first", SERIES, priors.sd_first, data.k)
        delta = None
        if spec.trend:
            assert change_prior is not None and sd_change is not None
            w, delta = _detrended(model, w, phi, chol_e, chol_1, lay, change_prior, end, sd_change)
        _series_likelihood(w, phi, chol_e, chol_1, lay)
        if end is not None:
            _end_likelihood(end, delta, sd_change)
    return model


def _traits(
    data: SeriesData,
    spec: MechanismSpec,
    priors: MechanismPriors,
    baseline: _Baseline | None = None,
) -> tuple[
    pt.TensorVariable,
    pt.TensorVariable,
    tuple[pt.TensorVariable, pt.TensorVariable] | None,
    pt.TensorVariable | None,
]:
    """Intercepts, therapist deviations (non-centred) and the patients' latent means (centred
    on their therapist's mean, shifted by a baseline's ``z gamma'``); with a trend the change's
    prior given the means (given the part ``v_i`` the baseline leaves). Returns the
    intercepts, the traits, that prior (mean, SD) or None, and the therapists' deviations
    ``u_j`` (therapists, k) or None."""
    model = pm.modelcontext(None)
    n, k = data.n_patients, data.k
    intercept = pm.Normal(
        "intercept", mu=priors.intercept_mu, sigma=priors.intercept_sigma, dims=SERIES
    )
    centre = pt.broadcast_to(intercept, (n, k))
    therapists = None
    if spec.therapist_level:
        assert data.patient_therapist is not None
        chol_t = therapist_chol(priors, k)
        off_t = pm.Normal("therapist_offset", 0.0, 1.0, dims=(THERAPIST, SERIES))
        dev_t = off_t @ chol_t.T
        centre = centre + dev_t[data.patient_therapist]
        therapists = dev_t
    if baseline is not None:
        centre = centre + baseline.mean()
    # The patients' latent means are the parameters, centred on their therapist's mean
    # (hierarchical centring: with 10 or more sessions a patient's series informs its mean
    # well, and intercept and means then mix independently; a non-centred form mixed
    # several times slower).
    change_prior = None
    if spec.trend:
        # The patient's slope shares the patient-level covariance with the traits: change
        # and trait-like level may correlate, and an independent prior would shrink each
        # patient's change towards the average instead of towards its value given the
        # traits (and let part of a change effect leak into a trait effect). The means are
        # sampled here; the change below, from its conditional moments given the rest.
        pm.Normal("trend", 0.0, priors.trend)
        chol_p = cov_chol("patient", "patient_effect", priors.sd_patient, k + 1, priors.trait_eta)
        mu = pm.MvNormal("patient_mean", mu=centre, chol=chol_p[:k, :k], dims=(PATIENT, SERIES))
        std = pt.linalg.solve_triangular(chol_p[:k, :k], (mu - centre).T, lower=True).T
        change_prior = (std @ chol_p[k, :k], chol_p[k, k])  # delta_i given the means
        pm.Deterministic("sd_trend", model["sd_patient"][k])
    else:
        chol_p = cov_chol("patient", SERIES, priors.sd_patient, k, priors.trait_eta)
        mu = pm.MvNormal("patient_mean", mu=centre, chol=chol_p, dims=(PATIENT, SERIES))
    trait = pm.Deterministic("trait", mu, dims=(PATIENT, SERIES))
    return intercept, trait, change_prior, therapists


def _states(model: pm.Model, lay: MechanismGrid, trait: pt.TensorVariable) -> pt.TensorVariable:
    """The states ``w`` (n, T, k): the series (missing cells inside a series as flat
    parameters) minus the traits."""
    n, n_t, k = lay.filled.shape
    values = pt.as_tensor(lay.filled.reshape(-1))
    if lay.missing_flat.size:
        model.add_coords({"missing_cell": np.arange(lay.missing_flat.size)})
        mis = pm.Flat("missing_values", dims="missing_cell", initval=lay.missing_start)
        values = pt.set_subtensor(values[lay.missing_flat], mis)
    grid = values.reshape((n, n_t, k))
    return grid - trait[:, None, :]


def _detrended(
    model: pm.Model,
    w: pt.TensorVariable,
    phi: pt.TensorVariable,
    chol_e: pt.TensorVariable,
    chol_1: pt.TensorVariable,
    lay: MechanismGrid,
    change_prior: tuple[pt.TensorVariable, pt.TensorVariable],
    end: _EndTerms | None,
    sd_change: pt.TensorVariable,
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """The states with the predictor's trend and each patient's change taken off, and the
    changes: sampled through their exact conditional moments (see the module docstring)."""
    n, _, k = lay.filled.shape
    e1 = np.zeros(k)
    e1[0] = 1.0
    w = w - (model["trend"] * lay.time)[:, :, None] * e1
    cond_mean, cond_sd, series_prec = _change_given_data(
        w, phi, chol_e, chol_1, lay, change_prior, end, sd_change
    )
    # How well the series alone resolve the changes (Spearman-Brown style: true
    # variance over true plus mean error variance), for the reader of a change effect.
    tau2 = sd_change**2
    pm.Deterministic("change_reliability", change_reliability(tau2, series_prec))
    # The change given everything else is Gaussian with these moments (the series and
    # a Gaussian end outcome are linear in it): sampling its standardised value makes
    # the geometry the same whether 12 sessions say much or little about a slope (in
    # 200 x 12 fits a centred slope had R-hat 1.15 and bulk ESS 11, one standardised
    # by its prior ESS 45 of 1,000: the end outcome's residual SD and the change effect
    # traded off against the changes; this way 128).
    off_s = pm.Flat("change_offset", shape=n, initval=np.zeros(n))
    delta = pm.Deterministic("change_deviation", cond_mean + cond_sd * off_s, dims="patient")
    pm.Potential("change_jacobian", pt.sum(pt.log(cond_sd)))
    p_mean, p_sd = change_prior
    pm.Potential(
        "change_prior",
        pt.sum(-0.5 * ((delta - p_mean) / p_sd) ** 2 - pt.log(p_sd)) - 0.5 * n * LOG_2PI,
    )
    return w - (delta[:, None] * lay.time)[:, :, None] * e1, delta


def _series_likelihood(
    w: pt.TensorVariable,
    phi: pt.TensorVariable,
    chol_e: pt.TensorVariable,
    chol_1: pt.TensorVariable,
    lay: MechanismGrid,
) -> None:
    """The VAR(1) density of the states: every transition inside a series, and the first
    state of each."""
    n, n_t, k = lay.filled.shape
    pred = pt.sum(phi[:, None, :, :] * w[:, :-1, None, :], axis=-1)
    resid = (w[:, 1:, :] - pred).reshape((n * (n_t - 1), k))[lay.transitions]
    start = w[np.arange(n), lay.first]
    pm.Potential("series_transitions", _mvn_logp(resid, chol_e))
    pm.Potential("series_first", _mvn_logp(start, chol_1))


def _end_likelihood(
    end: _EndTerms, delta: pt.TensorVariable | None, sd_change: pt.TensorVariable | None
) -> None:
    """The end-of-treatment outcome given the trait and, with a trend, the change."""
    lin = end.linear
    if delta is not None:
        assert end.change_per_sd is not None and sd_change is not None
        lin = lin + end.change_per_sd * delta[end.seen] / sd_change
    if end.sd is None:
        pm.Bernoulli("end_outcome", logit_p=lin, observed=end.observed)
    else:
        pm.Normal("end_outcome", lin, end.sd, observed=end.observed)


__all__ = ["build_mechanism_model"]
