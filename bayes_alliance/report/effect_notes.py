"""What an effect means, in words: the notes under effects tables and the table's legend.

:data:`EFFECT_NOTES` holds the joint model's notes as templates like the labels'
(:data:`bayes_alliance.report.labels.LABELS`): ``{x}`` the predictor's column, ``{y}`` the
outcome's, ``{lag0}`` the same-session path that a single-equation long-run effect adds.
:data:`THERAPIST_BASELINE_NOTES` and :data:`WITHIN_THERAPIST_NOTES` replace some of them for a
therapist-level baseline and for a patient-level baseline split at the therapists.
:func:`effect_note` fills them in; :func:`effects_legend` is the note under the whole table.
"""

from __future__ import annotations

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import CI_KIND, interval_name
from bayes_alliance.report.labels import WITHIN_THERAPIST, icc_parts, split_name

v = vocab

# Notes under effects tables (:func:`effect_note`): templates like LABELS', with ``{x}``, ``{y}``
# and ``{lag0}`` (the same-session path, which a single-equation long-run effect adds).
# The model-implied within-person SDs (Schuurman et al. 2016) are named once, in the note of
# the table (effects_legend).
_WITHIN_SD = "within-person SD units: the raw coefficient times SD_w(predictor) / SD_w(outcome)"
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
    icc = icc_parts(base, x, y)
    if icc is not None:
        var, level = icc
        part = ICC_PARTS.get(level, level)
        if measurement_error and level == "session":
            part = ICC_SESSION_WITH_ERROR
        # That session means and trends are excluded is said once, in the table's note.
        return f"share of the variance of {var} due to {part}"
    return ""


def _note_template(base: str, baseline_level: str) -> str | None:
    """The note's template for this level of a baseline, or None for a name without one."""
    if baseline_level == v.THERAPIST and base in THERAPIST_BASELINE_NOTES:
        return THERAPIST_BASELINE_NOTES[base]
    if baseline_level == WITHIN_THERAPIST and base in WITHIN_THERAPIST_NOTES:
        return WITHIN_THERAPIST_NOTES[base]
    return EFFECT_NOTES_BETWEEN_THERAPISTS.get(base, EFFECT_NOTES.get(base))


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
        "are in SD units of the level they act at: the model-implied within-person SDs for "
        "state-like paths (Schuurman et al. 2016), "
        "between-patient or between-therapist SDs for trait-like effects. Long-run effects add "
        "up a sustained shift over all later sessions through the lagged paths. ICCs are "
        "shares of each variable's variance at each level, session means and trends "
        "excluded." + error
    )
