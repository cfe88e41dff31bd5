"""Labels of parameters and effects of both model families, for result tables.

:data:`LABELS` is the one table of effect and parameter words, for the joint model and the
mechanism models alike (an effect that both families estimate, such as ``state_effect``, has
one label). Its entries are templates: ``{x}`` the predictor's column, ``{y}`` the outcome's,
``{m}`` the mediator's, ``{x2}`` the second rating's, ``{o}`` the end-of-treatment outcome's,
``{z}`` a baseline column, ``{mod}`` a moderator, ``{at}`` the latent means a baseline's paths
act on, ``{tm}`` "therapist mean of", ``{o_scale}`` the scale of a baseline's paths onto the end
outcome (" (log-odds)" for a binary one, else empty), ``{from0}`` / ``{to0}`` the sending and
receiving variables of a same-session path, ``{path}`` a random path's name.
:func:`parameter_label` (joint model) and :func:`mechanism_label` fill them in. What an effect
means is in :mod:`bayes_alliance.report.effect_notes`, the R-squared tables' words in
:mod:`bayes_alliance.report.r2_words`.

Pure functions of names, column names and a :class:`~bayes_alliance.spec.model_spec.ModelSpec`; the
tables of :mod:`bayes_alliance.report.tables` and the report use them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bayes_alliance.core import vocab
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
    # continuous time (report.continuous adds the time unit and the effects interval)
    v.DRIFT_STATE_EFFECT: f"drift (continuous-time rate): {{x}} {_A} {{y}}",
    v.DRIFT_REVERSE_STATE_EFFECT: f"drift (continuous-time rate): {{y}} {_A} {{x}}",
    v.DRIFT_OUTCOME_AUTOREGRESSION: "drift (continuous-time rate): {y} on itself",
    v.DRIFT_PREDICTOR_AUTOREGRESSION: "drift (continuous-time rate): {x} on itself",
    v.DIFFUSION_SD_PREDICTOR: "diffusion SD of {x}",
    v.DIFFUSION_SD_OUTCOME: "diffusion SD of {y}",
    v.DIFFUSION_CORR: "diffusion correlation of {x} and {y}",
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
    "baseline_effect_end": f"direct path: {{z}} {_A} {{o}}{{o_scale}}",
    "indirect_effect_between_end": (
        f"indirect effect a g_P: {{z}} {_A} trait of {{x}} {_A} {{o}}{{o_scale}}"
    ),
    "direct_effect_between_end": f"direct effect: {{z}} {_A} {{o}}{{o_scale}}",
    "total_effect_between_end": "total effect of {z} on {o}{o_scale}",
    "proportion_mediated_between_end": (
        "proportion of {z}'s effect on {o} through trait of {x}{o_scale}"
    ),
    # a binary end outcome: exp of the log-odds paths, per unit of z
    "indirect_effect_between_end_odds_ratio": (
        "odds ratio of {o} per unit of {z} through trait of {x} (indirect, exp(a g_P))"
    ),
    "direct_effect_between_end_odds_ratio": "odds ratio of {o} per unit of {z}, direct",
    "total_effect_between_end_odds_ratio": "odds ratio of {o} per unit of {z}, total",
    # ... and of a therapist-level baseline (the joint model's names, "_between_therapist").
    "indirect_effect_between_therapist_mediator": (
        f"part of {{z}}'s effect on {{tm}} {{y}} through {{tm}} {{m}}: {{z}} {_A} {{m}} {_A} {{y}} "
        "(therapist level)"
    ),
    "indirect_effect_between_therapist_second_predictor": (
        "part of {z}'s effect on {tm} {y} through {tm} {x2} (therapist level)"
    ),
    "indirect_effect_between_therapist_end": (
        f"indirect effect a g_T: {{z}} {_A} {{tm}} {{x}} {_A} {{o}}{{o_scale}} (therapist level)"
    ),
    "direct_effect_between_therapist_end": (
        f"direct effect: {{z}} {_A} {{o}}{{o_scale}} (therapist level)"
    ),
    "total_effect_between_therapist_end": "total effect of {z} on {o}{o_scale} (therapist level)",
    "proportion_mediated_between_therapist_end": (
        "proportion of {z}'s effect on {o} through {tm} {x}{o_scale} (therapist level)"
    ),
    "indirect_effect_between_therapist_end_odds_ratio": (
        "odds ratio of {o} per unit of {z} through {tm} {x} (indirect, exp(a g_T); therapist level)"
    ),
    "direct_effect_between_therapist_end_odds_ratio": (
        "odds ratio of {o} per unit of {z}, direct (therapist level)"
    ),
    "total_effect_between_therapist_end_odds_ratio": (
        "odds ratio of {o} per unit of {z}, total (therapist level)"
    ),
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
MEDIATION_LABELS["total_effect_between_therapist"] = (
    "total effect of {z} on {tm} {y} (all routes; therapist level)"
)
MEDIATION_LABELS["proportion_mediated_between_therapist"] = (
    "proportion of {z}'s total effect on {tm} {y} through {tm} {x} (therapist level)"
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
    icc = icc_parts(base, x, y)
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


def icc_parts(base: str, x: str, y: str) -> tuple[str, str] | None:
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
        ``m``, ``x2``, ``o`` (and ``o_scale``, " (log-odds)" for a binary end outcome).
    design
        The mechanism design (``"mediation"``, ``"informants"`` and ``"mediation_informants"``
        label their trait effects as partial; the last its lag-1 paths to the outcome as the
        direct paths).
    """
    words = _Words(
        m="mediator",
        x2="second rating",
        o="end-of-treatment outcome",
        tm="therapist mean of",
        o_scale="",
    )
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
    icc = icc_parts(name, words["x"], words["y"])  # one series alone: its variance shares
    if icc is not None:
        var, level = icc
        return f"ICC of {var}: {LEVEL_WORDS.get(level, level)} share"
    return name


def label_level(spec: ModelSpec) -> str:
    """The ``baseline_level`` argument of the labels for a fitted spec: its baseline's level,
    or :data:`WITHIN_THERAPIST` for a patient-level baseline split at the therapists
    (:meth:`~bayes_alliance.spec.model_spec.ModelSpec.splits_baseline`), whose a, c' and
    mediation rows are then within-therapist ones."""
    return WITHIN_THERAPIST if spec.splits_baseline() else spec.baseline_level
