r"""Model builder: the joint trait/state model as an unsampled ``pm.Model``.

For session t of patient i treated by therapist j (METHODS.md sections 1-2)::

    x_ti = M_x[i, t] + xw_ti,   M_x[i, t] = mu_x(t) + a_x[j] + b_x[i] + s_x[i] (t - t_0)
    y_ti = M_y[i, t] + yw_ti,   M_y[i, t] = mu_y(t) + a_y[j] + b_y[i] + beta_T a_x[j] + beta_P b_x[i]
                                            + s_y[i] (t - t_0)
    B0 w_ti = Phi_i w_(t-1)i + e_ti,   e ~ MVN(0, Sigma),   w = (xw, yw)

with ``Phi_i = [[phi_xx, phi_xy], [phi_yx[i], phi_yy]]``, ``phi_yx[i] = phi_yx + c[j] + d[i] +
lambda' z_i``, and ``B0`` the identity unless a same-session (lag-0) path is requested (then Sigma
is diagonal). The latent means M are latent (latent person-mean centring): the observed mean never
enters. Random effects are non-centred. ``mu(t)`` is one intercept or one per session.

Likelihood. In reduced form ``w_t = Phi*_i w_(t-1) + u_t``, ``u ~ MVN(0, Sigma*)``; the first
session of a patient uses the stationary covariance S_i (``S = Phi* S Phi*' + Sigma*``, solved
entry-wise) or a free one. Cells inside a patient's series that are missing (a skipped session, a
missing rating) are free parameters with the same density, so a predictor missing at the lag is
imputed, not dropped. By default (``traits="integrated"``) the latent means are integrated out of
each patient's completed series in closed form (:mod:`bayes_alliance.marginal`) and drawn after
sampling; with ``traits="sampled"`` they are parameters and each session contributes
``p(x_t | past) p(y_t | x_t, past)`` (see :mod:`bayes_alliance.likelihood`).

References: Asparouhov, Hamaker & Muthen (2018), Struct Equ Modeling 25:359 (DSEM); Hamaker,
Kuiper & Grasman (2015), Psych Methods 20:102 (RI-CLPM); Luedtke et al. (2008), Psych Methods
13:203 (latent centring).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_alliance import vocab
from bayes_alliance.data import SessionData
from bayes_alliance.likelihood import (
    Dynamics,
    GridIndex,
    SeriesGrid,
    SeriesMoments,
    conditional_likelihood,
    integrated_likelihood,
)
from bayes_alliance.spec import ModelSpec

v = vocab
# Sampled in place of trait_effect_therapist: its product with sd_therapist_predictor.
THERAPIST_LOADING = "therapist_trait_loading"


@dataclass(frozen=True)
class DataScale:
    """Location and scale of the data, used to set weakly informative default priors."""

    mean_x: float
    mean_y: float
    sd_x: float
    sd_y: float

    @classmethod
    def of(cls, data: SessionData) -> DataScale:
        sd_x = float(np.nanstd(data.x)) or 1.0
        sd_y = float(np.nanstd(data.y)) or 1.0
        return cls(float(np.nanmean(data.x)), float(np.nanmean(data.y)), sd_x, sd_y)


def default_priors(spec: ModelSpec, s: DataScale) -> dict[str, dict[str, Any]]:
    """Weakly informative priors on the data's scale (``ratio`` = sd_y / sd_x converts slopes)."""
    ratio = s.sd_y / s.sd_x
    p: dict[str, dict[str, Any]] = {
        v.STATE_EFFECT: {"dist": "Normal", "mu": 0.0, "sigma": ratio},
        v.REVERSE_STATE_EFFECT: {"dist": "Normal", "mu": 0.0, "sigma": 1.0 / ratio},
        v.OUTCOME_AUTOREGRESSION: {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
        v.PREDICTOR_AUTOREGRESSION: {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
        v.SAME_SESSION_EFFECT: {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
        v.TRAIT_EFFECT_PATIENT: {"dist": "Normal", "mu": 0.0, "sigma": 2 * ratio},
        v.TRAIT_EFFECT_THERAPIST: {"dist": "Normal", "mu": 0.0, "sigma": 2 * ratio},
        v.INTERCEPT_PREDICTOR: {"dist": "Normal", "mu": s.mean_x, "sigma": 2.5 * s.sd_x},
        v.INTERCEPT_OUTCOME: {"dist": "Normal", "mu": s.mean_y, "sigma": 2.5 * s.sd_y},
        "session_mean_predictor": {"dist": "Normal", "mu": s.mean_x, "sigma": 2.5 * s.sd_x},
        "session_mean_outcome": {"dist": "Normal", "mu": s.mean_y, "sigma": 2.5 * s.sd_y},
        v.SD_PATIENT_PREDICTOR: {"dist": "HalfNormal", "sigma": s.sd_x},
        v.SD_PATIENT_OUTCOME: {"dist": "HalfNormal", "sigma": s.sd_y},
        v.SD_THERAPIST_PREDICTOR: {"dist": "HalfNormal", "sigma": 0.5 * s.sd_x},
        v.SD_THERAPIST_OUTCOME: {"dist": "HalfNormal", "sigma": 0.5 * s.sd_y},
        v.SD_STATE_EFFECT_PATIENT: {"dist": "HalfNormal", "sigma": 0.25 * ratio},
        v.SD_STATE_EFFECT_THERAPIST: {"dist": "HalfNormal", "sigma": 0.25 * ratio},
        v.INNOVATION_SD_PREDICTOR: {"dist": "HalfNormal", "sigma": s.sd_x},
        v.INNOVATION_SD_OUTCOME: {"dist": "HalfNormal", "sigma": s.sd_y},
        v.INNOVATION_CORR: {"dist": "Uniform", "lower": -1.0, "upper": 1.0},
        v.MODERATOR_EFFECT: {"dist": "Normal", "mu": 0.0, "sigma": 0.5 * ratio},
        v.TREND_PREDICTOR: {"dist": "Normal", "mu": 0.0, "sigma": 0.1 * s.sd_x},
        v.TREND_OUTCOME: {"dist": "Normal", "mu": 0.0, "sigma": 0.1 * s.sd_y},
        v.SD_TREND_PREDICTOR: {"dist": "HalfNormal", "sigma": 0.05 * s.sd_x},
        v.SD_TREND_OUTCOME: {"dist": "HalfNormal", "sigma": 0.05 * s.sd_y},
        "first_sd_predictor": {"dist": "HalfNormal", "sigma": s.sd_x},
        "first_sd_outcome": {"dist": "HalfNormal", "sigma": s.sd_y},
        "first_corr": {"dist": "Uniform", "lower": -1.0, "upper": 1.0},
    }
    allowed = spec.prior_names()
    vocab.check_names(spec.priors, allowed, "parameter in priors")
    return {k: dict(spec.priors.get(k, p[k])) for k in allowed}


def _rv(name: str, prior: dict[str, Any], **kw: Any) -> pt.TensorVariable:
    params = {k: val for k, val in prior.items() if k != "dist"}
    try:
        return getattr(pm, prior["dist"])(name, **params, **kw)
    except TypeError as exc:
        raise ValueError(f"prior for {name!r}: {exc}") from None


def stationary_entries(
    a: Any, b: Any, c: Any, d: Any, s11: Any, s12: Any, s22: Any
) -> tuple[Any, Any, Any]:
    """Entries (S11, S12, S22) of the stationary covariance of w_t = Phi w_(t-1) + u_t.

    Phi = [[a, b], [c, d]] and Cov(u) = [[s11, s12], [s12, s22]]. Solves the 3x3 system
    (I - K) vec_s(S) = vec_s(Sigma) by Cramer's rule, written entry by entry so that it works on
    numpy arrays and pytensor tensors alike (METHODS.md section 10: entry-wise 2x2 algebra).
    """
    # K maps (S11, S12, S22) to the entries of Phi S Phi'.
    m11, m12, m13 = 1 - a * a, -2 * a * b, -b * b
    m21, m22, m23 = -a * c, 1 - (a * d + b * c), -b * d
    m31, m32, m33 = -c * c, -2 * c * d, 1 - d * d
    det = (
        m11 * (m22 * m33 - m23 * m32)
        - m12 * (m21 * m33 - m23 * m31)
        + m13 * (m21 * m32 - m22 * m31)
    )
    det1 = (
        s11 * (m22 * m33 - m23 * m32)
        - m12 * (s12 * m33 - m23 * s22)
        + m13 * (s12 * m32 - m22 * s22)
    )
    det2 = (
        m11 * (s12 * m33 - m23 * s22)
        - s11 * (m21 * m33 - m23 * m31)
        + m13 * (m21 * s22 - s12 * m31)
    )
    det3 = (
        m11 * (m22 * s22 - s12 * m32)
        - m12 * (m21 * s22 - s12 * m31)
        + s11 * (m21 * m32 - m22 * m31)
    )
    return det1 / det, det2 / det, det3 / det


def _moderator_matrix(data: SessionData, names: tuple[str, ...]) -> np.ndarray:
    missing = [c for c in names if c not in data.covariates.columns]
    if missing:
        raise ValueError(
            f"moderator(s) {missing} are not patient covariates of the data; declare them with "
            f"covariates=[...] (have: {list(data.covariates.columns)})"
        )
    z = data.covariates[list(names)].to_numpy(dtype=float)
    bad = np.isnan(z).any(axis=1)
    if bad.any():
        ids = data.patients[bad].tolist()[:8]
        raise ValueError(
            f"moderator values are missing for patients {ids}; the model needs them complete"
        )
    return z - z.mean(axis=0)


def build_model(
    data: SessionData, spec: ModelSpec | None = None, *, posthoc: bool = False
) -> pm.Model:
    """Build the joint trait/state model for ``data``; nothing is sampled.

    Parameters
    ----------
    data
        Validated session data.
    spec
        Model options (default: three-level bivariate model with fixed slopes; two-level when the
        data have no therapist column). ``spec.traits`` chooses how the latent means enter:
        ``"integrated"`` (default; integrated out in closed form, data as ``pm.Data`` containers)
        or ``"sampled"`` (parameters of the sampler, with pointwise log-likelihood per cell).
    posthoc
        Integrated model only: add the conditional posterior moments of each patient's latent
        mean as deterministics ``trait_posterior_*`` (used to draw them after sampling).

    Returns
    -------
    pymc.Model
        Named scalar parameters as in :data:`bayes_alliance.vocab.NAMED_PARAMETERS`. Sampled
        traits: latent means ``trait_predictor`` / ``trait_outcome`` (dim ``patient``) and states
        ``state_predictor`` / ``state_outcome`` (``patient``, ``session``) when
        ``spec.store_states``.
    """
    spec = spec or ModelSpec(therapist_level=data.therapists is not None)
    if spec.therapist_level and data.therapists is None:
        raise ValueError("therapist_level=True but the data have no therapist column")
    if spec.therapist_level and data.patient_therapist is None:
        raise ValueError(
            "crossed therapist data need therapist_level=False (crossed levels are not modelled yet)"
        )
    integrated = spec.traits == "integrated"
    scale0 = DataScale.of(data)
    scale: Any = scale0
    idx = GridIndex.of(data)
    n_pat = data.n_patients
    coords: dict[str, Any] = {k: val for k, val in data.coords.items() if k != v.THERAPIST}
    if spec.therapist_level:
        coords[v.THERAPIST] = data.coords[v.THERAPIST]
    if spec.moderators:
        coords["moderator"] = list(spec.moderators)
    coords["missing_predictor_cell"] = np.arange(len(idx.miss_x[0]))
    coords["missing_outcome_cell"] = np.arange(len(idx.miss_y[0]))
    if not integrated:
        coords["observed_predictor_cell"] = np.arange(len(idx.obs_x[0]))
        coords["observed_outcome_cell"] = np.arange(len(idx.obs_y[0]))
    free = set(spec.free_parameters())

    def param(name: str, default: float = 0.0, **kw: Any) -> Any:
        return _rv(name, priors[name], **kw) if name in free else pt.constant(default)

    def patient_data(name: str, value: np.ndarray) -> Any:
        # Containers in the integrated model, so that new data can be swapped in.
        return pm.Data(name, value) if integrated else pt.as_tensor(value)

    with pm.Model(coords=coords) as model:
        if integrated:
            # The data's location and scale set the default priors; as containers they follow
            # the data when a compiled model is refitted.
            scale = DataScale(*(pm.Data(f"data_{k}", val) for k, val in asdict(scale0).items()))
        loc = (scale.mean_x, scale.mean_y)
        priors = default_priors(spec, scale)
        cells: dict[str, Any] = {}
        n_sym: Any = n_pat
        if integrated:
            # Complete series with one known mean per patient reduce to per-patient sums of
            # products (O(patients) per evaluation); otherwise the masked grid.
            complete = not (len(idx.miss_x[0]) or len(idx.miss_y[0]))
            if complete and not (spec.session_means or spec.trend):
                source = SeriesMoments.of(data, (scale0.mean_x, scale0.mean_y)).containers()
            else:
                source = SeriesGrid.of(data).containers()
            cells = {k: pm.Data(k, val) for k, val in source.items()}
            n_sym = next(iter(cells.values())).shape[0]
        tj: Any = None
        # --- traits: latent means M = mu + therapist part + patient part -------------------
        sd_px = param(v.SD_PATIENT_PREDICTOR)
        sd_py = param(v.SD_PATIENT_OUTCOME)
        beta_p = param(v.TRAIT_EFFECT_PATIENT)
        top_x: Any = pt.zeros(n_sym)
        top_y: Any = pt.zeros(n_sym)
        if spec.therapist_level:
            assert data.patient_therapist is not None
            tj = patient_data("patient_therapist", data.patient_therapist)
            # Therapist deviations are non-centred.
            a_x = param(v.SD_THERAPIST_PREDICTOR) * pm.Normal(
                "therapist_dev_predictor_raw", 0, 1, dims=v.THERAPIST
            )
            a_y = param(v.SD_THERAPIST_OUTCOME) * pm.Normal(
                "therapist_dev_outcome_raw", 0, 1, dims=v.THERAPIST
            )
            beta_t = param(v.TRAIT_EFFECT_THERAPIST)
            top_x = a_x[tj]
            top_y = a_y[tj] + beta_t * a_x[tj]
        if spec.session_means:
            mu_x = _rv("session_mean_predictor", priors["session_mean_predictor"], dims=v.SESSION)
            mu_y = _rv("session_mean_outcome", priors["session_mean_outcome"], dims=v.SESSION)
        else:
            mu_x = param(v.INTERCEPT_PREDICTOR)
            mu_y = param(v.INTERCEPT_OUTCOME)
        t = pt.as_tensor((data.sessions - data.sessions[0]).astype(float))
        s_x: Any = 0.0
        s_y: Any = 0.0
        if spec.trend:
            s_x = param(v.TREND_PREDICTOR) + param(v.SD_TREND_PREDICTOR) * pm.Normal(
                "trend_predictor_raw", 0, 1, dims=v.PATIENT
            )
            s_y = param(v.TREND_OUTCOME) + param(v.SD_TREND_OUTCOME) * pm.Normal(
                "trend_outcome_raw", 0, 1, dims=v.PATIENT
            )

        dyn = _dynamics(spec, priors, param, n_sym, tj, patient_data, data)

        if integrated:

            def known(mu: Any, slope: Any) -> Any:
                out = mu[None, :] if spec.session_means else mu
                return out + slope[:, None] * t[None, :] if spec.trend else out

            var_px = sd_px**2
            tau = (var_px, beta_p * var_px, beta_p**2 * var_px + sd_py**2)
            integrated_likelihood(
                cells,
                (len(idx.miss_x[0]), len(idx.miss_y[0])),
                known(mu_x, s_x),
                known(mu_y, s_y),
                dyn,
                (top_x, top_y),
                tau,
                loc,
                posthoc,
            )
            return model

        # Sampled traits. Patient latent means are centred (on the intercept plus the therapist
        # part): with several sessions per patient they are well informed by the data, where a
        # centred form mixes better: on the example data (2 x 1000 draws) the bulk ESS of
        # sd_patient_outcome rose from 593 to 1480 and that of trait_effect_therapist from 27-62
        # to 155 against a non-centred form.
        if spec.session_means:
            dev_x = pm.Normal("patient_dev_predictor", top_x, sd_px, dims=v.PATIENT)
            dev_y = pm.Normal(
                "patient_dev_outcome", top_y + beta_p * (dev_x - top_x), sd_py, dims=v.PATIENT
            )
            pm.Deterministic("trait_predictor", mu_x.mean() + dev_x, dims=v.PATIENT)
            pm.Deterministic("trait_outcome", mu_y.mean() + dev_y, dims=v.PATIENT)
            m_x = mu_x[None, :] + dev_x[:, None]
            m_y = mu_y[None, :] + dev_y[:, None]
        else:
            trait_x = pm.Normal("trait_predictor", mu_x + top_x, sd_px, dims=v.PATIENT)
            trait_y = pm.Normal(
                "trait_outcome",
                mu_y + top_y + beta_p * (trait_x - mu_x - top_x),
                sd_py,
                dims=v.PATIENT,
            )
            m_x = trait_x[:, None]
            m_y = trait_y[:, None]
        if spec.trend:
            m_x = m_x + s_x[:, None] * t[None, :]
            m_y = m_y + s_y[:, None] * t[None, :]
        if dyn.varying:
            pm.Deterministic("state_effect_by_patient", dyn.phi[2], dims=v.PATIENT)
        conditional_likelihood(data, idx, m_x, m_y, dyn, loc, spec.store_states)
    return model


def _dynamics(
    spec: ModelSpec,
    priors: dict[str, dict[str, Any]],
    param: Any,
    n_pat: Any,
    tj: Any,
    patient_data: Any,
    data: SessionData,
) -> Dynamics:
    """Lag matrix, innovation and first-session covariances in reduced form (adds their RVs)."""
    phi_xx = param(v.PREDICTOR_AUTOREGRESSION)
    phi_xy = param(v.REVERSE_STATE_EFFECT)
    phi_yy = param(v.OUTCOME_AUTOREGRESSION)
    phi_yx: Any = param(v.STATE_EFFECT)
    varying = bool(spec.random_slopes or spec.moderators)
    if v.PATIENT in spec.random_slopes:
        phi_yx = phi_yx + param(v.SD_STATE_EFFECT_PATIENT) * pm.Normal(
            "state_effect_patient_raw", 0, 1, dims=v.PATIENT
        )
    if v.THERAPIST in spec.random_slopes:
        c = param(v.SD_STATE_EFFECT_THERAPIST) * pm.Normal(
            "state_effect_therapist_raw", 0, 1, dims=v.THERAPIST
        )
        phi_yx = phi_yx + c[tj]
    if spec.moderators:
        z = patient_data("moderator_values", _moderator_matrix(data, spec.moderators))
        lam = _rv(v.MODERATOR_EFFECT, priors[v.MODERATOR_EFFECT], dims="moderator")
        phi_yx = phi_yx + pt.dot(z, lam)
    if varying:
        phi_yx = pt.ones(n_pat) * phi_yx
    sd_ex = param(v.INNOVATION_SD_PREDICTOR)
    sd_ey = param(v.INNOVATION_SD_OUTCOME)
    rho = param(v.INNOVATION_CORR)
    # Reduced form: w_t = Phi* w_(t-1) + u_t with Cov(u) = Sigma*.
    a, b, c_, d = phi_xx, phi_xy, phi_yx, phi_yy
    s11, s22 = sd_ex**2, sd_ey**2
    s12 = rho * sd_ex * sd_ey
    if spec.same_session == "predictor_to_outcome":
        beta0 = param(v.SAME_SESSION_EFFECT)
        c_, d = c_ + beta0 * a, d + beta0 * b
        s12, s22 = beta0 * s11, s22 + beta0**2 * s11
    elif spec.same_session == "outcome_to_predictor":
        beta0 = param(v.SAME_SESSION_EFFECT)
        a, b = a + beta0 * c_, b + beta0 * d
        s11, s12 = s11 + beta0**2 * s22, beta0 * s22
    # Stationarity of Phi*: both eigenvalues inside the unit circle (|det| < 1, |tr| < 1 + det).
    tr, det = a + d, a * d - b * c_
    stationary = pt.all(pt.lt(pt.abs(det), 1.0) & pt.lt(pt.abs(tr), 1.0 + det))
    pm.Potential("stationarity", pt.switch(stationary, 0.0, -np.inf))
    if spec.first_session == "stationary":
        f11, f12, f22 = stationary_entries(a, b, c_, d, s11, s12, s22)
    else:
        fx = _rv("first_sd_predictor", priors["first_sd_predictor"])
        fy = _rv("first_sd_outcome", priors["first_sd_outcome"])
        f11, f22 = fx**2, fy**2
        f12 = _rv("first_corr", priors["first_corr"]) * fx * fy
    return Dynamics((a, b, c_, d), (s11, s12, s22), (f11, f12, f22), varying)
