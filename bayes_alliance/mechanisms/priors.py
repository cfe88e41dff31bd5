"""The mechanism models' data constants on the patient x session grid and their priors.

Every prior scale comes from the joint model's rules (:mod:`bayes_alliance.model.priors`: one
rule per kind of parameter, a function of the data's SDs) applied to the series' SDs over all
observed cells; :func:`mechanism_priors` collects them for the model builder
(:mod:`bayes_alliance.mechanisms.model`) and for the report's table of the priors used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bayes_alliance.core.vocab import PATIENT, THERAPIST
from bayes_alliance.data.series_data import SeriesData, grid_cells
from bayes_alliance.mechanisms.baseline_data import baseline_sd
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.model.priors import (
    AUTOREGRESSION_SIGMA,
    TRAIT_CORR_ETA,
    baseline_sigma,
    first_sigma,
    innovation_sigma,
    intercept_sigma,
    level_sigma,
    measurement_error_sigma,
    path_sigma,
    random_slope_sigma,
    trend_sd_sigma,
    trend_sigma,
)

OLD_LKJ_ETA = 2.0
"""LKJ shape of every correlation matrix before rules 0.3, and still of the innovations', first
states' and random paths' (not trait levels)."""


@dataclass(frozen=True)
class MechanismGrid:
    """Numpy constants of a data set on the patient x session grid: filled values, where
    missing cells go, the transitions inside each series and the centred session times."""

    filled: np.ndarray  # (n, T, k), missing and outside cells 0
    missing_flat: np.ndarray  # flat indices of missing cells inside series
    missing_start: np.ndarray  # a starting value for each (the series' observed mean)
    transitions: np.ndarray  # flat indices into (n * (T - 1)) of transitions (t-1 -> t)
    first: np.ndarray
    time: np.ndarray  # (n, T) session number minus the middle of the patient's series
    mean: np.ndarray  # (k,) observed means
    sd: np.ndarray  # (k,) observed SDs

    @classmethod
    def of(cls, data: SeriesData) -> MechanismGrid:
        inside, missing = grid_cells(data)
        z = data.z
        filled = np.where(np.isfinite(z), z, 0.0)
        mean = np.nanmean(z.reshape(-1, data.k), axis=0)
        sd = np.nanstd(z.reshape(-1, data.k), axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        missing_flat = np.flatnonzero(missing.reshape(-1))
        start = np.broadcast_to(mean, z.shape).reshape(-1)[missing_flat]
        trans = inside[:, 1:] & inside[:, :-1]
        sessions = data.base.sessions.astype(float)
        mid = 0.5 * (sessions[data.first] + sessions[data.last])
        return cls(
            filled=filled,
            missing_flat=missing_flat,
            missing_start=np.asarray(start, dtype=float),
            transitions=np.flatnonzero(trans.reshape(-1)),
            first=data.first.astype(np.int64),
            time=sessions[None, :] - mid[:, None],
            mean=mean,
            sd=sd,
        )


@dataclass(frozen=True)
class EndPriors:
    """Priors of the end-of-treatment regression: one SD of the trait (at either level) or of
    the patients' changes moves the outcome by about its SD at most (logit 1 for a binary
    outcome); the outcome's therapist intercepts have the SD scale of every therapist level
    (half the outcome's SD)."""

    intercept_mu: float
    intercept_sigma: float
    trait_sigma: float  # the patient part's effect per unit of the predictor
    change_per_sd_sigma: float
    sd_sigma: float | None  # the residual SD's half-normal scale; None for a binary outcome
    # Three levels: the therapist part's effect per unit of the predictor (one SD of the
    # therapists' means, about 0.5 SD_x by the therapist-level rule, moves the outcome by
    # about its SD at most), and the scale of the outcome's therapist-intercept SD; None with
    # two levels.
    therapist_sigma: float | None = None
    sd_therapist_sigma: float | None = None


@dataclass(frozen=True)
class MechanismPriors:
    """Every prior scale of a mechanism model, from the shared rules of
    :mod:`bayes_alliance.model.priors` applied to the series' SDs."""

    intercept_mu: np.ndarray  # (k,)
    intercept_sigma: np.ndarray  # (k,)
    sd_patient: np.ndarray  # (k,), or (k + 1,) with a trend: the change's SD last
    sd_therapist: np.ndarray  # (k,)
    lag: np.ndarray  # (k, k) prior SDs, [to, from]: autoregressions on the diagonal
    sd_paths: np.ndarray  # (random paths,)
    sd_innovation: np.ndarray  # (k,)
    sd_first: np.ndarray  # (k,)
    trend: float | None  # the mean slope's prior SD (with a trend)
    end: EndPriors | None
    measurement_error: np.ndarray | None = None  # (k,) half-normal scales of the error SDs
    # Since rules 0.3, the joint model's therapist level: Gamma(2) SDs with mean sd_therapist
    # (and the end outcome's therapist SD likewise) and LKJ(1) trait correlations; before,
    # half-normal SDs with scale sd_therapist and LKJ(2) everywhere.
    therapist_gamma: bool = True
    trait_eta: float = 1.0
    # Half-normal scales of the random paths' SDs between therapists (spec.therapist_paths):
    # the patients' rule, as the joint model's sd_state_effect_therapist has.
    sd_paths_therapist: np.ndarray = field(default_factory=lambda: np.zeros(0))
    baseline: BaselinePriors | None = None  # with a baseline (between-level mediation)


def end_priors(data: SeriesData, spec: MechanismSpec, grid: MechanismGrid) -> EndPriors | None:
    """The end-of-treatment regression's priors (None without an end outcome); ``spec``
    resolved."""
    if data.end_outcome is None:
        return None
    obs = data.end_outcome[np.isfinite(data.end_outcome)]
    o_sd = float(np.std(obs)) or 1.0
    binary = spec.end_family == "binary"
    unit = 1.0 if binary else o_sd
    return EndPriors(
        intercept_mu=0.0 if binary else float(np.mean(obs)),
        intercept_sigma=intercept_sigma(unit),
        trait_sigma=unit / grid.sd[0],
        change_per_sd_sigma=unit,
        sd_sigma=None if binary else o_sd,
        therapist_sigma=(
            unit / float(level_sigma(grid.sd[0], THERAPIST)) if spec.therapist_level else None
        ),
        sd_therapist_sigma=float(level_sigma(unit, THERAPIST)) if spec.therapist_level else None,
    )


PRIOR_RULES = "0.3"
"""The rules a fit records in its provenance (``prior_rules``): the joint model's, shared since
0.2, with its therapist level since 0.3 (:data:`HALF_NORMAL_RULES`). A file without the record
was fitted with the rules of 0.1 (:data:`LEGACY_RULES`); the report restates a file's own rules."""

HALF_NORMAL_RULES = "0.2"
"""From 0.2 to 0.3 the therapist level had half-normal SDs (scale 0.5 SD) and every correlation
matrix LKJ(2). In three-level mediation on the example data (20 therapists) the therapists'
SDs then mixed slowly (tail ESS 172 of sd_therapist[mediator] in one of four seeds): the
half-normal's mass at 0 with a therapist mean's reliability about 0.5 is the ridge issue 25
removed from the joint model (:func:`bayes_alliance.model.priors.therapist_sd_prior`)."""

LEGACY_RULES = "0.1"
"""Until 0.1 the mechanism models had rules of their own: every lag N(0, 0.5 SD_to / SD_from),
random-path SDs HalfNormal(0.2 SD_to / SD_from), and the mean trend and the change SD both
scaled by SD_x / (number of sessions, at least 2)."""


def mechanism_priors(
    data: SeriesData,
    spec: MechanismSpec | None = None,
    grid: MechanismGrid | None = None,
    rules: str = PRIOR_RULES,
) -> MechanismPriors:
    """The prior scales of the mechanism model of ``data`` (see the module docstring) under
    ``rules`` (:data:`PRIOR_RULES`, or :data:`LEGACY_RULES` to restate a file fitted by 0.1)."""
    known = (PRIOR_RULES, HALF_NORMAL_RULES, LEGACY_RULES)
    if rules not in known:
        raise ValueError(f"unknown prior rules {rules!r}; known: {', '.join(known)}")
    spec = (spec or MechanismSpec(therapist_level=data.patient_therapist is not None)).resolved(
        data
    )
    grid = grid or MechanismGrid.of(data)
    sd = grid.sd
    ratio = sd[:, None] / sd[None, :]  # [to, from]: SD of the receiving over the sending series
    legacy = rules == LEGACY_RULES
    if legacy:
        lag = 0.5 * ratio
    else:
        lag = np.where(np.eye(data.k, dtype=bool), AUTOREGRESSION_SIGMA, path_sigma(ratio))
    idx = {r: i for i, r in enumerate(data.roles)}
    paths = spec.random_paths or ()
    sd_paths = np.empty(len(paths))
    for r, (to, source) in enumerate(paths):
        path_ratio = ratio[idx[to], idx[source]]
        sd_paths[r] = 0.2 * path_ratio if legacy else random_slope_sigma(path_ratio)
    sd_paths_therapist = np.array([sd_paths[paths.index(p)] for p in spec.therapist_paths])
    # The 0.1 rules scaled the trend by the grid's number of sessions.
    slope_scale = sd[0] / max(data.z.shape[1], 2)
    sd_patient = level_sigma(sd, PATIENT)
    if spec.trend:
        sd_patient = np.append(sd_patient, slope_scale if legacy else trend_sd_sigma(sd[0]))
    trend = (slope_scale if legacy else trend_sigma(sd[0])) if spec.trend else None
    return MechanismPriors(
        intercept_mu=grid.mean,
        intercept_sigma=intercept_sigma(sd),
        sd_patient=sd_patient,
        sd_therapist=level_sigma(sd, THERAPIST),
        lag=lag,
        sd_paths=sd_paths,
        sd_innovation=innovation_sigma(sd),
        sd_first=first_sigma(sd),
        trend=trend,
        end=end_priors(data, spec, grid),
        measurement_error=measurement_error_sigma(sd),
        sd_paths_therapist=sd_paths_therapist,
        therapist_gamma=rules == PRIOR_RULES,
        trait_eta=TRAIT_CORR_ETA if rules == PRIOR_RULES else OLD_LKJ_ETA,
        baseline=baseline_priors(data, spec, grid),
    )


@dataclass(frozen=True)
class BaselinePriors:
    """Prior SDs of a baseline's paths (normal, mean 0), by the joint model's rule for a
    baseline's paths (:func:`bayes_alliance.model.priors.baseline_sigma`): one SD of the
    baseline (over patients, or over therapists at the therapist level) moves a latent mean by about one SD of its series at most, and
    the end outcome by about its SD."""

    series: np.ndarray  # (k, columns): ``baseline_effect[series, column]``
    end: np.ndarray | None  # (columns,): ``baseline_effect_end``, with an end outcome


def baseline_priors(
    data: SeriesData, spec: MechanismSpec, grid: MechanismGrid
) -> BaselinePriors | None:
    """The baseline paths' priors (None without a baseline); ``spec`` resolved."""
    if not spec.baseline:
        return None
    sd_z = baseline_sd(data, spec.baseline, spec.baseline_level)
    series = baseline_sigma(grid.sd[:, None], sd_z[None, :])
    end = None
    if data.end_outcome is not None:  # SD_O: logit 1 for a binary outcome, as end_priors
        obs = data.end_outcome[np.isfinite(data.end_outcome)]
        end = baseline_sigma(
            float(np.std(obs)) or 1.0 if spec.end_family == "gaussian" else 1.0, sd_z
        )
    return BaselinePriors(series=np.asarray(series, float), end=end)


__all__ = [
    "HALF_NORMAL_RULES",
    "LEGACY_RULES",
    "OLD_LKJ_ETA",
    "PRIOR_RULES",
    "BaselinePriors",
    "EndPriors",
    "MechanismGrid",
    "MechanismPriors",
    "baseline_priors",
    "end_priors",
    "mechanism_priors",
]
