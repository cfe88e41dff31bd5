"""Default priors on the data's scale, and prior overrides by parameter name.

Every slope prior is scaled by the ratio of the variables' SDs, so that the same prior means the
same thing whatever units the data come in: a path from x to y gets SD ``sd_y / sd_x``, a path
from y to x gets ``sd_x / sd_y``, and a moderator of the state effect gets the state effect's
scale divided by the moderator's SD, and a baseline characteristic z's paths (between-level
mediation) get ``sd_x / sd_z`` (to the predictor's latent mean) and ``sd_y / sd_z`` (direct, to
the outcome's): one SD of z may move a latent mean by about one SD of its variable. Intercepts and variance parameters follow the SDs of the
variables they describe.

The scaling rules are functions of the data's SDs (:func:`path_sigma`, :func:`level_sigma`,
...), one per kind of parameter, and the mechanism models
(:mod:`bayes_alliance.mechanisms.model`) take their priors from the same functions, so a
parameter kind has one rule in both model families. Each function returns exactly the
expression the joint model has always used (its draws do not change): ``ratio`` arguments are
``SD(receiving variable) / SD(sending variable)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pytensor.tensor as pt

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab

AUTOREGRESSION_SIGMA = 0.5
"""Prior SD of an autoregression (no units): a lag-1 carry-over beyond +-1 is implausible."""


def path_sigma(ratio: Any) -> Any:
    """Prior SD of a lagged or same-session path from a series s to a series t, with
    ``ratio = SD(t) / SD(s)``: one SD of s moves t by about one of its SDs at most."""
    return ratio


TRAIT_CORR_ETA = 1.0
"""LKJ shape of each trait level's correlation: density proportional to ``(1 - r^2)^(eta - 1)``,
uniform on (-1, 1) at 1. With 30 therapists of 8 patients (a therapist mean's reliability about
0.5) LKJ(2) pulled the therapists' correlation towards 0 (mean z +0.77 at a true -0.55, 100 data
sets) against +0.42 for LKJ(1), both with half-normal SDs (docs/calibration.md). The mechanism
models share it and the Gamma(2) therapist SDs since their prior rules 0.3
(:mod:`bayes_alliance.mechanisms.priors`)."""


def lkj_corr(eta: float = TRAIT_CORR_ETA) -> dict[str, Any]:
    """The prior of a 2 x 2 covariance's correlation: the LKJ(eta) distribution of a 2 x 2
    correlation matrix, whose off-diagonal entry r has ``(r + 1) / 2 ~ Beta(eta, eta)``
    (Lewandowski, Kurowicka & Joe 2009); eta = 1 is uniform on (-1, 1)."""
    return {"dist": "LKJCorr", "eta": eta}


def random_slope_sigma(ratio: Any) -> Any:
    """Scale of the half-normal prior of the between-person SD of a path that varies:
    ``0.25 SD(t) / SD(s)`` (a quarter of the path's own prior SD)."""
    return 0.25 * ratio


def moderator_sigma(ratio: Any, moderator_sd: Any) -> Any:
    """Prior SD of a moderator's effect on the state effect, per unit of the moderator."""
    return 0.5 * ratio / moderator_sd


def baseline_sigma(sd: Any, baseline_sd: Any) -> Any:
    """Prior SD of a baseline characteristic's path to a latent mean, per unit of the
    characteristic: one SD of it may move the latent mean by about one SD of the variable."""
    return sd / baseline_sd


def intercept_sigma(sd: Any) -> Any:
    """Prior SD of a series' grand mean (intercept or session mean): ``2.5 SD``."""
    return 2.5 * sd


def therapist_sd_prior(sd: Any) -> dict[str, Any]:
    """The prior of an SD of the therapists' parts of a latent mean: Gamma(2, rate 4 / SD), mean
    0.5 SD, mode 0.25 SD and density 0 at 0 (a boundary-avoiding prior, Chung et al. 2013,
    Psychometrika 78:685). With tens of therapists whose means are measured with noise of about
    their own spread, a half-normal prior left the SDs' posterior means low at a fixed truth
    (mean z -0.26 and -0.37 at 30 therapists) and let the derived trait effect ``r s_y / s_x``
    run to extreme values as s_x neared 0; the Gamma(2) prior does neither (-0.10, -0.18;
    docs/calibration.md). Its cost: a therapist SD that is truly 0 is estimated above 0 (not
    measured at a small true SD)."""
    return {"dist": "Gamma", "alpha": 2.0, "beta": 2.0 / level_sigma(sd, v.THERAPIST)}


def level_sigma(sd: Any, level: str) -> Any:
    """Scale of the half-normal prior of a latent mean's SD at ``level``: the variable's SD
    between patients, half of it between therapists."""
    if level == v.THERAPIST:
        return 0.5 * sd
    return sd


def innovation_sigma(sd: Any) -> Any:
    """Scale of the half-normal prior of an innovation SD: the variable's SD."""
    return sd


def measurement_error_sigma(sd: Any) -> Any:
    """Scale of the half-normal prior of a measurement-error SD: half the variable's SD (prior
    median about a third of it; reliabilities of session ratings are rarely below .5)."""
    return 0.5 * sd


def log_innovation_sd_sigma(level: str) -> float:
    """Scale of the half-normal prior of the SD of the log innovation SD over patients (0.5:
    a patient one SD above the typical one fluctuates about 1.6 times as much) or therapists
    (0.25). Unitless."""
    return 0.25 if level == v.THERAPIST else 0.5


def first_sigma(sd: Any) -> Any:
    """Scale of the half-normal prior of a free first session's state SD: the variable's SD."""
    return sd


FIRST_COV_PSEUDO = 0.1
"""Weight ``kappa`` of :func:`first_cov_regulariser`: a tenth of one pseudo-patient."""


def first_cov_regulariser(fx: Any, fy: Any, rho: Any, sd_x: Any, sd_y: Any) -> Any:
    r"""Log of the boundary-avoiding factor of the free first session's covariance prior.

    With ``F = [[fx^2, rho fx fy], [rho fx fy, fy^2]]`` (the first state's covariance) and
    ``Psi = diag(sd_x^2, sd_y^2)`` (the data's variances) the factor is the exponential part of
    an inverse-Wishart density,

    .. math::

        \log r(F) = -\frac{\kappa}{2}\,\mathrm{tr}(\Psi F^{-1})
                  = -\frac{\kappa}{2}\,\frac{sd_x^2/f_x^2 + sd_y^2/f_y^2}{1 - \rho^2},

    multiplied into the half-normal priors of ``fx``, ``fy`` and the uniform prior of ``rho``
    (the builder adds it as a potential). Why: when every patient's first session has the same
    value (a ceiling at intake), the first sessions' likelihood is ``|T + F|^{-n/2}`` at zero
    spread (``T`` the latent means' covariance), which grows without bound as ``T + F``
    becomes singular: the patient SDs and ``fx`` (or ``fy``, or ``|rho| -> 1``) go to 0
    together and the sampler chases a spike. A boundary-avoiding prior (Chung, Rabe-Hesketh,
    Dorie, Gelman & Liu 2013, Psychometrika 78:685) keeps a variance off 0, but their
    Gamma(2) factor vanishes only like ``f`` and cannot outweigh ``f^{-n}``; ``r(F)``
    vanishes faster than any power of each eigenvalue of ``F``, so the density stays bounded
    and, for ``n`` identical first sessions, the first covariance's mode is near
    ``kappa Psi / n`` instead of 0. With ``kappa`` = :data:`FIRST_COV_PSEUDO` the factor is
    negligible for ordinary data: it halves the prior density only where a first-session SD
    is about a quarter of its variable's SD or less (``exp(-0.05 / 0.25^2) = 0.45`` against
    the value ``exp(-0.05)`` at ``f = sd``), and ``n`` patients' first sessions outweigh it.
    Pure arithmetic: numpy or PyTensor inputs.
    """
    return -0.5 * FIRST_COV_PSEUDO * ((sd_x / fx) ** 2 + (sd_y / fy) ** 2) / (1.0 - rho**2)


def trend_sigma(sd: Any) -> Any:
    """Prior SD of the mean linear trend per session: ``0.1 SD``."""
    return 0.1 * sd


def trend_sd_sigma(sd: Any) -> Any:
    """Scale of the half-normal prior of the patients' trend SD (their changes per session):
    ``0.05 SD``."""
    return 0.05 * sd


@dataclass(frozen=True)
class DataScale:
    """Location and scale of the data, used to set weakly informative default priors."""

    mean_x: Any
    mean_y: Any
    sd_x: Any
    sd_y: Any

    @classmethod
    def of(cls, data: SessionData) -> DataScale:
        sd_x = float(np.nanstd(data.x)) or 1.0
        sd_y = float(np.nanstd(data.y)) or 1.0
        return cls(float(np.nanmean(data.x)), float(np.nanmean(data.y)), sd_x, sd_y)


def default_priors(
    spec: ModelSpec,
    s: DataScale,
    moderator_sd: Any = 1.0,
    baseline_sd: Any = 1.0,
    extra: dict[str, dict[str, Any]] | None = None,
    covariate_sd: Any = 1.0,
    baseline_between_sd: Any = 1.0,
) -> dict[str, dict[str, Any]]:
    """Weakly informative priors on the data's scale, with the spec's overrides applied.

    Parameters
    ----------
    spec
        Model options; ``spec.priors`` replaces defaults by name (checked, with suggestions).
    s
        Location and scale of the data (floats, or ``pm.Data`` containers in a compiled model).
    moderator_sd
        SD of each moderator across patients (a vector when there are several).
    baseline_sd
        SD of each baseline characteristic across the units of its level, patients or
        therapists (a vector when there are several).
    extra
        Defaults of parameters whose scale comes from elsewhere (the indicators'
        :func:`bayes_alliance.model.indicators.default_priors`).
    covariate_sd
        SD of each adjusting covariate across the units of its level (a vector when there are
        several): its effects on the latent means are scaled like a baseline's paths.
    baseline_between_sd
        SD over therapists of the therapist means of a patient-level baseline split at the
        therapists (``zbar_j - zbar``, :func:`bayes_alliance.model.covariates.baseline_split_values`):
        the scale of its between paths ``baseline_effect_*_between``.
    """
    ratio = s.sd_y / s.sd_x
    reverse = 1.0 / ratio
    lag0 = path_sigma(reverse if spec.same_session == "outcome_to_predictor" else ratio)

    def normal(mu: Any, sigma: Any) -> dict[str, Any]:
        return {"dist": "Normal", "mu": mu, "sigma": sigma}

    def half(sigma: Any) -> dict[str, Any]:
        return {"dist": "HalfNormal", "sigma": sigma}

    uniform = {"dist": "Uniform", "lower": -1.0, "upper": 1.0}
    p: dict[str, dict[str, Any]] = {
        v.STATE_EFFECT: normal(0.0, path_sigma(ratio)),
        v.REVERSE_STATE_EFFECT: normal(0.0, path_sigma(reverse)),
        v.OUTCOME_AUTOREGRESSION: normal(0.0, AUTOREGRESSION_SIGMA),
        v.PREDICTOR_AUTOREGRESSION: normal(0.0, AUTOREGRESSION_SIGMA),
        v.SAME_SESSION_EFFECT: normal(0.0, lag0),
        v.TRAIT_CORR_PATIENT: lkj_corr(),
        v.TRAIT_CORR_THERAPIST: lkj_corr(),
        v.INTERCEPT_PREDICTOR: normal(s.mean_x, intercept_sigma(s.sd_x)),
        v.INTERCEPT_OUTCOME: normal(s.mean_y, intercept_sigma(s.sd_y)),
        "session_mean_predictor": normal(s.mean_x, intercept_sigma(s.sd_x)),
        "session_mean_outcome": normal(s.mean_y, intercept_sigma(s.sd_y)),
        v.SD_PATIENT_PREDICTOR: half(level_sigma(s.sd_x, v.PATIENT)),
        v.SD_PATIENT_OUTCOME_TOTAL: half(level_sigma(s.sd_y, v.PATIENT)),
        v.SD_THERAPIST_PREDICTOR: therapist_sd_prior(s.sd_x),
        v.SD_THERAPIST_OUTCOME_TOTAL: therapist_sd_prior(s.sd_y),
        v.SD_STATE_EFFECT_PATIENT: half(random_slope_sigma(ratio)),
        v.SD_STATE_EFFECT_THERAPIST: half(random_slope_sigma(ratio)),
        v.INNOVATION_SD_PREDICTOR: half(innovation_sigma(s.sd_x)),
        v.INNOVATION_SD_OUTCOME: half(innovation_sigma(s.sd_y)),
        v.INNOVATION_CORR: dict(uniform),
        v.MEASUREMENT_ERROR_SD_PREDICTOR: half(measurement_error_sigma(s.sd_x)),
        v.MEASUREMENT_ERROR_SD_OUTCOME: half(measurement_error_sigma(s.sd_y)),
        v.SD_LOG_INNOVATION_PREDICTOR_PATIENT: half(log_innovation_sd_sigma(v.PATIENT)),
        v.SD_LOG_INNOVATION_OUTCOME_PATIENT: half(log_innovation_sd_sigma(v.PATIENT)),
        v.SD_LOG_INNOVATION_PREDICTOR_THERAPIST: half(log_innovation_sd_sigma(v.THERAPIST)),
        v.SD_LOG_INNOVATION_OUTCOME_THERAPIST: half(log_innovation_sd_sigma(v.THERAPIST)),
        # A trait's shift per SD of a patient's instability: up to about one SD of its variable
        # (rows: the trait's variable; columns: whose instability).
        v.TRAIT_INSTABILITY_EFFECT: normal(0.0, _by_trait_row(s)),
        v.MODERATOR_EFFECT: normal(0.0, moderator_sigma(ratio, moderator_sd)),
        v.BASELINE_EFFECT_PREDICTOR: normal(0.0, baseline_sigma(s.sd_x, baseline_sd)),
        v.BASELINE_EFFECT_OUTCOME: normal(0.0, baseline_sigma(s.sd_y, baseline_sd)),
        v.BASELINE_EFFECT_PREDICTOR_BETWEEN: normal(
            0.0, baseline_sigma(s.sd_x, baseline_between_sd)
        ),
        v.BASELINE_EFFECT_OUTCOME_BETWEEN: normal(0.0, baseline_sigma(s.sd_y, baseline_between_sd)),
        v.TREND_PREDICTOR: normal(0.0, trend_sigma(s.sd_x)),
        v.TREND_OUTCOME: normal(0.0, trend_sigma(s.sd_y)),
        v.SD_TREND_PREDICTOR: half(trend_sd_sigma(s.sd_x)),
        v.SD_TREND_OUTCOME: half(trend_sd_sigma(s.sd_y)),
        "first_sd_predictor": half(first_sigma(s.sd_x)),
        "first_sd_outcome": half(first_sigma(s.sd_y)),
        "first_corr": dict(uniform),
    }
    # Adjusting covariates: up to about one SD of each variable per SD of the covariate, as a
    # baseline's paths (:func:`baseline_sigma`).
    p[v.COVARIATE_EFFECT_PREDICTOR] = normal(0.0, baseline_sigma(s.sd_x, covariate_sd))
    p[v.COVARIATE_EFFECT_OUTCOME] = normal(0.0, baseline_sigma(s.sd_y, covariate_sd))
    if v.THERAPIST in spec.random_slopes:
        # One LKJ(eta) prior on the therapists' 3 x 3 correlation of (predictor part, outcome
        # part, slope) as a C-vine (Lewandowski, Kurowicka & Joe 2009): the first tree's
        # correlations with shape eta + 1/2, the partial correlation with eta.
        wide = lkj_corr(TRAIT_CORR_ETA + 0.5)
        p[v.TRAIT_CORR_THERAPIST] = dict(wide)
        p[v.SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR] = dict(wide)
        p[v.SLOPE_TRAIT_PARTIAL_CORR_THERAPIST_OUTCOME] = lkj_corr()
    p.update(extra or {})
    allowed = spec.prior_names()
    derived = [n for n in spec.priors if n in vocab.DERIVED_PARAMETERS]
    if derived:
        raise ValueError(
            f"no prior can be set on {derived}: since 0.3 each trait level is a covariance "
            "matrix (the SDs sd_<level>_predictor, sd_<level>_outcome_total and the "
            "correlation trait_corr_<level>), and the trait effect (cov / var) and the "
            "outcome's residual SD are derived from it; set priors on those instead"
        )
    vocab.check_names(spec.priors, allowed, "parameter in priors")
    return {k: dict(spec.priors.get(k, p[k])) for k in allowed if k in p}


def _by_trait_row(s: DataScale) -> Any:
    """The 2 x 2 prior SDs of ``trait_instability_effect``: each row the SD of its trait's
    variable (a tensor when the scale is held in containers)."""
    rows = [[s.sd_x, s.sd_x], [s.sd_y, s.sd_y]]
    if isinstance(s.sd_x, int | float):
        return np.array(rows, dtype=float)
    # PyMC and PyTensor are imported where a graph is built: the prior scales alone (the
    # convergence check of a fit from the cache) run without them.
    import pytensor.tensor as pt

    return pt.stack([pt.stack([pt.as_tensor_variable(e) for e in row]) for row in rows])


def _lkj_2x2(eta: Any, size: Any) -> Any:
    # The off-diagonal entry of an LKJ(eta) 2 x 2 correlation matrix: 2 Beta(eta, eta) - 1.
    import pymc as pm

    return 2.0 * pm.Beta.dist(eta, eta, size=size) - 1.0


def make_rv(name: str, prior: dict[str, Any], **kw: Any) -> pt.TensorVariable:
    """A PyMC random variable from a prior mapping ``{"dist": ..., <arguments>}``.

    ``{"dist": "LKJCorr", "eta": eta}`` is a scalar correlation with the LKJ(eta) density of
    a 2 x 2 correlation matrix (:func:`lkj_corr`), sampled on (-1, 1) through the interval
    transform; every other ``dist`` names a PyMC distribution."""
    import pymc as pm

    params = {k: val for k, val in prior.items() if k != "dist"}
    try:
        if prior["dist"] == "LKJCorr":
            interval = pm.distributions.transforms.Interval(-1.0, 1.0)
            return pm.CustomDist(
                name, params["eta"], dist=_lkj_2x2, default_transform=interval, **kw
            )
        return getattr(pm, prior["dist"])(name, **params, **kw)
    except TypeError as exc:
        raise ValueError(f"prior for {name!r}: {exc}") from None


def numeric(prior: dict[str, Any]) -> dict[str, Any]:
    """The prior with every argument evaluated to a float or list (for tables and reports)."""
    out: dict[str, Any] = {"dist": prior["dist"]}
    for k, val in prior.items():
        if k == "dist":
            continue
        arr = np.asarray(val.eval() if hasattr(val, "eval") else val, dtype=float)
        out[k] = float(arr) if arr.ndim == 0 else arr.tolist()
    return out
