r"""Model builder: the joint trait/state model as an unsampled ``pm.Model``.

For session t of patient i treated by therapist j (METHODS.md sections 1-2)::

    x_ti = M_x[i, t] + xw_ti,   M_x[i, t] = mu_x(t) + a_x[j] + b_x[i] + s_x[i] (t - t_0)
    y_ti = M_y[i, t] + yw_ti,   M_y[i, t] = mu_y(t) + a_y[j] + b_y[i] + beta_T a_x[j] + beta_P b_x[i]
                                            + s_y[i] (t - t_0)
    B0 w_ti = Phi_i w_(t-1)i + e_ti,   e ~ MVN(0, Sigma_t),   w = (xw, yw)

and, with a patient-level ``baseline`` g (between-level mediation), ``b_x[i] = a' g_i + e_x[i]``,
``b_y[i] = c' g_i + e_y[i]`` (known shifts given the parameters: :func:`_baseline_shift`), or
with a therapist-level one, ``a_x[j] = a' g_j + u_x[j]``, ``a_y[j] = c' g_j + u_y[j]``,
with ``Phi_i = [[phi_xx, phi_xy], [phi_yx[i], phi_yy]]``, ``phi_yx[i] = phi_yx + c[j] + d[i] +
lambda' z_i``, and ``B0`` the identity unless a same-session (lag-0) path is requested (then Sigma
is diagonal). The latent means M are latent (latent person-mean centring): the observed mean never
enters. Random effects are non-centred. ``mu(t)`` is one intercept or one per session. The
within-person part (lags, random slopes and the stationarity truncation of their prior,
innovations, first session) is built in :mod:`bayes_alliance.model.within`, the priors in
:mod:`bayes_alliance.model.priors`, the likelihoods in :mod:`bayes_alliance.model.likelihood`.

Likelihood. In reduced form ``w_t = Phi*_i w_(t-1) + u_t``, ``u ~ MVN(0, Sigma*)``; the first
session of a patient uses the stationary covariance S_i (``S = Phi* S Phi*' + Sigma*``, solved
entry-wise by :mod:`bayes_alliance.kernels.dynamics`) or a free one. Cells inside a patient's series that are missing (a skipped session, a
missing rating) are free parameters with the same density, so a predictor missing at the lag is
imputed, not dropped. By default (``traits="integrated"``) the latent means are integrated out of
each patient's completed series in closed form (:mod:`bayes_alliance.kernels.marginal`) and drawn after
sampling; with ``traits="sampled"`` they are parameters and each session contributes
``p(x_t | past) p(y_t | x_t, past)`` (see :mod:`bayes_alliance.model.likelihood`).

References: Asparouhov, Hamaker & Muthen (2018), Struct Equ Modeling 25:359 (DSEM); Hamaker,
Kuiper & Grasman (2015), Psych Methods 20:102 (RI-CLPM); Luedtke et al. (2008), Psych Methods
13:203 (latent centring).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.model.likelihood import (
    GridIndex,
    SeriesGrid,
    SeriesMoments,
    TherapistBlock,
    conditional_likelihood,
    integrated_likelihood,
)
from bayes_alliance.model.priors import DataScale, default_priors, make_rv
from bayes_alliance.model.within import (
    baseline_unit_values,
    baseline_values,
    moderator_values,
    resolve_baseline,
    within_part,
)
from bayes_alliance.spec.model_spec import ModelSpec

__all__ = ["DataScale", "GridIndex", "build_model", "default_priors"]

v = vocab


def _check(data: SessionData, spec: ModelSpec) -> None:
    if spec.therapist_level and data.therapists is None:
        raise ValueError("therapist_level=True but the data have no therapist column")
    if spec.therapist_level and data.patient_therapist is None:
        raise ValueError(
            "crossed therapist data need therapist_level=False (crossed levels are not modelled yet)"
        )
    if spec.innovations == "session" and len(data.sessions) < 2:
        raise ValueError("session-specific innovations need at least two sessions")


def _coords(data: SessionData, spec: ModelSpec, idx: GridIndex) -> dict[str, Any]:
    coords: dict[str, Any] = {k: val for k, val in data.coords.items() if k != v.THERAPIST}
    if spec.therapist_level:
        coords[v.THERAPIST] = data.coords[v.THERAPIST]
    if spec.moderators:
        coords["moderator"] = list(spec.moderators)
    if spec.baseline:
        coords["baseline"] = list(spec.baseline)
    if spec.innovations == "session":
        coords["innovation_session"] = data.coords[v.SESSION][1:]
    if spec.traits != "integrated":
        coords["missing_predictor_cell"] = np.arange(len(idx.miss_x[0]))
        coords["missing_outcome_cell"] = np.arange(len(idx.miss_y[0]))
        coords["observed_predictor_cell"] = np.arange(len(idx.obs_x[0]))
        coords["observed_outcome_cell"] = np.arange(len(idx.obs_y[0]))
    return coords


def _caseload(data: SessionData) -> np.ndarray:
    """Therapists x patients indicator of who treats whom."""
    assert data.patient_therapist is not None and data.therapists is not None
    out = np.zeros((len(data.therapists), data.n_patients))
    out[data.patient_therapist, np.arange(data.n_patients)] = 1.0
    return out


def build_model(data: SessionData, spec: ModelSpec | None = None) -> pm.Model:
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
        With integrated traits the therapist deviations are integrated out too (per therapist,
        in closed form); :mod:`bayes_alliance.inference.posthoc` draws both after sampling.

    Returns
    -------
    pymc.Model
        Named scalar parameters as in :data:`bayes_alliance.core.vocab.NAMED_PARAMETERS`. Sampled
        traits: latent means ``trait_predictor`` / ``trait_outcome`` (dim ``patient``), states
        ``state_predictor`` / ``state_outcome`` (``patient``, ``session``) when
        ``spec.store_states``, and each patient's structural state effect
        ``state_effect_by_patient`` when slopes vary.
    """
    spec = spec or ModelSpec(therapist_level=data.therapists is not None)
    _check(data, spec)
    spec = resolve_baseline(data, spec)
    integrated = spec.traits == "integrated"
    scale0 = DataScale.of(data)
    idx = GridIndex.of(data)
    free = set(spec.free_parameters())
    n_missing = (len(idx.miss_x[0]), len(idx.miss_y[0]))

    def patient_data(name: str, value: np.ndarray) -> Any:
        # Containers in the integrated model, so that new data can be swapped in.
        return pm.Data(name, value) if integrated else pt.as_tensor(value)

    with pm.Model(coords=_coords(data, spec, idx)) as model:
        scale: Any = scale0
        if integrated:
            # The data's location and scale set the default priors; as containers they follow
            # the data when a compiled model is refitted.
            scale = DataScale(*(pm.Data(f"data_{k}", val) for k, val in asdict(scale0).items()))
        z_val = moderator_values(data, spec)
        z = patient_data("moderator_values", z_val) if z_val is not None else None
        zb_val = baseline_values(data, spec)
        zb = patient_data("baseline_values", zb_val) if zb_val is not None else None
        # The paths' prior scale: the baseline's SD over the units of its level (patients or
        # therapists), a container so that it follows the data of a refit.
        zu = baseline_unit_values(data, spec)
        zb_sd = patient_data("baseline_sd", zu.std(axis=0)) if zu is not None else 1.0
        priors = default_priors(spec, scale, z.std(axis=0) if z is not None else 1.0, zb_sd)

        def param(name: str, default: float = 0.0, **kw: Any) -> Any:
            return make_rv(name, priors[name], **kw) if name in free else pt.constant(default)

        cells: dict[str, Any] = {}
        n_pat: Any = data.n_patients
        if integrated:
            # Complete series with one known mean per patient reduce to per-patient sums of
            # products (O(patients) per evaluation); other complete series use the masked
            # grid; series with missing cells the Kalman filter (missing cells integrated out).
            simple = not (spec.session_means or spec.trend or spec.innovations == "session")
            if any(n_missing):
                source = SeriesGrid.of(data).gap_containers()
            elif simple:
                source = SeriesMoments.of(data, (scale0.mean_x, scale0.mean_y)).containers()
            else:
                source = SeriesGrid.of(data).containers()
            cells = {k: pm.Data(k, val) for k, val in source.items()}
            n_pat = next(iter(cells.values())).shape[0]
        tj: Any = None
        caseload: Any = None
        if spec.therapist_level:
            assert data.patient_therapist is not None
            tj = patient_data("patient_therapist", data.patient_therapist)
            if v.THERAPIST in spec.random_slopes and spec.moderators:
                caseload = patient_data("caseload", _caseload(data))
        means = _trait_means(spec, param, priors, n_pat, tj, sample_therapists=not integrated)
        t = pt.as_tensor((data.sessions - data.sessions[0]).astype(float))
        dyn = within_part(spec, priors, param, n_pat, tj, z, caseload)
        loc = (scale.mean_x, scale.mean_y)
        # The b path of a baseline's mediation: the trait effect at the baseline's level.
        mediator = "beta_t" if spec.baseline_level == v.THERAPIST else "beta_p"

        if integrated:
            shift = _baseline_shift(param, zb, means[mediator])
            # The sums-of-products path takes one known mean per patient (P,); the grids (P, S).
            per_patient = "moment_n" in cells

            def known(mu: Any, slope: Any, k: int) -> Any:
                out = mu[None, :] if spec.session_means else mu
                if spec.trend:
                    out = out + slope[:, None] * t[None, :]
                if shift is not None:
                    out = out + (shift[k] if per_patient else shift[k][:, None])
                return out

            block = None
            if spec.therapist_level:
                assert data.therapists is not None
                # A container, so that a refit may have another number of therapists.
                codes = pm.Data("therapist_codes", np.arange(len(data.therapists)))
                block = TherapistBlock(tj, codes.shape[0], means["tau_therapist"])
            integrated_likelihood(
                cells,
                len(data.sessions),
                known(means["mu_x"], means["trend_x"], 0),
                known(means["mu_y"], means["trend_y"], 1),
                dyn,
                means["tau"],
                loc,
                block,
            )
            return model

        m_x, m_y = _sampled_traits(spec, means, _baseline_shift(param, zb, means[mediator]))
        if spec.trend:
            m_x = m_x + means["trend_x"][:, None] * t[None, :]
            m_y = m_y + means["trend_y"][:, None] * t[None, :]
        if dyn.varying:
            pm.Deterministic("state_effect_by_patient", dyn.slope, dims=v.PATIENT)
        conditional_likelihood(data, idx, m_x, m_y, dyn, loc, spec.store_states)
    return model


def _trait_means(
    spec: ModelSpec,
    param: Any,
    priors: dict[str, dict[str, Any]],
    n_pat: Any,
    tj: Any,
    sample_therapists: bool,
) -> dict[str, Any]:
    """Intercepts or session means, the therapist parts of the latent means (non-centred random
    variables when ``sample_therapists``, else only their covariance ``tau_therapist``, for
    integrating them out), the patient-level trait covariance (entries) and per-patient
    trends."""
    sd_px = param(v.SD_PATIENT_PREDICTOR)
    sd_py = param(v.SD_PATIENT_OUTCOME)
    beta_p = param(v.TRAIT_EFFECT_PATIENT)
    out: dict[str, Any] = {"sd_px": sd_px, "sd_py": sd_py, "beta_p": beta_p}
    out["top_x"] = pt.zeros(n_pat)
    out["top_y"] = pt.zeros(n_pat)
    if spec.therapist_level:
        sd_tx = param(v.SD_THERAPIST_PREDICTOR)
        sd_ty = param(v.SD_THERAPIST_OUTCOME)
        beta_t = param(v.TRAIT_EFFECT_THERAPIST)
        var_tx = sd_tx**2
        # Covariance of (a_x, a_y + beta_t a_x), the therapist parts of the two latent means.
        out["tau_therapist"] = (var_tx, beta_t * var_tx, beta_t**2 * var_tx + sd_ty**2)
        out["beta_t"] = beta_t
        if sample_therapists:
            a_x = sd_tx * pm.Normal("therapist_dev_predictor_raw", 0, 1, dims=v.THERAPIST)
            a_y = sd_ty * pm.Normal("therapist_dev_outcome_raw", 0, 1, dims=v.THERAPIST)
            out["top_x"] = a_x[tj]
            out["top_y"] = a_y[tj] + beta_t * a_x[tj]
    if spec.session_means:
        out["mu_x"] = make_rv(
            "session_mean_predictor", priors["session_mean_predictor"], dims=v.SESSION
        )
        out["mu_y"] = make_rv(
            "session_mean_outcome", priors["session_mean_outcome"], dims=v.SESSION
        )
    else:
        out["mu_x"] = param(v.INTERCEPT_PREDICTOR)
        out["mu_y"] = param(v.INTERCEPT_OUTCOME)
    out["trend_x"] = out["trend_y"] = 0.0
    if spec.trend:
        out["trend_x"] = param(v.TREND_PREDICTOR) + param(v.SD_TREND_PREDICTOR) * pm.Normal(
            "trend_predictor_raw", 0, 1, dims=v.PATIENT
        )
        out["trend_y"] = param(v.TREND_OUTCOME) + param(v.SD_TREND_OUTCOME) * pm.Normal(
            "trend_outcome_raw", 0, 1, dims=v.PATIENT
        )
    var_px = sd_px**2
    out["tau"] = (var_px, beta_p * var_px, beta_p**2 * var_px + sd_py**2)
    return out


def _baseline_shift(param: Any, zb: Any, beta: Any) -> tuple[Any, Any] | None:
    r"""The baseline's known shift of each patient's latent means (between-level mediation).

    A patient-level baseline z_i with b = ``trait_effect_patient``:

    .. math::

        M_{x,i} = \mu_x + a' z_i + (\text{therapist part}) + e_{x,i}, \qquad
        M_{y,i} = \mu_y + c' z_i + b (a' z_i + e_{x,i}) + (\text{therapist part}) + e_{y,i};

    a therapist-level one z_j (``zb`` holds the row of each patient's therapist) with
    b_T = ``trait_effect_therapist`` moves the therapist parts instead:

    .. math::

        a_{x,j} = a' z_j + u_{x,j}, \qquad
        a_{y,j} + b_T a_{x,j} = c' z_j + u_{y,j} + b_T (a' z_j + u_{x,j}).

    Either way, given the parameters the shifts ``a' z`` and ``(c' + b a)' z`` (b = ``beta``,
    the trait effect at the baseline's level) are known and enter the likelihood exactly as the
    intercept does, leaving the covariances of the patient and therapist deviations (and so the
    integration over them) unchanged. Returns None without a baseline.
    """
    if zb is None:
        return None
    a = param(v.BASELINE_EFFECT_PREDICTOR, dims="baseline")
    c = param(v.BASELINE_EFFECT_OUTCOME, dims="baseline")
    return pt.dot(zb, a), pt.dot(zb, c + beta * a)


def _sampled_traits(
    spec: ModelSpec, means: dict[str, Any], shift: tuple[Any, Any] | None = None
) -> tuple[Any, Any]:
    """Latent means as parameters (sampled traits); returns the mean surfaces (P, 1) or (P, S).

    With a baseline (``shift``: a' z and (c' + b a)' z) the latent means are whole latent
    means, shift included: ``M_y`` regresses on ``M_x`` less its known part, so that the patient
    trait effect multiplies the patient deviation e_x,i alone; the shift carries b a' z (b at the
    baseline's level; spec: not with session means).

    Patient latent means are centred (on the intercept plus the therapist part): with several
    sessions per patient they are well informed by the data, where a centred form mixes better:
    on the example data (2 x 1000 draws) the bulk ESS of sd_patient_outcome rose from 593 to
    1480 and that of trait_effect_therapist from 27-62 to 155 against a non-centred form.
    """
    top_x, top_y, mu_x, mu_y = means["top_x"], means["top_y"], means["mu_x"], means["mu_y"]
    sd_px, sd_py, beta_p = means["sd_px"], means["sd_py"], means["beta_p"]
    if spec.session_means:
        dev_x = pm.Normal("patient_dev_predictor", top_x, sd_px, dims=v.PATIENT)
        dev_y = pm.Normal(
            "patient_dev_outcome", top_y + beta_p * (dev_x - top_x), sd_py, dims=v.PATIENT
        )
        pm.Deterministic("trait_predictor", mu_x.mean() + dev_x, dims=v.PATIENT)
        pm.Deterministic("trait_outcome", mu_y.mean() + dev_y, dims=v.PATIENT)
        return mu_x[None, :] + dev_x[:, None], mu_y[None, :] + dev_y[:, None]
    sx, sy = shift if shift is not None else (0.0, 0.0)
    trait_x = pm.Normal("trait_predictor", mu_x + top_x + sx, sd_px, dims=v.PATIENT)
    trait_y = pm.Normal(
        "trait_outcome",
        mu_y + top_y + sy + beta_p * (trait_x - mu_x - top_x - sx),
        sd_py,
        dims=v.PATIENT,
    )
    return trait_x[:, None], trait_y[:, None]
