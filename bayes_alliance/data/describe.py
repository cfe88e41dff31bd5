r"""The descriptives a methods section reports, from the session grid: :func:`describe`.

Design (patients, therapists, patients per therapist, sessions per patient, session numbers,
skipped sessions) and, per variable, observed cells, missingness, mean, SD and the shares of
variance at the patient and the therapist level (intraclass correlations).

The ICCs come from the random-effects analysis of variance of the observed cells (method of
moments), sessions nested in patients nested in therapists, unbalanced. With :math:`a`
therapists, :math:`B` patients, :math:`n_{ij}` observed sessions of patient :math:`j` of
therapist :math:`i`, :math:`n_{i\cdot} = \sum_j n_{ij}` and :math:`N = \sum_{ij} n_{ij}`, the mean
squares between therapists (:math:`MS_A`), between patients within therapists (:math:`MS_B`) and
within patients (:math:`MS_W`) have expectations

.. math::

    E[MS_W] = \sigma^2, \quad
    E[MS_B] = \sigma^2 + n_0 \sigma_P^2, \quad
    E[MS_A] = \sigma^2 + n_0' \sigma_P^2 + n_0'' \sigma_T^2,

    n_0 = \frac{N - \sum_i \sum_j n_{ij}^2 / n_{i\cdot}}{B - a}, \quad
    n_0' = \frac{\sum_i \sum_j n_{ij}^2 / n_{i\cdot} - \sum_{ij} n_{ij}^2 / N}{a - 1}, \quad
    n_0'' = \frac{N - \sum_i n_{i\cdot}^2 / N}{a - 1}

(Searle, Casella & McCulloch 1992, *Variance Components*, section 5.3; Sokal & Rohlf 1995,
*Biometry*, box 10.4), solved for :math:`\sigma^2, \sigma_P^2, \sigma_T^2`; a negative solution
is set to 0, as is customary. The ICCs are
:math:`\sigma_P^2 / (\sigma_T^2 + \sigma_P^2 + \sigma^2)` and
:math:`\sigma_T^2 / (\sigma_T^2 + \sigma_P^2 + \sigma^2)`. Without therapists the one-way
analysis (:math:`\sigma_T^2 = 0`) is used; for balanced data its estimate equals REML's when
positive. These describe the observed scores, sessions' time trends included; the model's
own ICCs (of latent traits, net of trends) are in the fit's effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from bayes_alliance.data.session_data import SessionData

__all__ = ["Descriptives", "describe", "design_counts", "nested_variance_components"]


def nested_variance_components(
    values: np.ndarray, patient: np.ndarray, therapist: np.ndarray | None = None
) -> tuple[float, float, float]:
    """Variance components of a score by the nested random-effects ANOVA (module docstring).

    Parameters
    ----------
    values
        Observed scores (n,), finite.
    patient
        Patient code of each score (n,); patients' codes are unique across therapists.
    therapist
        Therapist code of each score (n,), constant within a patient; None for two levels.

    Returns
    -------
    (therapist, patient, within)
        :math:`\\sigma_T^2` (0 without therapists), :math:`\\sigma_P^2`, :math:`\\sigma^2`;
        NaN where the data do not identify one (a single patient, a single score per patient).
    """
    y = np.asarray(values, dtype=float)
    _, p = np.unique(np.asarray(patient), return_inverse=True)
    t = (
        np.zeros(len(y), dtype=np.int64)
        if therapist is None
        else np.unique(np.asarray(therapist), return_inverse=True)[1]
    )
    n_total = len(y)
    n_p = np.bincount(p)
    sum_p = np.bincount(p, weights=y)
    mean_p = sum_p / n_p
    ss_w = float(((y - mean_p[p]) ** 2).sum())
    df_w = n_total - len(n_p)
    # therapist of each patient (the first score's: constant within a patient)
    first = np.zeros(len(n_p), dtype=np.int64)
    first[p[::-1]] = t[::-1]
    n_t = np.bincount(first, weights=n_p)
    mean_t = np.bincount(first, weights=sum_p) / n_t
    a = len(n_t)
    ss_b = float((n_p * (mean_p - mean_t[first]) ** 2).sum())
    df_b = len(n_p) - a
    ms_w = ss_w / df_w if df_w > 0 else np.nan
    ms_b = ss_b / df_b if df_b > 0 else np.nan
    sq_within_t = np.bincount(first, weights=n_p.astype(float) ** 2) / n_t  # sum_j n_ij^2 / n_i.
    n0 = (n_total - sq_within_t.sum()) / df_b if df_b > 0 else np.nan
    var_p = max((ms_b - ms_w) / n0, 0.0) if df_b > 0 and df_w > 0 else np.nan
    var_t = 0.0
    if therapist is not None:
        if a < 2:
            var_t = np.nan
        else:
            grand = y.mean()
            ms_a = float((n_t * (mean_t - grand) ** 2).sum()) / (a - 1)
            n0p = (sq_within_t.sum() - (n_p.astype(float) ** 2).sum() / n_total) / (a - 1)
            n0pp = (n_total - (n_t**2).sum() / n_total) / (a - 1)
            var_t = max((ms_a - ms_w - n0p * var_p) / n0pp, 0.0)
    return float(var_t), float(var_p), float(ms_w)


@dataclass(frozen=True)
class Descriptives:
    """What :meth:`SessionData.describe` returns.

    Attributes
    ----------
    design
        One row per statistic (index), column ``value``: patients, therapists, sessions
        (rows), patients per therapist and sessions per patient (min / median / max), session
        numbers, skipped sessions.
    variables
        One row per variable (index: its column name): ``role``, ``level`` (session or
        patient), ``n_observed``, ``missing_share`` (of the session rows, or of the patients
        for covariates), ``mean``, ``sd``, ``min``, ``max``, ``icc_patient``, ``icc_therapist``
        (session-level variables; NaN elsewhere).
    counts
        The plain counts a fit records in its provenance and the report's data section reads
        (``n_patients``, ``n_rows``, ``sessions_per_patient_median``,
        ``missing_predictor_share`` of the cells between a patient's first and last session,
        ...); ``d["n_patients"]`` reads them.
    """

    design: pd.DataFrame
    variables: pd.DataFrame
    counts: dict[str, float | int]

    def to_frame(self) -> pd.DataFrame:
        """The variables table (the design's counts are :attr:`design`)."""
        return self.variables.copy()

    def __getitem__(self, key: str) -> float | int:
        """One of :attr:`counts` by name (``d["n_patients"]``)."""
        return self.counts[key]

    def to_markdown(self, digits: int = 2) -> str:
        """Both tables as Markdown (no ``tabulate`` needed)."""
        design = [[str(k), _number(v, digits)] for k, v in self.design["value"].items()]
        cols = list(self.variables.columns)
        rows = [
            [str(name), *(_number(v, digits) for v in row)]
            for name, row in zip(self.variables.index, self.variables.to_numpy(), strict=True)
        ]
        return (
            _markdown(["statistic", "value"], design)
            + "\n\n"
            + _markdown(["variable", *cols], rows)
        )

    def __str__(self) -> str:
        return self.to_markdown()


def _number(v: object, digits: int) -> str:
    if isinstance(v, str):
        return v
    x = float(v)  # type: ignore[arg-type]
    if np.isnan(x):
        return ""
    return f"{x:.0f}" if x.is_integer() and abs(x) < 1e15 else f"{x:.{digits}f}"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("| " + " | ".join("-" * w for w in widths) + " |")
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join(lines)


def _spread(name: str, counts: np.ndarray) -> dict[str, float]:
    return {
        f"{name}_min": float(counts.min()),
        f"{name}_median": float(np.median(counts)),
        f"{name}_max": float(counts.max()),
    }


def describe(data: SessionData) -> Descriptives:
    """The descriptives of a methods section for ``data`` (see the module docstring).

    Parameters
    ----------
    data
        Validated session data.

    Returns
    -------
    Descriptives
    """
    present = data.present
    per_patient = present.sum(axis=1)
    design: dict[str, float] = {"n_patients": data.n_patients, "n_therapists": data.n_therapists}
    design["n_rows"] = float(present.sum())
    nested = data.patient_therapist is not None
    if nested:
        assert data.patient_therapist is not None
        design |= _spread(
            "patients_per_therapist",
            np.bincount(data.patient_therapist, minlength=data.n_therapists),
        )
    design |= _spread("sessions_per_patient", per_patient)
    design["first_session"] = float(data.sessions[0])
    design["last_session"] = float(data.sessions[-1])
    design["skipped_sessions"] = float((data.in_series & ~present).sum())

    rows = np.nonzero(present)
    patient_of = rows[0]
    therapist_of = None if not nested else np.asarray(data.patient_therapist)[patient_of]
    r = data.roles
    table: dict[str, dict[str, object]] = {}
    for role, column, grid in (("predictor", r.predictor, data.x), ("outcome", r.outcome, data.y)):
        v = grid[rows]
        ok = ~np.isnan(v)
        var_t, var_p, var_w = nested_variance_components(
            v[ok], patient_of[ok], None if therapist_of is None else therapist_of[ok]
        )
        total = var_t + var_p + var_w
        table[column] = {
            "role": role,
            "level": "session",
            "n_observed": int(ok.sum()),
            "missing_share": float(1 - ok.mean()) if len(v) else np.nan,
            **_moments(v[ok]),
            "icc_patient": var_p / total if total > 0 else np.nan,
            "icc_therapist": var_t / total if nested and total > 0 else np.nan,
        }
    for column in data.covariates.columns:
        v = data.covariates[column].to_numpy(dtype=float)
        ok = ~np.isnan(v)
        table[str(column)] = {
            "role": "covariate",
            "level": "patient",
            "n_observed": int(ok.sum()),
            "missing_share": float(1 - ok.mean()) if len(v) else np.nan,
            **_moments(v[ok]),
            "icc_patient": np.nan,
            "icc_therapist": np.nan,
        }
    return Descriptives(
        pd.DataFrame({"value": pd.Series(design, dtype=float)}).rename_axis("statistic"),
        pd.DataFrame.from_dict(table, orient="index").rename_axis("variable"),
        design_counts(data),
    )


def design_counts(data: SessionData) -> dict[str, float | int]:
    inside = data.in_series
    per_patient = data.present.sum(axis=1)
    return {
        "n_patients": data.n_patients,
        "n_therapists": data.n_therapists,
        "n_rows": int(data.present.sum()),
        "sessions_per_patient_min": int(per_patient.min()),
        "sessions_per_patient_median": float(np.median(per_patient)),
        "sessions_per_patient_max": int(per_patient.max()),
        "first_session": int(data.sessions[0]),
        "last_session": int(data.sessions[-1]),
        "skipped_sessions": int((inside & ~data.present).sum()),
        "missing_predictor_share": float(np.isnan(data.x[inside]).mean()),
        "missing_outcome_share": float(np.isnan(data.y[inside]).mean()),
    }


def _moments(v: np.ndarray) -> dict[str, float]:
    if not len(v):
        return {"mean": np.nan, "sd": np.nan, "min": np.nan, "max": np.nan}
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
        "min": float(v.min()),
        "max": float(v.max()),
    }
