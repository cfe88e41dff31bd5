"""One call from a table to a fitted model, for notebooks and scripts.

:func:`fit_frame` validates the long table, builds the model from keyword options and samples
it: the same steps as :class:`~bayes_alliance.data.SessionData` ->
:class:`~bayes_alliance.spec.ModelSpec` -> :func:`bayes_alliance.fit.fit`, which stay
available for control (compiled refits, custom priors, several models on one data set).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from bayes_alliance.data import SessionData
from bayes_alliance.fit import FitResult, fit
from bayes_alliance.spec import ModelSpec

MODEL_OPTIONS = tuple(f.name for f in dataclasses.fields(ModelSpec))


def model_spec(spec: ModelSpec | None, therapist_level: bool, options: dict[str, Any]) -> ModelSpec:
    """A :class:`ModelSpec` from keyword options (on top of ``spec`` when given); unknown
    names get the closest option names in the message."""
    unknown = [k for k in options if k not in MODEL_OPTIONS]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, MODEL_OPTIONS, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TypeError(
            f"unknown model option(s) {', '.join(hints)}; the options are {list(MODEL_OPTIONS)}"
        )
    for name in ("random_slopes", "moderators", "baseline"):
        if isinstance(options.get(name), str):  # one level or column given as a string
            options[name] = (options[name],)
    if spec is None:
        return ModelSpec(**{"therapist_level": therapist_level, **options})
    return dataclasses.replace(spec, **options)


def fit_frame(
    df: pd.DataFrame | str | os.PathLike[str],
    *,
    patient: str,
    session: str,
    predictor: str,
    outcome: str,
    therapist: str | None = None,
    covariates: Sequence[str] = (),
    spec: ModelSpec | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    random_seed: int | None = None,
    progressbar: bool = True,
    log_likelihood: bool = True,
    **options: Any,
) -> FitResult:
    """Fit the joint trait/state model to a long table in one call.

    Parameters
    ----------
    df
        One row per patient and session, or the path of a file in a format
        :func:`bayes_alliance.readers.read_table` reads (CSV, Parquet, Excel, SPSS, Stata).
    patient, session, predictor, outcome, therapist, covariates
        Column roles, as in :meth:`SessionData.from_frame`. Without ``therapist`` the model
        has two levels.
    spec
        A :class:`ModelSpec` to start from; keyword ``options`` override its fields.
    draws, tune, chains, random_seed, progressbar, log_likelihood
        As in :func:`bayes_alliance.fit.fit` (no seed: one is drawn and recorded).
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
    if isinstance(df, pd.DataFrame):
        table = df
    else:
        from bayes_alliance.readers import read_table

        table = read_table(df)
    data = SessionData.from_frame(
        table,
        patient=patient,
        session=session,
        predictor=predictor,
        outcome=outcome,
        therapist=therapist,
        covariates=covariates,
    )
    model = model_spec(spec, therapist is not None, dict(options))
    return fit(
        data,
        model,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        progressbar=progressbar,
        log_likelihood=log_likelihood,
    )
