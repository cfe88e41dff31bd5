"""``bayes-alliance fit`` for the mechanism models: a data file with a ``--mediator``, a
``--second-predictor`` or an ``--end-outcome`` column, or a ``--predictor`` without an
``--outcome`` (that series alone), goes to
:func:`bayes_alliance.mechanisms.fit.fit_mechanisms`; its options and data are settled here,
and the output folder (``fit.nc``, ``effects.csv``, ``summary.csv``, ``convergence.json`` and
the report with its path diagram) is written by :mod:`bayes_alliance.cli.output`, as the main
model's is."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from bayes_alliance.cli.common import CLIError
from bayes_alliance.cli.output import key_effects_text
from bayes_alliance.data.roles import Roles
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.spec import MechanismSpec, lag_levels
from bayes_alliance.spec import specfile
from bayes_alliance.spec.model_spec import ModelSpec
from bayes_alliance.spec.options import MODEL, ROLES

# Why the mechanism models refuse the main model's other options (the end of the message).
FIXED_STRUCTURE = (
    "are not available with --mediator, --second-predictor or --end-outcome (the mechanism "
    "models have their own fixed structure: see docs/methods.md); drop them, or fit the main "
    "model without those columns"
)
# The same without an outcome series: those options act on the outcome or its paths.
NO_OUTCOME = (
    "need an outcome series (--outcome); without one the predictor's series is fitted alone "
    "(its autoregression, trait and state variances), so drop them or name the outcome"
)


# The same for a spec file without an outcome column (its keys, not the flags).
SPEC_NO_OUTCOME = specfile.NO_OUTCOME


def mechanism_spec(
    spec: ModelSpec, roles: tuple[str, ...], why: str = FIXED_STRUCTURE
) -> MechanismSpec:
    """The mechanism model's options from the main model's: the therapist level, the random
    lags (``--random-lags``, replacing the design's default random paths), measurement
    error (on every series), patient-level random innovations and a baseline (``--baseline``
    at ``--baseline-level`` patient, therapist or auto: between-level mediation,
    :mod:`bayes_alliance.mechanisms.baseline`) carry over; any other option set is an error
    naming it, followed by ``why``."""
    plain = ModelSpec(
        therapist_level=spec.therapist_level,
        random_lags=spec.random_lags,
        lag_trait_covariance=spec.lag_trait_covariance,
        measurement_error=spec.measurement_error,
        random_innovations=tuple(r for r in spec.random_innovations if r == "patient"),
        baseline=spec.baseline,
        baseline_level=spec.baseline_level,
    ).to_dict()
    given = spec.to_dict()
    changed = sorted(k for k in given if k != "priors" and given[k] != plain.get(k))
    if changed or spec.priors:
        raise CLIError(f"model option(s) {changed or ['priors']} {why}")
    try:
        paths, between = lag_levels(spec.random_lags, roles) if spec.random_lags else (None, ())
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if between and not spec.therapist_level:
        raise CLIError(
            "random lags between therapists (NAME@therapist in --random-lags) need a "
            "therapist column (--therapist)"
        )
    return MechanismSpec(
        therapist_level=spec.therapist_level,
        random_paths=paths,
        measurement_error=roles if spec.measurement_error else (),
        random_innovations="patient" in spec.random_innovations,
        baseline=tuple(spec.baseline),
        baseline_level=spec.baseline_level,
        therapist_paths=between,
        lag_trait_covariance=spec.lag_trait_covariance,
    )


def series_data(df: pd.DataFrame, roles: Roles) -> SeriesData:
    """The mechanism model's data from the table and the column roles."""
    if roles.crossed:
        raise CLIError("crossed data are not supported by the mechanism models")
    return SeriesData.from_frame(
        df,
        patient=roles.patient,
        session=roles.session,
        predictor=roles.predictor,
        outcome=roles.outcome,
        therapist=roles.therapist,
        mediator=roles.mediator,
        second_predictor=roles.second_predictor,
        end_outcome=roles.end_outcome,
        covariates=roles.covariates,
    )


# Column roles that need an outcome series (and crossed data, which no mechanism model takes).
_WITH_OUTCOME = ("mediator", "second_predictor", "covariates", "crossed")


def single_inputs(
    args: argparse.Namespace, read: Callable[[str, str], pd.DataFrame]
) -> tuple[SeriesData, MechanismSpec]:
    """``fit`` with ``--predictor`` and no ``--outcome``: the predictor's series alone (k = 1,
    e.g. alliance dynamics without symptoms), with the options that apply to one series
    (therapist level, ``--random-lags predictor_autoregression``, measurement error,
    patient-level random innovations, an end-of-treatment outcome); a flag that needs an
    outcome is an error naming it. ``read(patient, session)`` gives the table."""
    given = [ROLES.flag(ROLES.option(k)) for k in _WITH_OUTCOME if getattr(args, k) is not None]
    if given:
        raise CLIError(f"{', '.join(given)} {NO_OUTCOME}")
    required = ("patient", "session", "predictor")
    missing = [ROLES.flag(ROLES.option(k)) for k in required if getattr(args, k) is None]
    if missing:
        raise CLIError(f"without --spec these flags are required: {', '.join(missing)}")
    model = MODEL.from_args(args)
    # --no-therapist fits two levels to three-level data, as for the main model
    therapist = None if model.get("therapist_level") is False else args.therapist
    spec = MODEL.build({"therapist_level": therapist is not None, **model}, priors={})
    columns = {"patient": args.patient, "session": args.session, "predictor": args.predictor}
    columns |= {"therapist": therapist, "end_outcome": args.end_outcome}
    return _single(columns, spec, read, NO_OUTCOME)


def spec_single_inputs(
    columns: Mapping[str, Any], spec: ModelSpec, read: Callable[[str, str], pd.DataFrame]
) -> tuple[SeriesData, MechanismSpec]:
    """``fit --spec`` with a spec file whose ``[data]`` names no outcome: the predictor's series
    alone, as :func:`single_inputs` fits it from the flags, with the same options refused
    (``[data]`` keys by :func:`bayes_alliance.spec.specfile.single_model`, model options
    here)."""
    # [model] therapist_level = false fits two levels to three-level data, as the flag does
    therapist = columns.get("therapist") if spec.therapist_level else None
    return _single({**columns, "therapist": therapist}, spec, read, SPEC_NO_OUTCOME)


def _single(
    columns: Mapping[str, Any],
    spec: ModelSpec,
    read: Callable[[str, str], pd.DataFrame],
    why: str,
) -> tuple[SeriesData, MechanismSpec]:
    """The series of one predictor and its mechanism options, refusing with ``why`` an
    option that needs an outcome."""
    df = read(columns["patient"], columns["session"])
    data = SeriesData.single(
        df,
        patient=columns["patient"],
        session=columns["session"],
        predictor=columns["predictor"],
        therapist=columns.get("therapist"),
        end_outcome=columns.get("end_outcome"),
        covariates=tuple(spec.baseline),
    )
    return data, mechanism_spec(spec, data.roles, why)


def effects_text(table: pd.DataFrame, ci_prob: float, design: str = "two_series") -> str:
    """The key effects of a mechanism fit's effects table, as printed after the fit."""
    rows = table.set_index("parameter")
    from bayes_alliance.mechanisms.fit import key_effects  # imports PyMC

    return key_effects_text(rows, key_effects(design), ci_prob, head="effect", width=34)


__all__ = [
    "FIXED_STRUCTURE",
    "NO_OUTCOME",
    "SPEC_NO_OUTCOME",
    "effects_text",
    "mechanism_spec",
    "series_data",
    "single_inputs",
    "spec_single_inputs",
]
