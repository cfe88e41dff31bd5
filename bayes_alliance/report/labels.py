"""Words for result tables: labels of parameters and effects of both model families, labels
of R-squared components, notes that say what an effect means, legends under tables, and the
names of intervals.

:data:`LABELS` is the one table of effect and parameter words, for the joint model and the
mechanism models alike (an effect that both families estimate, such as ``state_effect``, has
one label). Its entries are templates: ``{x}`` the predictor's column, ``{y}`` the outcome's,
``{m}`` the mediator's, ``{x2}`` the second rating's, ``{o}`` the end-of-treatment outcome's,
``{z}`` a baseline column, ``{mod}`` a moderator, ``{at}`` the latent means a baseline's paths
act on, ``{tm}`` "therapist mean of", ``{from0}`` / ``{to0}`` the sending and receiving
variables of a same-session path, ``{path}`` a random path's name.
:func:`parameter_label` (joint model) and :func:`mechanism_label` fill them in.
:data:`EFFECT_NOTES` (with :data:`THERAPIST_BASELINE_NOTES` for a therapist-level baseline) holds
the joint model's notes the same way, filled in by :func:`effect_note`.

Pure functions of names, column names and a :class:`~bayes_alliance.spec.model_spec.ModelSpec`; the
tables of :mod:`bayes_alliance.report.tables` and the report use them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND, CI_KIND, interval_name
from bayes_alliance.kernels import r2
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab
ARROW = "→"
LEVEL_WORDS = {"patient": "patient", "therapist": "therapist", "session": "session"}
_A = ARROW

LABELS: dict[str, str] = {
    # Named parameters of the joint model; the first six are the mechanism models' too.
    v.STATE_EFFECT: f"state-like effect: {{x}} (t-1) {_A} {{y}} (t)",
    v.REVERSE_STATE_EFFECT: f"reverse path: {{y}} (t-1) {_A} {{x}} (t)",
    v.OUTCOME_AUTOREGRESSION: "autoregression of {y}",
    v.PREDICTOR_AUTOREGRESSION: "autoregression of {x}",
    v.TRAIT_EFFECT_PATIENT: f"trait-like effect between patients: {{x}} {_A} {{y}}",
    v.TRAIT_EFFECT_THERAPIST: f"trait-like effect between therapists: {{x}} {_A} {{y}}",
    v.SAME_SESSION_EFFECT: f"same-session path: {{from0}} (t) {_A} {{to0}} (t)",
    v.MODERATOR_EFFECT: "moderation of the state-like effect by {mod}",
    v.SD_STATE_EFFECT_PATIENT: "SD of the state-like effect between patients",
    v.SD_STATE_EFFECT_THERAPIST: "SD of the state-like effect between therapists",
    v.INTERCEPT_PREDICTOR: "mean of {x}",
    v.INTERCEPT_OUTCOME: "mean of {y}",
    v.SD_PATIENT_PREDICTOR: "SD of patients' traits of {x}",
    v.SD_PATIENT_OUTCOME: "SD of patients' traits of {y} (beyond the trait effect)",
    v.SD_THERAPIST_PREDICTOR: "SD of therapists' means of {x}",
    v.SD_THERAPIST_OUTCOME: "SD of therapists' means of {y} (beyond the trait effect)",
    v.SD_PATIENT_OUTCOME_TOTAL: "SD of patients' traits of {y}",
    v.SD_THERAPIST_OUTCOME_TOTAL: "SD of therapists' means of {y}",
    v.TRAIT_CORR_PATIENT: "correlation of patients' traits of {x} and {y}",
    v.TRAIT_CORR_THERAPIST: "correlation of therapists' means of {x} and {y}",
    v.SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR: (
        "correlation of therapists' state-like effect with their mean of {x}"
    ),
    v.SLOPE_TRAIT_CORR_THERAPIST_OUTCOME: (
        "correlation of therapists' state-like effect with their mean of {y}"
    ),
    v.SLOPE_TRAIT_PARTIAL_CORR_THERAPIST_OUTCOME: (
        "partial correlation of therapists' state-like effect with their mean of {y} given {x}"
    ),
    v.INNOVATION_SD_PREDICTOR: "innovation SD of {x}",
    v.INNOVATION_SD_OUTCOME: "innovation SD of {y}",
    v.INNOVATION_CORR: "correlation of the innovations",
    v.MEASUREMENT_ERROR_SD_PREDICTOR: "measurement error SD of {x}",
    v.MEASUREMENT_ERROR_SD_OUTCOME: "measurement error SD of {y}",
    v.SD_LOG_INNOVATION_PREDICTOR_PATIENT: "SD of patients' log innovation SD of {x} (instability)",
    v.SD_LOG_INNOVATION_OUTCOME_PATIENT: "SD of patients' log innovation SD of {y} (instability)",
    v.SD_LOG_INNOVATION_PREDICTOR_THERAPIST: "SD of therapists' log innovation SD of {x}",
    v.SD_LOG_INNOVATION_OUTCOME_THERAPIST: "SD of therapists' log innovation SD of {y}",
    v.TRAIT_INSTABILITY_EFFECT: "trait shift per SD of a patient's instability",
    v.INDICATOR_LOADING_PREDICTOR: "loading of an indicator of {x} (marker: 1)",
    v.INDICATOR_INTERCEPT_PREDICTOR: "intercept of an indicator of {x} (at the marker's mean)",
    v.INDICATOR_SD_PREDICTOR: "residual SD of an indicator of {x}",
    v.INDICATOR_LOADING_OUTCOME: "loading of an indicator of {y} (marker: 1)",
    v.INDICATOR_INTERCEPT_OUTCOME: "intercept of an indicator of {y} (at the marker's mean)",
    v.INDICATOR_SD_OUTCOME: "residual SD of an indicator of {y}",
    v.TREND_PREDICTOR: "mean trend of {x} per session",
    v.TREND_OUTCOME: "mean trend of {y} per session",
    v.SD_TREND_PREDICTOR: "SD of patients' trends of {x}",
    v.SD_TREND_OUTCOME: "SD of patients' trends of {y}",
    v.BASELINE_EFFECT_PREDICTOR: f"a path: {{z}} {_A} {{at}} {{x}}",
    v.BASELINE_EFFECT_OUTCOME: f"direct path c': {{z}} {_A} {{at}} {{y}}",
    v.BASELINE_EFFECT_PREDICTOR_BETWEEN: (
        f"a path between therapists: therapist mean of {{z}} {_A} therapist mean of {{x}}"
    ),
    v.BASELINE_EFFECT_OUTCOME_BETWEEN: (
        f"direct path c' between therapists: therapist mean of {{z}} {_A} therapist mean of {{y}}"
    ),
    # Adjusting covariates: the residual traits are net of them (the traits' labels stay).
    v.COVARIATE_EFFECT_PREDICTOR: f"covariate {{z}} {_A} latent mean of {{x}}",
    v.COVARIATE_EFFECT_OUTCOME: f"covariate {{z}} {_A} latent mean of {{y}}",
    # Derived effects of the joint model.
    "standardised_state_effect": "state-like effect, standardised",
    "standardised_reverse_state_effect": "reverse path, standardised",
    "standardised_same_session_effect": "same-session path, standardised",
    "standardised_trait_effect_patient": "trait-like effect between patients, standardised",
    "standardised_trait_effect_therapist": "trait-like effect between therapists, standardised",
    "long_run_state_effect": "long-run effect of a sustained shift in {x} on {y}",
    "long_run_reverse_state_effect": "long-run effect of a sustained shift in {y} on {x}",
    "long_run_state_effect_single_equation": (
        "long-run change in {y} per unit of sustained change in {x}"
    ),
    "stationary": "probability that the average dynamics are stationary",
    "stationary_patients": "share of patients whose own dynamics are stationary",
    "reliability_predictor": "within-person reliability of {x}",
    "reliability_outcome": "within-person reliability of {y}",
    "indirect_effect_between": f"indirect effect ab: {{z}} {_A} trait of {{x}} {_A} trait of {{y}}",
    "direct_effect_between": f"direct effect c': {{z}} {_A} trait of {{y}}",
    "total_effect_between": "total effect c' + ab of {z} on trait of {y}",
    "proportion_mediated_between": "proportion mediated ab / (ab + c') of {z} through trait of {x}",
    "indirect_effect_between_therapist": (
        f"indirect effect a b_T: {{z}} {_A} {{tm}} {{x}} {_A} {{tm}} {{y}} (therapist level)"
    ),
    "direct_effect_between_therapist": f"direct effect c': {{z}} {_A} {{tm}} {{y}} (therapist level)",
    "total_effect_between_therapist": "total effect c' + a b_T of {z} on {tm} {y} (therapist level)",
    "proportion_mediated_between_therapist": (
        "proportion mediated a b_T / (a b_T + c') of {z} through {tm} {x} (therapist level)"
    ),
    # Effects of the mechanism models (within-level mediation, two informants, end outcome).
    "mediator_autoregression": "autoregression of {m}",
    "second_autoregression": "autoregression of {x2}",
    "effect_on_mediator": f"a: {{x}} (t-1) {_A} {{m}} (t), average over patients",
    "mediator_effect": f"b: {{m}} (t-1) {_A} {{y}} (t), average over patients",
    "cov_random_paths": "cov(a_i, b_i) between patients",
    "indirect_effect_within_fixed": "a b (product of the average paths, without the covariance)",
    "indirect_effect_within": "indirect effect E[a_i b_i] = a b + cov(a_i, b_i)",
    "direct_path_within": f"c': {{x}} (t-1) {_A} {{y}} (t) (the lag-1 path)",
    "direct_effect_within": "direct effect of {x} at t on {y} at t+2 (not through {m})",
    "total_effect_within": "total effect of {x} at t on {y} at t+2 (all routes)",
    "proportion_mediated_within": "proportion mediated: indirect / total (t to t+2)",
    # a mediator with two informants: the second rating's mediation and the differences
    "effect_on_mediator_second": f"a (second rating): {{x2}} (t-1) {_A} {{m}} (t), average over patients",
    "cov_random_paths_second": "cov(a2_i, b_i) between patients (second rating's a path)",
    "indirect_effect_within_fixed_second": "a2 b (second rating; without the covariance)",
    "indirect_effect_within_second": "indirect effect of {x2}: E[a2_i b_i] = a2 b + cov(a2_i, b_i)",
    "direct_path_within_second": f"c' (second rating): {{x2}} (t-1) {_A} {{y}} (t) (the lag-1 path)",
    "direct_effect_within_second": "direct effect of {x2} at t on {y} at t+2 (not through {m})",
    "total_effect_within_second": "total effect of {x2} at t on {y} at t+2 (all routes)",
    "proportion_mediated_within_second": "proportion mediated for {x2}: indirect / total",
    "effect_on_mediator_difference": "a path ({m}): {x} minus {x2}",
    "indirect_effect_within_difference": "indirect effect through {m}: {x} minus {x2}",
    "direct_effect_within_difference": "direct effect (t to t+2): {x} minus {x2}",
    "total_effect_within_difference": "total effect (t to t+2): {x} minus {x2}",
    "trait_effect_patient_mediator": f"trait-like effect between patients: {{m}} {_A} {{y}}",
    "trait_effect_therapist_mediator": f"trait-like effect between therapists: {{m}} {_A} {{y}}",
    "state_effect_second": f"state-like effect: {{x2}} (t-1) {_A} {{y}} (t)",
    "state_effect_difference": "state-like effect: {x} minus {x2}",
    "state_effect_std": "state-like effect of {x}, standardised (within SDs)",
    "state_effect_second_std": "state-like effect of {x2}, standardised (within SDs)",
    "state_effect_difference_std": "standardised state-like effect: {x} minus {x2}",
    "state_corr_informants": "correlation of the two ratings' innovations (state coupling)",
    "cross_lag_second_from_first": f"{{x}} (t-1) {_A} {{x2}} (t)",
    "cross_lag_first_from_second": f"{{x2}} (t-1) {_A} {{x}} (t)",
    "corr_trait_change": "correlation of trait-like {x} and its change over sessions (patients)",
    "change_reliability": "reliability of the patients' {x} changes from their series",
    "end_trait_effect_patient": f"trait-like {{x}} between patients {_A} {{o}} (per unit)",
    "end_trait_effect_patient_per_sd": (
        f"trait-like {{x}} between patients {_A} {{o}} (per SD between patients)"
    ),
    "end_trait_effect_therapist": f"trait-like {{x}} between therapists {_A} {{o}} (per unit)",
    "end_trait_effect_therapist_per_sd": (
        f"trait-like {{x}} between therapists {_A} {{o}} (per SD between therapists)"
    ),
    "end_trait_effect_patient_odds_ratio_per_sd": (
        "odds ratio of {o} per SD of trait-like {x} between patients"
    ),
    "end_trait_effect_therapist_odds_ratio_per_sd": (
        "odds ratio of {o} per SD of trait-like {x} between therapists"
    ),
    # A file fitted before the levels were split: one effect of the whole trait.
    "end_trait_effect": f"trait-like {{x}} {_A} {{o}} (per unit; both levels in one effect)",
    "end_trait_effect_per_sd": f"trait-like {{x}} {_A} {{o}} (per SD; both levels in one effect)",
    "end_change_effect": f"{{x}} change per session {_A} {{o}} (per unit of slope)",
    "end_change_effect_per_sd": f"{{x}} change {_A} {{o}} (per SD of the patients' slopes)",
    "end_trait_effect_odds_ratio_per_sd": "odds ratio of {o} per SD of trait-like {x}",
    "end_change_effect_odds_ratio_per_sd": "odds ratio of {o} per SD of {x} change",
    "sd_path": "SD between patients of the path {path}",
    # Between-level mediation in the mechanism models (bayes_alliance.mechanisms.baseline).
    "baseline_effect_mediator": f"{{z}} {_A} {{at}} {{m}}",
    "baseline_effect_second_predictor": f"{{z}} {_A} {{at}} {{x2}}",
    "indirect_effect_between_mediator": (
        f"part of {{z}}'s effect on trait of {{y}} through trait of {{m}}: {{z}} {_A} {{m}} {_A} {{y}}"
    ),
    "indirect_effect_between_second_predictor": (
        "part of {z}'s effect on trait of {y} through trait of {x2}"
    ),
    "baseline_effect_end": f"direct path: {{z}} {_A} {{o}}",
    "indirect_effect_between_end": (f"indirect effect a g_P: {{z}} {_A} trait of {{x}} {_A} {{o}}"),
    "direct_effect_between_end": f"direct effect: {{z}} {_A} {{o}}",
    "total_effect_between_end": "total effect of {z} on {o}",
    "proportion_mediated_between_end": "proportion of {z}'s effect on {o} through trait of {x}",
}
for _level, _between in (("patient", "patients"), ("therapist", "therapists")):
    LABELS[f"trait_effect_{_level}_second"] = (
        f"trait-like effect between {_between}: {{x2}} {_A} {{y}}"
    )
    LABELS[f"trait_effect_{_level}_difference"] = (
        f"trait-like effect between {_between}: {{x}} minus {{x2}}"
    )
    LABELS[f"trait_effect_{_level}_std"] = (
        f"trait-like effect between {_between}: {{x}} {_A} {{y}}, standardised"
    )
    LABELS[f"trait_effect_{_level}_second_std"] = (
        f"trait-like effect between {_between}: {{x2}} {_A} {{y}}, standardised"
    )
    LABELS[f"trait_effect_{_level}_difference_std"] = (
        f"standardised trait-like effect between {_between}: {{x}} minus {{x2}}"
    )
    LABELS[f"trait_corr_informants_{_level}"] = (
        f"correlation of the two ratings' trait-like parts ({_level} level)"
    )
# The mediation design's trait-level effects are partial: each series' trait adjusting for the
# other's (the regression of the outcome's trait on both), so their labels say so.
MEDIATION_LABELS: dict[str, str] = {
    f"trait_effect_{_level}{_which}": (
        f"partial trait-like effect between {_between}: {{{_a}}} {_A} {{y}}, adjusting for {{{_b}}}"
    )
    for _level, _between in (("patient", "patients"), ("therapist", "therapists"))
    for _which, _a, _b in (("", "x", "m"), ("_mediator", "m", "x"))
}
# With a mediator series the baseline's total effect on the outcome's trait has a third part,
# through the mediator's trait.
MEDIATION_LABELS["total_effect_between"] = "total effect of {z} on trait of {y} (all routes)"
MEDIATION_LABELS["proportion_mediated_between"] = (
    "proportion of {z}'s total effect on trait of {y} through trait of {x}"
)
# The two informants' trait effects are partial too: each rating's trait adjusting for the
# other's.
INFORMANT_LABELS: dict[str, str] = {
    f"trait_effect_{_level}{_which}": (
        f"partial trait-like effect between {_between}: {{{_a}}} {_A} {{y}}, adjusting for {{{_b}}}"
    )
    for _level, _between in (("patient", "patients"), ("therapist", "therapists"))
    for _which, _a, _b in (("", "x", "x2"), ("_second", "x2", "x"))
}
# A mediator with two informants: every trait effect adjusts for both other series' traits,
# the lag-1 paths to the outcome for the mediator's previous state too (the direct paths c'),
# and a two-session direct effect holds the route through the other rating.
COMBINED_LABELS: dict[str, str] = {
    f"trait_effect_{_level}{_which}": (
        f"partial trait-like effect between {_between}: {{{_a}}} {_A} {{y}}, adjusting for "
        f"{{{_b}}} and {{{_c}}}"
    )
    for _level, _between in (("patient", "patients"), ("therapist", "therapists"))
    for _which, _a, _b, _c in (
        ("", "x", "x2", "m"),
        ("_second", "x2", "x", "m"),
        ("_mediator", "m", "x", "x2"),
    )
}
COMBINED_LABELS.update(
    {
        v.STATE_EFFECT: f"direct lag-1 path c': {{x}} (t-1) {_A} {{y}} (t), given {{x2}} and {{m}}",
        "state_effect_second": (
            f"direct lag-1 path c': {{x2}} (t-1) {_A} {{y}} (t), given {{x}} and {{m}}"
        ),
        "state_effect_difference": "direct lag-1 path c': {x} minus {x2}",
        "direct_effect_within": (
            "direct effect of {x} at t on {y} at t+2 (not through {m}; with the route through {x2})"
        ),
        "direct_effect_within_second": (
            "direct effect of {x2} at t on {y} at t+2 (not through {m}; with the route through {x})"
        ),
    }
)
# Vector entries whose label names the entry itself (the others keep their coord in brackets).
_NAMED_ENTRIES = (
    v.MODERATOR_EFFECT,
    v.BASELINE_EFFECT_PREDICTOR,
    v.BASELINE_EFFECT_OUTCOME,
    v.BASELINE_EFFECT_PREDICTOR_BETWEEN,
    v.BASELINE_EFFECT_OUTCOME_BETWEEN,
    v.COVARIATE_EFFECT_PREDICTOR,
    v.COVARIATE_EFFECT_OUTCOME,
)
# The label level of a patient-level baseline split at the therapists (three-level data,
# :func:`label_level`): its a, c' and mediation rows are those of the within-therapist part.
WITHIN_THERAPIST = "within_therapist"
# The patient-level mediation rows, which a split baseline's labels mark as within therapists.
_WITHIN_ROWS = (
    "indirect_effect_between",
    "direct_effect_between",
    "total_effect_between",
    "proportion_mediated_between",
)


# Notes under effects tables (:func:`effect_note`): templates like LABELS', with ``{x}``, ``{y}``
# and ``{lag0}`` (the same-session path, which a single-equation long-run effect adds).
_WITHIN_SD = (
    "within-person SD units: the raw coefficient times SD_w(predictor) / SD_w(outcome), "
    "with the model-implied within-person SDs (Schuurman et al. 2016)"
)
EFFECT_NOTES: dict[str, str] = {
    v.STATE_EFFECT: (
        "change in {y} at the next session per point of {x} above the patient's own "
        "trait level, holding the previous {y}"
    ),
    v.REVERSE_STATE_EFFECT: (
        "change in {x} at the next session per point of {y} above the patient's own level"
    ),
    v.SAME_SESSION_EFFECT: "within-session path between the two states (lag 0)",
    v.OUTCOME_AUTOREGRESSION: "carry-over of a deviation in {y} to the next session",
    v.PREDICTOR_AUTOREGRESSION: "carry-over of a deviation in {x} to the next session",
    v.MODERATOR_EFFECT: "change in the state-like effect per unit of the (centred) moderator",
    v.SD_STATE_EFFECT_PATIENT: "how much patients' own state-like effects vary",
    v.SD_STATE_EFFECT_THERAPIST: "how much the state-like effect varies between therapists",
    v.TRAIT_EFFECT_PATIENT: (
        "difference in usual {y} per point of usual {x} between patients of one therapist"
    ),
    v.TRAIT_EFFECT_THERAPIST: (
        "difference in patients' usual {y} per point of their therapist's average {x}"
    ),
    "standardised_state_effect": _WITHIN_SD,
    "standardised_reverse_state_effect": _WITHIN_SD.replace(
        "SD_w(predictor) / SD_w(outcome)", "SD_w(outcome) / SD_w(predictor)"
    ),
    "standardised_same_session_effect": _WITHIN_SD,
    "standardised_trait_effect_patient": (
        "between-patient SD units: the trait effect times SD of the patients' traits of "
        "{x} / SD of their traits of {y}"
    ),
    "standardised_trait_effect_therapist": (
        "between-therapist SD units: the trait effect times SD of the therapists' means of "
        "{x} / SD of their means of {y}"
    ),
    "long_run_state_effect": (
        "total change in {y} after a sustained one-point shift in the equation of {x}, "
        "through every lagged path and both autoregressions: an entry of (B0 - Phi)^-1; "
        "the shift also moves {x} itself"
    ),
    "long_run_reverse_state_effect": (
        "total change in {x} after a sustained one-point shift in the equation of {y}: "
        "an entry of (B0 - Phi)^-1"
    ),
    "long_run_state_effect_single_equation": (
        "change in {y} per point of sustained change in {x}: (state-like effect{lag0}) / "
        "(1 - autoregression of {y})"
    ),
    v.BASELINE_EFFECT_PREDICTOR: (
        "difference in patients' trait of {x} per unit of the (centred) baseline characteristic (a)"
    ),
    v.BASELINE_EFFECT_OUTCOME: (
        "difference in patients' trait of {y} per unit of the baseline characteristic at "
        "the same trait of {x} (direct path c')"
    ),
    "indirect_effect_between": (
        "a x b per draw: the baseline's effect on the trait of {y} carried by the trait of "
        "{x} (b = trait-like effect between patients)"
    ),
    "direct_effect_between": "c': the baseline's effect on the trait of {y} not through {x}",
    "total_effect_between": "c' + ab: the baseline's whole effect on the trait of {y}",
    "proportion_mediated_between": (
        "ab / (ab + c') per draw; unstable (heavy tails) when the total effect is near 0"
    ),
    "indirect_effect_between_therapist": (
        "a x b_T per draw: the therapist characteristic's effect on the therapists' mean "
        "{y} carried by their mean {x} (b_T = trait-like effect between therapists)"
    ),
    "direct_effect_between_therapist": (
        "c': the therapist characteristic's effect on the therapists' mean {y} not through {x}"
    ),
    "total_effect_between_therapist": (
        "c' + a b_T: the therapist characteristic's whole effect on the therapists' mean {y}"
    ),
    "proportion_mediated_between_therapist": (
        "a b_T / (a b_T + c') per draw; unstable (heavy tails) when the total effect is near 0"
    ),
    "stationary": (
        "posterior probability that the average dynamics are stationary (free first "
        "session; with a stationary first session stationarity is imposed, not estimated)"
    ),
    "stationary_patients": (
        "share of patients whose own lag matrix (random lags included) has every eigenvalue "
        "inside the unit circle, per draw; below 1, some patients' series drift or explode"
    ),
    "reliability_predictor": (
        "share of the within-person variance of the observed {x} that is state variance, not "
        "measurement error: Var_w(state) / (Var_w(state) + ω_x²) (Schuurman & Hamaker 2019)"
    ),
    "reliability_outcome": (
        "share of the within-person variance of the observed {y} that is state variance, not "
        "measurement error: Var_w(state) / (Var_w(state) + ω_y²) (Schuurman & Hamaker 2019)"
    ),
}
# A therapist-level baseline's a and c' paths act on the therapists' means.
THERAPIST_BASELINE_NOTES: dict[str, str] = {
    v.BASELINE_EFFECT_PREDICTOR: (
        "difference in therapists' mean {x} of their patients per unit of the "
        "(centred) therapist characteristic (a)"
    ),
    v.BASELINE_EFFECT_OUTCOME: (
        "difference in therapists' mean {y} per unit of the therapist characteristic "
        "at the same mean {x} (direct path c')"
    ),
}
# A split patient-level baseline (three-level data): its within part's paths act on the
# patient's difference from their therapist's patients, its between part on therapists' means.
WITHIN_THERAPIST_NOTES: dict[str, str] = {
    v.BASELINE_EFFECT_PREDICTOR: (
        "difference in patients' trait of {x} per unit of the baseline characteristic's "
        "difference from their therapist's patients' mean, within therapists (a_W)"
    ),
    v.BASELINE_EFFECT_OUTCOME: (
        "difference in patients' trait of {y} per unit of that within-therapist difference "
        "at the same trait of {x} (direct path c'_W)"
    ),
    "indirect_effect_between": (
        "a_W x b per draw: the within-therapist part of the baseline's effect on the trait of "
        "{y} carried by the trait of {x} (b = trait-like effect between patients)"
    ),
}
EFFECT_NOTES_BETWEEN_THERAPISTS: dict[str, str] = {
    v.BASELINE_EFFECT_PREDICTOR_BETWEEN: (
        "difference in therapists' mean {x} per unit of their patients' mean baseline "
        "characteristic (centred over therapists; a_B)"
    ),
    v.BASELINE_EFFECT_OUTCOME_BETWEEN: (
        "difference in therapists' mean {y} per unit of their patients' mean baseline "
        "characteristic at the same mean {x} (direct path c'_B)"
    ),
}
ICC_PARTS = {
    "patient": "stable differences between patients (trait-like)",
    "therapist": "differences between therapists",
    "session": "session-to-session fluctuation within patients (state-like)",
}
# The session-level share of an ICC of observed scores holds the measurement error too.
ICC_SESSION_WITH_ERROR = (
    "session-to-session fluctuation within patients (state-like) and measurement error"
)


class _Words(dict[str, str]):
    """Placeholder values; a placeholder without one stays as it is written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def split_name(name: str) -> tuple[str, str]:
    """``"moderator_effect[z]"`` -> (``"moderator_effect"``, ``"z"``)."""
    m = re.fullmatch(r"(.+)\[(.+)\]", name)
    return (m.group(1), m.group(2)) if m else (name, "")


def parameter_label(
    name: str, x: str, y: str, same_session: str = "none", baseline_level: str = "patient"
) -> str:
    """Plain-language label of a named parameter or a derived effect of the joint model.

    Parameters
    ----------
    name
        A vocabulary name, a derived effect's name, or ``name[coord]`` for a vector entry.
    x, y
        The predictor's and the outcome's column names.
    same_session
        Direction of the lag-0 path (the label of ``same_session_effect`` follows it).
    baseline_level
        Level of a baseline (between-level mediation): the a and c' paths act on the patients'
        traits or, at therapist level, on the therapists' means.
    """
    base, coord = split_name(name)
    if base in LABELS:
        words = _label_words(coord, x, y, same_session, baseline_level)
        label = LABELS[base].format_map(words)
        # Vector entries other than moderators and baseline paths (session-specific
        # innovations) keep their coord.
        if coord and base not in _NAMED_ENTRIES and "_between" not in base:
            return f"{label} [{coord}]"
        if baseline_level == WITHIN_THERAPIST and base in _WITHIN_ROWS:
            return f"{label} (within therapists)"
        return label
    icc = _icc_parts(base, x, y)
    if icc is not None:
        var, level = icc
        return f"ICC of {var}: {LEVEL_WORDS.get(level, level)} share"
    return name


def _label_words(coord: str, x: str, y: str, same_session: str, baseline_level: str) -> _Words:
    """The placeholder values of a joint-model label (see :data:`LABELS`)."""
    backwards = same_session == "outcome_to_predictor"
    return _Words(
        x=x,
        y=y,
        z=coord or "baseline",
        mod=coord or "the moderator",
        # The latent means a baseline's paths act on: patients' traits, or therapists' means.
        at={v.THERAPIST: "therapist mean of", WITHIN_THERAPIST: "within-therapist trait of"}.get(
            baseline_level, "trait of"
        ),
        tm="therapist mean of",
        from0=y if backwards else x,
        to0=x if backwards else y,
    )


def _icc_parts(base: str, x: str, y: str) -> tuple[str, str] | None:
    """(variable, level) of an ICC's name ``icc_<predictor|outcome>_<level>``, else None."""
    m = re.fullmatch(r"icc_(predictor|outcome)_(\w+)", base)
    if m is None:
        return None
    return (x if m.group(1) == "predictor" else y), m.group(2)


# the lagged paths' names (:data:`bayes_alliance.mechanisms.spec.LAG_NAMES`) end so
LAG_SUFFIXES = (
    "autoregression",
    "state_effect",
    "state_effect_second",
    "on_mediator",
    "on_mediator_second",
    "mediator_effect",
)


def _partial(design: str | None) -> dict[str, str] | None:
    return {
        "mediation": MEDIATION_LABELS,
        "informants": INFORMANT_LABELS,
        "mediation_informants": COMBINED_LABELS,
    }.get(design or "")


# The label placeholder of each series' role: a random path's name ``to<-from`` is by role.
_ROLE_WORDS = {
    vocab.PREDICTOR: "x",
    vocab.OUTCOME: "y",
    vocab.MEDIATOR: "m",
    vocab.SECOND_PREDICTOR: "x2",
}


def _path_words(path: str, words: Mapping[str, str]) -> str:
    """A lagged path ``to<-from`` by role in the series' words, as the lag labels write it
    (``alliance (t-1) → symptoms (t)``); a name of other roles as it is."""
    to, _, source = path.partition("<-")
    if to not in _ROLE_WORDS or source not in _ROLE_WORDS:
        return path
    return f"{words[_ROLE_WORDS[source]]} (t-1) → {words[_ROLE_WORDS[to]]} (t)"


def mechanism_label(name: str, columns: Mapping[str, str], design: str | None = None) -> str:
    """Plain-language label of a mechanism model's effect.

    Parameters
    ----------
    name
        The effect's name (``sd_path_<path>`` for a random path's SD).
    columns
        The series' columns by placeholder: ``x``, ``y`` and, where the design has them,
        ``m``, ``x2``, ``o``.
    design
        The mechanism design (``"mediation"``, ``"informants"`` and ``"mediation_informants"``
        label their trait effects as partial; the last its lag-1 paths to the outcome as the
        direct paths).
    """
    words = _Words(m="mediator", x2="second rating", o="end-of-treatment outcome")
    words.update(columns)
    if name.startswith("sd_path_"):
        path = name[len("sd_path_") :]
        if path.endswith("_therapist"):
            return (
                LABELS["sd_path"]
                .format(path=_path_words(path[: -len("_therapist")], words))
                .replace("between patients", "between therapists")
            )
        return LABELS["sd_path"].format(path=_path_words(path, words))
    partial = _partial(design)
    for level, whom in (("_patient", "patients"), ("_therapist", "therapists")):
        lag = name[len("sd_") : -len(level)] if name.startswith("sd_") else ""
        if name.endswith(level) and lag in LABELS and lag.endswith(LAG_SUFFIXES):
            inner = partial.get(lag) if partial is not None else None
            lag_text = (inner or LABELS[lag]).format_map(words)
            return f"SD between {whom} of the {lag_text.replace(', average over patients', '')}"
    base, entry = split_name(name)
    if entry and "{z}" in LABELS.get(base, ""):  # one of several baseline columns
        words["z"] = entry
        name = base
    text = partial.get(name) if partial is not None else None
    text = text or LABELS.get(name)
    if text is not None:
        return text.format_map(words)
    icc = _icc_parts(name, words["x"], words["y"])  # one series alone: its variance shares
    if icc is not None:
        var, level = icc
        return f"ICC of {var}: {LEVEL_WORDS.get(level, level)} share"
    return name


def effect_note(
    name: str,
    x: str,
    y: str,
    same_session: str = "none",
    baseline_level: str = "patient",
    measurement_error: bool = False,
) -> str:
    """What an effect means, in words: the legend of effects tables (empty when unknown).

    Parameters
    ----------
    name
        An effect's or a parameter's name; a coord in brackets is ignored.
    x, y
        The predictor's and the outcome's column names.
    same_session
        Direction of the lag-0 path (the single-equation long-run effect adds it when it runs
        from the predictor to the outcome).
    baseline_level
        Level of a baseline: the notes of its a and c' paths speak of patients' traits or, at
        therapist level, of therapists' means.
    measurement_error
        Whether the model has measurement error (ICCs are of the observed scores: their
        session-level share then holds the error too).
    """
    base, _ = split_name(name)
    template = _note_template(base, baseline_level)
    if template is not None:
        lag0 = " + same-session path" if same_session == "predictor_to_outcome" else ""
        return template.format(x=x, y=y, lag0=lag0)
    icc = _icc_parts(base, x, y)
    if icc is not None:
        var, level = icc
        part = ICC_PARTS.get(level, level)
        if measurement_error and level == "session":
            part = ICC_SESSION_WITH_ERROR
        return f"share of the variance of {var} due to {part}; session means and trends excluded"
    return ""


def _note_template(base: str, baseline_level: str) -> str | None:
    """The note's template for this level of a baseline, or None for a name without one."""
    if baseline_level == v.THERAPIST and base in THERAPIST_BASELINE_NOTES:
        return THERAPIST_BASELINE_NOTES[base]
    if baseline_level == WITHIN_THERAPIST and base in WITHIN_THERAPIST_NOTES:
        return WITHIN_THERAPIST_NOTES[base]
    return EFFECT_NOTES_BETWEEN_THERAPISTS.get(base, EFFECT_NOTES.get(base))


def label_level(spec: ModelSpec) -> str:
    """The ``baseline_level`` argument of the labels for a fitted spec: its baseline's level,
    or :data:`WITHIN_THERAPIST` for a patient-level baseline split at the therapists
    (:meth:`~bayes_alliance.spec.model_spec.ModelSpec.splits_baseline`), whose a, c' and
    mediation rows are then within-therapist ones."""
    return WITHIN_THERAPIST if spec.splits_baseline() else spec.baseline_level


def effects_legend(ci_prob: float, measurement_error: bool = False) -> str:
    """The note under an effects table (with a sentence on the reliabilities when the model has
    measurement error)."""
    error = (
        " With measurement error, standardised within-person effects use the SDs of the "
        "error-free states, ICCs are shares of the observed scores' variance (the session-level "
        "share includes the error), and reliabilities are the states' shares of the observed "
        "within-person variance."
        if measurement_error
        else ""
    )
    return (
        f"Posterior means with {interval_name(ci_prob, CI_KIND)}s (highest-density intervals) in "
        "brackets. Raw paths are in the variables' own units per session. Standardised effects "
        "are in SD units of the level they act at: within-person SDs for state-like paths, "
        "between-patient or between-therapist SDs for trait-like effects. Long-run effects add "
        "up a sustained shift over all later sessions through the lagged paths. ICCs are "
        "shares of each variable's variance at each level." + error
    )


def component_label(component: str, equation: str, spec: ModelSpec) -> str:
    """Plain-language label of an R-squared component in one equation of this model."""
    if component == "f1":
        if equation == v.PREDICTOR:
            parts = []
            if spec.dynamics == "var1":
                parts.append("autoregression" + (" and reverse path" if spec.reverse_lag else ""))
            if spec.same_session == "outcome_to_predictor":
                parts.append("same-session path")
            return " and ".join(parts) + " (f1)"
        if spec.dynamics != "var1":
            return "same-session path (f1)"
        if spec.same_session == "predictor_to_outcome":
            return "state effects, same-session path and autoregression (f1)"
        if spec.moderators:
            return "state effects (with moderators) and autoregression (f1)"
    if component == "fvm":
        slopes = ", random slopes" if spec.random_slopes and equation == v.OUTCOME else ""
        return f"fixed effects{slopes} and intercept variance (fvm)"
    if component == "f2" and spec.baseline and spec.baseline_level != v.THERAPIST:
        if equation == v.PREDICTOR:
            return "baseline characteristic, a path (f2)"
        return "patient trait effect and baseline characteristic (f2)"
    if component == "f3" and spec.baseline and spec.baseline_level == v.THERAPIST:
        if equation == v.PREDICTOR:
            return "therapist baseline characteristic, a path (f3)"
        return "therapist trait effect and therapist baseline characteristic (f3)"
    if component == "bayes_r2":
        return "whole-model Bayesian R-squared"
    return r2.LABELS.get(component, component)


def share_of(denominator: str, var: str, has_time: bool, has_error: bool = False) -> str:
    """What a denominator's shares are shares of, in words (``has_error``: the model's
    residual includes measurement error)."""
    model = (
        "fitted values plus innovations and measurement error"
        if has_error
        else ("fitted values plus innovations")
    )
    words = {
        "total": f"total variance of {var}"
        + (" (including session means and trends)" if has_time else ""),
        "within": f"within-patient (session-level) variance of {var}",
        "between": f"between-patient variance of {var}",
        "level1": f"session-level (level 1) variance of {var}",
        "level2": f"patient-level (level 2) variance of {var}",
        "level3": f"therapist-level (level 3) variance of {var}",
        "model": f"variance of {var} ({model}; Gelman et al. 2019)",
    }
    return words.get(denominator, denominator)


def r2_legend(ci_prob: float, has_time: bool = False, has_error: bool = False) -> str:
    """The note under an R-squared table."""
    return (
        "Shares of variance explained per component (Rights & Sterba 2019, 2023), computed per "
        f"posterior draw from the model's own moments: posterior means with "
        f"{interval_name(ci_prob, BAND_KIND)}s (equal-tailed) in brackets. f1: the lagged "
        "state-like paths and the autoregression (within person); f2, f3: the trait-like "
        "effects at patient and therapist level; v: variation of the state-like effect "
        "(random slopes); m: intercept (trait) variance not explained by the predictor; "
        "sigma2: innovations. f, fv, fvm are sums. Components the model does not have are "
        "left out."
        + (
            " time: session means and trends, in the total only (level shares exclude it)."
            if has_time
            else ""
        )
        + (
            " omega2: measurement error of the observed scores, a second session-level "
            "residual beside the innovations (in the within / level-1 and total denominators)."
            if has_error
            else ""
        )
    )
