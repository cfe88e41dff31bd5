"""The fixed vocabulary: dimension names, variable roles and parameter names.

Every module, summary table, saved result and CLI output uses these strings. Users and scripts
select parameters by these names, so renaming one is a breaking change.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Dimensions of the patient x session grid and of posterior arrays.
PATIENT = "patient"
# the per-patient log density in the log_likelihood group: a variable may not share the name of
# its own dimension (xarray would make it a coordinate and ArviZ would miscount the observations)
BY_PATIENT = "by_patient"
THERAPIST = "therapist"
SESSION = "session"
VARIABLE = "variable"  # ("predictor", "outcome") when a quantity has one entry per variable
COMPONENT = "component"  # R-squared components
EQUATION = "equation"

# Roles of the two time-varying variables.
PREDICTOR = "predictor"  # x, e.g. patient-rated alliance
OUTCOME = "outcome"  # y, e.g. symptoms
VARIABLES = (PREDICTOR, OUTCOME)

# Per-session state draws w = z - M (chain, draw, patient, session) live in their own DataTree
# group, not in ``posterior``: ``arviz_stats.summary(result.idata)`` then lists parameters only.
LATENT_STATES = "latent_states"
STATE_VARIABLES = ("state_predictor", "state_outcome")
# Per-patient and per-therapist draws (latent means ``trait_*``, deviations ``therapist_dev_*``
# and their ``_raw`` scales, ``state_effect_by_patient``) are not summary rows either: the
# variables of the posterior with one of these dimensions that are not named parameters live in
# their own group (brms's summary too shows population-level parameters and group-level SDs).
UNIT_DRAWS = "unit_draws"

# Named model parameters (docs/methods.md, section 'The decomposition'). Order is the order of summary tables.
STATE_EFFECT = "state_effect"  # x_(t-1) -> y_t, within person
REVERSE_STATE_EFFECT = "reverse_state_effect"  # y_(t-1) -> x_t
OUTCOME_AUTOREGRESSION = "outcome_autoregression"
PREDICTOR_AUTOREGRESSION = "predictor_autoregression"
TRAIT_EFFECT_PATIENT = "trait_effect_patient"
TRAIT_EFFECT_THERAPIST = "trait_effect_therapist"
INTERCEPT_PREDICTOR = "intercept_predictor"
INTERCEPT_OUTCOME = "intercept_outcome"
SD_PATIENT_PREDICTOR = "sd_patient_predictor"
SD_PATIENT_OUTCOME = "sd_patient_outcome"
SD_THERAPIST_PREDICTOR = "sd_therapist_predictor"
SD_THERAPIST_OUTCOME = "sd_therapist_outcome"
# Each trait level's covariance as estimated (since 0.3): the SDs of the two latent means' parts
# (the outcome's whole part, ``*_total``) and their correlation. The trait effect and the
# outcome's residual SD above are derived from them per draw (beta = cov / var).
SD_PATIENT_OUTCOME_TOTAL = "sd_patient_outcome_total"
SD_THERAPIST_OUTCOME_TOTAL = "sd_therapist_outcome_total"
TRAIT_CORR_PATIENT = "trait_corr_patient"
TRAIT_CORR_THERAPIST = "trait_corr_therapist"
# With random state slopes at the therapist level, the therapists' slope deviations correlate
# with their parts of the two latent means (one 3 x 3 covariance, LKJ prior through a C-vine):
# the predictor's correlation and the outcome's partial correlation given the predictor's part
# are estimated, the outcome's correlation derived.
SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR = "slope_trait_corr_therapist_predictor"
SLOPE_TRAIT_PARTIAL_CORR_THERAPIST_OUTCOME = "slope_trait_partial_corr_therapist_outcome"
SLOPE_TRAIT_CORR_THERAPIST_OUTCOME = "slope_trait_corr_therapist_outcome"
SD_STATE_EFFECT_PATIENT = "sd_state_effect_patient"
SD_STATE_EFFECT_THERAPIST = "sd_state_effect_therapist"
INNOVATION_SD_PREDICTOR = "innovation_sd_predictor"
INNOVATION_SD_OUTCOME = "innovation_sd_outcome"
INNOVATION_CORR = "innovation_corr"
# Measurement error (ModelSpec.measurement_error): the SD of each observed score around the
# latent trait plus state, observed = trait + state + error.
MEASUREMENT_ERROR_SD_PREDICTOR = "measurement_error_sd_predictor"
MEASUREMENT_ERROR_SD_OUTCOME = "measurement_error_sd_outcome"
# Random innovation variances (ModelSpec.random_innovations): the SD, over patients (therapists),
# of the log innovation SD of each variable, and the traits' regression on a patient's standardised
# log-SD deviations (instability): 2 x 2, row the trait's variable, column the instability's.
SD_LOG_INNOVATION_PREDICTOR_PATIENT = "sd_log_innovation_predictor_patient"
SD_LOG_INNOVATION_OUTCOME_PATIENT = "sd_log_innovation_outcome_patient"
SD_LOG_INNOVATION_PREDICTOR_THERAPIST = "sd_log_innovation_predictor_therapist"
SD_LOG_INNOVATION_OUTCOME_THERAPIST = "sd_log_innovation_outcome_therapist"
TRAIT_INSTABILITY_EFFECT = "trait_instability_effect"
# Several indicators per session (ModelSpec.predictor_indicators / outcome_indicators): loadings
# and intercepts of the indicators other than the marker (dim "<variable>_indicator"), residual
# SDs of all of them, marker first (dim "<variable>_item").
INDICATOR_LOADING_PREDICTOR = "indicator_loading_predictor"
INDICATOR_INTERCEPT_PREDICTOR = "indicator_intercept_predictor"
INDICATOR_SD_PREDICTOR = "indicator_sd_predictor"
INDICATOR_LOADING_OUTCOME = "indicator_loading_outcome"
INDICATOR_INTERCEPT_OUTCOME = "indicator_intercept_outcome"
INDICATOR_SD_OUTCOME = "indicator_sd_outcome"
# Optional parts.
MODERATOR_EFFECT = "moderator_effect"  # lambda: z_i -> state effect (cross-level interaction)
SAME_SESSION_EFFECT = "same_session_effect"  # lag-0 path x_t -> y_t
TREND_PREDICTOR = "trend_predictor"
TREND_OUTCOME = "trend_outcome"
SD_TREND_PREDICTOR = "sd_trend_predictor"
SD_TREND_OUTCOME = "sd_trend_outcome"
# Between-level mediation by a baseline characteristic z (the trait-like predictor is the
# mediator): a path z -> latent mean of x, direct path c' z -> latent mean of y. One pair of names
# for both levels of z (ModelSpec.baseline_level): for a patient-level z the paths act on the
# patients' latent means, for a therapist-level z on the therapists' parts of them; the names stay
# the same so that prior overrides and saved results need not know which level "auto" picks.
BASELINE_EFFECT_PREDICTOR = "baseline_effect_predictor"
BASELINE_EFFECT_OUTCOME = "baseline_effect_outcome"
# A patient-level baseline in three-level data is split at the therapists (within: z_i - zbar_j,
# between: zbar_j - zbar). The names above are then the within-therapist paths (b the patient
# trait effect), these the between-therapist ones (b the therapist trait effect).
BASELINE_EFFECT_PREDICTOR_BETWEEN = "baseline_effect_predictor_between"
BASELINE_EFFECT_OUTCOME_BETWEEN = "baseline_effect_outcome_between"
# The b path of the mediation at each level of the baseline: the trait effect at that level.
BASELINE_MEDIATOR = {PATIENT: TRAIT_EFFECT_PATIENT, THERAPIST: TRAIT_EFFECT_THERAPIST}
# Covariates that adjust the latent means (dim "covariate", one entry per column; a patient
# column moves the patients' latent means, a therapist column the therapists' parts): fixed
# effects on each variable's latent mean, so that the trait SDs and trait effects describe the
# residual traits.
COVARIATE_EFFECT_PREDICTOR = "covariate_effect_predictor"
COVARIATE_EFFECT_OUTCOME = "covariate_effect_outcome"

# Continuous time (ModelSpec.time_model = "continuous"): the drift matrix A of
# dw = A w dt + G dW (rows: the equation; per time unit) and the diffusion G G' as two SDs and a
# correlation. The discrete names (state_effect, ...) are then the entries of Phi(dt) = expm(A dt)
# at the effects interval (bayes_alliance.effects.continuous).
DRIFT_STATE_EFFECT = "drift_state_effect"  # A_yx
DRIFT_REVERSE_STATE_EFFECT = "drift_reverse_state_effect"  # A_xy
DRIFT_OUTCOME_AUTOREGRESSION = "drift_outcome_autoregression"  # A_yy
DRIFT_PREDICTOR_AUTOREGRESSION = "drift_predictor_autoregression"  # A_xx
DIFFUSION_SD_PREDICTOR = "diffusion_sd_predictor"
DIFFUSION_SD_OUTCOME = "diffusion_sd_outcome"
DIFFUSION_CORR = "diffusion_corr"
DRIFT_PARAMETERS = (
    DRIFT_PREDICTOR_AUTOREGRESSION,
    DRIFT_REVERSE_STATE_EFFECT,
    DRIFT_STATE_EFFECT,
    DRIFT_OUTCOME_AUTOREGRESSION,
)  # (A_xx, A_xy, A_yx, A_yy): the entries in row order

# Named parameters computed from others per draw (deterministics of the model): they have no
# prior of their own.
DERIVED_PARAMETERS: tuple[str, ...] = (
    TRAIT_EFFECT_PATIENT,
    TRAIT_EFFECT_THERAPIST,
    SD_PATIENT_OUTCOME,
    SD_THERAPIST_OUTCOME,
    SLOPE_TRAIT_CORR_THERAPIST_OUTCOME,
)

NAMED_PARAMETERS: tuple[str, ...] = (
    STATE_EFFECT,
    REVERSE_STATE_EFFECT,
    OUTCOME_AUTOREGRESSION,
    PREDICTOR_AUTOREGRESSION,
    DRIFT_STATE_EFFECT,
    DRIFT_REVERSE_STATE_EFFECT,
    DRIFT_OUTCOME_AUTOREGRESSION,
    DRIFT_PREDICTOR_AUTOREGRESSION,
    TRAIT_EFFECT_PATIENT,
    TRAIT_EFFECT_THERAPIST,
    TRAIT_CORR_PATIENT,
    TRAIT_CORR_THERAPIST,
    INTERCEPT_PREDICTOR,
    INTERCEPT_OUTCOME,
    SD_PATIENT_PREDICTOR,
    SD_PATIENT_OUTCOME,
    SD_PATIENT_OUTCOME_TOTAL,
    SD_THERAPIST_PREDICTOR,
    SD_THERAPIST_OUTCOME,
    SD_THERAPIST_OUTCOME_TOTAL,
    SD_STATE_EFFECT_PATIENT,
    SD_STATE_EFFECT_THERAPIST,
    SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR,
    SLOPE_TRAIT_CORR_THERAPIST_OUTCOME,
    SLOPE_TRAIT_PARTIAL_CORR_THERAPIST_OUTCOME,
    INNOVATION_SD_PREDICTOR,
    INNOVATION_SD_OUTCOME,
    INNOVATION_CORR,
    DIFFUSION_SD_PREDICTOR,
    DIFFUSION_SD_OUTCOME,
    DIFFUSION_CORR,
    MEASUREMENT_ERROR_SD_PREDICTOR,
    MEASUREMENT_ERROR_SD_OUTCOME,
    SD_LOG_INNOVATION_PREDICTOR_PATIENT,
    SD_LOG_INNOVATION_OUTCOME_PATIENT,
    SD_LOG_INNOVATION_PREDICTOR_THERAPIST,
    SD_LOG_INNOVATION_OUTCOME_THERAPIST,
    TRAIT_INSTABILITY_EFFECT,
    INDICATOR_LOADING_PREDICTOR,
    INDICATOR_INTERCEPT_PREDICTOR,
    INDICATOR_SD_PREDICTOR,
    INDICATOR_LOADING_OUTCOME,
    INDICATOR_INTERCEPT_OUTCOME,
    INDICATOR_SD_OUTCOME,
    MODERATOR_EFFECT,
    SAME_SESSION_EFFECT,
    TREND_PREDICTOR,
    TREND_OUTCOME,
    SD_TREND_PREDICTOR,
    SD_TREND_OUTCOME,
    BASELINE_EFFECT_PREDICTOR,
    BASELINE_EFFECT_OUTCOME,
    BASELINE_EFFECT_PREDICTOR_BETWEEN,
    BASELINE_EFFECT_OUTCOME_BETWEEN,
    COVARIATE_EFFECT_PREDICTOR,
    COVARIATE_EFFECT_OUTCOME,
)

# Mechanism models (bayes_alliance.mechanisms.fit): roles of further series, their dims, and the
# derived effects' names (the rows of a mechanism fit's effects.csv; the random lags' SDs are
# sd_<lag>_patient, or sd_path_<to<-from> for a path without a name:
# bayes_alliance.mechanisms.spec.random_lag_row).
ERROR_SERIES = "error_series"  # the series with measurement error (measurement_error_sd[...])
MEDIATOR = "mediator"  # a session-level mediator m (within-level 1-1-1 mediation)
SECOND_PREDICTOR = "second_predictor"  # the other informant's rating of x
END_OUTCOME = "end_outcome"  # a patient-level outcome measured once
SERIES = "series"  # dim of a mechanism model's series (roles, outcome last)
PATH = "path"  # dim of its random lagged paths ("mediator<-predictor")
MECHANISM_EFFECTS: tuple[str, ...] = (
    "predictor_autoregression",
    "outcome_autoregression",
    "mediator_autoregression",
    "second_autoregression",
    "reverse_state_effect",
    STATE_EFFECT,
    # within-level mediation
    "effect_on_mediator",
    "mediator_effect",
    "cov_random_paths",
    "indirect_effect_within_fixed",
    "indirect_effect_within",
    "direct_path_within",
    "direct_effect_within",
    "total_effect_within",
    "proportion_mediated_within",
    TRAIT_EFFECT_PATIENT,
    TRAIT_EFFECT_THERAPIST,
    "trait_effect_patient_mediator",
    "trait_effect_therapist_mediator",
    # two informants
    "state_effect_std",
    "state_effect_second",
    "state_effect_second_std",
    "state_effect_difference",
    "state_effect_difference_std",
    "state_corr_informants",
    "cross_lag_second_from_first",
    "cross_lag_first_from_second",
    *(
        f"trait_effect_{level}{suffix}"
        for level in ("patient", "therapist")
        for suffix in ("_std", "_second", "_second_std", "_difference", "_difference_std")
    ),
    "trait_corr_informants_patient",
    "trait_corr_informants_therapist",
    # a mediator with two informants: the second informant's mediation, the differences
    # (first minus second informant)
    "effect_on_mediator_second",
    "cov_random_paths_second",
    "indirect_effect_within_fixed_second",
    "indirect_effect_within_second",
    "direct_path_within_second",
    "direct_effect_within_second",
    "total_effect_within_second",
    "proportion_mediated_within_second",
    "effect_on_mediator_difference",
    "indirect_effect_within_difference",
    "direct_effect_within_difference",
    "total_effect_within_difference",
    # end-of-treatment outcome
    "corr_trait_change",
    "change_reliability",
    *(
        f"end_trait_effect{level}{suffix}"
        for level in ("_patient", "_therapist", "")  # "": a file fitted before the split
        for suffix in ("", "_per_sd", "_odds_ratio_per_sd")
    ),
    "end_change_effect",
    "end_change_effect_per_sd",
    "end_change_effect_odds_ratio_per_sd",
    # dynamics (nothing imposes stationarity: every first session is free)
    "stationary",
    "stationary_patients",
    # one series alone (the predictor without an outcome): its variance parts, by the joint
    # model's names
    INNOVATION_SD_PREDICTOR,
    SD_PATIENT_PREDICTOR,
    SD_THERAPIST_PREDICTOR,
    MEASUREMENT_ERROR_SD_PREDICTOR,
    "icc_predictor_patient",
    "icc_predictor_therapist",
    "icc_predictor_session",
    "reliability_predictor",
    # between-level (baseline) mediation (bayes_alliance.mechanisms.baseline): the joint model's
    # a, c' and effects, a third series' shift and its part of the total, and onto the end
    # outcome
    BASELINE_EFFECT_PREDICTOR,
    BASELINE_EFFECT_OUTCOME,
    "indirect_effect_between",
    "direct_effect_between",
    "total_effect_between",
    "proportion_mediated_between",
    *(
        f"{name}_{role}"
        for role in (MEDIATOR, SECOND_PREDICTOR)
        for name in ("baseline_effect", "indirect_effect_between")
    ),
    "baseline_effect_end",
    "indirect_effect_between_end",
    "direct_effect_between_end",
    "total_effect_between_end",
    "proportion_mediated_between_end",
    # ... a binary end outcome's odds ratios of those per unit of the baseline
    *(f"{name}_effect_between_end_odds_ratio" for name in ("indirect", "direct", "total")),
    # the same of a therapist-level baseline, by the joint model's therapist-level names
    # (mechanisms.baseline.level_name); its a, c' and shifts keep their names
    *(
        f"{name}_between_{THERAPIST}{suffix}"
        for suffix in ("", "_end")
        for name in ("indirect_effect", "direct_effect", "total_effect", "proportion_mediated")
    ),
    *(
        f"{name}_effect_between_{THERAPIST}_end_odds_ratio"
        for name in ("indirect", "direct", "total")
    ),
    *(f"indirect_effect_between_{THERAPIST}_{role}" for role in (MEDIATOR, SECOND_PREDICTOR)),
)

# The effects a reader looks at first: printed by the CLI and shown in a result's short view.
KEY_EFFECTS: tuple[str, ...] = (
    STATE_EFFECT,
    REVERSE_STATE_EFFECT,
    TRAIT_EFFECT_PATIENT,
    TRAIT_EFFECT_THERAPIST,
    OUTCOME_AUTOREGRESSION,
    PREDICTOR_AUTOREGRESSION,
)


def suggest(name: str, known: Iterable[str]) -> str:
    """Return " Did you mean 'x'?" for the closest known name, or "" when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_names(names: Iterable[str], known: Iterable[str], what: str) -> None:
    """Raise ValueError naming every unknown entry of ``names``, each with a suggestion."""
    known = list(known)
    bad = [n for n in names if n not in known]
    if bad:
        lines = [f"unknown {what} {n!r}.{suggest(n, known)}" for n in bad]
        raise ValueError("; ".join(lines) + f" Known: {', '.join(known)}.")
