"""The mechanism models as their report states them: the model in words and equations, the
priors actually used (from :func:`bayes_alliance.mechanisms.priors.mechanism_priors`, the
same numbers the model builder uses), a methods paragraph with short citations and the full
references.

The joint model's counterparts are :mod:`bayes_alliance.report.model_text` and
:mod:`bayes_alliance.report.methods`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance.core.intervals import CI_KIND, interval_name
from bayes_alliance.mechanisms.fit import MechanismResult
from bayes_alliance.mechanisms.priors import (
    LEGACY_RULES,
    PRIOR_RULES,
    MechanismPriors,
    mechanism_priors,
)
from bayes_alliance.mechanisms.spec import path_name
from bayes_alliance.report.methods import REFERENCES, sampling_sentence

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


def model_lines(result: MechanismResult) -> list[str]:
    """The fitted model in a few sentences, following its design and options."""
    d, spec = result.data, result.spec
    series = ", ".join(
        f"{c} ({r.replace('_', ' ')})" for r, c in zip(d.roles, d.columns, strict=True)
    )
    levels = "the patient level" + (" and the therapist level" if spec.therapist_level else "")
    if d.k == 1:
        lines = [
            f"Series: {series}, fitted alone (no outcome series).",
            f"z_ti = mu + u_j + v_i + w_ti: trait-like part mu + u_j + v_i (latent mean, a "
            f"variance at {levels}), state-like part w_ti.",
            "w_ti = phi_i w_(t-1)i + e_ti, e ~ N(0, sigma_e^2); a patient's first state has its "
            "own variance sigma_1^2; missing cells inside a series are integrated out.",
        ]
    else:
        lines = [
            f"Series (in the model's order, outcome last): {series}.",
            "z_ti = mu + u_j + v_i + w_ti: trait-like part mu + u_j + v_i (latent means, "
            f"unstructured covariance at {levels}), state-like part w_ti.",
            "w_ti = Phi_i w_(t-1)i + e_ti, e ~ MVN(0, Sigma_e); a patient's first state has its "
            "own covariance Sigma_1; missing cells inside a series are imputed from the model.",
        ]
    if spec.random_paths and d.k == 1:
        lines.append("The autoregression phi_i varies between patients (normal, SD estimated).")
    elif spec.random_paths:
        paths = ", ".join(f"{a} <- {b}" for a, b in spec.random_paths)
        lines.append(
            f"Lagged paths varying between patients (unstructured covariance): {paths}; the "
            "average indirect effect is E[a_i b_i] = a b + cov(a_i, b_i) (Kenny, Korchmaros & "
            "Bolger 2003; Bauer, Preacher & Gil 2006)."
        )
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


def equations(result: MechanismResult) -> str:
    """The model's equations as plain text (a preformatted block)."""
    spec = result.spec
    order = "" if result.data.k == 1 else ", outcome last"
    lines = [
        f"z_ti = (series of patient i at session t{order}), therapist j",
        "z_ti = mu + u_j + v_i + w_ti" + (" + s_i c_ti e_1" if spec.trend else ""),
        "w_ti = Phi_i w_(t-1)i + e_ti,   e_ti ~ MVN(0, Sigma_e)",
        "w_(first)i ~ MVN(0, Sigma_1)",
        "v_i ~ MVN(0, Sigma_P)"
        + ("   (with the change delta_i in the same covariance)" if spec.trend else ""),
    ]
    if spec.therapist_level:
        lines.append("u_j ~ MVN(0, Sigma_T)")
    if spec.random_paths:
        lines.append(
            "Phi_i = Phi + sum_r d_ir E_r,   d_i ~ MVN(0, Sigma_d)   (random lagged paths)"
        )
    if spec.trend:
        lines.append("s_i = s + delta_i; c_ti: session number minus the middle of the series")
    if result.data.end_outcome is not None:
        link = "logit P(O_i = 1)" if spec.end_family == "binary" else "O_i"
        lines.append(
            f"{link} = g_0 + g_P v_i1"
            + (" + g_T u_j1 + u^O_j" if spec.therapist_level else "")
            + (" + g_S delta_i" if spec.trend else "")
            + ("" if spec.end_family == "binary" else " + eps_i")
        )
        if spec.therapist_level:
            lines.append("u^O_j ~ N(0, sd_end_therapist^2)   (the outcome's therapist part)")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{float(value):.3g}"


def _normal(mu: Any, sigma: Any) -> str:
    return f"Normal(mu={_fmt(mu)}, sigma={_fmt(sigma)})"


def _half(sigma: Any) -> str:
    return f"HalfNormal(sigma={_fmt(sigma)})"


def _gamma(mean: Any) -> str:
    return f"Gamma(alpha=2, beta={_fmt(2.0 / float(mean))})"


def _therapist_sd(mean: Any, gamma: bool) -> str:
    """A therapist SD's prior: Gamma(2) with that mean (rules 0.3), else half-normal."""
    return _gamma(mean) if gamma else _half(mean)


Row = tuple[str, str, str]  # parameter, prior, how it was scaled
_LKJ = ("LKJ(eta=2)", "fixed (correlations have no units)")


def _lkj(eta: float) -> tuple[str, str]:
    return (f"LKJ(eta={eta:g})", "fixed (correlations have no units)")


def _series_rows(cols: list[str], p: MechanismPriors, rules: str) -> list[Row]:
    """Intercepts and the lag matrix."""
    cross = "0.5 " if rules == LEGACY_RULES else ""
    rows = [
        (
            f"intercept[{c}]",
            _normal(p.intercept_mu[j], p.intercept_sigma[j]),
            "μ = mean, σ = 2.5 SD",
        )
        for j, c in enumerate(cols)
    ]
    for t, to in enumerate(cols):
        for s, source in enumerate(cols):
            rule = "σ = 0.5 (no units)" if t == s else f"σ = {cross}SD({to}) / SD({source})"
            rows.append((f"lag[{to}, {source}]", _normal(0, p.lag[t, s]), rule))
    return rows


def _covariance_rows(result: MechanismResult, p: MechanismPriors, rules: str) -> list[Row]:
    """The SDs (and LKJ correlations) of the trait levels, random paths, innovations and first
    states, with the trend's."""
    spec, cols = result.spec, list(result.data.columns)
    legacy = rules == LEGACY_RULES
    per_session = f"SD({cols[0]}) / sessions" if legacy else ""
    levels = [("patient", p.sd_patient, "σ = SD")]
    if spec.therapist_level:
        rule = "mean 0.5 SD (density 0 at 0)" if p.therapist_gamma else "σ = 0.5 SD"
        levels.append(("therapist", p.sd_therapist, rule))
    levels += [("innovation", p.sd_innovation, "σ = SD"), ("first", p.sd_first, "σ = SD")]
    rows: list[Row] = []
    for level, scales, rule in levels:
        gamma = level == "therapist" and p.therapist_gamma
        rows += [
            (f"sd_{level}[{c}]", _therapist_sd(scales[j], gamma), rule) for j, c in enumerate(cols)
        ]
        if level == "patient" and p.trend is not None:
            rows.append(
                (
                    "sd_patient[change] (sd_trend)",
                    _half(scales[-1]),
                    f"σ = {per_session or f'0.05 SD({cols[0]})'}",
                )
            )
        trait = level in ("patient", "therapist")
        if len(cols) > 1 or (level == "patient" and p.trend is not None):  # one: no LKJ
            rows.append((f"corr_{level}", *(_lkj(p.trait_eta) if trait else _LKJ)))
    names = columns(result)
    for r, (to, source) in enumerate(spec.random_paths or ()):
        share = "0.2" if legacy else "0.25"
        rule = f"σ = {share} SD({names[to]}) / SD({names[source]})"
        rows.append((f"sd_paths[{path_name(to, source)}]", _half(p.sd_paths[r]), rule))
    if len(spec.random_paths or ()) > 1:
        rows.append(("corr_paths", *_LKJ))
    for r, (to, source) in enumerate(spec.therapist_paths):
        rule = f"σ = 0.25 SD({names[to]}) / SD({names[source]}), as between patients"
        name = f"sd_paths_therapist[{path_name(to, source)}]"
        rows.append((name, _half(p.sd_paths_therapist[r]), rule))
    if len(spec.therapist_paths) > 1:
        rows.append(("corr_paths_therapist", *_LKJ))
    if p.trend is not None:
        words = per_session or f"0.1 SD({cols[0]}) per session"
        rows.append(("trend", _normal(0, p.trend), f"σ = {words}"))
    return rows


def _end_rows(result: MechanismResult, p: MechanismPriors) -> list[Row]:
    """The end-of-treatment regression's priors (none without an end outcome)."""
    e, o, x = p.end, result.data.end_column, result.data.columns[0]
    if e is None:
        return []
    unit = "logit 1" if e.sd_sigma is None else f"SD({o})"
    rows = [
        (
            "end_intercept",
            _normal(e.intercept_mu, e.intercept_sigma),
            f"μ = mean({o}) (0 for a binary outcome), σ = 2.5 {unit}",
        ),
    ]
    # A file fitted before the levels were split has one effect of the whole trait.
    split = "end_trait_effect" not in result.idata.posterior
    name = "end_trait_effect_patient" if split else "end_trait_effect"
    rows.append((name, _normal(0, e.trait_sigma), f"σ = {unit} / SD({x})"))
    if split and e.therapist_sigma is not None and e.sd_therapist_sigma is not None:
        rule = f"σ = {unit} / (0.5 SD({x}))"
        rows.append(("end_trait_effect_therapist", _normal(0, e.therapist_sigma), rule))
        gamma = p.therapist_gamma
        rule = f"mean 0.5 {unit}" if gamma else f"σ = 0.5 {unit}"
        rows.append(("sd_end_therapist", _therapist_sd(e.sd_therapist_sigma, gamma), rule))
    if result.spec.trend:
        rows.append(("end_change_per_sd", _normal(0, e.change_per_sd_sigma), f"σ = {unit}"))
    if e.sd_sigma is not None:
        rows.append(("end_sd", _half(e.sd_sigma), f"σ = SD({o})"))
    return rows


def priors_table(result: MechanismResult) -> pd.DataFrame:
    """The priors actually used (the defaults scaled to the data: the builder's numbers).

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter (``lag[to, from]`` by column name): ``prior`` and ``source`` (the
        scaling rule, shared with the joint model's: :mod:`bayes_alliance.model.priors`; SD
        is a series' SD over its observed cells).
    """
    rules = prior_rules(result)
    p = mechanism_priors(result.data, result.spec, rules=rules)
    rows = _series_rows(list(result.data.columns), p, rules)
    rows += _covariance_rows(result, p, rules) + _end_rows(result, p)
    frame = pd.DataFrame(rows, columns=["parameter", "prior", "source"])
    label = "default" if rules == PRIOR_RULES else f"default of bayes_alliance {rules}"
    frame["source"] = f"{label}: " + frame["source"]
    return frame.set_index("parameter")


def prior_rules(result: MechanismResult) -> str:
    """The prior rules the fit used: recorded in its provenance since they are shared with the
    joint model; a file without the record was fitted with the rules of 0.1."""
    return str(result.provenance.get("prior_rules", LEGACY_RULES))


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
    parts.append("Priors were weakly informative and scaled to the data (see the table of priors).")
    parts.append(sampling_sentence(result.provenance, result.convergence))
    parts.append(
        f"We report posterior means with {interval_name(ci_prob, CI_KIND)}s (highest-density "
        "intervals), every effect computed per posterior draw."
    )
    return " ".join(parts)


def references() -> list[str]:
    """Full references of every citation in a mechanism report, alphabetical."""
    cited = {k: REFERENCES[k] for k in _SHARED}
    return sorted({**cited, **MECHANISM_REFERENCES}.values())


__all__ = [
    "MECHANISM_REFERENCES",
    "columns",
    "data_scale_sentence",
    "equations",
    "methods_paragraph",
    "model_lines",
    "priors_table",
    "references",
]
