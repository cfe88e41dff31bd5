"""The patient-level columns the model uses besides the series: moderators of the state effect,
the baseline characteristics of between-level mediation and the covariates that adjust the
latent means, checked, centred and placed at their level (patient or therapist). Numpy only: the builder, the post-hoc draws, the patient
update, the variance moments and the report all read them from here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.data.validate import DataValidationError, Problem
from bayes_alliance.kernels import ctime
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
    if not spec.baseline:
        return v.PATIENT
    return _level(data, spec, spec.baseline, spec.baseline_level, "baseline")


def _level(
    data: SessionData, spec: ModelSpec, names: tuple[str, ...], requested: str, what: str
) -> str:
    """The level of the columns ``names`` given the ``requested`` one (``<what>_level``)."""
    if requested == v.PATIENT:
        return v.PATIENT
    option = f"{what}_level"
    nested = spec.therapist_level and data.patient_therapist is not None
    if not nested:
        if requested == v.THERAPIST:
            raise ValueError(
                f"{option}='therapist' needs patients nested in therapists (a therapist "
                "column, not crossed, and the therapist level in the model)"
            )
        return v.PATIENT
    _moderator_matrix(data, names, f"{what} column")  # named, complete, not flat
    varies = _varies_within_therapist(data, names)
    if requested == v.THERAPIST and varies:
        raise DataValidationError(
            [
                Problem(
                    f"{option}='therapist' needs a value constant within each therapist, "
                    "but it varies within therapist "
                    f"{tid!r}; use {option}='patient' for a patient characteristic",
                    column=c,
                )
                for c, tid in varies.items()
            ]
        )
    if requested == v.THERAPIST:
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
    as in the baseline's share of the variance (:func:`bayes_alliance.effects.baseline.baseline_variances`).
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


@dataclass(frozen=True)
class SplitBaseline:
    r"""A patient-level baseline of three-level data split at the therapists: each patient's
    within-therapist rows ``z_i - zbar_j`` and between-therapist rows ``zbar_j - zbar``
    (patients x columns each; numpy arrays, or data containers in a model), so that
    ``within + between`` is z centred over the therapist means. Indexing picks patients of
    both (``rows[sel]``)."""

    within: Any
    between: Any

    def __getitem__(self, rows: Any) -> SplitBaseline:
        return SplitBaseline(self.within[rows], self.between[rows])


BaselineRows = np.ndarray | SplitBaseline


def baseline_split_values(data: SessionData, spec: ModelSpec) -> SplitBaseline | None:
    r"""A patient-level baseline of three-level data split into its within- and
    between-therapist parts (:class:`SplitBaseline`), or None when the spec does not split it.

    .. math::

        z_i = \underbrace{(z_i - \bar z_{j[i]})}_{\text{within}}
            + \underbrace{(\bar z_{j[i]} - \bar z)}_{\text{between}} + \bar z,

    with :math:`\bar z_j` the mean of z over therapist j's patients and :math:`\bar z` the
    mean of the therapist means (each therapist counts once, as a therapist-level baseline is
    centred; the within rows have mean 0 within every therapist). The within part's paths act
    with the patient-level trait effect, the between part's with the therapist-level one."""
    if not spec.baseline or data.patient_therapist is None or data.therapists is None:
        return None
    # The level as the data resolve it: a spec left at "auto" splits only a patient-level one.
    if not replace(spec, baseline_level=baseline_level(data, spec)).splits_baseline():
        return None
    z = _moderator_matrix(data, spec.baseline, "baseline column")
    tj = data.patient_therapist
    n_t = len(data.therapists)
    sums = np.zeros((n_t, z.shape[1]))
    np.add.at(sums, tj, z)
    counts = np.bincount(tj, minlength=n_t).astype(float)
    zbar = sums / np.maximum(counts, 1.0)[:, None]  # a therapist without patients is not fitted
    between_t = zbar - zbar[counts > 0].mean(axis=0)
    return SplitBaseline(z - zbar[tj], between_t[tj])


def baseline_between_unit_values(data: SessionData, spec: ModelSpec) -> np.ndarray | None:
    """The between-therapist part of a split baseline per therapist (therapists x columns,
    ``zbar_j - zbar``), or None when the spec does not split it: the units of the between
    paths' prior scale and variance share."""
    split = baseline_split_values(data, spec)
    if split is None:
        return None
    assert data.patient_therapist is not None and data.therapists is not None
    out = np.zeros((len(data.therapists), split.between.shape[1]))
    out[data.patient_therapist] = split.between
    return out


def baseline_between_sd(data: SessionData, spec: ModelSpec) -> np.ndarray | float:
    """The prior scale of a split baseline's between paths: the SD of the therapist means over
    therapists per column (1 for a column whose therapist means are all equal: its between
    paths are then not informed by the data); 1.0 when the spec does not split the baseline."""
    zt = baseline_between_unit_values(data, spec)
    if zt is None:
        return 1.0
    sd = zt.std(axis=0)
    return np.where(sd > 0, sd, 1.0)


def baseline_values(data: SessionData, spec: ModelSpec) -> BaselineRows | None:
    """Centred baseline characteristics of each patient (patients x columns) of between-level
    mediation, or None without: the patient's own (patient level) or its therapist's (therapist
    level; :func:`baseline_unit_values` gives the centring). The shifts of the latent means are
    ``a' z`` and ``(c' + b a)' z`` of these rows either way; only b differs by level
    (``vocab.BASELINE_MEDIATOR``). A patient-level baseline of three-level data comes split
    into its within- and between-therapist rows (:func:`baseline_split_values`)."""
    split = baseline_split_values(data, spec)
    if split is not None:
        return split
    zu = baseline_unit_values(data, spec)
    if zu is None or baseline_level(data, spec) == v.PATIENT:
        return zu
    assert data.patient_therapist is not None
    return zu[data.patient_therapist]


def covariate_names(data: SessionData, spec: ModelSpec) -> tuple[str, ...]:
    """The covariates that adjust the latent means: ``spec.covariates`` when given (each must
    be a declared covariate of the data), else every declared covariate of the data that is
    not a baseline column (a baseline column already moves the latent means, through its
    mediation paths)."""
    declared = tuple(data.covariates.columns)
    if spec.covariates:
        missing = [c for c in spec.covariates if c not in declared]
        if missing:
            raise ValueError(
                f"covariate(s) {missing} of the model are not covariates of the data "
                f"(have: {list(declared)})"
            )
        return spec.covariates
    return tuple(c for c in declared if c not in spec.baseline)


def covariate_levels(data: SessionData, spec: ModelSpec) -> tuple[str, ...]:
    """The level of each adjusting covariate (``spec.covariates``, as :func:`resolve` records
    them: a spec not resolved against the data has none), by the baseline's rule
    (:func:`baseline_level`) applied to each column on its own: with ``covariate_level="auto"``
    therapist for a column constant within every therapist of three-level data in which some
    therapist treats two or more patients, else patient; ``"patient"`` or ``"therapist"``
    forces every column (``"therapist"`` raises, naming the column and a therapist, for a
    column that varies within a therapist)."""
    names = spec.covariates
    if not names:
        return ()
    return tuple(_level(data, spec, (c,), spec.covariate_level, "covariate") for c in names)


def covariate_unit_values(data: SessionData, spec: ModelSpec) -> dict[str, np.ndarray]:
    r"""The adjusting covariates per unit of their level, centred over those units: patients x
    (patient-level columns) under ``"patient"`` and therapists x (therapist-level columns)
    under ``"therapist"`` (levels without columns left out). Column order within a level is
    that of ``spec.covariates``."""
    names, levels = spec.covariates, covariate_levels(data, spec)
    if not names:
        return {}
    z = _moderator_matrix(data, names, "covariate")
    out: dict[str, np.ndarray] = {}
    pat = [k for k, lvl in enumerate(levels) if lvl == v.PATIENT]
    if pat:
        out[v.PATIENT] = z[:, pat]
    top = [k for k, lvl in enumerate(levels) if lvl == v.THERAPIST]
    if top:
        assert data.patient_therapist is not None and data.therapists is not None
        zt = np.empty((len(data.therapists), len(top)))
        zt[data.patient_therapist] = z[:, top]  # one value per therapist (checked constant)
        out[v.THERAPIST] = zt - zt.mean(axis=0)
    return out


def covariate_values(data: SessionData, spec: ModelSpec) -> np.ndarray | None:
    r"""Centred adjusting covariates of each patient (patients x ``spec.covariates``), or
    None without: a patient-level column is the patient's value centred over patients, a
    therapist-level one its therapist's value centred over therapists (as the baseline,
    :func:`baseline_unit_values`). The latent means move by ``g_x' z_i`` and ``g_y' z_i``
    (:func:`bayes_alliance.model.structure.covariate_shift`)."""
    names, levels = spec.covariates, covariate_levels(data, spec)
    if not names:
        return None
    units = covariate_unit_values(data, spec)
    out = np.empty((data.n_patients, len(names)))
    for level in (v.PATIENT, v.THERAPIST):
        cols = [k for k, lvl in enumerate(levels) if lvl == level]
        if cols:
            rows = units[level] if level == v.PATIENT else units[level][data.patient_therapist]
            out[:, cols] = rows
    return out


def resolve_covariates(data: SessionData, spec: ModelSpec) -> ModelSpec:
    """``spec`` with ``covariates`` filled from the data (:func:`covariate_names`), so that its
    free parameters (``covariate_effect_predictor`` / ``_outcome``) and a fitted result record
    them; unchanged when the data have none. The levels are checked here too."""
    names = covariate_names(data, spec)
    covariate_levels(data, replace(spec, covariates=names))
    return spec if names == spec.covariates else replace(spec, covariates=names)


def resolve(data: SessionData, spec: ModelSpec) -> ModelSpec:
    """``spec`` resolved against the data once: the baseline's level
    (:func:`resolve_baseline`), the adjusting covariates (:func:`resolve_covariates`) and, in
    continuous time, the effects interval (default: the data's median interval)."""
    spec = resolve_covariates(data, resolve_baseline(data, spec))
    if spec.time_model == "continuous" and spec.effects_interval is None and data.times is not None:
        spec = replace(spec, effects_interval=ctime.median_interval(data.times))
    return spec


__all__ = [
    "BaselineRows",
    "SplitBaseline",
    "baseline_between_sd",
    "baseline_between_unit_values",
    "baseline_level",
    "baseline_split_values",
    "baseline_unit_values",
    "baseline_values",
    "covariate_levels",
    "covariate_names",
    "covariate_unit_values",
    "covariate_values",
    "moderator_values",
    "resolve",
    "resolve_baseline",
    "resolve_covariates",
]
