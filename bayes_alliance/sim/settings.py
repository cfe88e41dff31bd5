r"""The simulator's settings: population values (:class:`TrueParameters`) and the data set's
sizes and missingness (:class:`SimulationDesign`), with the checks every simulation and study
applies to them before drawing.

Measurement error can be stated as an SD per variable (``measurement_error_sd_predictor``,
``measurement_error_sd_outcome``: omega) or as a within-person reliability (flat settings
``reliability`` for both variables, ``reliability_predictor``, ``reliability_outcome``;
:meth:`TrueParameters.with_reliability`).
With the observed score ``x_ti = M_x,i + w_x,ti + eps_x,ti``, ``eps_x,ti ~ N(0, omega_x^2)``,
the within-person reliability is the share of the observed within variance that is state
variance (Schuurman & Hamaker 2019)::

    rho_x = Var(w_x) / (Var(w_x) + omega_x^2),   omega_x = sqrt(Var(w_x) (1 - rho_x) / rho_x)

with ``Var(w_x)`` the stationary state variance at the average dynamics (the average state
effect, :meth:`TrueParameters.stationary_within`). With random slopes or a moderator the
patients' own state variances scatter around it, and so do their reliabilities.

References
----------
Schuurman, N. K., & Hamaker, E. L. (2019). Measurement error and person-specific reliability in
multilevel autoregressive modeling. *Psychological Methods, 24*\(1), 70-91.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from bayes_alliance.core import vocab
from bayes_alliance.kernels import dynamics, moments
from bayes_alliance.model.structure import TRAIT_LEVELS, Dynamics, dynamics_from, lookup
from bayes_alliance.spec.model_spec import ModelSpec


@dataclass(frozen=True)
class TrueParameters:
    """Population values. Names follow :mod:`bayes_alliance.core.vocab`; defaults mimic alliance
    (1-5 scale) and symptoms (0-4 scale) data: higher alliance is followed by fewer symptoms."""

    intercept_predictor: float = 3.8
    intercept_outcome: float = 1.8
    sd_therapist_predictor: float = 0.2
    sd_therapist_outcome: float = 0.15
    sd_patient_predictor: float = 0.5
    sd_patient_outcome: float = 0.5
    trait_effect_patient: float = -0.3
    trait_effect_therapist: float = -0.5
    predictor_autoregression: float = 0.3
    outcome_autoregression: float = 0.4
    state_effect: float = -0.2
    reverse_state_effect: float = -0.1
    innovation_sd_predictor: float = 0.4
    innovation_sd_outcome: float = 0.35
    innovation_corr: float = -0.2
    sd_state_effect_patient: float = 0.0
    sd_state_effect_therapist: float = 0.0
    # correlations of the therapist's slope deviation with the therapist parts of the latent
    # means (the outcome's whole part), as the model's 3 x 3 therapist covariance
    slope_trait_corr_therapist_predictor: float = 0.0
    slope_trait_corr_therapist_outcome: float = 0.0
    moderator_effect: float = 0.0
    trend_predictor: float = 0.0
    trend_outcome: float = 0.0
    sd_trend_predictor: float = 0.0
    sd_trend_outcome: float = 0.0
    same_session_effect: float = 0.0
    baseline_effect_predictor: float = 0.0  # a: baseline -> latent mean of x (mediation)
    baseline_effect_outcome: float = 0.0  # c': baseline -> latent mean of y, direct
    # a_B, c'_B: the paths of the between-therapist part of the patient baseline (its therapist
    # means, centred over therapists), which move the therapist parts (mediated by b_T); the
    # within part (baseline less its therapist mean) keeps a, c' (mediated by b_P). None (both):
    # the whole baseline moves the patient parts, as before (same streams and meaning).
    baseline_effect_predictor_between: float | None = None
    baseline_effect_outcome_between: float | None = None
    # a_T, c'_T: a therapist characteristic -> the therapist parts of the latent means of x, y
    therapist_baseline_effect_predictor: float = 0.0
    therapist_baseline_effect_outcome: float = 0.0
    same_session: str = "none"  # direction of the lag-0 path, as in ModelSpec.same_session
    informant_intercept: float = 4.0
    informant_loading_trait: float = 0.6
    informant_loading_state: float = 0.5
    informant_sd: float = 0.3
    # omega: SD of the measurement error of each observed score around trait + trend + state
    # (drawn only when > 0, so that error-free settings keep their random streams)
    measurement_error_sd_predictor: float = 0.0
    measurement_error_sd_outcome: float = 0.0
    # SD over patients of the log innovation SD of each variable (random innovation variances;
    # the deviations are drawn only when an SD is > 0)
    sd_log_innovation_predictor_patient: float = 0.0
    sd_log_innovation_outcome_patient: float = 0.0

    @property
    def phi(self) -> np.ndarray:
        """Lag matrix at the average dynamics."""
        return moments.lag_matrix(
            self.predictor_autoregression,
            self.reverse_state_effect,
            self.state_effect,
            self.outcome_autoregression,
        )

    def _total(self, level: str) -> tuple[float, float]:
        sd_x, sd_y, beta = (getattr(self, n) for n in TRAIT_LEVELS[level])
        total = float(np.sqrt(beta**2 * sd_x**2 + sd_y**2))
        return total, (float(beta * sd_x / total) if total > 0 else 0.0)

    @property
    def sd_patient_outcome_total(self) -> float:
        """SD of the outcome's patient part, ``sqrt(beta_P^2 s_Px^2 + s_Py^2)``."""
        return self._total(vocab.PATIENT)[0]

    @property
    def trait_corr_patient(self) -> float:
        """Correlation of the two latent means' patient parts, ``beta_P s_Px / s_Py,total``."""
        return self._total(vocab.PATIENT)[1]

    @property
    def sd_therapist_outcome_total(self) -> float:
        """SD of the outcome's therapist part, ``sqrt(beta_T^2 s_Tx^2 + s_Ty^2)``."""
        return self._total(vocab.THERAPIST)[0]

    @property
    def trait_corr_therapist(self) -> float:
        """Correlation of the two latent means' therapist parts."""
        return self._total(vocab.THERAPIST)[1]

    @property
    def slope_trait_partial_corr_therapist_outcome(self) -> float:
        """The outcome part's partial correlation with the slope given the predictor part."""
        r_xy, r_xc = self.trait_corr_therapist, self.slope_trait_corr_therapist_predictor
        r_yc = self.slope_trait_corr_therapist_outcome
        return float((r_yc - r_xy * r_xc) / np.sqrt((1 - r_xy**2) * (1 - r_xc**2)))

    @staticmethod
    def regression_form(sd_x: float, sd_y_total: float, corr: float) -> tuple[float, float, float]:
        """A level's ``(sd_x, residual sd_y, trait effect)`` from its SDs and correlation (the
        simulator's settings from the model's covariance parameters, e.g. prior draws)."""
        return sd_x, sd_y_total * float(np.sqrt(1.0 - corr**2)), corr * sd_y_total / sd_x

    @property
    def sigma_within(self) -> np.ndarray:
        """Structural innovation covariance (uncorrelated with a same-session path)."""
        corr = self.innovation_corr if self.same_session == "none" else 0.0
        return moments.innovation_cov(
            self.innovation_sd_predictor, self.innovation_sd_outcome, corr
        )

    def dynamics(self, slope: Any = None) -> Dynamics:
        """The within-person dynamics as entries (reduced form, stationary first session) at
        ``slope`` (default the average state effect; per patient when an array), computed from
        these values as the model computes them from its named parameters
        (:func:`bayes_alliance.model.structure.dynamics_from`)."""
        spec = ModelSpec(therapist_level=False, same_session=self.same_session)
        values = {
            f.name: np.asarray(getattr(self, f.name), dtype=float)
            for f in fields(self)
            if f.name != "same_session"
        }
        return dynamics_from(lookup(values, spec), spec, slope=slope)

    def reduced(self, slope: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Reduced-form lag matrix and innovation covariance (at ``slope``, default the mean)."""
        dyn = self.dynamics(slope)
        return moments.lag_matrix(*dyn.phi), moments.sym_matrix(*dyn.sigma)

    def stationary_within(self, slope: Any = None) -> np.ndarray:
        """Stationary within-person covariance (..., 2, 2) at ``slope`` (default the mean), by
        the entry-wise closed form; NaN where the dynamics are not stationary."""
        dyn = self.dynamics(slope)
        ok = np.asarray(dynamics.is_stationary(dyn.phi))
        return np.where(ok[..., None, None], moments.sym_matrix(*dyn.first), np.nan)

    @property
    def error_sd(self) -> tuple[float, float]:
        """Measurement-error SDs ``(omega_x, omega_y)``."""
        return self.measurement_error_sd_predictor, self.measurement_error_sd_outcome

    @property
    def reliability(self) -> tuple[float, float]:
        """Within-person reliabilities ``(rho_x, rho_y)`` at the average dynamics,
        ``rho = Var(w) / (Var(w) + omega^2)`` (Schuurman & Hamaker 2019); 1 without error, NaN
        where the average dynamics are not stationary."""
        state_var = np.diagonal(self.stationary_within())
        rel = state_var / (state_var + np.square(self.error_sd))
        return float(rel[0]), float(rel[1])

    def with_reliability(
        self, predictor: float | None = None, outcome: float | None = None
    ) -> TrueParameters:
        """These parameters with the measurement-error SDs that give the stated within-person
        reliabilities at the average dynamics (``None`` keeps a variable's SD).

        ``omega = sqrt(Var(w) (1 - rho) / rho)``, ``Var(w)`` the stationary state variance
        (:meth:`stationary_within` at the average state effect); ``rho = 1`` gives ``omega =
        0``, no error.

        Raises
        ------
        ValueError
            A reliability outside (0, 1], or dynamics without a stationary state variance.
        """
        asked = {
            name: rel
            for name, rel in (("predictor", predictor), ("outcome", outcome))
            if rel is not None
        }
        bad = [f"{n} {r!r}" for n, r in asked.items() if not 0.0 < r <= 1.0]
        if bad:
            raise ValueError(
                f"a reliability must lie in (0, 1] (1: no measurement error), got {', '.join(bad)}"
            )
        state_var = np.diagonal(self.stationary_within())
        if not np.isfinite(state_var).all():
            raise ValueError(
                "a reliability needs stationary average dynamics (it is a share of the "
                "stationary state variance)"
            )
        sds: dict[str, Any] = {
            f"measurement_error_sd_{name}": float(np.sqrt(state_var[k] * (1.0 - rel) / rel))
            for k, name in enumerate(("predictor", "outcome"))
            if (rel := asked.get(name)) is not None
        }
        return replace(self, **sds)


@dataclass(frozen=True)
class SimulationDesign:
    """Sizes and missingness. Ranges ``(lo, hi)`` are inclusive and drawn uniformly per unit."""

    n_therapists: int = 40
    patients_per_therapist: int | tuple[int, int] = (6, 10)
    sessions: int | tuple[int, int] = (8, 20)
    p_missing_session: float = 0.0  # a planned session is skipped (no row), MCAR
    p_missing_value: float = 0.0  # a value in a present row is missing, MCAR, x and y independently
    dropout: float = 0.0  # share of patients who stop before their planned last session
    moderator: bool = False  # add a standardised patient covariate ``moderator``
    # add a standard normal patient covariate ``baseline`` (also whenever a baseline effect is
    # not zero)
    baseline: bool = False
    # share of the patient baseline's variance between therapists: baseline = sqrt(icc) t_j +
    # sqrt(1 - icc) e_i with t_j a standard normal therapist component (0: none, same streams)
    baseline_icc: float = 0.0
    # add a standard normal therapist covariate ``therapist_baseline`` (constant within
    # therapist; also whenever a therapist baseline effect is not zero)
    therapist_baseline: bool = False
    informant: bool = False  # add a therapist-rated ``<predictor>_therapist`` column
    predictor_name: str = "alliance"
    outcome_name: str = "symptoms"


# Flat settings that are no field: each sets measurement-error SDs through a reliability
# (``reliability`` both variables' at once, so that a study grid can vary them together).
RELIABILITY_SETTINGS: dict[str, tuple[str, ...]] = {
    "reliability": ("predictor", "outcome"),
    "reliability_predictor": ("predictor",),
    "reliability_outcome": ("outcome",),
}


def setting_names() -> tuple[str, ...]:
    """Every name :func:`split_settings` accepts (and a study file's ``[simulate]`` and
    ``[conditions]`` tables): the fields of both dataclasses and the reliabilities."""
    return (
        tuple(f.name for f in fields(TrueParameters))
        + tuple(f.name for f in fields(SimulationDesign))
        + tuple(RELIABILITY_SETTINGS)
    )


def split_settings(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split simulation settings by name into those of :class:`TrueParameters` and those of
    :class:`SimulationDesign`; an unknown name is an error with a suggestion.

    ``reliability`` (both variables), ``reliability_predictor`` and ``reliability_outcome``
    are turned into the measurement-error SDs they imply at the other parameters' average
    dynamics (:meth:`TrueParameters.with_reliability`), so the parameters (and a study's truth)
    hold the SDs. A variable's error stated twice (two reliabilities, or a reliability and the
    SD) is an error.
    """
    pnames = [f.name for f in fields(TrueParameters)]
    dnames = [f.name for f in fields(SimulationDesign)]
    vocab.check_names(kwargs, list(setting_names()), "simulation setting")
    pkw = {k: v for k, v in kwargs.items() if k in pnames}
    stated: dict[str, list[str]] = {
        var: [f"measurement_error_sd_{var}"] if f"measurement_error_sd_{var}" in pkw else []
        for var in ("predictor", "outcome")
    }
    rel: dict[str, float] = {}
    for key, variables in RELIABILITY_SETTINGS.items():
        if key in kwargs:
            for var in variables:
                stated[var].append(key)
                rel[var] = kwargs[key]
    twice = [
        f"{' and '.join(keys)} both set the {var}'s error"
        for var, keys in stated.items()
        if len(keys) > 1
    ]
    if twice:
        raise ValueError("; ".join(twice) + ": give one")
    if rel:
        p = TrueParameters(**pkw).with_reliability(rel.get("predictor"), rel.get("outcome"))
        pkw.update(
            {
                f"measurement_error_sd_{var}": getattr(p, f"measurement_error_sd_{var}")
                for var in rel
            }
        )
    return pkw, {k: v for k, v in kwargs.items() if k in dnames}


def check_design(d: SimulationDesign, p: TrueParameters) -> None:
    """Raise ValueError naming every impossible setting (sizes, probabilities, a lag matrix
    that is not stationary, two baseline levels at once)."""
    errs = []
    if d.n_therapists < 1:
        errs.append("n_therapists must be at least 1")
    for name in ("p_missing_session", "p_missing_value", "dropout"):
        v = getattr(d, name)
        if not 0.0 <= v < 1.0:
            errs.append(f"{name} must be in [0, 1), got {v}")
    lo = d.sessions if isinstance(d.sessions, int) else d.sessions[0]
    if lo < 2:
        errs.append("sessions must be at least 2")
    if not -1 < p.innovation_corr < 1:
        errs.append("innovation_corr must lie in (-1, 1)")
    for name in ("measurement_error_sd_predictor", "measurement_error_sd_outcome"):
        if not 0.0 <= getattr(p, name) < np.inf:
            errs.append(f"{name} must be a finite number >= 0, got {getattr(p, name)}")
    if p.same_session not in dynamics.SAME_SESSION:
        errs.append(f"same_session must be one of {dynamics.SAME_SESSION}, got {p.same_session!r}")
    elif not moments.is_stationary(p.reduced()[0]):
        errs.append("the average lag matrix is not stationary (an eigenvalue has modulus >= 1)")
    if not 0.0 <= d.baseline_icc < 1.0:
        errs.append(f"baseline_icc must be in [0, 1), got {d.baseline_icc}")
    patient_level = d.baseline or bool(p.baseline_effect_predictor or p.baseline_effect_outcome)
    patient_level = patient_level or splits_baseline(p)
    if patient_level and with_therapist_baseline(d, p):
        errs.append(
            "a patient-level and a therapist-level baseline together: simulate one level at a "
            "time (a model fits one baseline level)"
        )
    if errs:
        raise ValueError("; ".join(errs))


def splits_baseline(p: TrueParameters) -> bool:
    """Whether the patient baseline's between-therapist part has paths of its own (moving the
    therapist parts of the latent means)."""
    return (
        p.baseline_effect_predictor_between is not None
        or p.baseline_effect_outcome_between is not None
    )


def with_therapist_baseline(d: SimulationDesign, p: TrueParameters) -> bool:
    """Whether the data get a therapist-level baseline column (asked for, or implied by a
    non-zero therapist baseline effect)."""
    return d.therapist_baseline or bool(
        p.therapist_baseline_effect_predictor or p.therapist_baseline_effect_outcome
    )
