"""The data one patient's update conditions on (:mod:`bayes_alliance.feedback.patient_update`).

The patient's new rows in the fit's column names (a fitted patient's checked against the fit:
therapist, covariates, no repeated session; a new patient's therapist named among the fit's),
the caseload conditioned on together (the therapist's fitted patients plus this patient with
the therapist level, else the patient alone) as a sub data set with its layout, moderator and
baseline rows centred as in the fit, and the posterior arrays restricted to it (a new patient's
raw slope and trend deviations drawn from their prior, the slope's truncated for stationarity
as the fit's are).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.effects.variance import truncated_quantile
from bayes_alliance.inference import posthoc
from bayes_alliance.inference.unit_group import posterior_of
from bayes_alliance.kernels import dynamics
from bayes_alliance.model.covariates import (
    SplitBaseline,
    baseline_level,
    baseline_unit_values,
    baseline_values,
    covariate_values,
    moderator_values,
)
from bayes_alliance.model.grid import GridIndex, SeriesGrid
from bayes_alliance.model.structure import (
    PATIENT_RAW,
    THERAPIST_RAW,
    draws_last,
    fixed_slope,
    lag0,
    lookup,
    slope_deviations,
)

if TYPE_CHECKING:  # a result is passed in; this module computes on its arrays
    from bayes_alliance.inference.fit import FitResult

v = vocab
__all__ = ["SEED_TAG", "Prepared", "prepare"]

SEED_TAG = 20260515  # separates the feedback's random stream from the fit's


def _match_id(ids: np.ndarray, patient: object) -> object | None:
    """The fitted id equal to ``patient``, or equal as text (``"7"`` finds 7); else None."""
    for p in ids.tolist():
        if p == patient:
            return p
    text = {str(p): p for p in ids.tolist()}
    return text.get(str(patient))


def _unknown(kind: str, value: object, known: np.ndarray, hint: str = "") -> ValueError:
    return ValueError(f"unknown {kind} id {value!r}; e.g. {known.tolist()[:5]}{hint}")


def _supported(result: FitResult) -> None:
    spec = result.spec
    if spec.traits != "integrated" and "trait_predictor" not in posterior_of(result.idata):
        raise ValueError("feedback needs a result with latent means (traits) in its posterior")
    if spec.session_means or spec.innovations == "session":
        raise ValueError(
            "feedback does not support session-specific parameters (session_means, "
            "innovations='session'): new session numbers have no parameters there"
        )
    if result.data.roles.crossed:
        raise ValueError("feedback does not support crossed data (a patient with two therapists)")
    if spec.predictor_indicators or spec.outcome_indicators:
        raise ValueError(
            "feedback does not support indicator models yet (a new session's indicators would "
            "need the indicator grid); fit the patient's sessions with the others instead"
        )


def _new_rows(
    result: FitResult, patient: object, new: pd.DataFrame | None
) -> tuple[object, pd.DataFrame, bool]:
    """The fitted id (or the new one), the patient's new rows in the fit's column names, and
    whether the patient is new."""
    data, roles = result.data, result.data.roles
    fitted = _match_id(data.patients, patient)
    if new is None or len(new) == 0:
        if fitted is None:
            raise _unknown(
                "patient",
                patient,
                data.patients,
                "; a new patient needs their session ratings (new_sessions / --new-sessions)",
            )
        return fitted, data.frame.iloc[:0][_columns(result)], False
    need = [roles.patient, roles.session, roles.predictor, roles.outcome]
    missing = [c for c in need if c not in new.columns]
    if missing:
        raise ValueError(f"the new sessions lack the column(s) {missing} (the fit's names)")
    mine = new[new[roles.patient].astype(str) == str(patient)].copy()
    if mine.empty and fitted is not None:
        return fitted, data.frame.iloc[:0][_columns(result)], False
    if mine.empty:
        raise ValueError(
            f"the new sessions have no rows of patient {patient!r}; they hold "
            f"{pd.unique(new[roles.patient]).tolist()[:5]}"
        )
    is_new = fitted is None
    pid = patient if is_new else fitted
    mine[roles.patient] = np.asarray([pid] * len(mine), dtype=object)
    if roles.therapist is not None:
        if is_new:
            if roles.therapist not in mine.columns or mine[roles.therapist].isna().all():
                raise ValueError(
                    f"patient {patient!r} is new: their rows need the therapist column "
                    f"{roles.therapist!r} naming a therapist of the fit"
                )
            given = pd.unique(mine[roles.therapist]).tolist()
            assert data.therapists is not None
            ther = _match_id(data.therapists, given[0])
            if len(given) > 1 or ther is None:
                raise _unknown("therapist", given[0] if ther is None else given, data.therapists)
        else:
            assert data.therapists is not None and data.patient_therapist is not None
            ther = data.therapists[data.patient_therapist[_row(data, pid)]]
            if roles.therapist in mine.columns:
                given = [g for g in pd.unique(mine[roles.therapist]).tolist() if g == g]
                if any(_match_id(np.asarray([ther], dtype=object), g) is None for g in given):
                    raise ValueError(
                        f"patient {pid!r} was fitted with therapist {ther!r}, not {given}"
                    )
        mine[roles.therapist] = np.asarray([ther] * len(mine), dtype=object)
    for c in roles.covariates:
        if c not in mine.columns:
            mine[c] = np.nan if is_new else data.covariates[c].iloc[_row(data, pid)]
    if not is_new:
        old = set(data.frame.loc[data.frame["patient_code"] == _row(data, pid), roles.session])
        dup = sorted(set(mine[roles.session].tolist()) & old)
        if dup:
            raise ValueError(f"patient {pid!r} already has session(s) {dup[:5]} in the fit")
    return pid, mine[_columns(result)], is_new


def _columns(result: FitResult) -> list[str]:
    r = result.data.roles
    cols = [r.patient, r.session, r.predictor, r.outcome, *r.covariates]
    return cols + ([r.therapist] if r.therapist is not None else [])


def _row(data: SessionData, pid: object) -> int:
    return int(np.flatnonzero(data.patients == pid)[0]) if pid is not None else -1


def _caseload(result: FitResult, pid: object, rows: pd.DataFrame, is_new: bool) -> np.ndarray:
    """Fitted rows (patient indices) of the patients conditioned on together: the therapist's
    caseload (without the patient when new) with the therapist level, else the patient alone."""
    data = result.data
    if result.spec.therapist_level and data.patient_therapist is not None:
        assert data.therapists is not None
        ther = rows[data.roles.therapist].iloc[0] if len(rows) else None
        code = (
            int(np.flatnonzero(data.therapists == ther)[0])
            if ther is not None
            else int(data.patient_therapist[_row(data, pid)])
        )
        return np.flatnonzero(data.patient_therapist == code)
    return np.zeros(0, dtype=int) if is_new else np.array([_row(data, pid)])


def _covariate_rows(
    result: FitResult, sub: SessionData, fitted_rows: np.ndarray, target: int
) -> tuple[Any, ...]:
    """Moderator, baseline and adjusting-covariate rows of the sub data set, centred as in the
    fit.

    A new patient's row is centred as the fit centres its level's units
    (:func:`bayes_alliance.model.covariates.baseline_unit_values`): moderators and a
    patient-level baseline with the fitted patients' means; a therapist-level baseline is the
    therapist's own fitted row, ``z_j - mean over therapists``, not the patient's value minus the
    mean over patients (the two differ whenever caseloads differ in size); an adjusting
    covariate by the fit's centring constant of its column.
    """
    data, spec = result.data, result.spec
    out: list[Any] = []
    sub_rows = np.arange(sub.n_patients)
    known = sub_rows != target if len(fitted_rows) < sub.n_patients else sub_rows >= 0
    for names, full, level in (
        (spec.moderators, moderator_values(data, spec), v.PATIENT),
        (spec.baseline, baseline_values(data, spec), baseline_level(data, spec)),
        (spec.covariates, covariate_values(data, spec), None),
    ):
        if full is None:
            out.append(None)
            continue
        if isinstance(full, SplitBaseline):
            out.append(_split_rows(result, sub, full, fitted_rows, known, target))
            continue
        z = np.empty((sub.n_patients, full.shape[1]))
        z[known] = full[fitted_rows]
        if not known.all():
            raw = sub.covariates[list(names)].to_numpy(dtype=float)[target]
            if level == v.THERAPIST:
                z[target] = _therapist_row(result, sub, target, names, raw)
            elif np.isnan(raw).any():
                raise ValueError(
                    f"the new patient's rows need the covariate(s) {list(names)} of this model"
                )
            elif level is None:
                # The fit's centring constant of each column (its mean over the units of the
                # column's level): any fitted patient's raw value less its centred one.
                means = data.covariates[list(names)].to_numpy(dtype=float)[0] - full[0]
                z[target] = raw - means
            else:
                means = data.covariates[list(names)].to_numpy(dtype=float).mean(axis=0)
                z[target] = raw - means
        out.append(z)
    return out[0], out[1], out[2]


def _split_rows(
    result: FitResult,
    sub: SessionData,
    full: SplitBaseline,
    fitted_rows: np.ndarray,
    known: np.ndarray,
    target: int,
) -> SplitBaseline:
    """The within- and between-therapist rows of a split patient-level baseline for the sub
    data set, centred as in the fit: a new patient's within row is their value less the mean
    of their therapist's fitted patients, their between row that therapist's fitted one (the
    fit's centring constants, as for the other columns)."""
    data, names = result.data, result.spec.baseline
    k = full.within.shape[1]
    within, between = np.empty((sub.n_patients, k)), np.empty((sub.n_patients, k))
    within[known], between[known] = full.within[fitted_rows], full.between[fitted_rows]
    if not known.all():
        raw = sub.covariates[list(names)].to_numpy(dtype=float)[target]
        if np.isnan(raw).any():
            raise ValueError(
                f"the new patient's rows need the baseline column(s) {list(names)} of this model"
            )
        assert sub.therapists is not None and sub.patient_therapist is not None
        assert data.therapists is not None and data.patient_therapist is not None
        ther = sub.therapists[sub.patient_therapist[target]]
        members = np.flatnonzero(
            data.patient_therapist == np.flatnonzero(data.therapists == ther)[0]
        )
        fitted = data.covariates[list(names)].to_numpy(dtype=float)[members]
        within[target] = raw - fitted.mean(axis=0)
        between[target] = full.between[members[0]]
    return SplitBaseline(within, between)


def _therapist_row(
    result: FitResult, sub: SessionData, target: int, names: tuple[str, ...], raw: np.ndarray
) -> np.ndarray:
    """A new patient's therapist-level baseline row: their therapist's centred row of the fit.
    A value given in the new rows must be the therapist's (the column is a therapist
    characteristic); a missing one is taken from the fit."""
    data, spec = result.data, result.spec
    assert sub.therapists is not None and sub.patient_therapist is not None
    assert data.therapists is not None and data.patient_therapist is not None
    ther = sub.therapists[sub.patient_therapist[target]]
    code = int(np.flatnonzero(data.therapists == ther)[0])
    fitted = data.covariates[list(names)].to_numpy(dtype=float)[
        int(np.flatnonzero(data.patient_therapist == code)[0])
    ]
    for c, given, own in zip(names, raw, fitted, strict=True):
        if not np.isnan(given) and not np.isclose(given, own):
            raise ValueError(
                f"the new patient's {c!r} is {given:g}, but {c!r} is a therapist-level baseline "
                f"and therapist {ther!r} has {own:g} in the fit"
            )
    units = baseline_unit_values(data, spec)
    assert units is not None
    return np.asarray(units[code], dtype=float)


def _sub_arrays(
    result: FitResult, fitted_rows: np.ndarray, new_at: int | None, sub: SessionData, seed: int
) -> dict[str, np.ndarray]:
    """The posterior arrays the conditioning reads, restricted to the sub data set: patient
    vectors to its patients (a new patient's raw deviations drawn from their prior), therapist
    vectors to its therapist."""
    post = posterior_of(result.idata)
    arrays = {n: np.asarray(post[n].values) for n in posthoc.POSTERIOR_NAMES if n in post}
    data = result.data
    rng = np.random.default_rng([seed, SEED_TAG, 1])
    for n in PATIENT_RAW:
        if n not in arrays:
            continue
        known = arrays[n][..., fitted_rows]
        if new_at is not None:
            prior = rng.standard_normal(known.shape[:2])[..., None]
            known = np.concatenate([known[..., :new_at], prior, known[..., new_at:]], axis=-1)
        arrays[n] = known
    if sub.therapists is not None:
        assert data.therapists is not None
        codes = [int(np.flatnonzero(data.therapists == t)[0]) for t in sub.therapists.tolist()]
        for n in THERAPIST_RAW:
            if n in arrays:
                arrays[n] = arrays[n][..., codes]
    return arrays


def _truncate_new_slope(
    result: FitResult, arrays: dict[str, np.ndarray], sub: SessionData, z: Any, target: int
) -> None:
    r"""A new patient's raw slope deviation from the prior the fit gives it (in place).

    With a stationary first session the fit truncates each patient's deviation
    :math:`d_i = \sigma_P d^*_i` to the interval where the patient's dynamics are stationary
    (:mod:`bayes_alliance.model.within`): :math:`d^*_i \sim N(0, 1)` truncated to
    :math:`((lo - m_i) / \sigma_P, (hi - m_i) / \sigma_P)`, :math:`m_i = \phi_{yx} +
    \lambda' z_i + c_j`, with (lo, hi) the draw's stationary interval of the state effect
    (:func:`bayes_alliance.kernels.dynamics.slope_interval`). The untruncated draw already in
    ``arrays`` is mapped through the truncated normal's inverse CDF at its own probability
    (:func:`bayes_alliance.effects.variance.truncated_quantile`), an exact draw of the
    truncated prior.
    """
    spec, name = result.spec, "state_effect_patient_raw"
    if name not in arrays or spec.first_session != "stationary" or spec.dynamics != "var1":
        return
    get = lookup(draws_last(arrays), spec)
    row = None if z is None else np.asarray(z)[target : target + 1]
    centre = np.ravel(fixed_slope(get, row))
    parts = slope_deviations(get, spec)
    if parts.dev_therapist is not None:
        assert sub.patient_therapist is not None
        centre = centre + np.asarray(parts.dev_therapist)[sub.patient_therapist[target]]
    lags = (
        get(v.PREDICTOR_AUTOREGRESSION),
        get(v.REVERSE_STATE_EFFECT),
        get(v.OUTCOME_AUTOREGRESSION),
    )
    lo, hi, _ = dynamics.slope_interval(*lags, lag0(get, spec), spec.same_session)
    sd = np.asarray(parts.sd_patient, dtype=float)
    raw = arrays[name][..., target]
    drawn = truncated_quantile(np.ravel(raw), (lo - centre) / sd, (hi - centre) / sd)
    arrays[name][..., target] = drawn.reshape(raw.shape)


@dataclass
class Prepared:
    sub: SessionData
    lay: posthoc.PosthocGrid
    target: int
    arrays: dict[str, np.ndarray]
    pid: object
    therapist: object | None
    is_new: bool
    n_new: int


def prepare(
    result: FitResult, patient: object, new_sessions: pd.DataFrame | None, seed: int = 0
) -> Prepared:
    _supported(result)
    data, spec = result.data, result.spec
    pid, rows, is_new = _new_rows(result, patient, new_sessions)
    fitted = _caseload(result, pid, rows, is_new)
    cols = _columns(result)
    old = data.frame[data.frame["patient_code"].isin(fitted)][cols]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub = SessionData.from_roles(pd.concat([old, rows], ignore_index=True), data.roles)
    target = int(np.flatnonzero(sub.patients == pid)[0])
    new_at = target if is_new else None
    grid = SeriesGrid.of(sub)
    z, zb, zc = _covariate_rows(result, sub, fitted, target)
    lay = posthoc.PosthocGrid(
        grid=grid,
        idx=GridIndex.of(sub),
        cells=grid.containers(),
        # Trends count sessions from the fitted grid's first session, as in the fit.
        t=(sub.sessions - data.sessions[0]).astype(float),
        z=z,
        gaps=bool(grid.miss_x.size or grid.miss_y.size),
        baseline=zb,
        baseline_level=baseline_level(data, spec) if zb is not None else v.PATIENT,
        tj=sub.patient_therapist,
        covariates=zc,
    )
    ther = None
    if sub.therapists is not None and sub.patient_therapist is not None:
        ther = sub.therapists[sub.patient_therapist[target]]
    arrays = _sub_arrays(result, fitted, new_at, sub, seed)
    if is_new:
        _truncate_new_slope(result, arrays, sub, z, target)
    return Prepared(sub, lay, target, arrays, pid, ther, is_new, len(rows))
