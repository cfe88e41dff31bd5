r"""From named parameters to the within-person dynamics and the known part of the cell means.

One path, used by the model builder (PyTensor random variables), by the post-hoc draws, the
replicates, the patient update, the patient densities, the variance moments and the prior
predictive (numpy arrays of draws). Each takes an *accessor* ``get(name, default=0.0, **dims)``
that returns the named parameter: inside the builder a random variable (created on first
request, with ``dims``) or the fixed default where the spec does not estimate it
(:func:`bayes_alliance.model.build.build_model`); after sampling a lookup in posterior arrays
(:func:`lookup`). For patient i of therapist j (docs/methods.md, section 'The decomposition')::

    phi_yx[i] = phi_yx + lambda' z_i + c_j + d_i,    c_j = sd_T c*_j,  d_i = sd_P d*_i
    B0 w_t = Phi_i w_(t-1) + e_t,  e_t ~ N(0, Sigma_t)  ->  w_t = Phi*_i w_(t-1) + u_t
    known_t = mu(t) + (gamma + sd_g g*_i) (t - t_0) + shift_i

with the reduced form of :func:`bayes_alliance.kernels.dynamics.reduced_form`, the first
session's covariance stationary (``S = Phi* S Phi*' + Sigma*``) or free, and ``shift_i`` the
baseline's known shift of the latent means (between-level mediation, :func:`baseline_shift`).

Shapes. The arithmetic is written once, in the builder's order (the builder's graph, and so the
sampler's draws, must not change), and every array has the model's own axes first (patient,
therapist, session, moderator, baseline column) and the draws, if any, on **one trailing axis**:

* one draw (or the builder): a per-draw scalar is a scalar, a patient vector is (P,);
* D draws at once: a per-draw scalar is (D,), a patient vector (P, D), per-session innovations
  (S - 1, D), moderator effects (k, D); the dynamics' entries come out (D,) or (P, D), the known
  means (P, S or 1, D).

Trailing draws broadcast against every model axis, so no function here branches on the shape.
Callers holding draws first (chain, draw, ...) move that axis to the end (``lookup(...,
draws_first=True)``) and back.

No PyMC import here: numpy callers (the effect sizes, the simulator's
:class:`~bayes_alliance.sim.settings.TrueParameters`) do not load it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_alliance.core import vocab
from bayes_alliance.kernels import dynamics
from bayes_alliance.model.covariates import SplitBaseline
from bayes_alliance.model.variability import (
    INSTABILITY_RAW,
    error_var,
    instability,
    instability_shift,
)
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab
Get = Callable[..., Any]  # get(name, default=0.0, **dims) -> the named parameter

# The trait covariance's parameters at each level in regression form: SD of the predictor's
# part, the outcome's residual SD and the trait effect (the y part regresses on the x part).
TRAIT_LEVELS = {
    v.PATIENT: (v.SD_PATIENT_PREDICTOR, v.SD_PATIENT_OUTCOME, v.TRAIT_EFFECT_PATIENT),
    v.THERAPIST: (v.SD_THERAPIST_PREDICTOR, v.SD_THERAPIST_OUTCOME, v.TRAIT_EFFECT_THERAPIST),
}
# ... and as estimated: the SDs of the two parts and their correlation (priors: half-normal SDs,
# an LKJ correlation). The regression form is derived from it per draw (:func:`derived`).
TRAIT_COVARIANCE = {
    v.PATIENT: (v.SD_PATIENT_PREDICTOR, v.SD_PATIENT_OUTCOME_TOTAL, v.TRAIT_CORR_PATIENT),
    v.THERAPIST: (
        v.SD_THERAPIST_PREDICTOR,
        v.SD_THERAPIST_OUTCOME_TOTAL,
        v.TRAIT_CORR_THERAPIST,
    ),
}
# The therapists' slope correlations (with therapist random slopes): the estimated pair and the
# correlation of the trait part they give the outcome's (C-vine, :func:`derived`).
SLOPE_TRAIT = (
    v.TRAIT_CORR_THERAPIST,
    v.SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR,
    v.SLOPE_TRAIT_PARTIAL_CORR_THERAPIST_OUTCOME,
)
# What each derived parameter is computed from.
_INPUTS = {
    **{
        name: TRAIT_COVARIANCE[level] for level, names in TRAIT_LEVELS.items() for name in names[1:]
    },
    v.SLOPE_TRAIT_CORR_THERAPIST_OUTCOME: SLOPE_TRAIT,
}


@dataclass
class Structural:
    """The structural pieces the dynamics are made of (what the stationarity truncation of the
    prior needs, :func:`bayes_alliance.model.within.within_part`).

    ``lags``: (phi_xx, phi_xy, phi_yy); ``fixed_slope``: the state effect plus the moderators'
    part ``lambda' z_i`` (None where the caller gave each patient's slope); ``dev_therapist``
    (per therapist) and ``dev_patient`` (per patient): the slope deviations ``sd * raw``, with
    their SDs, None without that level; ``b0``: the lag-0 coefficient (0.0 without one);
    ``sigma``: the structural innovation covariance entries.
    """

    lags: tuple[Any, Any, Any]
    fixed_slope: Any
    dev_therapist: Any = None
    dev_patient: Any = None
    sd_therapist: Any = None
    sd_patient: Any = None
    b0: Any = 0.0
    sigma: tuple[Any, Any, Any] = (0.0, 0.0, 0.0)


@dataclass
class Dynamics:
    """Reduced-form dynamics as the likelihoods use them.

    ``phi`` (a, b, c, d) and ``first`` entries are scalars or, when ``varying``, per-patient
    vectors; ``sigma`` entries are scalars or, when ``by_session``, vectors over the transition
    columns of the grid (into sessions 2..S). ``slope`` is the structural state effect of each
    patient (a vector when ``varying``, else None); ``parts`` the structural pieces. With draws
    on a trailing axis every entry has it too (module docstring).
    """

    phi: tuple[Any, Any, Any, Any]
    sigma: tuple[Any, Any, Any]
    first: tuple[Any, Any, Any]
    varying: bool
    by_session: bool = False
    slope: Any = None
    parts: Structural | None = None
    error: tuple[Any, Any] = (0.0, 0.0)
    sigma_varying: bool = False  # per-patient innovation covariances (random innovations)
    # continuous time: ``phi`` and ``sigma`` entries (P, S), [:, t] the interval into column t
    by_cell: bool = False

    def per_patient(self, entry: Any) -> Any:
        """A per-patient vector as a (P, 1) column of the grid; scalars unchanged (one draw)."""
        return entry[:, None] if self.varying and getattr(entry, "ndim", 0) == 1 else entry

    def per_transition(self, entry: Any) -> Any:
        """A per-session innovation entry as a (1, S - 1) row of the grid; scalars unchanged
        (one draw)."""
        return entry[None, :] if self.by_session else entry


# The raw (standard normal) deviations sampled per patient and per therapist, in the order a
# new patient's are drawn from their prior (feedback): code that keeps some patients or
# therapists of a posterior subsets these.
PATIENT_RAW = (
    "state_effect_patient_raw",
    "trend_predictor_raw",
    "trend_outcome_raw",
    *INSTABILITY_RAW[v.PATIENT],
)
THERAPIST_RAW = ("state_effect_therapist_raw", *INSTABILITY_RAW[v.THERAPIST])


def derived(get: Get, name: str, xp: Any = np) -> Any:
    r"""A derived parameter (:data:`bayes_alliance.core.vocab.DERIVED_PARAMETERS`) from the
    parameters it is computed from (:func:`covariance_of`).

    From a level's covariance ``(s_x, s_y, r)``: the trait effect
    :math:`\beta = \operatorname{cov} / \operatorname{var} = r s_y / s_x` or the outcome's
    residual SD :math:`s_y \sqrt{1 - r^2}`. Estimating the covariance (half-normal SDs, an LKJ
    correlation) rather than ``(s_x, beta, residual s_y)`` with a flat-ish prior on beta
    matters with few units: the regression form's prior on the covariance grows like
    1 / s_x^2 once the data fix the covariance, which pulled the therapist SDs low at 30
    therapists (docs/calibration.md).

    The outcome part's correlation with the therapist's slope deviation, from the C-vine of the
    3 x 3 correlation of (x part, y part, slope): :math:`r_{yc} = r_{yc|x}
    \sqrt{(1 - r_{xy}^2)(1 - r_{xc}^2)} + r_{xy} r_{xc}` (Lewandowski, Kurowicka & Joe 2009,
    J Multivariate Anal 100:1989).
    """
    if name == v.SLOPE_TRAIT_CORR_THERAPIST_OUTCOME:
        r_xy, r_xc, partial = (get(n) for n in SLOPE_TRAIT)
        return partial * xp.sqrt((1.0 - r_xy**2) * (1.0 - r_xc**2)) + r_xy * r_xc
    sd_x, sd_y, r = (get(n) for n in _INPUTS[name])
    if name in (v.SD_PATIENT_OUTCOME, v.SD_THERAPIST_OUTCOME):
        return sd_y * xp.sqrt(1.0 - r**2)
    return r * sd_y / sd_x


def covariance_of(name: str) -> tuple[str, ...]:
    """The parameters a derived parameter is computed from."""
    return _INPUTS[name]


def estimated(spec: ModelSpec) -> frozenset[str]:
    """Names a fit of ``spec`` has draws of, as the builder creates them: the free parameters,
    session means and free first-session parameters (``spec.prior_names()``) and the raw
    (standard normal) deviations: slopes, trends and, with a therapist level, the therapist
    parts of the latent means."""
    names = set(spec.prior_names()) | set(spec.free_parameters())
    for level in spec.random_slopes:
        names.add(f"state_effect_{level}_raw")
    if spec.trend:
        names |= {"trend_predictor_raw", "trend_outcome_raw"}
    if spec.therapist_level:
        names |= {"therapist_dev_predictor_raw", "therapist_dev_outcome_raw"}
    for level in spec.random_innovations:
        names |= set(INSTABILITY_RAW[level])
    return frozenset(names)


def value(post: Mapping[str, Any], name: str, like: Any, default: float = 0.0) -> np.ndarray:
    """``post[name]`` as a float array, or ``default`` shaped like ``like`` where ``post`` lacks
    it (a parameter the model leaves out)."""
    if name in post:
        return np.asarray(post[name], dtype=float)
    return np.full_like(np.asarray(like, dtype=float), default)


def lookup(
    post: Mapping[str, Any],
    spec: ModelSpec | None = None,
    *,
    like: Any = None,
    draws_first: bool = False,
    given: Mapping[str, Any] | None = None,
) -> Get:
    """An accessor over arrays of draws by name, the post-hoc counterpart of the builder's.

    Parameters
    ----------
    post
        Arrays by name: one draw's values, or draws on the trailing axis; returned as they are
        (numpy arrays or scalars: a 0-d array and a numpy scalar may round ``x**2``
        differently).
    spec
        When given, names the spec does not estimate (:func:`estimated`) give their default, as
        the builder's constants do, whatever ``post`` holds.
    like
        Shape of a default (a per-draw scalar); else a default is a Python float.
    draws_first
        The arrays hold the draws on their *first* axis: moved to the last (a view).
    given
        Values returned for these names instead of the arrays' (e.g. zero trend deviations,
        where a Kalman filter carries them in its state).
    """
    known = estimated(spec) if spec is not None else None
    given = given or {}

    def get(name: str, default: float = 0.0, **_dims: Any) -> Any:
        if name in given:
            return given[name]
        if name in _INPUTS and name not in post and all(n in post for n in _INPUTS[name]):
            return derived(get, name)  # arrays of the free parameters only (prior draws)
        if name not in post or (known is not None and name not in known):
            return default if like is None else value({}, name, like, default)
        val = post[name]  # as given: numpy scalars stay scalars (their arithmetic is numpy's)
        if draws_first and np.ndim(val) > 1:
            return np.moveaxis(np.asarray(val, dtype=float), 0, -1)
        return val

    return get


def draws_last(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays (chain, draw, ...) with the draws of all chains on one trailing axis:
    (..., chain x draw), the shape :func:`lookup` reads for many draws at once."""
    out = {}
    for k, val in arrays.items():
        flat = val.reshape(val.shape[0] * val.shape[1], *val.shape[2:])
        out[k] = np.moveaxis(flat, 0, -1)
    return out


def _dot(z: Any, coef: Any, xp: Any) -> Any:
    """``z @ coef``: rows of z (patients or therapists) times coefficients (k[, D])."""
    return z @ coef if xp is np else xp.dot(z, coef)


def fixed_slope(get: Get, z: Any = None, xp: Any = np) -> Any:
    r"""The fixed part of each patient's state effect: ``phi_yx + lambda' z_i`` (``z``: centred
    moderator values, patients x moderators, or None: then the average state effect)."""
    slope = get(v.STATE_EFFECT)
    if z is not None:
        slope = slope + _dot(z, get(v.MODERATOR_EFFECT, dims="moderator"), xp)
    return slope


def lag0(get: Get, spec: ModelSpec) -> Any:
    """The lag-0 coefficient b0 (0.0 without a same-session path)."""
    return get(v.SAME_SESSION_EFFECT) if spec.same_session != "none" else 0.0


def innovation_cov(get: Get, spec: ModelSpec, tj: Any = None, xp: Any = np) -> tuple[Any, Any, Any]:
    """Structural innovation covariance entries ``(sd_x^2, rho sd_x sd_y, sd_y^2)``, per
    transition column with ``innovations="session"`` (rho is 0 where the spec does not estimate
    it: a same-session path, one equation); per patient with random innovations
    (:func:`instability`; ``tj``: therapist code of each patient)."""
    dims = {"dims": "innovation_session"} if spec.innovations == "session" else {}
    sd_x = get(v.INNOVATION_SD_PREDICTOR, **dims)
    sd_y = get(v.INNOVATION_SD_OUTCOME, **dims)
    rho = get(v.INNOVATION_CORR, **dims)
    if spec.random_innovations:
        log_x, log_y = instability(get, spec, tj)
        sd_x = sd_x * xp.exp(log_x)
        sd_y = sd_y * xp.exp(log_y)
    return sd_x**2, rho * sd_x * sd_y, sd_y**2


def free_first_cov(get: Get) -> tuple[Any, Any, Any]:
    """The free first session's covariance entries from its SDs and correlation."""
    fx = get("first_sd_predictor")
    fy = get("first_sd_outcome")
    return fx**2, get("first_corr") * fx * fy, fy**2


def dynamics_from(
    get: Get,
    spec: ModelSpec,
    *,
    z: Any = None,
    tj: Any = None,
    n_pat: Any = None,
    slope: Any = None,
    xp: Any = np,
) -> Dynamics:
    """The reduced-form dynamics of the named parameters (module docstring for the shapes).

    Parameters are requested in the builder's order: phi_xx, phi_xy, phi_yy, the state effect,
    the moderator effects, the therapist then patient slope SD and raw deviations, b0, the
    innovation SDs and correlation, the free first session's parameters, the measurement-error
    SDs.

    Parameters
    ----------
    get
        The accessor (module docstring).
    spec
        Which parts the model has.
    z
        Centred moderator values (patients x moderators), or None.
    tj
        Therapist code of each patient (needed with therapist slopes).
    n_pat
        Number of patients (symbolic in a compiled model): with varying slopes the slope is
        multiplied by ``xp.ones(n_pat)``, as the builder's graph does; None leaves it as
        computed (it has its patient axis whenever slopes vary).
    slope
        Each patient's structural state effect where the caller has it (a completed
        posterior's ``state_effect_by_patient``); its pieces are then not requested and
        ``parts.fixed_slope`` is None.
    xp
        ``numpy`` or ``pytensor.tensor``.
    """
    lags = (
        get(v.PREDICTOR_AUTOREGRESSION),
        get(v.REVERSE_STATE_EFFECT),
        get(v.OUTCOME_AUTOREGRESSION),
    )
    if slope is None:
        parts, slope = _slope(get, spec, lags, z, tj, xp)
    else:
        parts = Structural(lags, None)
    varying = bool(spec.random_slopes or spec.moderators)
    if varying and n_pat is not None:
        slope = xp.ones(n_pat) * slope
    parts.b0 = lag0(get, spec)
    parts.sigma = innovation_cov(get, spec, tj, xp)
    a, b, d = lags
    phi, sigma = dynamics.reduced_form((a, b, slope, d), parts.sigma, parts.b0, spec.same_session)
    first: tuple[Any, Any, Any]
    if spec.first_session == "free":
        first = free_first_cov(get)
    elif spec.dynamics == "var1":
        first = dynamics.stationary_cov(phi, sigma)
    else:  # no dynamics: the state is the innovation
        first = sigma
    return Dynamics(
        phi,
        sigma,
        first,
        varying,
        by_session=spec.innovations == "session",
        slope=slope if varying else None,
        parts=parts,
        error=error_var(get, spec),
        sigma_varying=bool(spec.random_innovations),
    )


def _slope(
    get: Get, spec: ModelSpec, lags: tuple[Any, Any, Any], z: Any, tj: Any, xp: Any
) -> tuple[Structural, Any]:
    """Each patient's structural state effect ``phi_yx + lambda' z_i + c_j + d_i`` and its
    pieces."""
    fixed = fixed_slope(get, z, xp)
    parts = Structural(lags, fixed)
    slope_deviations(get, spec, parts)
    slope = fixed
    if parts.dev_therapist is not None:
        slope = slope + parts.dev_therapist[tj]
    if parts.dev_patient is not None:
        slope = slope + parts.dev_patient
    return parts, slope


def slope_deviations(get: Get, spec: ModelSpec, parts: Structural | None = None) -> Structural:
    """The random slopes' SDs and deviations ``c_j = sd_T c*_j`` (per therapist) and
    ``d_i = sd_P d*_i`` (per patient), for the levels the spec has, filled into ``parts``
    (a new :class:`Structural` without lags when None)."""
    parts = parts if parts is not None else Structural((None, None, None), None)
    if v.THERAPIST in spec.random_slopes:
        parts.sd_therapist = get(v.SD_STATE_EFFECT_THERAPIST)
        raw = get("state_effect_therapist_raw", dims=v.THERAPIST)
        parts.dev_therapist = parts.sd_therapist * raw
    if v.PATIENT in spec.random_slopes:
        parts.sd_patient = get(v.SD_STATE_EFFECT_PATIENT)
        parts.dev_patient = parts.sd_patient * get("state_effect_patient_raw", dims=v.PATIENT)
    return parts


def trait_cov(get: Get, level: str) -> tuple[Any, Any, Any]:
    r"""Covariance entries of a level's parts of the two latent means ``(e_x, e_y + beta e_x)``:
    ``(s_x^2, beta s_x^2, beta^2 s_x^2 + s_y^2)`` (``level``: patient or therapist; ``s_y`` the
    residual SD).

    At the therapist level with random slopes, the covariance *given* the therapist's slope
    deviation c_j (the parts regress on it, :func:`slope_trait_loadings`):
    :math:`\Sigma - g g'` with ``g`` the loadings; the part ``g c_j / s_c`` is a known shift
    (:func:`slope_trait_shift`)."""
    sd_x, sd_y, beta = (get(name) for name in TRAIT_LEVELS[level])
    var_x = sd_x**2
    cov = (var_x, beta * var_x, beta**2 * var_x + sd_y**2)
    if level != v.THERAPIST:
        return cov
    g_x, g_y = slope_trait_loadings(get)
    return cov[0] - g_x**2, cov[1] - g_x * g_y, cov[2] - g_y**2


def slope_trait_loadings(get: Get) -> tuple[Any, Any]:
    r"""The therapist parts' loadings on the standardised slope deviation ``c*_j = c_j / s_c``:
    ``(r_xc s_x, r_yc s_y)`` (``s_y`` the outcome part's whole SD), so that
    ``E[part | c_j] = g c*_j`` and ``Var(part | c_j) = Sigma - g g'``; zeros without
    therapist slope correlations (the accessor's defaults)."""
    r_xc = get(v.SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR)
    r_yc = get(v.SLOPE_TRAIT_CORR_THERAPIST_OUTCOME)
    return r_xc * get(v.SD_THERAPIST_PREDICTOR), r_yc * get(v.SD_THERAPIST_OUTCOME_TOTAL)


def slope_trait_shift(get: Get, spec: ModelSpec, tj: Any) -> tuple[Any, Any] | None:
    """Each patient's known shift of the latent means by the therapist's slope deviation,
    ``g c*_j`` (:func:`slope_trait_loadings`), or None without therapist slopes."""
    if v.THERAPIST not in spec.random_slopes or tj is None:
        return None
    raw = get("state_effect_therapist_raw", dims=v.THERAPIST)[tj]
    g_x, g_y = slope_trait_loadings(get)
    return g_x * raw, g_y * raw


def therapist_part(get: Get, tj: Any, xp: Any = np) -> tuple[Any, Any]:
    r"""Each patient's therapist part of the two latent means beyond any known shift (non-centred
    through the Cholesky factor of :func:`trait_cov`): ``a_x = sqrt(v_x) u_x`` and
    ``a_y + beta_T a_x = (c / sqrt(v_x)) u_x + sqrt(v_y - c^2 / v_x) u_y`` with ``u`` the raw
    deviations ``therapist_dev_<variable>_raw`` (without slope correlations this is
    ``s_x u_x`` and ``s_y u_y + beta_T s_x u_x``)."""
    var_x, cov, var_y = trait_cov(get, v.THERAPIST)
    u_x = get("therapist_dev_predictor_raw", dims=v.THERAPIST)
    u_y = get("therapist_dev_outcome_raw", dims=v.THERAPIST)
    l_x = xp.sqrt(var_x)
    a_x = l_x * u_x
    a_tot = (cov / l_x) * u_x + xp.sqrt(var_y - cov**2 / var_x) * u_y
    return a_x[tj], a_tot[tj]


def therapist_raw(get: Get, a_x: Any, a_tot: Any) -> tuple[Any, Any]:
    """The raw deviations that give the therapist parts ``a_x``, ``a_tot`` (beyond any known
    shift) under :func:`therapist_part`: its inverse."""
    var_x, cov, var_y = trait_cov(get, v.THERAPIST)
    l_x = np.sqrt(var_x)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_x = a_x / l_x
        return u_x, (a_tot - (cov / l_x) * u_x) / np.sqrt(var_y - cov**2 / var_x)


def baseline_shift(get: Get, zb: Any, level: str, xp: Any = np) -> tuple[Any, Any] | None:
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

    Either way, given the parameters the shifts ``a' z`` and ``(c' + b a)' z`` (b the trait
    effect at the baseline's ``level``, :data:`bayes_alliance.core.vocab.BASELINE_MEDIATOR`) are
    known and enter the likelihood exactly as the intercept does, leaving the covariances of the
    patient and therapist deviations (and so the integration over them) unchanged. None
    without a baseline (``zb`` None). A patient-level baseline of three-level data comes split
    into its within- and between-therapist rows (``zb`` a
    :class:`~bayes_alliance.model.covariates.SplitBaseline`, :func:`_split_shift`).
    """
    if zb is None:
        return None
    a = get(v.BASELINE_EFFECT_PREDICTOR, dims="baseline")
    c = get(v.BASELINE_EFFECT_OUTCOME, dims="baseline")
    if isinstance(zb, SplitBaseline):
        return _split_shift(get, zb, a, c, xp)
    b = get(v.BASELINE_MEDIATOR[level])
    return _dot(zb, a, xp), _dot(zb, c + b * a, xp)


def _split_shift(get: Get, zb: SplitBaseline, a_w: Any, c_w: Any, xp: Any) -> tuple[Any, Any]:
    r"""The known shift of a patient-level baseline of three-level data split at the
    therapists (:class:`~bayes_alliance.model.covariates.SplitBaseline`): with z_W = z_i -
    zbar_j (paths a_W, c'_W; b_P = ``trait_effect_patient``) and z_B = zbar_j - zbar (paths
    a_B, c'_B = ``baseline_effect_*_between``; b_T = ``trait_effect_therapist``)

    .. math::

        \Delta M_{x,i} = a_W' z_{W,i} + a_B' z_{B,i}, \qquad
        \Delta M_{y,i} = (c'_W + b_P a_W)' z_{W,i} + (c'_B + b_T a_B)' z_{B,i}.

    The between part moves the therapist's parts exactly as a therapist-level baseline does;
    the within part moves the patient's deviation from them."""
    a_b = get(v.BASELINE_EFFECT_PREDICTOR_BETWEEN, dims="baseline")
    c_b = get(v.BASELINE_EFFECT_OUTCOME_BETWEEN, dims="baseline")
    if xp is np and (np.ndim(a_b) == 0 or np.ndim(c_b) == 0):
        raise ValueError(
            "the draws have no baseline_effect_predictor_between / _outcome_between: a "
            "patient-level baseline of three-level data is split into within- and "
            "between-therapist parts since issue 25; refit the model (a result saved before "
            "then has one path for both)"
        )
    b_p = get(v.BASELINE_MEDIATOR[v.PATIENT])
    b_t = get(v.BASELINE_MEDIATOR[v.THERAPIST])
    x = _dot(zb.within, a_w, xp) + _dot(zb.between, a_b, xp)
    y = _dot(zb.within, c_w + b_p * a_w, xp) + _dot(zb.between, c_b + b_t * a_b, xp)
    return x, y


def covariate_shift(get: Get, zc: Any, xp: Any = np) -> tuple[Any, Any] | None:
    r"""The adjusting covariates' known shift of each patient's latent means.

    .. math::

        M_{x,i} = \mu_x + g_x' z_i + (\text{therapist part}) + e_{x,i}, \qquad
        M_{y,i} = \mu_y + g_y' z_i + (\text{therapist part}) + e_{y,i} + \beta e_{x,i},

    ``zc``: each patient's centred covariate row (a therapist-level column holds the value of
    the patient's therapist, :func:`bayes_alliance.model.covariates.covariate_values`). g_x =
    ``covariate_effect_predictor`` and g_y = ``covariate_effect_outcome`` are total effects on
    each latent mean (no mediation through the trait effect, unlike a baseline's c'), so the
    trait covariances describe the residual traits e. Known given the parameters, the shift
    enters the likelihood as the intercept does (the traits still integrate out). None
    without covariates (``zc`` None).
    """
    if zc is None:
        return None
    gx = get(v.COVARIATE_EFFECT_PREDICTOR, dims="covariate")
    gy = get(v.COVARIATE_EFFECT_OUTCOME, dims="covariate")
    return _dot(zc, gx, xp), _dot(zc, gy, xp)


@dataclass
class KnownMeans:
    """The known part of the cell means given the parameters: ``mu`` the intercepts (per draw)
    or, with ``session_means``, the session means (session[, draws]); ``trend`` each patient's
    trend (average plus deviation) or None; ``shift`` the baseline's shift of each patient's
    latent means or None. Pairs (predictor, outcome)."""

    mu: tuple[Any, Any]
    trend: tuple[Any, Any] | None
    shift: tuple[Any, Any] | None
    session_means: bool = False

    def cells(self, t: Any, per_patient: bool = False) -> tuple[Any, Any]:
        """The known mean of each cell, (P, 1) or (P, S) (with trailing draws: (P, 1 or S, D)):
        ``mu + trend (t - t_0) + shift``, added in that order.

        ``t``: session offsets ``t - t_0`` shaped like a session vector ((S,), or (S, 1) with
        trailing draws). ``per_patient``: one known mean per patient (P,) (no session means,
        no trend), for the sums-of-products likelihood."""
        out = []
        for k in range(2):
            known = self.mu[k][None, :] if self.session_means else self.mu[k]
            if self.trend is not None:
                known = known + self.trend[k][:, None] * t[None, :]
            if self.shift is not None:
                known = known + (self.shift[k] if per_patient else self.shift[k][:, None])
            out.append(known)
        return out[0], out[1]

    def level(self) -> tuple[Any, Any]:
        """The known part of each patient's latent means: the intercept (or the session means'
        average over the session axis, the first) plus the baseline's shift."""
        out = []
        for k in range(2):
            base = self.mu[k].mean(axis=0) if self.session_means else self.mu[k]
            out.append(base + self.shift[k] if self.shift is not None else base)
        return out[0], out[1]


def mean_parts(get: Get, spec: ModelSpec) -> tuple[tuple[Any, Any], tuple[Any, Any] | None]:
    """Intercepts or session means, and each patient's trend (``gamma + sd_g * raw``) or None,
    requested in the builder's order."""
    if spec.session_means:
        mu = (
            get("session_mean_predictor", dims=v.SESSION),
            get("session_mean_outcome", dims=v.SESSION),
        )
    else:
        mu = (get(v.INTERCEPT_PREDICTOR), get(v.INTERCEPT_OUTCOME))
    trend = None
    if spec.trend:
        trend = (
            get(v.TREND_PREDICTOR)
            + get(v.SD_TREND_PREDICTOR) * get("trend_predictor_raw", dims=v.PATIENT),
            get(v.TREND_OUTCOME)
            + get(v.SD_TREND_OUTCOME) * get("trend_outcome_raw", dims=v.PATIENT),
        )
    return mu, trend


def known_means(
    get: Get,
    spec: ModelSpec,
    zb: Any = None,
    level: str = v.PATIENT,
    xp: Any = np,
    tj: Any = None,
    zc: Any = None,
) -> KnownMeans:
    """The known part of the cell means (:class:`KnownMeans`): :func:`mean_parts` and the known
    shifts of the latent means: the baseline's :func:`baseline_shift` (``zb``: the baseline rows
    of the patients, ``level`` their level), the instability's, the therapist slope
    deviation's (:func:`slope_trait_shift`; ``tj``: each patient's therapist code) and the
    covariates' :func:`covariate_shift` (``zc``: their rows)."""
    mu, trend = mean_parts(get, spec)
    shift = add_shifts(
        baseline_shift(get, zb, level, xp),
        instability_shift(get, spec),
        slope_trait_shift(get, spec, tj),
        covariate_shift(get, zc, xp),
    )
    return KnownMeans(mu, trend, shift, spec.session_means)


def add_shifts(*shifts: tuple[Any, Any] | None) -> tuple[Any, Any] | None:
    """The sum of known shifts of the latent means (None where there is none)."""
    given = [s for s in shifts if s is not None]
    if not given:
        return None
    out = given[0]
    for s in given[1:]:
        out = (out[0] + s[0], out[1] + s[1])
    return out
