"""The mechanism models as their report states them: the model in words and equations with
each option the fit has, what the fit integrated out and what it sampled, the priors actually
used (:mod:`bayes_alliance.report.mechanism_priors`, re-exported here), a methods paragraph
with short citations and the full references.

The joint model's counterparts are :mod:`bayes_alliance.report.model_text` and
:mod:`bayes_alliance.report.methods`.
"""

from __future__ import annotations

import numpy as np

from bayes_alliance.core.intervals import CI_KIND, interval_name
from bayes_alliance.core.vocab import THERAPIST
from bayes_alliance.mechanisms.fit import MechanismResult
from bayes_alliance.mechanisms.priors import PRIOR_RULES
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.report.mechanism_priors import prior_rules, priors_table
from bayes_alliance.report.methods import (
    MEASUREMENT_REFERENCES,
    MEDIATION_REFERENCES,
    REFERENCES,
    sampling_sentence,
)

# Full references beyond the joint model's (REFERENCES), keyed by the short citation.
MECHANISM_REFERENCES = {
    "Kenny, Korchmaros & Bolger 2003": (
        "Kenny, D. A., Korchmaros, J. D., & Bolger, N. (2003). Lower level mediation in "
        "multilevel models. Psychological Methods, 8(2), 115-128."
    ),
    "Bauer, Preacher & Gil 2006": (
        "Bauer, D. J., Preacher, K. J., & Gil, K. M. (2006). Conceptualizing and testing "
        "random indirect effects and moderated mediation in multilevel models: New procedures "
        "and recommendations. Psychological Methods, 11(2), 142-163."
    ),
    "Cole & Maxwell 2003": (
        "Cole, D. A., & Maxwell, S. E. (2003). Testing mediational models with longitudinal "
        "data: Questions and tips in the use of structural equation modeling. Journal of "
        "Abnormal Psychology, 112(4), 558-577."
    ),
    "Lewandowski, Kurowicka & Joe 2009": (
        "Lewandowski, D., Kurowicka, D., & Joe, H. (2009). Generating random correlation "
        "matrices based on vines and extended onion method. Journal of Multivariate Analysis, "
        "100(9), 1989-2001."
    ),
}
DURBIN_KOOPMAN = (
    "Durbin, J., & Koopman, S. J. (2012). Time series analysis by state space methods (2nd "
    "ed.). Oxford University Press."
)
PREACHER = "Preacher, Zyphur & Zhang 2010"  # cited with a baseline
# The joint model's references this report cites too.
_SHARED = (
    "Zilcha-Mano & Fisher 2022",
    "Asparouhov, Hamaker & Muthén 2018",
    "Lüdtke et al. 2008",
    "Vehtari et al. 2021",
)


def columns(result: MechanismResult) -> dict[str, str]:
    """The series' columns by role."""
    return dict(zip(result.data.roles, result.data.columns, strict=True))


def _integrated(result: MechanismResult) -> bool:
    """Whether the fit integrated its latent parts out (a file from before the integrated form
    records ``traits="sampled"``)."""
    return result.spec.traits == "integrated"


def _paths(result: MechanismResult, pairs: tuple[tuple[str, str], ...]) -> str:
    """Lagged paths ``(to, from)`` by role, in the series' columns."""
    cols = columns(result)
    return ", ".join(f"{cols[b]} (t-1) -> {cols[a]} (t)" for a, b in pairs)


def inference_rows(result: MechanismResult) -> list[tuple[str, str]]:
    """How the fit treated each latent part, for the sampler table: integrated out in closed
    form (the integrated form, :mod:`bayes_alliance.mechanisms.integrated`) or sampled with the
    population parameters (the sampled form, :mod:`bayes_alliance.mechanisms.model`)."""
    spec = result.spec
    if _integrated(result):
        out = "integrated out in closed form, not sampled"
        rows = [("latent means (traits)", out)]
        if spec.trend:
            rows.append(("patients' changes over sessions", out))
        if spec.therapist_level:
            rows.append(("therapist parts", out))
        rows.append(("missing cells inside a series", out))
    else:
        rows = [("latent means (traits)", "sampled with the other parameters")]
        if spec.trend:
            rows.append(
                ("patients' changes over sessions", "sampled (non-centred, given the means)")
            )
        if spec.therapist_level:
            rows.append(("therapist parts", "sampled with the other parameters (non-centred)"))
        rows.append(
            ("missing cells inside a series", "sampled with the other parameters (flat prior)")
        )
    if spec.random_paths:
        rows.append(("random lagged paths", "sampled with the other parameters (non-centred)"))
    if spec.random_innovations:
        rows.append(("patients' innovation scales", "sampled (non-centred)"))
    return rows


def _option_lines(result: MechanismResult) -> list[str]:
    """Sentences on the options beyond the VAR: random lags between therapists, measurement
    error, random innovations, a baseline (none without them)."""
    spec, cols = result.spec, columns(result)
    lines = []
    if spec.therapist_paths:
        lines.append(
            f"Lagged paths varying between therapists as well: {_paths(result, spec.therapist_paths)}"
            "; a patient's path is Phi + c_j + d_i, the therapist's deviation c_j (unstructured "
            "covariance between therapists) plus the patient's d_i."
        )
    if spec.lag_trait_covariance:
        lines.append(
            "The patients' random-lag deviations d_i and their latent means (and change) b_i "
            "share one unstructured covariance; b_i is integrated out given d_i."
        )
    if spec.measurement_error:
        named = ", ".join(cols[r] for r in spec.measurement_error)
        lines.append(
            f"Measurement error on {named}: each observed score is its latent score plus "
            "independent error eps_ti ~ N(0, omega^2) with an SD per series, told apart from "
            "the state-like part by the dynamics."
        )
    if spec.random_innovations:
        lines.append(
            "Random innovations: each patient's innovation SDs are sigma_e exp(s u_i), u_i ~ "
            "N(0, 1) per series (patients who fluctuate more or less; the innovations' "
            "correlations are shared)."
        )
    if spec.baseline:
        named = ", ".join(spec.baseline)
        end = ""
        if result.data.end_outcome is not None:
            logit = " (its logit: the paths onto it are log-odds)"
            end = f", and the end-of-treatment outcome {result.data.end_column} directly (c_O)" + (
                logit if spec.end_family == "binary" else ""
            )
        if spec.baseline_level == THERAPIST:
            lines.append(
                f"Therapist characteristic {named} (constant within therapist, centred over "
                f"therapists) shifts every series' therapist mean (Gamma){end}: between-level "
                "mediation through the therapists' means (b_T)."
            )
        else:
            lines.append(
                f"Baseline {named} (centred over patients) shifts every series' latent mean "
                f"(Gamma){end}: between-level mediation through the trait-like parts."
                + (
                    " It acts on the patient parts only, not split at the therapists (the "
                    "therapist means of a column, given as a therapist-level baseline, fit the "
                    "between part)."
                    if spec.therapist_level
                    else ""
                )
            )
    return lines


def model_lines(result: MechanismResult) -> list[str]:
    """The fitted model in a few sentences, following its design and options."""
    d, spec = result.data, result.spec
    series = ", ".join(
        f"{c} ({r.replace('_', ' ')})" for r, c in zip(d.roles, d.columns, strict=True)
    )
    levels = "the patient level" + (" and the therapist level" if spec.therapist_level else "")
    missing = (
        "integrated out with the latent parts"
        if _integrated(result)
        else "sampled as parameters (flat prior)"
    )
    if d.k == 1:
        lines = [
            f"Series: {series}, fitted alone (no outcome series).",
            f"z_ti = mu + u_j + v_i + w_ti: trait-like part mu + u_j + v_i (latent mean, a "
            f"variance at {levels}), state-like part w_ti.",
            "w_ti = phi_i w_(t-1)i + e_ti, e ~ N(0, sigma_e^2); a patient's first state has its "
            f"own variance sigma_1^2; missing cells inside a series are {missing}.",
        ]
    else:
        lines = [
            f"Series (in the model's order, outcome last): {series}.",
            "z_ti = mu + u_j + v_i + w_ti: trait-like part mu + u_j + v_i (latent means, "
            f"unstructured covariance at {levels}), state-like part w_ti.",
            "w_ti = Phi_i w_(t-1)i + e_ti, e ~ MVN(0, Sigma_e); a patient's first state has its "
            f"own covariance Sigma_1; missing cells inside a series are {missing}.",
        ]
    if spec.random_paths and d.k == 1:
        lines.append("The autoregression phi_i varies between patients (normal, SD estimated).")
    elif spec.random_paths:
        mediation = (
            "; the average indirect effect is E[a_i b_i] = a b + cov(a_i, b_i) (Kenny, "
            "Korchmaros & Bolger 2003; Bauer, Preacher & Gil 2006)"
            if "mediator" in d.roles
            else ""
        )
        lines.append(
            "Lagged paths varying between patients (unstructured covariance): "
            f"{_paths(result, spec.random_paths)}{mediation}."
        )
    lines += _option_lines(result)
    if d.end_outcome is not None:
        link = "logit P(O_i = 1)" if spec.end_family == "binary" else "O_i"
        therapist = (
            f" + g_T (therapist's trait-like {d.columns[0]} deviation) + u^O_j (the outcome's "
            "therapist intercept)"
            if spec.therapist_level
            else ""
        )
        change = f" + g_S (patient's {d.columns[0]} slope deviation)" if spec.trend else ""
        lines.append(
            f"End-of-treatment outcome {d.end_column}: {link} = g_0 + g_P (patient's trait-like "
            f"{d.columns[0]} deviation from the therapist's mean){therapist}{change}."
        )
    return lines


def _mean_line(result: MechanismResult) -> str:
    """The measurement equation of the series."""
    spec = result.spec
    line = "z_ti = mu" + (f" + Gamma {_baseline_symbol(spec)}" if spec.baseline else "")
    line += " + u_j + v_i + w_ti"
    line += " + s_i c_ti e_1" if spec.trend else ""
    return line + (" + eps_ti" if spec.measurement_error else "")


def _baseline_symbol(spec: MechanismSpec) -> str:
    """The baseline's symbol in the equations: a patient's b_i or a therapist's b_j."""
    return "b_j" if spec.baseline_level == THERAPIST else "b_i"


def _end_equation(result: MechanismResult) -> str:
    """The end-of-treatment outcome's regression."""
    spec = result.spec
    gaussian = spec.end_family != "binary"
    link = "O_i" if gaussian else "logit P(O_i = 1)"
    b = _baseline_symbol(spec)
    direct = f" + c_O' {b}" if spec.baseline else ""
    at_therapist = bool(spec.baseline) and spec.baseline_level == THERAPIST
    trait = f"g_P (Gamma_1 {b} + v_i1)" if spec.baseline and not at_therapist else "g_P v_i1"
    therapist = f" + g_T (Gamma_1 {b} + u_j1)" if at_therapist else " + g_T u_j1"
    return (
        f"{link} = g_0{direct} + {trait}"
        + (f"{therapist} + u^O_j" if spec.therapist_level else "")
        + (" + g_S delta_i" if spec.trend else "")
        + (" + eta_i,   eta_i ~ N(0, end_sd^2)" if gaussian else "")
    )


def equations(result: MechanismResult) -> str:
    """The model's equations as plain text (a preformatted block), with each option the fit
    has: measurement error, random innovations, random lags at either level, a baseline."""
    spec, cols = result.spec, columns(result)
    order = "" if result.data.k == 1 else ", outcome last"
    sigma_e = "D_i Sigma_e D_i" if spec.random_innovations else "Sigma_e"
    lines = [
        f"z_ti = (series of patient i at session t{order}), therapist j",
        _mean_line(result),
        f"w_ti = Phi_i w_(t-1)i + e_ti,   e_ti ~ MVN(0, {sigma_e})",
        "w_(first)i ~ MVN(0, Sigma_1)",
        "v_i ~ MVN(0, Sigma_P)"
        + ("   (with the change delta_i in the same covariance)" if spec.trend else ""),
    ]
    if spec.measurement_error:
        named = ", ".join(cols[r] for r in spec.measurement_error)
        lines.append(f"eps_ti ~ N(0, diag(omega^2))   (measurement error of {named})")
    if spec.random_innovations:
        lines.append("D_i = diag(exp(s_r u_ir)),   u_ir ~ N(0, 1)   (random innovations)")
    if spec.therapist_level:
        lines.append("u_j ~ MVN(0, Sigma_T)")
    if spec.therapist_paths:
        lines.append(
            "Phi_i = Phi + sum_r (c_jr + d_ir) E_r,   d_i ~ MVN(0, Sigma_d),   c_j ~ MVN(0, "
            "Sigma_c)   (random lagged paths between patients and between therapists)"
        )
    elif spec.random_paths:
        lines.append(
            "Phi_i = Phi + sum_r d_ir E_r,   d_i ~ MVN(0, Sigma_d)   (random lagged paths)"
        )
    if spec.lag_trait_covariance:
        lines.append("(d_i, b_i) ~ MVN(0, Sigma_(d,b))   (random lags covary with the traits)")
    if spec.trend:
        lines.append("s_i = s + delta_i; c_ti: session number minus the middle of the series")
    if spec.baseline:
        named = ", ".join(spec.baseline)
        if spec.baseline_level == THERAPIST:
            lines.append(f"b_j = characteristic ({named}) of therapist j, centred over therapists")
        else:
            lines.append(f"b_i = baseline ({named}) of patient i, centred over patients")
    if result.data.end_outcome is not None:
        lines.append(_end_equation(result))
        if spec.therapist_level:
            lines.append("u^O_j ~ N(0, sd_end_therapist^2)   (the outcome's therapist part)")
    return "\n".join(lines)


def data_scale_sentence(result: MechanismResult) -> str:
    """The series' means and SDs that the default priors use."""
    z = result.data.z.reshape(-1, result.data.k)
    parts = [
        f"{c} mean {np.nanmean(z[:, j]):.3g}, SD {np.nanstd(z[:, j]):.3g}"
        for j, c in enumerate(result.data.columns)
    ]
    rules = prior_rules(result)
    which = (
        "the joint model's rules"
        if rules == PRIOR_RULES
        else f"the rules of bayes_alliance {rules}, with which this model was fitted"
    )
    return (
        f"Default priors are weakly informative and scaled to the data with {which} (over "
        "all observed sessions): " + "; ".join(parts) + "."
    )


def methods_paragraph(result: MechanismResult, ci_prob: float) -> str:
    """A methods paragraph for a manuscript, with short citations (see :func:`references`)."""
    d, spec = result.data, result.spec
    design = result.design
    cols = columns(result)
    levels = (
        "therapists, patients and sessions" if spec.therapist_level else "patients and sessions"
    )
    vector = "vector " if d.k > 1 else ""
    parts = [
        f"We separated the trait-like and state-like components of {', '.join(d.columns)} "
        f"(Zilcha-Mano & Fisher 2022) in a Bayesian multilevel first-order {vector}"
        f"autoregression over {levels}: each patient's trait-like level of each series is a "
        "latent mean (latent centring; Lüdtke et al. 2008), estimated jointly with the "
        "within-person dynamics, as in dynamic structural equation modelling (Asparouhov, "
        "Hamaker & Muthén 2018)."
    ]
    if d.k > 1:
        parts.append(
            "Trait-like levels have unstructured covariances with LKJ priors (Lewandowski, "
            "Kurowicka & Joe 2009)."
        )
    if design == "mediation_informants":
        parts.append(
            f"Both ratings, {cols['predictor']} and {cols['second_predictor']}, enter one "
            f"lagged 1-1-1 mediation through {cols['mediator']} to {cols['outcome']}: each "
            "rating has its own a path, the b path is shared, and the a and b paths vary "
            "between patients; each rating's average indirect effect is E[a_i b_i] = a b + "
            "cov(a_i, b_i) (Kenny, Korchmaros & Bolger 2003; Bauer, Preacher & Gil 2006), "
            "with total and direct effects over the same two sessions (Cole & Maxwell 2003), "
            "and the two ratings are compared by the differences of their effects per draw."
        )
    elif design == "mediation":
        parts.append(
            f"The lagged 1-1-1 mediation runs from {cols['predictor']} at one session through "
            f"{cols['mediator']} at the next to {cols['outcome']} at the one after; the a and b "
            "paths vary between patients, and the average indirect effect is E[a_i b_i] = "
            "a b + cov(a_i, b_i) (Kenny, Korchmaros & Bolger 2003; Bauer, Preacher & Gil "
            "2006), with the total and direct effects taken over the same two sessions (Cole "
            "& Maxwell 2003)."
        )
    elif design == "single":
        parts.append(
            f"The series {cols['predictor']} was modelled alone (no outcome series): its "
            "autoregression, the SDs of its innovations and of its trait-like parts, and the "
            "share of its variance at each level (intraclass correlations) describe it."
        )
    elif design == "informants":
        parts.append(
            f"The two ratings {cols['predictor']} and {cols['second_predictor']} each have a "
            f"trait-like and a state-like part; their effects on {cols['outcome']} are "
            "compared by the differences of their effects per draw."
        )
    if d.end_outcome is not None:
        parts.append(
            f"The end-of-treatment outcome {d.end_column} is regressed on the trait-like part "
            f"of {cols['predictor']}"
            + (
                " split into its patient and therapist parts, each with its own coefficient, "
                "with a therapist intercept of the outcome"
                if spec.therapist_level
                else ""
            )
            + (" and on each patient's change over sessions." if spec.trend else ".")
        )
    parts += _method_options(result)
    parts.append("Priors were weakly informative and scaled to the data (see the table of priors).")
    parts.append(sampling_sentence(result.provenance, result.convergence))
    parts.append(
        f"We report posterior means with {interval_name(ci_prob, CI_KIND)}s (highest-density "
        "intervals), every effect computed per posterior draw."
    )
    return " ".join(parts)


def _method_options(result: MechanismResult) -> list[str]:
    """The methods paragraph's sentences on how the latent parts were handled and on the
    options beyond the VAR (each cited source is in :func:`references`)."""
    spec, cols = result.spec, columns(result)
    therapists = ", the therapists' parts" if spec.therapist_level else ""
    changes = ", the patients' changes" if spec.trend else ""
    if _integrated(result):
        parts = [
            f"The latent means{changes}{therapists} and the missing cells were integrated out "
            "in closed form (a Kalman filter over the series and Gaussian integrals over the "
            "patients' and therapists' parts; Durbin & Koopman 2012), so that the sampler drew "
            "only the population parameters and the random lags."
        ]
    else:
        parts = [
            f"The latent means{changes}{therapists} and the missing cells were sampled with the "
            "other parameters."
        ]
    if spec.therapist_paths:
        parts.append(
            f"The lagged paths {_paths(result, spec.therapist_paths)} varied between therapists "
            "as well as between patients."
        )
    if spec.lag_trait_covariance:
        parts.append(
            "The patients' deviations in the random lagged paths covaried with their latent "
            "means in one unstructured covariance."
        )
    if spec.measurement_error:
        named = ", ".join(cols[r] for r in spec.measurement_error)
        parts.append(
            f"Each score of {named} carried independent measurement error with an SD per "
            "series, separated from the state-like part by the dynamics (Schuurman & Hamaker "
            "2019)."
        )
    if spec.random_innovations:
        parts.append("Each patient's innovation SDs varied log-normally between patients.")
    if spec.baseline:
        at = (
            "therapist mean, through the therapists' means"
            if spec.baseline_level == THERAPIST
            else "latent mean, through the trait-like parts"
        )
        parts.append(
            f"The baseline {', '.join(spec.baseline)} shifted every series' {at}: between-level "
            f"mediation ({PREACHER}), each effect computed per draw."
        )
    return parts


def references(result: MechanismResult | None = None) -> list[str]:
    """Full references of every citation in a mechanism report, alphabetical (with those of
    the options ``result`` has: measurement error, a baseline, the integrated form)."""
    cited = {k: REFERENCES[k] for k in _SHARED}
    spec = result.spec if result is not None else None
    if spec is not None and spec.measurement_error:
        cited.update(MEASUREMENT_REFERENCES)
    if spec is not None and spec.baseline:
        cited[PREACHER] = MEDIATION_REFERENCES[PREACHER]
    if result is not None and _integrated(result):
        cited["Durbin & Koopman 2012"] = DURBIN_KOOPMAN
    return sorted({**cited, **MECHANISM_REFERENCES}.values())


__all__ = [
    "MECHANISM_REFERENCES",
    "columns",
    "data_scale_sentence",
    "equations",
    "inference_rows",
    "methods_paragraph",
    "model_lines",
    "prior_rules",
    "priors_table",
    "references",
]
