"""The model specification: which parts of the trait/state model are switched on, and priors.

A :class:`ModelSpec` is plain data (no PyMC objects), so it can be written to and read from spec
files and saved with a result. :func:`bayes_alliance.model.build.build_model` turns a spec plus data
into an unsampled ``pm.Model``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bayes_alliance.core import vocab

EQUATIONS = ("bivariate", "outcome")
SAME_SESSION = ("none", "predictor_to_outcome", "outcome_to_predictor")
FIRST_SESSION = ("stationary", "free")
DYNAMICS = ("var1", "none")
TRAITS = ("integrated", "sampled")
INNOVATIONS = ("constant", "session")
TIME_MODELS = ("sessions", "continuous")
TIME_UNITS = ("days", "weeks")
SLOPE_LEVELS = (vocab.PATIENT, vocab.THERAPIST)
INNOVATION_LEVELS = (vocab.PATIENT, vocab.THERAPIST)
BASELINE_LEVELS = ("auto", vocab.PATIENT, vocab.THERAPIST)
# Allowed prior distributions and their arguments (PyMC's names; checked against pymc 6.4).
PRIOR_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma", "tau"),
    "HalfNormal": ("sigma", "tau"),
    "StudentT": ("nu", "mu", "sigma", "lam"),
    "HalfStudentT": ("nu", "sigma", "lam"),
    "HalfCauchy": ("beta",),
    "Exponential": ("lam", "scale"),
    "Uniform": ("lower", "upper"),
    "TruncatedNormal": ("mu", "sigma", "tau", "lower", "upper"),
    "Gamma": ("alpha", "beta", "mu", "sigma"),
    "InverseGamma": ("alpha", "beta", "mu", "sigma"),
    "LogNormal": ("mu", "sigma", "tau"),
    # a correlation's LKJ(eta) prior (the entry of a 2 x 2 LKJ correlation matrix)
    "LKJCorr": ("eta",),
}


@dataclass(frozen=True)
class ModelSpec:
    """Options of the joint trait/state model.

    Parameters
    ----------
    therapist_level
        Model therapist random intercepts (three levels). Set False for two-level data.
    equations
        ``"bivariate"``: the within-person VAR(1) with both cross-lags. ``"outcome"``: the
        literature's single-equation model (y_t on latent trait x, latent state x_(t-1) and
        y_(t-1)); the predictor's states are then independent across sessions.
    random_slopes
        Levels at which the state effect varies: any of ``"patient"``, ``"therapist"``.
    moderators
        Patient-level covariates (centred at their mean) that moderate the state effect.
    baseline
        Patient-level covariates z (centred at their mean over patients) whose effect on the
        outcome's latent mean is mediated by the predictor's latent mean (between-level
        mediation, docs/methods.md, section 'Between-level mediation'):
        ``M_x,i = mu_x + a' z_i + ... + e_x,i`` and
        ``M_y,i = mu_y + c' z_i + b (a' z_i + e_x,i) + ... + e_y,i`` with
        a = ``baseline_effect_predictor``, c' = ``baseline_effect_outcome`` and
        b = ``trait_effect_patient``. Sampled traits only without session means. With
        ``baseline_level="therapist"`` z is a therapist characteristic instead (see there).
        In three-level data a patient-level z is split at the therapists,
        ``z_i = (z_i - zbar_j) + (zbar_j - zbar)``: the within part has the paths above with
        b = ``trait_effect_patient``, the between part (therapist means) its own paths
        ``baseline_effect_predictor_between`` / ``baseline_effect_outcome_between`` with
        b = ``trait_effect_therapist`` (:meth:`splits_baseline`).
    baseline_level
        Level of the baseline characteristics: ``"patient"`` (as above), ``"therapist"`` (z_j
        constant within each therapist, centred at its mean over therapists, three-level data):
        ``a_x[j] = a' z_j + u_x[j]`` and ``a_y[j] + b_T a_x[j] = (c' + b_T a)' z_j + u_y[j] +
        b_T u_x[j]``, so the same parameters ``baseline_effect_predictor`` (a) and
        ``baseline_effect_outcome`` (c') act on the therapists' parts of the latent means and the
        b path is ``trait_effect_therapist``; or ``"auto"`` (default): therapist when every
        baseline column is constant within every therapist of three-level data, else patient.
        Fitting resolves "auto" once against the data (:func:`bayes_alliance.model.covariates.resolve_baseline`)
        and the result's spec records the level used.
    covariates
        Covariates that adjust the latent means (empty: every declared covariate of the data
        that is not a baseline column; fitting fills it in, :func:`bayes_alliance.model.covariates.resolve`).
        Each column z gets a fixed effect on both latent means,
        ``M_x,i = mu_x + g_x' z_i + ... + e_x,i`` and ``M_y,i = mu_y + g_y' z_i + ... + e_y,i``
        (``covariate_effect_predictor`` g_x, ``covariate_effect_outcome`` g_y, total effects on
        each latent mean), so that the trait SDs and trait effects describe the residual traits.
        A moderator of the state effect is adjusted for too: an interaction without its main
        effect would let the moderator's association with the traits leak into the slope.
    covariate_level
        Level of the adjusting covariates, per column: ``"auto"`` (therapist for a column
        constant within every therapist of three-level data, centred over therapists, acting
        on the therapists' parts of the latent means; else patient, centred over patients),
        or ``"patient"`` / ``"therapist"`` for every column.
    same_session
        A lag-0 path between the states: ``"predictor_to_outcome"`` (x_t -> y_t) or
        ``"outcome_to_predictor"`` (y_t -> x_t). Innovations are then uncorrelated.
    reverse_lag
        Include the y_(t-1) -> x_t path (``reverse_state_effect``).
    session_means
        Session-specific grand means of x and y (as the RI-CLPM has) instead of one intercept each.
    trend
        A per-patient linear trend in session number (detrending): the trait is the level at the
        first session of the grid and the state is the deviation from the patient's line.
    first_session
        Distribution of a patient's first state: ``"stationary"`` (implied by the dynamics) or
        ``"free"`` (its own covariance, like the RI-CLPM's first wave).
    priors
        Overrides by parameter name: ``{"state_effect": {"dist": "Normal", "mu": 0, "sigma": 0.3}}``.
    store_states
        Keep the per-session latent states (patient x session) in the posterior.
    traits
        How the latent means (traits) are estimated. ``"integrated"`` (default): integrated out of
        each patient's series in closed form, then drawn from their conditional posterior after
        sampling (exact; far fewer parameters for the sampler; a compiled model can be refitted
        to new data). ``"sampled"``: parameters of the sampler alongside the rest.
    dynamics
        ``"var1"`` (default): lagged within-person dynamics. ``"none"``: no lags, for
        cross-sectional clusters (e.g. pupils in schools); the within effect is then the
        same-session path ``predictor_to_outcome``.
    innovations
        ``"constant"`` (default): one innovation covariance for every session. ``"session"``:
        one per session (the innovation SDs and correlation get a ``innovation_session`` dim
        over sessions 2..S), as in the RI-CLPM of Hamaker, Kuiper & Grasman (2015), for
        equally spaced waves; needs ``first_session="free"``.
    random_lags
        Lagged paths that vary between patients, by name (``predictor_autoregression``,
        ``outcome_autoregression``, ``state_effect``, ``reverse_state_effect``, and with a
        mediator or second informant their paths, or ``to<-from``): inertia as an individual
        difference, as Mplus's ``s | y ON y&1``. They are fitted by the k-series model
        (:mod:`bayes_alliance.mechanisms`, where every lag matrix entry may be random, with an
        unstructured covariance), to which the command line sends such a fit;
        :func:`bayes_alliance.inference.fit.fit` refuses them.
    lag_trait_covariance
        The random lags' patient deviations covary with the patients' latent means (and
        change): one unstructured covariance of both, as Mplus's between-level model of
        random slopes and intercepts; k-series model only (as ``random_lags``).
    measurement_error
        Each observed score is the latent mean plus the state plus measurement error,
        ``x_ti = M_x,i + w_x,ti + eps_x,ti``, ``eps_x ~ N(0, omega_x^2)`` (and for y), so that
        the states are the error-free within-person deviations (the "VAR(1) plus white noise"
        of Schuurman & Hamaker 2019). The errors are the observation noise of the Kalman filter
        that integrates the latent means and states out. Adds ``measurement_error_sd_predictor``
        and ``measurement_error_sd_outcome``. Needs the bivariate VAR(1) (``dynamics="var1"``,
        ``equations="bivariate"``): without lagged states the error is not separable from the
        state, and integrated traits.
    predictor_indicators, outcome_indicators
        Several indicators per session of a variable (e.g. the WAI-SR's goal, task and bond
        subscales): a one-factor model at both levels with equal loadings,
        ``z_k,ti = nu_k + lambda_k eta_ti + e_k,ti``, ``e_k ~ N(0, theta_k^2)``, where
        ``eta_ti = M_i + w_ti`` is the variable's latent score (plus its white-noise error with
        ``measurement_error``). The variable's own column (``predictor`` / ``outcome``) is the
        marker (loading 1, intercept 0: the factor is on its scale) and is added to the list
        when not in it; every indicator is read at the cells where the marker is observed.
        Adds ``indicator_loading_<variable>`` and ``indicator_intercept_<variable>`` (the other
        indicators) and ``indicator_sd_<variable>`` (all). Needs integrated traits and the
        bivariate VAR(1).
    random_innovations
        Levels at which each variable's innovation SD varies (patients who fluctuate more):
        any of ``"patient"`` (required for ``"therapist"``), ``"therapist"``. For patient i of
        therapist j, ``sd_x,i = innovation_sd_predictor exp(s_P u_x,i + s_T v_x,j)`` with
        ``u, v ~ N(0, 1)`` (likewise y; the innovation correlation stays common), and the
        traits regress on the patient's instability ``u_i``: ``M_i = mu + G u_i + e_i``
        (``trait_instability_effect``, 2 x 2), so instability and traits correlate (Hamaker
        et al. 2018; Jongerling, Laurenceau & Hamaker 2015). Needs integrated traits, the
        bivariate VAR(1) and one innovation covariance for all sessions.
    ceiling_predictor, floor_predictor, ceiling_outcome, floor_outcome
        Scale limits at which scores are censored (default None: none): a score at a
        variable's ceiling stands for "this value or more", one at its floor for "this value or
        less" (alliance ratings piling up at the scale's maximum, symptom scores at 0). Each
        such cell's latent uncensored score is a parameter constrained beyond the limit
        (``censored_predictor_excess``, ``censored_outcome_excess``; the completed scores are
        ``censored_predictor_value``, ``censored_outcome_value``), which the Kalman filter reads
        as data, so the posterior of the other parameters is that of the censored-data
        likelihood. A score beyond a limit is a data error; data with no score at a limit give
        the model without censoring. Needs integrated traits.
    time_model
        ``"sessions"`` (default): time is the session number, one VAR(1) step per session.
        ``"continuous"``: the within-person process is a continuous-time VAR(1) (drift matrix
        A, ``Phi(dt) = expm(A dt)``) on the data's session times (``Roles.time``; dates with
        ``--dates``), exact for every interval (:mod:`bayes_alliance.model.continuous`).
    time_unit
        The unit of the session times and so of the drift: ``"days"`` or ``"weeks"``.
    effects_interval
        Continuous time: the interval, in time units, at which ``state_effect`` and the other
        lag effects (entries of Phi) are reported; default (None) the median interval of the
        data.
    """

    therapist_level: bool = True
    equations: str = "bivariate"
    random_slopes: tuple[str, ...] = ()
    random_lags: tuple[str, ...] = ()
    lag_trait_covariance: bool = False
    moderators: tuple[str, ...] = ()
    baseline: tuple[str, ...] = ()
    baseline_level: str = "auto"
    covariates: tuple[str, ...] = ()
    covariate_level: str = "auto"
    same_session: str = "none"
    reverse_lag: bool = True
    session_means: bool = False
    trend: bool = False
    first_session: str = "stationary"
    priors: dict[str, dict[str, Any]] = field(default_factory=dict)
    store_states: bool = True
    dynamics: str = "var1"
    traits: str = "integrated"
    innovations: str = "constant"
    measurement_error: bool = False
    random_innovations: tuple[str, ...] = ()
    predictor_indicators: tuple[str, ...] = ()
    outcome_indicators: tuple[str, ...] = ()
    ceiling_predictor: float | None = None
    floor_predictor: float | None = None
    ceiling_outcome: float | None = None
    floor_outcome: float | None = None
    time_model: str = "sessions"
    time_unit: str = "days"
    effects_interval: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "random_slopes", tuple(self.random_slopes))
        object.__setattr__(self, "random_lags", tuple(self.random_lags))
        object.__setattr__(self, "moderators", tuple(self.moderators))
        object.__setattr__(self, "baseline", tuple(self.baseline))
        object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "random_innovations", tuple(self.random_innovations))
        object.__setattr__(self, "predictor_indicators", tuple(self.predictor_indicators))
        object.__setattr__(self, "outcome_indicators", tuple(self.outcome_indicators))
        errs = []
        for name, value, allowed in (
            ("equations", self.equations, EQUATIONS),
            ("same_session", self.same_session, SAME_SESSION),
            ("first_session", self.first_session, FIRST_SESSION),
            ("dynamics", self.dynamics, DYNAMICS),
            ("traits", self.traits, TRAITS),
            ("innovations", self.innovations, INNOVATIONS),
            ("baseline_level", self.baseline_level, BASELINE_LEVELS),
            ("covariate_level", self.covariate_level, BASELINE_LEVELS),
        ):
            if value not in allowed:
                errs.append(
                    f"{name} must be one of {allowed}, got {value!r}.{vocab.suggest(value, allowed)}"
                )
        for lvl in self.random_slopes:
            if lvl not in SLOPE_LEVELS:
                errs.append(
                    f"unknown random-slope level {lvl!r}.{vocab.suggest(lvl, SLOPE_LEVELS)}"
                )
        if vocab.THERAPIST in self.random_slopes and not self.therapist_level:
            errs.append("random slopes at therapist level need therapist_level=True")
        if self.equations == "outcome" and self.same_session != "none":
            errs.append("the single-equation model has no same-session path between the states")
        if self.session_means and self.trend:
            errs.append(
                "session_means and trend together are not identified: session-specific means "
                "absorb the average trend (trend_predictor / trend_outcome are collinear with "
                "them); use one of the two"
            )
        if self.innovations == "session" and (
            self.first_session != "free" or self.dynamics != "var1"
        ):
            errs.append(
                "innovations='session' (session-specific innovation covariances) needs "
                "dynamics='var1' and first_session='free': the process has no stationary "
                "distribution to start from"
            )
        if self.dynamics == "none" and (self.random_slopes or self.moderators):
            errs.append(
                "random slopes and moderators act on the lagged state effect: they need dynamics='var1'"
            )
        if self.baseline and self.traits == "sampled" and self.session_means:
            errs.append(
                "baseline (between-level mediation) with sampled traits does not work with "
                "session_means (the sampled patient deviations would carry the baseline's "
                "shift, which the predictive replicates add again); use traits='integrated'"
            )
        if self.measurement_error and (self.dynamics != "var1" or not self.bivariate):
            errs.append(
                "measurement_error needs the bivariate VAR(1) (dynamics='var1', "
                "equations='bivariate'): without lagged states an error is not separable "
                "from the state it is added to"
            )
        for lvl in self.random_innovations:
            if lvl not in INNOVATION_LEVELS:
                errs.append(
                    f"unknown random-innovation level {lvl!r}."
                    f"{vocab.suggest(lvl, INNOVATION_LEVELS)}"
                )
        if self.random_innovations:
            if vocab.PATIENT not in self.random_innovations:
                errs.append(
                    "random_innovations at therapist level need the patient level too "
                    "(random_innovations=('patient', 'therapist'))"
                )
            if vocab.THERAPIST in self.random_innovations and not self.therapist_level:
                errs.append("random_innovations at therapist level need therapist_level=True")
            if (
                self.traits != "integrated"
                or self.dynamics != "var1"
                or not self.bivariate
                or self.innovations != "constant"
            ):
                errs.append(
                    "random_innovations need traits='integrated', the bivariate VAR(1) and "
                    "innovations='constant'"
                )
        if (self.predictor_indicators or self.outcome_indicators) and (
            self.traits != "integrated" or self.dynamics != "var1" or not self.bivariate
        ):
            errs.append(
                "indicators need traits='integrated' and the bivariate VAR(1) (the indicators "
                "are reduced to one score per cell for the Kalman filter)"
            )
        for which, listed in (
            (vocab.PREDICTOR, self.predictor_indicators),
            (vocab.OUTCOME, self.outcome_indicators),
        ):
            limits = (getattr(self, f"ceiling_{which}"), getattr(self, f"floor_{which}"))
            if listed and any(b is not None for b in limits):
                errs.append(
                    f"a ceiling or floor of the {which} together with its indicators is not "
                    "supported yet (the indicators are reduced to one score per session)"
                )
        if self.measurement_error and self.traits != "integrated":
            errs.append(
                "measurement_error needs traits='integrated' (the error is the Kalman filter's "
                "observation noise; the sampled-traits likelihood has no states to add it to)"
            )
        errs += self._censoring_problems()
        if self.baseline_level == vocab.THERAPIST and not self.therapist_level:
            errs.append(
                "baseline_level='therapist' needs the therapist level (three-level data with a "
                "therapist column)"
            )
        if len(set(self.baseline)) != len(self.baseline):
            errs.append(f"baseline names a column twice: {list(self.baseline)}")
        errs += self._covariate_problems()
        for name, prior in self.priors.items():
            if not isinstance(prior, dict) or "dist" not in prior:
                errs.append(f"prior for {name!r} must be a mapping with a 'dist' key")
            elif prior["dist"] not in PRIOR_DISTRIBUTIONS:
                errs.append(
                    f"prior for {name!r}: unknown distribution {prior['dist']!r}."
                    f"{vocab.suggest(prior['dist'], PRIOR_DISTRIBUTIONS)}"
                )
            else:
                args = PRIOR_DISTRIBUTIONS[prior["dist"]]
                for arg in prior:
                    if arg != "dist" and arg not in args:
                        errs.append(
                            f"prior for {name!r}: {prior['dist']} has no argument {arg!r}."
                            f"{vocab.suggest(arg, args)} Arguments: {', '.join(args)}"
                        )
        errs += self._time_problems()
        if errs:
            raise ValueError("; ".join(errs))

    def _time_problems(self) -> list[str]:
        """Continuous time: the options it supports (the rest have no continuous-time form
        here yet, or none at all: session means and per-session innovations assume a grid of
        sessions)."""
        errs = []
        for name, value, allowed in (
            ("time_model", self.time_model, TIME_MODELS),
            ("time_unit", self.time_unit, TIME_UNITS),
        ):
            if value not in allowed:
                errs.append(
                    f"{name} must be one of {allowed}, got {value!r}.{vocab.suggest(value, allowed)}"
                )
        if self.effects_interval is not None and not self.effects_interval > 0:
            errs.append(f"effects_interval must be a positive time, got {self.effects_interval}")
        if self.time_model != "continuous":
            return errs
        unsupported = {
            "session_means": self.session_means,
            "trend": self.trend,
            "innovations='session'": self.innovations == "session",
            "same_session": self.same_session != "none",
            "traits='sampled'": self.traits != "integrated",
            "random_innovations": bool(self.random_innovations),
            "indicators": bool(self.predictor_indicators or self.outcome_indicators),
            "first_session='free'": self.first_session != "stationary",
            "dynamics other than var1": self.dynamics != "var1",
            "equations other than bivariate": self.equations != "bivariate",
            "reverse_lag=False": not self.reverse_lag,
            "censoring": self.censored,
        }
        bad = [k for k, on in unsupported.items() if on]
        if bad:
            errs.append(
                "continuous time (time_model='continuous') does not support "
                + ", ".join(bad)
                + " yet; use time_model='sessions' for these (command line: --time-model "
                "sessions; spec file: [model] time_model = 'sessions')"
            )
        return errs

    def _covariate_problems(self) -> list[str]:
        errs = []
        if self.covariate_level == vocab.THERAPIST and not self.therapist_level:
            errs.append("covariate_level='therapist' needs the therapist level")
        if len(set(self.covariates)) != len(self.covariates):
            errs.append(f"covariates names a column twice: {list(self.covariates)}")
        both = [c for c in self.covariates if c in self.baseline]
        if both:
            errs.append(
                f"{both} are baseline columns; they move the latent means through their "
                "mediation paths and cannot adjust them as covariates too"
            )
        return errs

    def _censoring_problems(self) -> list[str]:
        errs = []
        for which in vocab.VARIABLES:
            floor, ceiling = self.bounds(which)
            for name, value in ((f"floor_{which}", floor), (f"ceiling_{which}", ceiling)):
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    errs.append(f"{name} must be a number, got {value!r}")
                elif not math.isfinite(value):
                    errs.append(f"{name} must be finite, got {value!r}")
            if (
                isinstance(floor, int | float)
                and isinstance(ceiling, int | float)
                and not floor < ceiling
            ):
                errs.append(f"floor_{which} ({floor}) must be below ceiling_{which} ({ceiling})")
        if self.censored and self.traits != "integrated":
            errs.append(
                "censoring at a ceiling or floor needs traits='integrated' (the censored scores' "
                "latent values are read by the Kalman filter of the integrated likelihood; the "
                "sampled-traits likelihood has no place for them)"
            )
        return errs

    def bounds(self, which: str) -> tuple[float | None, float | None]:
        """The (floor, ceiling) of ``which`` (``"predictor"`` or ``"outcome"``); None: none."""
        if which == vocab.PREDICTOR:
            return self.floor_predictor, self.ceiling_predictor
        if which == vocab.OUTCOME:
            return self.floor_outcome, self.ceiling_outcome
        raise ValueError(f"unknown variable {which!r}")

    @property
    def censored(self) -> bool:
        """Whether the spec states a ceiling or floor for either variable."""
        return any(b is not None for w in vocab.VARIABLES for b in self.bounds(w))

    @property
    def bivariate(self) -> bool:
        return self.equations == "bivariate"

    def free_parameters(self) -> list[str]:
        """Named scalar parameters this specification estimates, in vocabulary order: those
        with a prior and those derived from them per draw
        (:data:`bayes_alliance.core.vocab.DERIVED_PARAMETERS`: the trait effects and the
        outcome's residual trait SDs, from each level's covariance)."""
        v = vocab
        names = []
        if self.time_model == "continuous":
            names += list(v.DRIFT_PARAMETERS)
        elif self.dynamics == "var1":
            names += [v.STATE_EFFECT, v.OUTCOME_AUTOREGRESSION]
            if self.bivariate:
                names.append(v.PREDICTOR_AUTOREGRESSION)
                if self.reverse_lag:
                    names.append(v.REVERSE_STATE_EFFECT)
        names += [v.TRAIT_EFFECT_PATIENT, v.TRAIT_CORR_PATIENT]
        if self.therapist_level:
            names += [v.TRAIT_EFFECT_THERAPIST, v.TRAIT_CORR_THERAPIST]
        if not self.session_means:
            names += [v.INTERCEPT_PREDICTOR, v.INTERCEPT_OUTCOME]
        names += [v.SD_PATIENT_PREDICTOR, v.SD_PATIENT_OUTCOME, v.SD_PATIENT_OUTCOME_TOTAL]
        if self.therapist_level:
            names += [
                v.SD_THERAPIST_PREDICTOR,
                v.SD_THERAPIST_OUTCOME,
                v.SD_THERAPIST_OUTCOME_TOTAL,
            ]
        if vocab.PATIENT in self.random_slopes:
            names.append(v.SD_STATE_EFFECT_PATIENT)
        if vocab.THERAPIST in self.random_slopes:
            names.append(v.SD_STATE_EFFECT_THERAPIST)
            if self.therapist_level:
                names += [
                    v.SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR,
                    v.SLOPE_TRAIT_CORR_THERAPIST_OUTCOME,
                    v.SLOPE_TRAIT_PARTIAL_CORR_THERAPIST_OUTCOME,
                ]
        if self.time_model == "continuous":
            names += [v.DIFFUSION_SD_PREDICTOR, v.DIFFUSION_SD_OUTCOME, v.DIFFUSION_CORR]
        else:
            names += [v.INNOVATION_SD_PREDICTOR, v.INNOVATION_SD_OUTCOME]
        if self.bivariate and self.same_session == "none" and self.time_model != "continuous":
            names.append(v.INNOVATION_CORR)
        if self.measurement_error:
            names += [v.MEASUREMENT_ERROR_SD_PREDICTOR, v.MEASUREMENT_ERROR_SD_OUTCOME]
        if vocab.PATIENT in self.random_innovations:
            names += [
                v.SD_LOG_INNOVATION_PREDICTOR_PATIENT,
                v.SD_LOG_INNOVATION_OUTCOME_PATIENT,
                v.TRAIT_INSTABILITY_EFFECT,
            ]
        if vocab.THERAPIST in self.random_innovations:
            names += [
                v.SD_LOG_INNOVATION_PREDICTOR_THERAPIST,
                v.SD_LOG_INNOVATION_OUTCOME_THERAPIST,
            ]
        for which, cols in (
            (v.PREDICTOR, self.predictor_indicators),
            (v.OUTCOME, self.outcome_indicators),
        ):
            if cols:
                names += [f"indicator_loading_{which}", f"indicator_intercept_{which}"]
                names.append(f"indicator_sd_{which}")
        if self.same_session != "none":
            names.append(v.SAME_SESSION_EFFECT)
        if self.moderators:
            names.append(v.MODERATOR_EFFECT)
        if self.trend:
            names += [v.TREND_PREDICTOR, v.TREND_OUTCOME, v.SD_TREND_PREDICTOR, v.SD_TREND_OUTCOME]
        if self.baseline:
            names += [v.BASELINE_EFFECT_PREDICTOR, v.BASELINE_EFFECT_OUTCOME]
        if self.splits_baseline():
            names += [v.BASELINE_EFFECT_PREDICTOR_BETWEEN, v.BASELINE_EFFECT_OUTCOME_BETWEEN]
        if self.covariates:
            names += [v.COVARIATE_EFFECT_PREDICTOR, v.COVARIATE_EFFECT_OUTCOME]
        order = {n: i for i, n in enumerate(vocab.NAMED_PARAMETERS)}
        return sorted(names, key=order.__getitem__)

    def splits_baseline(self) -> bool:
        """Whether the baseline is split into within- and between-therapist parts: a
        patient-level baseline (``baseline_level="patient"``, as fitting resolves ``"auto"``
        against the data) in a model with the therapist level. Its within part keeps the paths
        ``baseline_effect_*`` (b = ``trait_effect_patient``), its between part (the therapist
        means of z) has ``baseline_effect_*_between`` (b = ``trait_effect_therapist``). An
        unresolved ``"auto"`` level counts as split: it resolves to the patient level for any
        column that varies within a therapist, and a spec resolved to the therapist level
        (:func:`bayes_alliance.model.covariates.resolve_baseline`) no longer splits, so that
        fitted results, priors and summaries name exactly the paths the model has."""
        level_ok = self.baseline_level in ("auto", vocab.PATIENT)
        return bool(self.baseline) and self.therapist_level and level_ok

    def prior_names(self) -> list[str]:
        """Names whose prior may be overridden: the free parameters less the derived ones, plus
        the session means and the free first-session covariance when the spec has them."""
        extra = []
        if self.session_means:
            extra += ["session_mean_predictor", "session_mean_outcome"]
        if self.first_session == "free":
            extra += ["first_sd_predictor", "first_sd_outcome", "first_corr"]
        own = [n for n in self.free_parameters() if n not in vocab.DERIVED_PARAMETERS]
        return own + extra

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["random_slopes"] = list(self.random_slopes)
        d["moderators"] = list(self.moderators)
        d["baseline"] = list(self.baseline)
        d["covariates"] = list(self.covariates)
        d["random_innovations"] = list(self.random_innovations)
        d["predictor_indicators"] = list(self.predictor_indicators)
        d["outcome_indicators"] = list(self.outcome_indicators)
        # Limits not stated are left out: the dict (and the compile cache's key, saved specs)
        # of a model without censoring stays as it was.
        for which in vocab.VARIABLES:
            for kind in ("ceiling", "floor"):
                if d[f"{kind}_{which}"] is None:
                    del d[f"{kind}_{which}"]
        # Likewise a model without adjusting covariates, or without random lags' covariance.
        if not self.lag_trait_covariance:
            del d["lag_trait_covariance"]
        if not self.covariates:
            del d["covariates"]
        if self.covariate_level == "auto":
            del d["covariate_level"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        known = [f.name for f in fields(cls)]
        vocab.check_names(d, known, "model option")
        return cls(**d)
