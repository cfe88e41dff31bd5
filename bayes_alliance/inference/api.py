"""One call from a table to a fitted model, for notebooks and scripts.

:func:`fit_frame` validates the long table, builds the model from keyword options and samples
it: the same steps as :class:`~bayes_alliance.data.session_data.SessionData` ->
:class:`~bayes_alliance.spec.model_spec.ModelSpec` -> :func:`bayes_alliance.inference.fit.fit`, which stay
available for control (compiled refits, custom priors, several models on one data set).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from bayes_alliance.data.roles import Roles
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference.fit import FitResult, fit
from bayes_alliance.spec.formula import looks_like_formula, parse_formula
from bayes_alliance.spec.formula_text import combine
from bayes_alliance.spec.model_spec import ModelSpec
from bayes_alliance.spec.options import MODEL, ROLES, make_model, make_roles, with_indicators


def model_spec(
    spec: ModelSpec | None,
    roles: Roles,
    options: dict[str, Any],
    priors: dict[str, Any] | None = None,
) -> ModelSpec:
    """A :class:`ModelSpec` from keyword options, checked by the same option table as the
    command line's flags and spec files (:mod:`bayes_alliance.spec.options`: unknown names get the
    closest option, values their type, moderators must be covariates); on top of ``spec`` when
    given."""
    for name in MODEL.names:
        kind = MODEL.option(name).kind
        if kind == "names" and isinstance(options.get(name), str):  # one level or column
            options[name] = [options[name]]
        elif isinstance(options.get(name), tuple):  # the table checks the spec-file form
            options[name] = list(options[name])
    values = MODEL.check(options, where="model options")
    if spec is None:
        return make_model(values, roles, priors)
    changed = replace(spec, **values)
    kept = {k: val for k, val in changed.to_dict().items() if k in MODEL.names}
    return make_model(kept, roles, priors if priors is not None else changed.priors)


def fit_frame(
    df: pd.DataFrame | str | os.PathLike[str],
    data: pd.DataFrame | str | os.PathLike[str] | None = None,
    *,
    patient: str | None = None,
    session: str | None = None,
    predictor: str | None = None,
    outcome: str | None = None,
    therapist: str | None = None,
    covariates: Sequence[str] = (),
    crossed: bool = False,
    spec: ModelSpec | None = None,
    priors: dict[str, Any] | None = None,
    missing_codes: object = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    random_seed: int | None = None,
    progressbar: bool = True,
    log_likelihood: bool = True,
    **options: Any,
) -> FitResult:
    """Fit the joint trait/state model to a long table in one call.

    ``fit_frame(df, patient=..., ...)`` names the columns and options by keyword;
    ``fit_frame("symptoms ~ lag(alliance) + ...", df)`` by a model string (docs/formulas.md),
    with any options it leaves out as keywords beside it.

    Parameters
    ----------
    df
        One row per patient and session, or the path of a file in a format
        :func:`bayes_alliance.data.readers.read_table` reads (CSV, Parquet, Excel, SPSS, Stata);
        or a model string (text with ``~``), the data following as ``data``.
    data
        The data (table or path) after a model string; None otherwise.
    patient, session, predictor, outcome, therapist, covariates, crossed
        Column roles, as in :meth:`SessionData.from_frame` (required without a model string,
        which may name them instead). Without ``therapist`` the model has two levels. A role
        or option given both in the model string and as a keyword with another value is an
        error naming both.
    spec
        A :class:`ModelSpec` to start from; keyword ``options`` override its fields.
    priors
        Prior overrides by parameter name, e.g.
        ``{"sd_therapist_outcome": {"dist": "HalfNormal", "sigma": 0.2}}``.
    missing_codes
        Values that mean "missing" (``-99``, ``[-99, -98]`` or ``{"symptoms": [-99, 999]}``),
        set to missing before validation, as in :meth:`SessionData.from_frame`.
    draws, tune, chains, random_seed, progressbar, log_likelihood
        As in :func:`bayes_alliance.inference.fit.fit` (no seed: one is drawn and recorded).
    **options
        Any :class:`ModelSpec` field, e.g. ``random_slopes=("patient",)``,
        ``same_session="predictor_to_outcome"``, ``first_session="free"``.

    Returns
    -------
    FitResult
        ``.summary()``, ``.effects()``, ``.r2()``, ``.idata`` (ArviZ DataTree).

    Examples
    --------
    >>> import bayes_alliance as ba  # doctest: +SKIP
    >>> result = ba.fit_frame(df, patient="id", session="session", predictor="wai",
    ...                       outcome="phq", therapist="therapist", random_seed=1)  # doctest: +SKIP
    """
    role_values = {
        "patient": patient,
        "session": session,
        "predictor": predictor,
        "outcome": outcome,
        "therapist": therapist,
        "covariates": list(covariates) or None,
        "crossed": crossed or None,
    }
    options = dict(options)
    if looks_like_formula(df):
        if data is None:
            raise TypeError("fit_frame(model_string, data): give the data after the model string")
        assert isinstance(df, str)
        labels = {k: f"{k}=" for k in (*role_values, *options)}
        if not isinstance(data, pd.DataFrame):
            from bayes_alliance.data.readers import read_table

            data = read_table(data)
        parsed = parse_formula(df, role_values, columns=list(data.columns))
        role_values, options = combine(parsed, role_values, options, labels)
        df = data
    elif data is not None:
        raise TypeError(
            "fit_frame's second argument is the data after a model string (text with '~'); "
            f"the first is not one: {str(df)[:60]!r}"
        )
    given = {k: list(v) if isinstance(v, tuple) else v for k, v in role_values.items()}
    roles = make_roles(ROLES.check({k: v for k, v in given.items() if v is not None}))
    model = model_spec(spec, roles, options, priors)  # before reading: fail fast
    if isinstance(df, pd.DataFrame):
        table = df
    else:
        from bayes_alliance.data.readers import read_table

        table = read_table(df)
    session_data = SessionData.from_roles(
        table, with_indicators(roles, model), missing_codes=missing_codes
    )
    return fit(
        session_data,
        model,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        progressbar=progressbar,
        log_likelihood=log_likelihood,
    )
