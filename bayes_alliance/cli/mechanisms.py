"""``bayes-alliance fit`` for the mechanism models: a data file with a ``--mediator``, a
``--second-predictor`` or an ``--end-outcome`` column goes to
:func:`bayes_alliance.mechanisms.fit.fit_mechanisms`; its options and data are settled here,
and the output folder (``fit.nc``, ``effects.csv``, ``summary.csv``, ``convergence.json`` and
the report with its path diagram) is written by :mod:`bayes_alliance.cli.output`, as the main
model's is."""

from __future__ import annotations

import pandas as pd

from bayes_alliance.cli.common import CLIError
from bayes_alliance.cli.output import key_effects_text
from bayes_alliance.core.vocab import THERAPIST
from bayes_alliance.data.roles import Roles
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.fit import MECHANISM_KEY_EFFECTS
from bayes_alliance.mechanisms.spec import MechanismSpec, lag_pairs
from bayes_alliance.spec.model_spec import ModelSpec

# Rows printed after a fit, by design (those present): the family's key effects.
PRINTED = MECHANISM_KEY_EFFECTS


def mechanism_spec(spec: ModelSpec, roles: tuple[str, ...]) -> MechanismSpec:
    """The mechanism model's options from the main model's: the therapist level, the random
    lags (``--random-lags``, replacing the design's default random paths), measurement
    error (on every series), patient-level random innovations and a patient-level baseline
    (``--baseline``: between-level mediation, :mod:`bayes_alliance.mechanisms.baseline`) carry
    over; any other option set is an error naming it."""
    if spec.baseline and spec.baseline_level == THERAPIST:
        raise CLIError(
            "--baseline-level therapist is not available with --mediator, --second-predictor "
            "or --end-outcome: the mechanism models take a patient-level baseline only "
            "(--baseline-level patient), acting on the patient part of the latent means"
        )
    plain = ModelSpec(
        therapist_level=spec.therapist_level,
        random_lags=spec.random_lags,
        measurement_error=spec.measurement_error,
        random_innovations=tuple(r for r in spec.random_innovations if r == "patient"),
        baseline=spec.baseline,
        baseline_level=spec.baseline_level,
    ).to_dict()
    given = spec.to_dict()
    changed = sorted(k for k in given if k != "priors" and given[k] != plain.get(k))
    if changed or spec.priors:
        raise CLIError(
            f"model option(s) {changed or ['priors']} are not available with --mediator, "
            "--second-predictor or --end-outcome (the mechanism models have their own fixed "
            "structure: see docs/methods.md); drop them, or fit the main model without those "
            "columns"
        )
    try:
        paths = lag_pairs(spec.random_lags, roles) if spec.random_lags else None
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return MechanismSpec(
        therapist_level=spec.therapist_level,
        random_paths=paths,
        measurement_error=roles if spec.measurement_error else (),
        random_innovations="patient" in spec.random_innovations,
        baseline=tuple(spec.baseline),
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


def effects_text(table: pd.DataFrame, ci_prob: float) -> str:
    """The key effects of a mechanism fit's effects table, as printed after the fit."""
    return key_effects_text(table.set_index("parameter"), PRINTED, ci_prob, head="effect", width=34)


__all__ = ["PRINTED", "effects_text", "mechanism_spec", "series_data"]
