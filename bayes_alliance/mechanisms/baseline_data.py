"""The baseline characteristics of a mechanism model's between-level mediation, read from the
data's patient-level covariates: checked (complete, not constant) and centred over patients.

Numpy only, and importing nothing of the mechanism models, so that the spec (its checks), the
priors (the baseline's SDs) and the model (its values) all read the same matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.data.validate import DataValidationError, Problem

BASELINE_DIM = "baseline"  # the dimension of the baseline columns (as the joint model names it)


def baseline_matrix(data: SeriesData, columns: Sequence[str]) -> np.ndarray:
    """The baseline columns' raw values, patients x columns, checked.

    Raises
    ------
    ValueError
        A column that is not a patient-level covariate of the data.
    DataValidationError
        Every column with missing values (naming the patients' ids) or with one value for all
        patients.
    """
    have = list(data.base.covariates.columns)
    unknown = [c for c in columns if c not in have]
    if unknown:
        raise ValueError(
            f"baseline column(s) {unknown} are not patient-level covariates of the series data; "
            f"read them with SeriesData.from_frame(..., covariates=[...]) (have: {have})"
        )
    z = data.base.covariates[list(columns)].to_numpy(dtype=float)
    ids = np.asarray(data.base.patients)
    problems = []
    for j, col in enumerate(columns):
        bad = ~np.isfinite(z[:, j])
        if bad.any():
            problems.append(
                Problem(
                    f"baseline values missing for {int(bad.sum())} patient(s); between-level "
                    "mediation needs every patient's baseline (drop those patients or impute "
                    "the values first)",
                    column=col,
                    ids=tuple(ids[bad].tolist()),
                )
            )
        elif not np.std(z[:, j]) > 0:
            problems.append(Problem("baseline column has the same value for every patient", col))
    if problems:
        raise DataValidationError(problems)
    return z


def baseline_values(data: SeriesData, columns: Sequence[str]) -> np.ndarray:
    """The baseline columns centred over patients (each patient counts once, whatever the
    length of its series), patients x columns: the intercepts are then the latent means of a
    patient with an average baseline (:func:`baseline_matrix` checks them)."""
    z = baseline_matrix(data, columns)
    return z - z.mean(axis=0)


def baseline_sd(data: SeriesData, columns: Sequence[str]) -> np.ndarray:
    """Each baseline column's SD over patients (the scale of its paths' priors)."""
    return baseline_matrix(data, columns).std(axis=0)


__all__ = ["BASELINE_DIM", "baseline_matrix", "baseline_sd", "baseline_values"]
