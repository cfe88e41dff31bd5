r"""The baseline characteristics of a mechanism model's between-level mediation, read from the
data's patient-level covariates: checked (complete, not constant; at the therapist level
constant within each therapist) and centred over the units of their level.

A patient-level baseline ``z_i`` is centred over patients; a therapist-level one ``w_j`` (a
therapist characteristic, given on every patient's rows) over therapists, each therapist
counted once whatever its caseload, as the joint model centres it
(:func:`bayes_alliance.model.covariates.baseline_unit_values`). Either way each patient's row
of :func:`baseline_values` is the value that moves its latent means: its own ``z_i``, or its
therapist's ``w_j``.

Numpy only, and importing nothing of the mechanism models, so that the spec (its checks), the
priors (the baseline's SDs) and the model (its values) all read the same matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bayes_alliance.core.vocab import PATIENT, THERAPIST
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.data.validate import DataValidationError, Problem

BASELINE_DIM = "baseline"  # the dimension of the baseline columns (as the joint model names it)
BASELINE_LEVELS = (PATIENT, THERAPIST)


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


def varying_within_therapist(data: SeriesData, columns: Sequence[str]) -> dict[str, object]:
    """For each column that takes two or more values among one therapist's patients, the first
    such therapist's id (the data's own id); {} without therapists. Values checked by
    :func:`baseline_matrix`."""
    ther = data.patient_therapist
    if ther is None:
        return {}
    z = baseline_matrix(data, columns)
    ids = data.base.therapists
    assert ids is not None
    out: dict[str, object] = {}
    for c, col in enumerate(columns):
        low = np.full(int(ther.max()) + 1, np.inf)
        high = np.full(int(ther.max()) + 1, -np.inf)
        np.minimum.at(low, ther, z[:, c])
        np.maximum.at(high, ther, z[:, c])
        bad = np.flatnonzero(high > low)
        if len(bad):
            out[col] = ids.tolist()[int(bad[0])]  # a plain id, e.g. 7, not np.int64(7)
    return out


def therapist_matrix(data: SeriesData, columns: Sequence[str]) -> np.ndarray:
    """A therapist-level baseline's raw values, therapists x columns, checked.

    Raises
    ------
    ValueError
        Data without therapists (no therapist column, or two levels).
    DataValidationError
        Every column that varies within a therapist (naming the column and one such
        therapist's id), or that has one value for all therapists; and
        :func:`baseline_matrix`'s problems.
    """
    ther = data.patient_therapist
    if ther is None:
        raise ValueError(
            "a therapist-level baseline needs patients nested in therapists (a therapist "
            "column and the therapist level)"
        )
    z = baseline_matrix(data, columns)
    varies = varying_within_therapist(data, columns)
    problems = [
        Problem(
            f"a therapist-level baseline must be constant within each therapist, but it varies "
            f"within therapist {tid!r}; use baseline_level 'patient' for a patient "
            "characteristic",
            column=col,
        )
        for col, tid in varies.items()
    ]
    w = np.zeros((int(ther.max()) + 1, len(columns)))
    w[ther] = z  # constant within each therapist (else refused below)
    for c, col in enumerate(columns):
        if col not in varies and not np.std(w[:, c]) > 0:
            problems.append(Problem("baseline column has the same value for every therapist", col))
    if problems:
        raise DataValidationError(problems)
    return w


def baseline_centre(data: SeriesData, columns: Sequence[str], level: str = PATIENT) -> np.ndarray:
    """The baseline columns' means over the units of ``level`` (patients, or therapists each
    counted once): what :func:`baseline_values` subtracts."""
    if level == THERAPIST:
        return therapist_matrix(data, columns).mean(axis=0)
    return baseline_matrix(data, columns).mean(axis=0)


def centred_rows(
    data: SeriesData, columns: Sequence[str], level: str, centre: np.ndarray
) -> np.ndarray:
    """Each patient's baseline row (its own, or its therapist's at the therapist level) minus
    ``centre``, patients x columns: with a fit's centre, the rows of patients added to its data
    (feedback for a new patient) on the fit's scale."""
    if level == THERAPIST:
        assert data.patient_therapist is not None
        return therapist_matrix(data, columns)[data.patient_therapist] - centre
    return baseline_matrix(data, columns) - centre


def baseline_values(data: SeriesData, columns: Sequence[str], level: str = PATIENT) -> np.ndarray:
    """Each patient's centred baseline row, patients x columns: at the patient level its own
    values centred over patients (each patient counts once, whatever the length of its
    series), at the therapist level its therapist's values centred over therapists (each
    therapist counts once, whatever its caseload). The intercepts are then the latent means
    at an average baseline of the level's units (module docstring)."""
    return centred_rows(data, columns, level, baseline_centre(data, columns, level))


def baseline_sd(data: SeriesData, columns: Sequence[str], level: str = PATIENT) -> np.ndarray:
    """Each baseline column's SD over the units of its level (the scale of its paths'
    priors)."""
    if level == THERAPIST:
        return therapist_matrix(data, columns).std(axis=0)
    return baseline_matrix(data, columns).std(axis=0)


__all__ = [
    "BASELINE_DIM",
    "BASELINE_LEVELS",
    "baseline_centre",
    "baseline_matrix",
    "baseline_sd",
    "baseline_values",
    "centred_rows",
    "therapist_matrix",
    "varying_within_therapist",
]
