"""The table of the priors a mechanism fit used: every free parameter's prior with the numbers
the model builder used (:func:`bayes_alliance.mechanisms.priors.mechanism_priors`, the same
scales :mod:`bayes_alliance.mechanisms.model` and :mod:`bayes_alliance.mechanisms.integrated`
read) and how each default was scaled to the data.

Every free random variable of the model has rows here except the standard-normal offsets of
non-centred parts and, in the sampled form, the latent means and missing cells themselves
(their priors are the covariances listed); ``tests/test_mechanism_report_complete.py`` reads
the priors back from the model graph to hold the table to that.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bayes_alliance.core.vocab import PATIENT, THERAPIST
from bayes_alliance.mechanisms.fit import MechanismResult
from bayes_alliance.mechanisms.priors import (
    LEGACY_RULES,
    OLD_LKJ_ETA,
    PRIOR_RULES,
    MechanismPriors,
    mechanism_priors,
)
from bayes_alliance.mechanisms.spec import path_name
from bayes_alliance.model.priors import log_innovation_sd_sigma


def _roles(result: MechanismResult) -> dict[str, str]:
    """The series' columns by role."""
    return dict(zip(result.data.roles, result.data.columns, strict=True))


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


def _lkj(eta: float) -> tuple[str, str]:
    return (f"LKJ(eta={eta:g})", "fixed (correlations have no units)")


# Innovations, first states and random paths keep the LKJ shape of before rules 0.3.
_LKJ = _lkj(OLD_LKJ_ETA)


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
        if level == "patient" and spec.lag_trait_covariance:
            continue  # one LKJ with the random lags' deviations: corr_paths_patient below
        if len(cols) > 1 or (level == "patient" and p.trend is not None):  # one: no LKJ
            rows.append((f"corr_{level}", *(_lkj(p.trait_eta) if trait else _LKJ)))
    names = _roles(result)
    for r, (to, source) in enumerate(spec.random_paths or ()):
        share = "0.2" if legacy else "0.25"
        rule = f"σ = {share} SD({names[to]}) / SD({names[source]})"
        rows.append((f"sd_paths[{path_name(to, source)}]", _half(p.sd_paths[r]), rule))
    if spec.lag_trait_covariance:
        # the random lags' deviations and the patients' coefficients in one covariance
        lkj, _ = _lkj(p.trait_eta)
        what = "one correlation matrix of the random lags and the latent means (and change)"
        rows.append(("corr_paths_patient", lkj, f"{what}: corr_paths, corr_patient and both"))
    elif len(spec.random_paths or ()) > 1:
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


def _option_rows(result: MechanismResult, p: MechanismPriors) -> list[Row]:
    """The priors of the options on top of the VAR: measurement error, random innovations and
    a baseline's paths (none without them)."""
    spec, names = result.spec, _roles(result)
    rows: list[Row] = []
    if spec.measurement_error and p.measurement_error is not None:
        roles = list(result.data.roles)
        for role in spec.measurement_error:
            scale = p.measurement_error[roles.index(role)]
            rows.append((f"measurement_error_sd[{names[role]}]", _half(scale), "σ = 0.5 SD"))
    if spec.random_innovations:
        scale = log_innovation_sd_sigma(PATIENT)
        rule = f"σ = {scale:g} (no units: SD of the log innovation SD over patients)"
        rows += [(f"sd_log_innovation[{c}]", _half(scale), rule) for c in result.data.columns]
    b = p.baseline
    if b is not None:
        units = "therapists" if spec.baseline_level == THERAPIST else "patients"
        for j, c in enumerate(result.data.columns):
            for r, z in enumerate(spec.baseline):
                rule = f"σ = SD({c}) / SD({z}) over {units}"
                rows.append((f"baseline_effect[{c}, {z}]", _normal(0, b.series[j, r]), rule))
        if b.end is not None:
            o = result.data.end_column
            unit = "logit 1" if spec.end_family == "binary" else f"SD({o})"
            for r, z in enumerate(spec.baseline):
                rule = f"σ = {unit} / SD({z}) over {units}"
                rows.append((f"baseline_effect_end[{z}]", _normal(0, b.end[r]), rule))
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
    rows += _option_rows(result, p)
    frame = pd.DataFrame(rows, columns=["parameter", "prior", "source"])
    label = "default" if rules == PRIOR_RULES else f"default of bayes_alliance {rules}"
    frame["source"] = f"{label}: " + frame["source"]
    return frame.set_index("parameter")


def prior_rules(result: MechanismResult) -> str:
    """The prior rules the fit used: recorded in its provenance since they are shared with the
    joint model; a file without the record was fitted with the rules of 0.1."""
    return str(result.provenance.get("prior_rules", LEGACY_RULES))


__all__ = ["prior_rules", "priors_table"]
