r"""Model builder: the joint trait/state model as an unsampled ``pm.Model``.

For session t of patient i treated by therapist j (docs/methods.md, section 'The decomposition')::

    x_ti = M_x[i, t] + xw_ti,   M_x[i, t] = mu_x(t) + a_x[j] + b_x[i] + s_x[i] (t - t_0)
    y_ti = M_y[i, t] + yw_ti,   M_y[i, t] = mu_y(t) + a_y[j] + b_y[i] + beta_T a_x[j] + beta_P b_x[i]
                                            + s_y[i] (t - t_0)
    B0 w_ti = Phi_i w_(t-1)i + e_ti,   e ~ MVN(0, Sigma_t),   w = (xw, yw)

with each adjusting covariate's fixed effects on both latent means (a patient column on
``b_x[i]``, ``b_y[i]``, a therapist column on ``a_x[j]``, ``a_y[j]``:
:func:`bayes_alliance.model.structure.covariate_shift`; the trait covariances are then those of
the residual traits), and, with a patient-level ``baseline`` g (between-level mediation), ``b_x[i] = a' g_i + e_x[i]``,
``b_y[i] = c' g_i + e_y[i]`` (known shifts given the parameters:
:func:`bayes_alliance.model.structure.baseline_shift`), or
with a therapist-level one, ``a_x[j] = a' g_j + u_x[j]``, ``a_y[j] = c' g_j + u_y[j]``,
with ``Phi_i = [[phi_xx, phi_xy], [phi_yx[i], phi_yy]]``, ``phi_yx[i] = phi_yx + c[j] + d[i] +
lambda' z_i``, and ``B0`` the identity unless a same-session (lag-0) path is requested (then Sigma
is diagonal). The latent means M are latent (latent person-mean centring): the observed mean never
enters. Random effects are non-centred. ``mu(t)`` is one intercept or one per session. The
within-person part (lags, random slopes and the stationarity truncation of their prior,
innovations, first session) is built in :mod:`bayes_alliance.model.within`, the priors in
:mod:`bayes_alliance.model.priors`, the likelihoods in :mod:`bayes_alliance.model.likelihood`; the
arithmetic from named parameters to the dynamics and the known means is
:mod:`bayes_alliance.model.structure`, shared with every post-hoc computation.

Likelihood. In reduced form ``w_t = Phi*_i w_(t-1) + u_t``, ``u ~ MVN(0, Sigma*)``; the first
session of a patient uses the stationary covariance S_i (``S = Phi* S Phi*' + Sigma*``, solved
entry-wise by :mod:`bayes_alliance.kernels.dynamics`) or a free one. Cells inside a patient's series that are missing (a skipped session, a
missing rating) are free parameters with the same density, so a predictor missing at the lag is
imputed, not dropped. By default (``traits="integrated"``) the latent means are integrated out of
each patient's completed series in closed form (:mod:`bayes_alliance.kernels.marginal`) and drawn after
sampling; with ``traits="sampled"`` they are parameters and each session contributes
``p(x_t | past) p(y_t | x_t, past)`` (see :mod:`bayes_alliance.model.likelihood`).

References: Asparouhov, Hamaker & Muthen (2018), Struct Equ Modeling 25:359 (DSEM); Hamaker,
Kuiper & Grasman (2015), Psych Methods 20:102 (RI-CLPM); Lüdtke et al. (2008), Psych Methods
13:203 (latent centring).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.model import continuous, indicators, interval_sums, likelihood
from bayes_alliance.model.covariates import (
    SplitBaseline,
    baseline_between_sd,
    baseline_unit_values,
    baseline_values,
    covariate_levels,
    covariate_unit_values,
    covariate_values,
    moderator_values,
    resolve,
)
from bayes_alliance.model.grid import (
    Censored,
    GridIndex,
    SeriesGrid,
    SeriesMoments,
    TherapistBlock,
    censored_cells,
    mixed_containers,
    patient_count,
)
from bayes_alliance.model.likelihood import (
    complete_censored,
    conditional_likelihood,
    integrated_likelihood,
)
from bayes_alliance.model.priors import (
    DataScale,
    default_priors,
    first_cov_regulariser,
    make_rv,
)
from bayes_alliance.model.segments import segment_containers
from bayes_alliance.model.structure import (
    Dynamics,
    Get,
    KnownMeans,
    add_shifts,
    baseline_shift,
    covariance_of,
    covariate_shift,
    derived,
    instability_shift,
    mean_parts,
    slope_trait_shift,
    therapist_part,
    trait_cov,
)
from bayes_alliance.model.within import within_part
from bayes_alliance.spec.model_spec import ModelSpec

__all__ = ["DataScale", "GridIndex", "build_model", "default_priors"]

v = vocab


def extra_priors(
    data: SessionData, spec: ModelSpec, scale: Any, interval: Any = None
) -> dict[str, dict[str, Any]]:
    """The defaults whose scale comes from elsewhere than :class:`DataScale` alone (the
    indicators'; in continuous time the drift's, the diffusion's and the random cross effects'
    SDs, per median interval ``interval``, default the data's): the builder and the report's
    priors table both read them here."""
    extra = indicators.prior_defaults(data, spec)
    if spec.time_model == "continuous":
        extra = {**extra, **continuous.drift_priors(data, scale.sd_x, scale.sd_y, interval)}
    return extra


def _check(data: SessionData, spec: ModelSpec) -> None:
    if spec.time_model == "continuous":
        continuous.check(data, spec)
    if spec.lag_trait_covariance and not spec.random_lags:
        raise ValueError(
            "lag_trait_covariance=True: a covariance of random lags with the latent means "
            "needs random lags (random_lags=...), which the k-series model fits"
        )
    if spec.random_lags or spec.lag_trait_covariance:
        raise ValueError(
            f"random_lags={list(spec.random_lags)}: random lagged paths are fitted by the "
            "k-series model: bayes_alliance.mechanisms.fit_mechanisms(SeriesData.from_frame"
            "(...), MechanismSpec(random_paths=lag_pairs(names, data.roles))), or "
            "`bayes-alliance fit ... --random-lags NAMES`, which sends the fit there"
        )
    if spec.therapist_level and data.therapists is None:
        raise ValueError("therapist_level=True but the data have no therapist column")
    if spec.therapist_level and data.patient_therapist is None:
        raise ValueError(
            "crossed therapist data need therapist_level=False (crossed levels are not modelled yet)"
        )
    if spec.innovations == "session" and len(data.sessions) < 2:
        raise ValueError("session-specific innovations need at least two sessions")
    if spec.measurement_error:
        # Error and state are told apart only by the states' carry-over between sessions.
        for column, observed in (
            (data.roles.predictor, data.observed_x),
            (data.roles.outcome, data.observed_y),
        ):
            per_patient = float((observed & data.in_series).sum(axis=1).mean())
            if per_patient < 3:
                raise ValueError(
                    f"measurement error (--measurement-error) needs at least 3 observed "
                    f"sessions per patient on average; column {column!r} has "
                    f"{per_patient:.1f}: error and state cannot be told apart in shorter series"
                )


def _coords(
    data: SessionData, spec: ModelSpec, idx: GridIndex, censored: Censored | None
) -> dict[str, Any]:
    coords: dict[str, Any] = {k: val for k, val in data.coords.items() if k != v.THERAPIST}
    if spec.therapist_level:
        coords[v.THERAPIST] = data.coords[v.THERAPIST]
    if spec.moderators:
        coords["moderator"] = list(spec.moderators)
    if spec.baseline:
        coords["baseline"] = list(spec.baseline)
    if spec.covariates:
        coords["covariate"] = list(spec.covariates)
    if spec.random_innovations:
        coords["trait_of"] = list(v.VARIABLES)
        coords["instability_of"] = list(v.VARIABLES)
    for which, grid in indicators.grids(data, spec).items():
        coords[f"{which}_indicator"] = list(grid.names[1:])
        coords[f"{which}_item"] = list(grid.names)
    if spec.innovations == "session":
        coords["innovation_session"] = data.coords[v.SESSION][1:]
    if spec.traits != "integrated":
        coords["missing_predictor_cell"] = np.arange(len(idx.miss_x[0]))
        coords["missing_outcome_cell"] = np.arange(len(idx.miss_y[0]))
        coords["observed_predictor_cell"] = np.arange(len(idx.obs_x[0]))
        coords["observed_outcome_cell"] = np.arange(len(idx.obs_y[0]))
    if censored is not None:
        for which, cells in censored.cells.items():
            if cells.n:
                coords[f"censored_{which}_cell"] = np.arange(cells.n)
    return coords


def _caseload(data: SessionData) -> np.ndarray:
    """Therapists x patients indicator of who treats whom."""
    assert data.patient_therapist is not None and data.therapists is not None
    out = np.zeros((len(data.therapists), data.n_patients))
    out[data.patient_therapist, np.arange(data.n_patients)] = 1.0
    return out


@dataclass
class _Inputs:
    """What the graph reads from the data (``pm.Data`` containers in the integrated model, so
    that new data can be swapped in), and the priors scaled to the data."""

    scale: Any
    priors: dict[str, dict[str, Any]]
    z: Any  # centred moderator values (patients x moderators) or None
    zb: Any  # centred baseline rows of the patients or None
    zc: Any  # centred rows of the adjusting covariates or None
    cells: dict[str, Any]  # the series' containers (integrated traits)
    n_pat: Any
    tj: Any = None
    caseload: Any = None


def _inputs(
    data: SessionData, spec: ModelSpec, idx: GridIndex, censored: Censored | None
) -> _Inputs:
    """The data's containers and the priors, in the current model."""
    integrated = spec.traits == "integrated"
    scale0 = DataScale.of(data)

    def patient_data(name: str, value: np.ndarray) -> Any:
        return pm.Data(name, value) if integrated else pt.as_tensor(value)

    scale: Any = scale0
    if integrated:
        # The data's location and scale set the default priors; as containers they follow
        # the data when a compiled model is refitted.
        scale = DataScale(*(pm.Data(f"data_{k}", val) for k, val in asdict(scale0).items()))
    z_val = moderator_values(data, spec)
    z = patient_data("moderator_values", z_val) if z_val is not None else None
    zb_val = baseline_values(data, spec)
    zb: Any = None
    zb_between_sd: Any = 1.0
    if isinstance(zb_val, SplitBaseline):
        # A patient-level baseline of three-level data: within- and between-therapist rows,
        # the between paths scaled by the SD of the therapist means over therapists.
        zb = SplitBaseline(
            patient_data("baseline_values", zb_val.within),
            patient_data("baseline_between_values", zb_val.between),
        )
        between_sd = np.asarray(baseline_between_sd(data, spec), dtype=float)
        zb_between_sd = patient_data("baseline_between_sd", between_sd)
    elif zb_val is not None:
        zb = patient_data("baseline_values", zb_val)
    # The paths' prior scale: the baseline's SD over the units of its level (patients or
    # therapists), a container so that it follows the data of a refit.
    zu = baseline_unit_values(data, spec)
    zb_sd = patient_data("baseline_sd", zu.std(axis=0)) if zu is not None else 1.0
    zc_val = covariate_values(data, spec)
    zc = patient_data("covariate_values", zc_val) if zc_val is not None else None
    zc_sd = patient_data("covariate_sd", _covariate_sd(data, spec)) if zc is not None else 1.0
    interval = None
    if integrated and spec.time_model == "continuous":
        # like the data's SDs, a container: a refitted compiled model's priors follow the data
        interval = pm.Data("data_median_interval", continuous.median_interval(data))
    extra = extra_priors(data, spec, scale, interval)
    priors = default_priors(
        spec,
        scale,
        z.std(axis=0) if z is not None else 1.0,
        zb_sd,
        extra,
        zc_sd,
        zb_between_sd,
    )
    inputs = _Inputs(scale, priors, z, zb, zc, {}, data.n_patients)
    if integrated:
        source = (
            _continuous_source(data, spec, scale0)
            if spec.time_model == "continuous"
            else _series_source(data, spec, idx, scale0, censored)
        )
        inputs.cells = {k: pm.Data(k, val) for k, val in source.items()}
        inputs.n_pat = patient_count(inputs.cells)
    if spec.therapist_level:
        assert data.patient_therapist is not None
        inputs.tj = patient_data("patient_therapist", data.patient_therapist)
        if v.THERAPIST in spec.random_slopes and spec.moderators:
            inputs.caseload = patient_data("caseload", _caseload(data))
    return inputs


def _covariate_sd(data: SessionData, spec: ModelSpec) -> np.ndarray:
    """Each adjusting covariate's SD over the units of its level (patients or therapists), in
    the column order of :func:`bayes_alliance.model.covariates.covariate_names`: the scale of
    its paths' priors, as the baseline's."""
    units = covariate_unit_values(data, spec)
    levels = np.array(covariate_levels(data, spec))
    out = np.empty(len(levels))
    for level, vals in units.items():
        out[levels == level] = vals.std(axis=0)
    return out


def _series_source(
    data: SessionData,
    spec: ModelSpec,
    idx: GridIndex,
    scale: DataScale,
    censored: Censored | None = None,
) -> dict[str, np.ndarray]:
    """The series as the integrated likelihood reads them. Complete series with one known mean
    per patient reduce to per-patient sums of products (O(patients) per evaluation); other
    complete series use the masked grid. Series with missing cells in a model with one known
    mean per patient and nothing else the filter alone handles: each patient on its own
    cheapest path (:func:`~bayes_alliance.model.grid.mixed_containers`; ``MIXED_PATH``).
    Otherwise series with missing cells, and every series of a model
    with measurement error (the errors are the filter's observation noise) or with censored
    cells (the filter reads their latent scores), the Kalman filter (missing cells and, with
    error, the states integrated out)."""
    simple = not (spec.session_means or spec.trend or spec.innovations == "session")
    gaps = bool(len(idx.miss_x[0]) or len(idx.miss_y[0]))
    if (
        gaps
        and simple
        and (likelihood.MIXED_PATH or likelihood.SEGMENT_PATH)
        and not (
            spec.measurement_error
            or spec.random_innovations
            or spec.predictor_indicators
            or spec.outcome_indicators
            or (censored is not None and censored.any)
        )
    ):
        loc = (scale.mean_x, scale.mean_y)
        # per-patient lags would make each piece's algebra a loop of tiny matrix products
        # (tens of times the filter's cost): the segment path takes shared dynamics only
        if likelihood.SEGMENT_PATH and not (spec.random_slopes or spec.moderators):
            return segment_containers(data, loc)
        return mixed_containers(data, loc)
    if (
        gaps
        or spec.measurement_error
        or spec.random_innovations
        or spec.predictor_indicators
        or spec.outcome_indicators
        or (censored is not None and censored.any)
    ):
        return SeriesGrid.of(data).gap_containers()
    if simple:
        return SeriesMoments.of(data, (scale.mean_x, scale.mean_y)).containers()
    return SeriesGrid.of(data).containers()


def _continuous_source(
    data: SessionData, spec: ModelSpec, scale: DataScale
) -> dict[str, np.ndarray]:
    """Continuous time: complete series with the drift shared by all patients and no
    measurement error as sums of products per distinct interval
    (:func:`bayes_alliance.model.interval_sums.applies`); otherwise the
    whole data set on the Kalman filter's grid (every cell has its own lag matrix) with each
    cell's interval (:class:`bayes_alliance.model.continuous.Intervals`)."""
    if interval_sums.applies(data, spec):
        return interval_sums.IntervalSums.of(data, (scale.mean_x, scale.mean_y)).containers()
    return {**SeriesGrid.of(data).gap_containers(), **continuous.Intervals.of(data).containers()}


def _accessor(priors: dict[str, dict[str, Any]]) -> Get:
    """The builder's ``get`` (:mod:`bayes_alliance.model.structure`): a named parameter with a
    prior is a random variable, a raw deviation a standard normal one (both created on first
    request, with the ``dims`` given, then reused), a derived parameter (the trait effects and
    residual SDs, :func:`bayes_alliance.model.structure.derived`) a deterministic of those; any
    other name is its fixed default."""
    made: dict[str, Any] = {}

    def get(name: str, default: float = 0.0, **kw: Any) -> Any:
        if name not in made:
            if name in priors:
                made[name] = make_rv(name, priors[name], **kw)
            elif name in v.DERIVED_PARAMETERS and all(n in priors for n in covariance_of(name)):
                made[name] = pm.Deterministic(name, derived(get, name, xp=pt))
            elif name.endswith("_raw"):
                made[name] = pm.Normal(name, 0, 1, **kw)
            else:
                return pt.constant(default)
        return made[name]

    return get


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
    spec = resolve(data, spec)
    integrated = spec.traits == "integrated"
    idx = GridIndex.of(data)
    # Cells at a ceiling or floor (a score beyond one is a data error); none: no change.
    censored = censored_cells(data, spec) if spec.censored else None
    if censored is not None and not censored.any:
        censored = None
    with pm.Model(coords=_coords(data, spec, idx, censored)) as model:
        inputs = _inputs(data, spec, idx, censored)
        get = _accessor(inputs.priors)
        means = _trait_means(spec, get, inputs.n_pat, inputs.tj, sample_therapists=not integrated)
        t = pt.as_tensor((data.sessions - data.sessions[0]).astype(float))
        if spec.time_model == "continuous":
            dyn = continuous.continuous_dynamics(
                get, spec, inputs.cells, z=inputs.z, tj=inputs.tj, n_pat=inputs.n_pat, xp=pt
            )
            pm.Potential(
                "stationarity",
                continuous.stationarity_logp(dyn, inputs.tj, inputs.z, inputs.caseload),
            )
        else:
            dyn = within_part(spec, get, inputs.n_pat, inputs.tj, inputs.z, inputs.caseload)
        if spec.first_session == "free":
            # Keeps the free first covariance off singular (priors.first_cov_regulariser).
            pm.Potential(
                "first_cov_regulariser",
                first_cov_regulariser(
                    get("first_sd_predictor"),
                    get("first_sd_outcome"),
                    get("first_corr"),
                    inputs.scale.sd_x,
                    inputs.scale.sd_y,
                ),
            )
        # The known shifts of the latent means (the baseline's, with its b path the trait effect
        # at the baseline's level; the instability's; the therapist slope deviation's), after
        # the dynamics' random variables.
        shift = add_shifts(
            baseline_shift(get, inputs.zb, spec.baseline_level, xp=pt),
            instability_shift(get, spec),
            slope_trait_shift(get, spec, inputs.tj),
            covariate_shift(get, inputs.zc, xp=pt),
        )
        if integrated:
            known = KnownMeans(means["mu"], means["trend"], shift, spec.session_means)
            if censored is not None:
                inputs.cells = complete_censored(inputs.cells, censored)
            _integrated_part(data, spec, inputs, means, known, dyn, t, get)
        else:
            m_x, m_y = _sampled_traits(spec, get, means, shift)
            trend = means["trend"]
            if trend is not None:
                m_x = m_x + trend[0][:, None] * t[None, :]
                m_y = m_y + trend[1][:, None] * t[None, :]
            if dyn.varying:
                pm.Deterministic("state_effect_by_patient", dyn.slope, dims=v.PATIENT)
            loc = (inputs.scale.mean_x, inputs.scale.mean_y)
            conditional_likelihood(data, idx, m_x, m_y, dyn, loc, spec.store_states)
    return model


def _integrated_part(
    data: SessionData,
    spec: ModelSpec,
    inputs: _Inputs,
    means: dict[str, Any],
    known: KnownMeans,
    dyn: Dynamics,
    t: Any,
    get: Get,
) -> None:
    """The likelihood with the latent means (and the therapist parts) integrated out."""
    # The sums-of-products path takes one known mean per patient (P,); the grids (P, S).
    kx, ky = known.cells(
        t, per_patient=bool({"moment_n", "segment_patient", interval_sums.KEY} & set(inputs.cells))
    )
    block = None
    if spec.therapist_level:
        assert data.therapists is not None
        # A container, so that a refit may have another number of therapists.
        codes = pm.Data("therapist_codes", np.arange(len(data.therapists)))
        block = TherapistBlock(inputs.tj, codes.shape[0], means["tau_therapist"])
    loc = (inputs.scale.mean_x, inputs.scale.mean_y)
    scores = _indicator_scores(data, spec, get)
    integrated_likelihood(
        inputs.cells, len(data.sessions), kx, ky, dyn, means["tau"], loc, block, scores
    )


def _indicator_scores(data: SessionData, spec: ModelSpec, get: Get) -> dict[str, Any]:
    """Each variable with indicators: its per-cell score and error variance (the indicators
    reduced to one observation, :mod:`bayes_alliance.model.indicators`); their residual log
    density is added as the potential ``indicator_residuals``."""
    out: dict[str, Any] = {}
    total: Any = 0.0
    for which, grid in indicators.grids(data, spec).items():
        names = indicators.NAMES[which]
        dims = indicators.dims(which)
        loading, intercept, sd = (get(n, dims=dims[n]) for n in names)
        eta, var, log_r = indicators.composite(grid, loading, intercept, sd, xp=pt)
        out[which] = (eta, var)
        total = total + log_r.sum()
    if out:
        pm.Potential("indicator_residuals", total)
    return out


def _trait_means(
    spec: ModelSpec, get: Get, n_pat: Any, tj: Any, sample_therapists: bool
) -> dict[str, Any]:
    """The patient-level trait covariance (entries, ``tau``), the therapist parts of the latent
    means (``top``: non-centred random variables when ``sample_therapists``, else zeros and only
    their covariance ``tau_therapist``, for integrating them out), and the known means' first
    pieces (``mu``: intercepts or session means; ``trend``: per-patient trends or None)."""
    out: dict[str, Any] = {"tau": trait_cov(get, v.PATIENT)}
    out["top"] = (pt.zeros(n_pat), pt.zeros(n_pat))
    if spec.therapist_level:
        # Covariance of (a_x, a_y + beta_t a_x), the therapist parts of the two latent means.
        out["tau_therapist"] = trait_cov(get, v.THERAPIST)
        if sample_therapists:
            out["top"] = therapist_part(get, tj, xp=pt)
    out["mu"], out["trend"] = mean_parts(get, spec)
    return out


def _sampled_traits(
    spec: ModelSpec, get: Get, means: dict[str, Any], shift: tuple[Any, Any] | None = None
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
    (top_x, top_y), (mu_x, mu_y) = means["top"], means["mu"]
    sd_px, sd_py, beta_p = (
        get(v.SD_PATIENT_PREDICTOR),
        get(v.SD_PATIENT_OUTCOME),
        get(v.TRAIT_EFFECT_PATIENT),
    )
    sx, sy = shift if shift is not None else (pt.zeros(()), pt.zeros(()))
    if spec.session_means:
        # The deviations leave the known shift out (the post-hoc paths add it to the known
        # means, as here): only the covariates' shift, a baseline is refused with session means.
        dev_x = pm.Normal("patient_dev_predictor", top_x, sd_px, dims=v.PATIENT)
        dev_y = pm.Normal(
            "patient_dev_outcome", top_y + beta_p * (dev_x - top_x), sd_py, dims=v.PATIENT
        )
        level_x, level_y = sx + dev_x, sy + dev_y
        pm.Deterministic("trait_predictor", mu_x.mean() + level_x, dims=v.PATIENT)
        pm.Deterministic("trait_outcome", mu_y.mean() + level_y, dims=v.PATIENT)
        return mu_x[None, :] + level_x[:, None], mu_y[None, :] + level_y[:, None]
    trait_x = pm.Normal("trait_predictor", mu_x + top_x + sx, sd_px, dims=v.PATIENT)
    trait_y = pm.Normal(
        "trait_outcome",
        mu_y + top_y + sy + beta_p * (trait_x - mu_x - top_x - sx),
        sd_py,
        dims=v.PATIENT,
    )
    return trait_x[:, None], trait_y[:, None]
