"""The patient-level columns the model uses besides the series: moderators of the state effect
and the baseline characteristics of between-level mediation, checked, centred and placed at
their level (patient or therapist). Numpy only: the builder, the post-hoc draws, the patient
update, the variance moments and the report all read them from here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.data.validate import DataValidationError, Problem
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab


def _moderator_matrix(
    data: SessionData, names: tuple[str, ...], what: str = "moderator"
) -> np.ndarray:
    missing = [c for c in names if c not in data.covariates.columns]
    if missing:
        raise ValueError(
            f"{what}(s) {missing} are not patient covariates of the data; declare them with "
            f"covariates=[...] (have: {list(data.covariates.columns)})"
        )
    z = data.covariates[list(names)].to_numpy(dtype=float)
    bad = np.isnan(z).any(axis=1)
    if bad.any():
        ids = data.patients[bad].tolist()[:8]
        raise ValueError(
            f"{what} values are missing for patients {ids}; the model needs them complete"
        )
    flat = [c for c, sd in zip(names, z.std(axis=0), strict=True) if not sd > 0]
    if flat:
        raise ValueError(f"{what}(s) {flat} have the same value for every patient")
    return z - z.mean(axis=0)


def moderator_values(data: SessionData, spec: ModelSpec) -> np.ndarray | None:
    """Centred moderator values (patients x moderators), or None without moderators."""
    return _moderator_matrix(data, spec.moderators) if spec.moderators else None


def _varies_within_therapist(data: SessionData, names: tuple[str, ...]) -> dict[str, object]:
    """For each column that takes more than one value among a therapist's patients, the first
    such therapist's id (missing values are left to :func:`_moderator_matrix`)."""
    assert data.patient_therapist is not None and data.therapists is not None
    out: dict[str, object] = {}
    for c in names:
        n_values = data.covariates[c].groupby(data.patient_therapist).nunique()
        bad = n_values.index[n_values.to_numpy() > 1]
        if len(bad):
            out[c] = data.therapists.tolist()[int(bad[0])]  # a plain id, e.g. 7, not np.int64(7)
    return out


def baseline_level(data: SessionData, spec: ModelSpec) -> str:
    """The level of the baseline columns for these data: ``spec.baseline_level`` checked, or
    ``"auto"`` resolved (therapist when the data are nested in therapists, the spec has the
    therapist level, some therapist has two or more patients and every column is constant
    within every therapist; else patient). ``"patient"`` without a baseline.

    Raises
    ------
    DataValidationError
        ``"therapist"`` for a column that varies within a therapist (naming the column and one
        such therapist).
    ValueError
        ``"therapist"`` without patients nested in therapists.
    """
    if not spec.baseline or spec.baseline_level == v.PATIENT:
        return v.PATIENT
    nested = spec.therapist_level and data.patient_therapist is not None
    if not nested:
        if spec.baseline_level == v.THERAPIST:
            raise ValueError(
                "baseline_level='therapist' needs patients nested in therapists (a therapist "
                "column, not crossed, and the therapist level in the model)"
            )
        return v.PATIENT
    _moderator_matrix(data, spec.baseline, "baseline column")  # named, complete, not flat
    varies = _varies_within_therapist(data, spec.baseline)
    if spec.baseline_level == v.THERAPIST and varies:
        raise DataValidationError(
            [
                Problem(
                    "baseline_level='therapist' needs a value constant within each therapist, "
                    "but it varies within therapist "
                    f"{tid!r}; use baseline_level='patient' for a patient characteristic",
                    column=c,
                )
                for c, tid in varies.items()
            ]
        )
    if spec.baseline_level == v.THERAPIST:
        return v.THERAPIST
    # "auto": a column constant within therapists only because each has one patient says
    # nothing about its level; such data keep the patient level.
    assert data.patient_therapist is not None
    shared = np.bincount(data.patient_therapist).max() > 1
    return v.THERAPIST if shared and not varies else v.PATIENT


def resolve_baseline(data: SessionData, spec: ModelSpec) -> ModelSpec:
    """``spec`` with ``baseline_level`` resolved against the data (:func:`baseline_level`), so
    that a fitted result records the level used; unchanged without a baseline."""
    if not spec.baseline:
        return spec
    level = baseline_level(data, spec)
    return spec if level == spec.baseline_level else replace(spec, baseline_level=level)


def baseline_unit_values(data: SessionData, spec: ModelSpec) -> np.ndarray | None:
    r"""Centred baseline characteristics per unit of their level, or None without a baseline:
    patients x columns (centred over patients) or, at therapist level, therapists x columns
    (each therapist's value, centred over therapists: :math:`z_j - \bar z_T`).

    Centring over the units of the level (not over sessions, nor for a therapist column over
    patients) makes the intercepts the latent means of a patient, or of a therapist's patient,
    with an average baseline, whatever the series lengths and caseloads; each unit counts once,
    as in the baseline's share of the variance (:func:`bayes_alliance.effects.derived.baseline_variances`).
    """
    if not spec.baseline:
        return None
    z = _moderator_matrix(data, spec.baseline, "baseline column")
    if baseline_level(data, spec) == v.PATIENT:
        return z
    assert data.patient_therapist is not None and data.therapists is not None
    zt = np.empty((len(data.therapists), z.shape[1]))
    zt[data.patient_therapist] = z  # one value per therapist (checked constant)
    return zt - zt.mean(axis=0)


def baseline_values(data: SessionData, spec: ModelSpec) -> np.ndarray | None:
    """Centred baseline characteristics of each patient (patients x columns) of between-level
    mediation, or None without: the patient's own (patient level) or its therapist's (therapist
    level; :func:`baseline_unit_values` gives the centring). The shifts of the latent means are
    ``a' z`` and ``(c' + b a)' z`` of these rows either way; only b differs by level
    (``vocab.BASELINE_MEDIATOR``)."""
    zu = baseline_unit_values(data, spec)
    if zu is None or baseline_level(data, spec) == v.PATIENT:
        return zu
    assert data.patient_therapist is not None
    return zu[data.patient_therapist]


__all__ = [
    "baseline_level",
    "baseline_unit_values",
    "baseline_values",
    "moderator_values",
    "resolve_baseline",
]
