"""A spec written as a model string (:func:`to_formula`), and a model string joined with the
options given beside it (:func:`combine`: a flag, keyword or spec-file key that contradicts the
string is an error naming both)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bayes_alliance.data.roles import Roles
from bayes_alliance.spec.formula import ParsedFormula
from bayes_alliance.spec.formula_terms import TERM_KEYS
from bayes_alliance.spec.model_spec import ModelSpec
from bayes_alliance.spec.options import MODEL, ROLES

__all__ = ["combine", "roles_values", "to_formula"]

# Roles a term writes; the others are written as ``name = column``.
_TERM_ROLES = ("outcome", "predictor", "patient", "therapist", "covariates", "crossed")


def _same(a: Any, b: Any) -> bool:
    norm = lambda v: list(v) if isinstance(v, tuple | list) else v  # noqa: E731
    return bool(norm(a) == norm(b))


def combine(
    parsed: ParsedFormula,
    roles: Mapping[str, Any],
    model: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model string's roles and options joined with those given beside it.

    Parameters
    ----------
    parsed
        The parsed model string.
    roles, model
        Values given beside it (flags, keywords or a spec file's keys; None: not given).
    labels
        How the user wrote each key (e.g. ``"--no-reverse-lag"``); default the key.

    Raises
    ------
    ValueError
        Naming each option given both ways with different values, and both spellings.
    """
    labels = labels or {}
    out_roles, out_model = dict(parsed.roles), dict(parsed.model)
    clashes = []
    for given, mine in ((roles, out_roles), (model, out_model)):
        for key, value in given.items():
            if value is None:
                continue
            if key in mine and not _same(mine[key], value):
                clashes.append(
                    f"{labels.get(key, key)} ({value!r}) contradicts the model string's "
                    f"{parsed.sources.get(key, key)!r} ({key} = {mine[key]!r})"
                )
            mine[key] = value
    if clashes:
        raise ValueError(
            "; ".join(clashes) + ". Give each option once: in the model string or beside it."
        )
    return {k: v for k, v in out_roles.items() if v is not None}, out_model


def to_formula(spec: ModelSpec, roles: Roles | Mapping[str, Any]) -> str:
    """The model string of ``spec`` with the column roles ``roles``: parsing it gives the same
    roles and spec (priors aside: they stay in ``priors=`` / ``[priors]``).

    The regressions come first (the outcome's, then the predictor's in the bivariate model),
    then ``sigma ~ ...``, the indicators, and ``name = value`` for every option and role no
    term expresses that differs from its default.

    Raises
    ------
    ValueError
        The spec lists adjusting covariates explicitly (``ModelSpec.covariates``, Python
        only): a model string adjusts for every declared covariate that is not a baseline.
    """
    r = dict(roles) if isinstance(roles, Mapping) else roles_values(roles)
    y, x = r["outcome"], r["predictor"]
    declared = list(r.get("covariates") or ())
    implied = [c for c in declared if c not in spec.baseline]
    if spec.covariates and list(spec.covariates) != implied:
        raise ValueError(
            f"covariates {list(spec.covariates)} are chosen explicitly; a model string adjusts "
            f"for every declared covariate that is not a baseline ({implied})"
        )
    var1 = spec.dynamics == "var1"
    y_terms: list[str] = []
    if spec.same_session == "predictor_to_outcome":
        y_terms.append(x)
    if var1:
        y_terms += [f"lag({x})", f"lag({y})"]
    if spec.trend:
        y_terms.append(f"trend({r['session']})")
    for c in declared:
        y_terms.append(f"baseline({c})" if c in spec.baseline else c)
    y_terms += [f"lag({x}):{m}" for m in spec.moderators]
    y_terms += _groups(spec, r)
    lines = [f"{y} ~ " + " + ".join(y_terms)]
    if spec.bivariate:
        x_terms = [y] if spec.same_session == "outcome_to_predictor" else []
        if var1:
            x_terms.append(f"lag({x})")
            if spec.reverse_lag:
                x_terms.append(f"lag({y})")
        lines.append(f"{x} ~ " + " + ".join(x_terms or ["1"]))
    if spec.random_innovations:
        levels = (
            f"{r['therapist']}/{r['patient']}"
            if "therapist" in spec.random_innovations
            else r["patient"]
        )
        lines.append(f"sigma ~ (1 | {levels})")
    for col, listed in ((x, spec.predictor_indicators), (y, spec.outcome_indicators)):
        if listed:
            lines.append(f"{col} =~ " + " + ".join(listed))
    lines += _settings(spec, r, var1)
    if r.get("crossed") and r.get("therapist") and spec.therapist_level:
        lines.append(f"patient = {r['patient']}")  # crossed terms alone do not say which
    return "\n".join(lines)


def roles_values(roles: Roles) -> dict[str, Any]:
    """The option table's values of ``roles``."""
    return {k: getattr(roles, k) for k in ROLES.names}


def _groups(spec: ModelSpec, r: Mapping[str, Any]) -> list[str]:
    p, t = r["patient"], r.get("therapist") if spec.therapist_level else None
    slope = {
        lvl: f"lag({r['predictor']})" if lvl in spec.random_slopes else "1"
        for lvl in ("patient", "therapist")
    }
    if t is None:
        return [f"({slope['patient']} | {p})"]
    if r.get("crossed"):
        return [f"({slope['therapist']} | {t})", f"({slope['patient']} | {p})"]
    if slope["patient"] == slope["therapist"]:
        return [f"({slope['patient']} | {t}/{p})"]
    return [f"({slope['therapist']} | {t})", f"({slope['patient']} | {t}:{p})"]


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, tuple | list):
        return "[" + ", ".join(str(i) for i in v) + "]"
    return str(v)


def _settings(spec: ModelSpec, r: Mapping[str, Any], var1: bool) -> list[str]:
    out = []
    for key in ROLES.names:
        if key in _TERM_ROLES or r.get(key) in (None, False, (), []):
            continue
        if key == "session" and spec.trend:
            continue
        if key == "predictor":
            continue
        out.append(f"{key} = {_value(r[key])}")
    if not var1 and not spec.bivariate:  # no lag() and no predictor regression name it
        out.insert(0, f"predictor = {r['predictor']}")
    expressed = set(TERM_KEYS)
    if not (spec.bivariate and var1):
        expressed.discard("reverse_lag")  # no predictor regression with lags to show it
    for key in MODEL.names:
        value = getattr(spec, key)
        if key in expressed or _same(value, MODEL.default(key)):
            continue
        out.append(f"{key} = {_value(value)}")
    return out
