"""The integrated mechanism model's data as ``pm.Data`` containers.

Everything the integrated density (:mod:`bayes_alliance.mechanisms.integrated`) reads from a data
set is a container of fixed shape: the Kalman filter's observed and first-cell masks and
regressors, the filled values, the centred session times, the end outcome (who has one, its
values), the caseloads, each patient's therapist, the baseline's values, and every prior scale
taken from the data (the series' means and SDs behind :func:`~bayes_alliance.mechanisms.priors.
mechanism_priors`). A model built this way has one graph for every data set of its layout (the
same numbers of patients, grid sessions, series and therapists, and the same options), so a
model compiled once samples any of them with the values swapped in
(:mod:`bayes_alliance.mechanisms.compiled`), and a fresh fit and a refit run the same compiled
code: the same seed gives the same draws. Which cells are missing is data too (the filter
integrates every missing cell), and so is which patient has an end outcome.

The shapes are static (part of the containers' types), since the filter's kernels are compiled
for the numbers of series and coefficients and the levels' integration for their sizes.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any

import numpy as np
import pymc as pm

from bayes_alliance.core.vocab import PATIENT
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.baseline_data import baseline_values
from bayes_alliance.mechanisms.priors import MechanismGrid, MechanismPriors

PREFIX = "data_"
PRIOR_PREFIX = "prior_"
# Prior settings fixed by the rules, not taken from the data: they stay constants.
RULE_FIELDS = frozenset({"therapist_gamma", "trait_eta"})


def contain(name: str, value: Any) -> Any:
    """A ``pm.Data`` container of ``value`` with its shape static, in the model in context."""
    arr = np.asarray(value)
    return pm.Data(name, arr, shape=arr.shape)


def series_inputs(
    data: SeriesData,
    grid: MechanismGrid,
    inputs: dict[str, np.ndarray],
    caseload: np.ndarray | None = None,
    baseline: tuple[str, ...] = (),
    baseline_level: str = PATIENT,
) -> dict[str, Any]:
    """The filter's inputs (``inputs`` of :func:`~bayes_alliance.mechanisms.integrated.
    filter_inputs`) and the rest of the data the density reads, as containers: ``filled``
    and ``time`` (:class:`MechanismGrid`), ``end_seen`` and ``end_value`` (with an end
    outcome; 0 where missing), ``caseload`` (therapists x patients, as given: three levels)
    and ``therapist_of`` (with it), ``baseline`` (patients x columns, with baseline
    columns: each patient's own row, or its therapist's at ``baseline_level="therapist"``)."""
    out = {key: contain(f"{PREFIX}{key}", val) for key, val in inputs.items()}
    out["filled"] = contain(f"{PREFIX}values", grid.filled)
    out["time"] = contain(f"{PREFIX}time", grid.time)
    if data.end_outcome is not None:
        seen = np.isfinite(data.end_outcome)
        out["end_seen"] = contain(f"{PREFIX}end_seen", seen.astype(float))
        out["end_value"] = contain(f"{PREFIX}end_value", np.where(seen, data.end_outcome, 0.0))
    if caseload is not None:
        assert data.patient_therapist is not None
        out["caseload"] = contain(f"{PREFIX}caseload", caseload)
        tj = np.asarray(data.patient_therapist, dtype=np.int64)
        out["therapist_of"] = contain(f"{PREFIX}therapist_of", tj)
    if baseline:
        out["baseline"] = contain(
            f"{PREFIX}baseline", baseline_values(data, baseline, baseline_level)
        )
    return out


def _contained(obj: Any, prefix: str) -> Any:
    changes: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in RULE_FIELDS or value is None or isinstance(value, bool):
            continue
        if is_dataclass(value):
            changes[f.name] = _contained(value, f"{prefix}{f.name}_")
        elif isinstance(value, int | float | np.ndarray | np.number):
            changes[f.name] = contain(f"{prefix}{f.name}", np.asarray(value, dtype=float))
    return replace(obj, **changes)


def prior_inputs(priors: MechanismPriors) -> MechanismPriors:
    """``priors`` with every scale taken from the data a container named ``prior_<field>``
    (``prior_end_<field>``, ``prior_baseline_<field>`` for the nested ones); the rules'
    choices (:data:`RULE_FIELDS`) stay as they are."""
    out: MechanismPriors = _contained(priors, PRIOR_PREFIX)
    return out


__all__ = ["PREFIX", "PRIOR_PREFIX", "RULE_FIELDS", "contain", "prior_inputs", "series_inputs"]
