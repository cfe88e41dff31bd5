"""Declarative analysis specs (TOML): data columns, model options, priors, sampler, seed.

A spec file reproduces an analysis exactly from spec + data + seed. Every key is checked: an
unknown key is an error that names the section and suggests the closest known key, and every
value's type is checked against the option table (:mod:`bayes_alliance.spec.options`) that the
command line is built from too.

The canonical analyses ship inside the package (``bayes_alliance/specs/*.toml``; the
repository's ``models/`` folder is a link to it) and are loaded by name:
``load_spec("cross_lagged")``, ``bayes-alliance fit --spec cross_lagged``.

Example::

    name = "cross_lagged"
    description = "Bivariate latent-centred cross-lagged model"

    [data]
    patient = "patient"
    therapist = "therapist"
    session = "session"
    predictor = "alliance"
    outcome = "symptoms"
    missing_codes = { symptoms = [-99, 999], "*" = -98 }   # optional; "*": every value column

    [model]            # any field of bayes_alliance.spec.model_spec.ModelSpec
    random_slopes = ["patient"]
    # or the model string (docs/formulas.md), which may name the columns too:
    # formula = "symptoms ~ lag(alliance) + lag(symptoms) + (lag(alliance) | patient)"

    [priors.state_effect]
    dist = "Normal"
    mu = 0.0
    sigma = 0.5

    [sampler]
    draws = 1000
    tune = 1000
    chains = 2
    seed = 20261126
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayes_alliance.core import vocab
from bayes_alliance.core.vocab import OUTCOME
from bayes_alliance.data.missing_codes import MissingCodes
from bayes_alliance.data.roles import Roles
from bayes_alliance.spec.formula import parse_formula
from bayes_alliance.spec.formula_text import combine
from bayes_alliance.spec.model_spec import ModelSpec
from bayes_alliance.spec.options import (
    MODEL,
    ROLES,
    SAMPLER,
    SamplerSettings,
    check_keys,
    make_model,
    make_roles,
)

__all__ = [
    "DATE_TIME",
    "NO_OUTCOME",
    "SPECS_DIR",
    "AnalysisSpec",
    "SamplerSettings",
    "load_spec",
    "parse_spec",
    "shipped_specs",
    "single_model",
    "spec_path",
]

TOP_KEYS = ("name", "description", "data", "model", "priors", "sampler")
# [data] keys about how the session column is read, not column roles: ``dates = true`` (the
# session column holds dates, as --dates) and ``date_format`` (as --date-format).
DATE_KEYS = ("dates", "date_format")
# The time column that dates become in continuous time: each session's time since the
# patient's first one, in the model's time unit (added by the reader, see cli.commands).
DATE_TIME = "time_since_first_session"
# The shipped specs: package data, so an installed wheel finds them by name.
SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"


@dataclass(frozen=True)
class AnalysisSpec:
    """A complete, reproducible analysis: which columns, which model, how to sample."""

    name: str
    description: str
    data: dict[str, Any]
    model: ModelSpec
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    path: Path | None = None
    # [data] dates = true: the session column holds dates (read as --dates reads them)
    dates: bool = False
    date_format: str | None = None
    # [data] missing_codes: values that mean missing (as --missing-code), in MissingCodes.coerce form
    missing_codes: dict[str, list[float]] = field(default_factory=dict)

    @property
    def single(self) -> bool:
        """Whether ``[data]`` names no outcome: the predictor's series is fitted alone (a
        mechanism model of one series), as ``fit`` without ``--outcome`` does."""
        return not self.data.get(OUTCOME)

    @property
    def roles(self) -> Roles:
        """The column roles of ``[data]`` (a spec with an outcome; see :attr:`single`)."""
        if self.single:
            raise ValueError(
                "this spec names no outcome in [data]: it fits the predictor's series alone "
                "and has no roles of the main model"
            )
        return make_roles(self.data)


def _table(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"[{key}] must be a table of keys, got {value!r}")
    return dict(value)


def parse_spec(raw: dict[str, Any], source: str = "spec") -> AnalysisSpec:
    """Build an :class:`AnalysisSpec` from parsed TOML, checking every key and value."""
    check_keys(raw, TOP_KEYS, source)
    table = _table(raw, "data")
    dates, date_format = table.pop("dates", False), table.pop("date_format", None)
    try:
        codes = MissingCodes.coerce(table.pop("missing_codes", None))
    except ValueError as exc:
        raise ValueError(f"[data] missing_codes: {exc}") from None
    if not isinstance(dates, bool):
        raise ValueError(f"[data] dates must be true or false, got {dates!r}")
    if date_format is not None and not isinstance(date_format, str):
        raise ValueError(
            f'[data] date_format must be a string such as "%d.%m.%Y", got {date_format!r}'
        )
    data = ROLES.check(table)
    priors = _table(raw, "priors")
    for name, prior in priors.items():
        if not isinstance(prior, Mapping):
            raise ValueError(f'[priors.{name}] must be a table such as dist = "Normal", sigma = 1')
    model_table = _table(raw, "model")
    formula = model_table.pop("formula", None)
    values = MODEL.check(model_table)
    if formula is not None:
        data, values = _with_formula(formula, data, values)
    # Without an outcome the predictor's series is fitted alone (``fit`` without --outcome).
    missing = [k for k in ROLES.required if k not in data and k != OUTCOME]
    if missing:
        raise ValueError(f"[data] must name the columns {missing}")
    if dates and data.get(OUTCOME) and values.get("time_model") != "sessions":
        # dates are times, as with --dates: continuous time unless time_model = "sessions"
        if data.get("time") is not None:
            raise ValueError("[data] names both dates = true and a time column: give one")
        data["time"] = DATE_TIME
        values["time_model"] = "continuous"
    if data.get(OUTCOME):
        model = make_model(values, make_roles(data), priors)
    else:
        model = single_model(data, values, priors)
    return AnalysisSpec(
        name=str(raw.get("name", source)),
        description=str(raw.get("description", "")),
        data=data,
        model=model,
        sampler=SAMPLER.build(SAMPLER.check(_table(raw, "sampler"))),
        dates=dates,
        date_format=date_format,
        missing_codes=codes.to_dict(),
    )


def _with_formula(
    formula: object, data: dict[str, Any], values: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``[model] formula``'s roles and options joined with the other keys of ``[data]`` and
    ``[model]`` (a key that contradicts the model string is an error naming both)."""
    if not isinstance(formula, str):
        raise ValueError(f"[model] formula must be a string (a model string), got {formula!r}")
    parsed = parse_formula(formula, data)
    labels = {k: f"[data] {k}" for k in data} | {k: f"[model] {k}" for k in values}
    roles, model = combine(parsed, data, values, labels)
    return ROLES.check(_as_lists(roles)), MODEL.check(_as_lists(model))


def _as_lists(values: Mapping[str, Any]) -> dict[str, Any]:
    """Tuples of names as the spec-file form (lists) the option table checks."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


# [data] keys that need an outcome series (as their flags do without --outcome).
NEEDS_OUTCOME = ("mediator", "second_predictor", "crossed")
NO_OUTCOME = (
    "need an outcome column (outcome in [data]); without one the predictor's series is "
    "fitted alone (its autoregression, trait and state variances), so drop them or name the "
    "outcome"
)


def single_model(
    data: Mapping[str, Any], values: Mapping[str, Any], priors: Mapping[str, Any]
) -> ModelSpec:
    """The model options of a spec without an outcome (the predictor's series alone): three
    levels exactly when a therapist column is named (unless set); ``[data]`` keys that need an
    outcome are refused here, model options by the mechanism model's own check (the command
    line's ``mechanism_spec``). Covariates may only declare the baseline's columns (the one
    use of a patient-level column for one series; without --outcome they need no
    declaration)."""
    given = [f"[data] {k}" for k in NEEDS_OUTCOME if data.get(k)]
    extra = [c for c in data.get("covariates", ()) if c not in values.get("baseline", ())]
    if extra:
        given.append(f"[data] covariates {extra} (other than the baseline's)")
    if given:
        raise ValueError(f"{', '.join(given)} {NO_OUTCOME}")
    values = {"therapist_level": data.get("therapist") is not None, **values}
    return MODEL.build(values, priors=dict(priors))


def shipped_specs() -> list[str]:
    """Names of the specs that ship with the package (``load_spec(name)`` loads one)."""
    return sorted(p.stem for p in SPECS_DIR.glob("*.toml"))


def spec_path(path_or_name: str | Path) -> Path:
    """The file a spec argument means: a path (``.toml`` may be omitted), else a shipped name.

    A path that exists wins over a shipped spec of the same name, so a user's own
    ``cross_lagged.toml`` in the working folder is never shadowed.

    Raises
    ------
    FileNotFoundError
        Neither a file nor a shipped name; the message lists the shipped names.
    """
    p = Path(path_or_name)
    for candidate in (p, p.with_suffix(".toml")):
        if candidate.is_file():
            return candidate
    bare = p.parent == Path(".") and p.suffix in ("", ".toml")
    if bare and (SPECS_DIR / f"{p.stem}.toml").is_file():
        return SPECS_DIR / f"{p.stem}.toml"
    names = shipped_specs()
    hint = vocab.suggest(p.stem, names).replace("?", " (a shipped spec)?")
    raise FileNotFoundError(
        f"no spec file at {str(path_or_name)!r} and no shipped spec of that name.{hint} "
        f"Shipped specs: {', '.join(names)}."
    )


def load_spec(path: str | Path) -> AnalysisSpec:
    """Read and validate a spec file, or a shipped spec by name (``load_spec("cross_lagged")``).

    Raises
    ------
    FileNotFoundError
        No such file and no shipped spec of that name.
    ValueError
        Not valid TOML, or an unknown key or a value of the wrong type.
    """
    p = spec_path(path)
    try:
        with p.open("rb") as fh:
            raw = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p} is not valid TOML: {exc}") from None
    spec = parse_spec(raw, p.stem)
    return dataclasses.replace(spec, path=p)
