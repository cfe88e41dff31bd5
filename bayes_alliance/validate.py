"""Checks on a long session table before it becomes a grid.

Every rule reports the column, rows or ids at fault. All problems are collected and raised
together (one :class:`DataValidationError`), so a user fixes the file once, not once per rule.
Conditions that allow a fit but weaken it are :class:`DataWarning` warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MIN_SESSIONS_TRAIT_STATE = 3  # METHODS.md section 8: fewer cannot separate trait from state
MIN_THERAPISTS = 10  # METHODS.md section 8 / Psychother Res 30:885 (2020)
_SHOW = 8  # how many offending rows or ids to print per problem


class DataWarning(UserWarning):
    """The data can be fitted, but something limits what the model can learn from it."""


@dataclass(frozen=True)
class Problem:
    """One violated rule: which column, which rows (index labels) or ids, and what is wrong."""

    message: str
    column: str | None = None
    rows: tuple[object, ...] = ()
    ids: tuple[object, ...] = ()

    def __str__(self) -> str:
        where = f"column {self.column!r}: " if self.column else ""
        extra = ""
        if self.rows:
            extra += f" (rows {_listing(self.rows)})"
        if self.ids:
            extra += f" (ids {_listing(self.ids)})"
        return where + self.message + extra


class DataValidationError(ValueError):
    """Raised with every problem found in a session table at once."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        lines = [f"{n} problem{'s' if n != 1 else ''} in the session data:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Roles:
    """Which column plays which part. ``therapist`` is None for two-level data."""

    patient: str
    session: str
    predictor: str
    outcome: str
    therapist: str | None = None
    covariates: tuple[str, ...] = ()
    crossed: bool = False  # a patient may see several therapists

    @property
    def variables(self) -> tuple[str, str]:
        return (self.predictor, self.outcome)

    def columns(self) -> list[str]:
        cols = [self.patient, self.session, self.predictor, self.outcome]
        if self.therapist is not None:
            cols.append(self.therapist)
        return cols + list(self.covariates)


@dataclass
class CheckResult:
    """Outcome of :func:`check_frame`: problems (fatal), warnings (not), and the cleaned table.

    ``frame`` holds the role columns only, with numeric columns as float64 (NaN for missing)
    and the session as int64; it is None when a problem prevents cleaning.
    """

    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None


def _listing(items: Sequence[object]) -> str:
    shown = ", ".join(str(i) for i in items[:_SHOW])
    more = len(items) - _SHOW
    return shown + (f" and {more} more" if more > 0 else "")


def _to_float(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Coerce to float64; return the values and a mask of entries that were present but not numbers."""
    if pd.api.types.is_bool_dtype(s):
        num = s.astype("float64")
    else:
        num = pd.to_numeric(s, errors="coerce")
    present = s.notna()
    bad = present & num.isna()
    return num.astype("float64"), bad


def check_frame(
    df: pd.DataFrame, roles: Roles, *, therapist_level: bool | None = None
) -> CheckResult:
    """Apply every validation rule to a long table (one row per patient and session).

    Parameters
    ----------
    df
        Long data: one row per observed session.
    roles
        Column roles.
    therapist_level
        Whether a therapist level will be modelled (defaults to ``roles.therapist is not None``);
        controls the few-therapists warning.

    Returns
    -------
    CheckResult
        All problems and warnings; ``frame`` is the cleaned table when no problem blocks it.
    """
    out = CheckResult()
    if not isinstance(df, pd.DataFrame):
        out.problems.append(Problem(f"expected a pandas DataFrame, got {type(df).__name__}"))
        return out
    if therapist_level is None:
        therapist_level = roles.therapist is not None

    missing = [c for c in roles.columns() if c not in df.columns]
    for c in missing:
        out.problems.append(Problem(f"missing column {c!r}; the table has {list(df.columns)}"))
    dup_roles = {c for c in roles.columns() if roles.columns().count(c) > 1}
    for c in sorted(dup_roles):
        out.problems.append(Problem("column is given more than one role", column=c))
    if missing or dup_roles:
        return out

    clean = pd.DataFrame(index=df.index)
    id_cols = [roles.patient] + ([roles.therapist] if roles.therapist else [])
    for c in id_cols:
        nulls = df.index[df[c].isna()]
        if len(nulls):
            out.problems.append(Problem("empty id", column=c, rows=tuple(nulls)))
        clean[c] = df[c]

    # Session numbers define lags, so they must be whole, non-negative numbers.
    sess_raw = df[roles.session]
    sess, non_num = _to_float(sess_raw)
    null_sess = df.index[sess_raw.isna()]
    if len(null_sess):
        out.problems.append(
            Problem("empty session number", column=roles.session, rows=tuple(null_sess))
        )
    bad = non_num | (sess.notna() & ((sess != np.floor(sess)) | ~np.isfinite(sess)))
    if bad.any():
        out.problems.append(
            Problem(
                "session number is not a whole number",
                column=roles.session,
                rows=tuple(df.index[bad]),
            )
        )
    neg = sess.notna() & ~bad & (sess < 0)
    if neg.any():
        out.problems.append(
            Problem("negative session number", column=roles.session, rows=tuple(df.index[neg]))
        )
    sess_ok = sess.notna() & ~bad & ~neg
    clean[roles.session] = sess.where(sess_ok)

    for c in (*roles.variables, *roles.covariates):
        num, non_num = _to_float(df[c])
        if non_num.any():
            out.problems.append(
                Problem("value is not a number", column=c, rows=tuple(df.index[non_num]))
            )
        inf = np.isinf(num)
        if inf.any():
            out.problems.append(Problem("infinite value", column=c, rows=tuple(df.index[inf])))
        num = num.where(~inf)
        if num.notna().sum() == 0 and not non_num.any() and len(df):
            out.problems.append(Problem("variable is entirely missing", column=c))
        clean[c] = num

    ids_ok = df[id_cols].notna().all(axis=1)
    keyed = clean[ids_ok & sess_ok]
    dup = keyed.duplicated([roles.patient, roles.session], keep=False)
    if dup.any():
        pairs = keyed.loc[dup, [roles.patient, roles.session]].drop_duplicates()
        labels = tuple(f"{p}/session {int(s)}" for p, s in pairs.itertuples(index=False))
        out.problems.append(
            Problem(
                f"duplicate (patient, session) pair; rows {_listing(tuple(keyed.index[dup]))}",
                column=roles.patient,
                ids=labels,
            )
        )

    patients = pd.unique(df.loc[df[roles.patient].notna(), roles.patient])
    if len(patients) < 2:
        out.problems.append(
            Problem(f"at least 2 patients are needed, found {len(patients)}", column=roles.patient)
        )

    if roles.therapist and not roles.crossed:
        valid = df[id_cols].notna().all(axis=1)
        n_ther = df[valid].groupby(roles.patient, sort=True)[roles.therapist].nunique()
        multi = n_ther.index[n_ther > 1]
        if len(multi):
            out.problems.append(
                Problem(
                    "patient is seen by more than one therapist (declare crossed data if intended)",
                    column=roles.therapist,
                    ids=tuple(multi),
                )
            )

    for c in roles.covariates:
        valid = df[roles.patient].notna()
        varies = (
            clean[valid].groupby(df.loc[valid, roles.patient], sort=True)[c].nunique(dropna=True)
        )
        bad_ids = varies.index[varies > 1]
        if len(bad_ids):
            out.problems.append(
                Problem(
                    "patient-level covariate varies within patient", column=c, ids=tuple(bad_ids)
                )
            )

    if out.problems:
        return out

    clean[roles.session] = clean[roles.session].astype("int64")
    observed = clean[list(roles.variables)].notna().any(axis=1)
    counts = observed.groupby(clean[roles.patient], sort=True).sum()
    short = counts.index[counts < MIN_SESSIONS_TRAIT_STATE]
    if len(short):
        out.warnings.append(
            f"{len(short)} patient(s) have fewer than {MIN_SESSIONS_TRAIT_STATE} observed sessions "
            f"(ids {_listing(tuple(short))}): their trait and state parts cannot be separated, so "
            "their traits are informed mostly by the population distribution"
        )
    if therapist_level and roles.therapist:
        n_distinct = int(clean[roles.therapist].nunique())
        if n_distinct < MIN_THERAPISTS:
            out.warnings.append(
                f"only {n_distinct} therapists: with fewer than {MIN_THERAPISTS}, the therapist variance "
                "is poorly identified and its prior dominates, and three-level models understate the "
                "uncertainty of within-patient effects (METHODS.md section 8); consider a two-level "
                "model with therapist as a fixed covariate"
            )
    out.frame = clean
    return out
