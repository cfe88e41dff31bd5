"""Checks on a long session table before it becomes a grid.

Every rule reports the column, rows or ids at fault. All problems are collected and raised
together (one :class:`DataValidationError`), so a user fixes the file once, not once per rule.
Conditions that allow a fit but weaken it, or look like a mistake in the file, are
:class:`DataWarning` warnings. Rows are named by the file's own numbering when the reader
recorded it (:class:`RowNumbers`), else by their index labels.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_alliance.core.problems import (
    DataValidationError,
    DataWarning,
    Problem,
    RowNumbers,
    listing,
    patients_named,
)
from bayes_alliance.data.roles import Roles

MIN_SESSIONS_TRAIT_STATE = (
    3  # fewer cannot separate trait from state (docs/your_own_data.md, "Reading the warnings")
)
MIN_THERAPISTS = 10  # docs/methods.md, "The decomposition" / Psychother Res 30:885 (2020)
MAX_SESSION = 100_000  # no therapy has more; larger numbers are dates or typos
MAX_GRID_CELLS = 20_000_000  # patients x session columns; beyond this the arrays take gigabytes
FAR_SESSION_GAP = 10  # a run of empty session columns longer than this (and the rest) is flagged
RESERVED = ("patient_code", "session_code", "therapist_code")  # columns the grid adds
_COMMA_NUMBER = re.compile(r"^\s*[-+]?(\d+,\d*|,\d+)\s*$")
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[-./]\d{1,2}[-./]\d{1,4}")
_NUMBERED = re.compile(r"^(?P<stem>.*\D)(?P<number>\d+)$", re.DOTALL)


@dataclass
class CheckResult:
    """Outcome of :func:`check_frame`: problems (fatal), warnings (not), and the cleaned table.

    ``frame`` holds the role columns only, with numeric columns as float64 (NaN for missing)
    and the session as int64; it is None when a problem prevents cleaning.
    """

    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None


def _sorted_ids(ids: Sequence[object]) -> tuple[object, ...]:
    try:
        return tuple(sorted(ids))  # type: ignore[type-var]
    except TypeError:  # mixed types cannot be ordered: keep first-seen order
        return tuple(ids)


def _is_time(s: pd.Series) -> bool:
    return (
        pd.api.types.is_datetime64_any_dtype(s.dtype)
        or pd.api.types.is_timedelta64_dtype(s.dtype)
        or isinstance(s.dtype, pd.PeriodDtype)
    )


def _to_float(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Coerce to float64; return the values and a mask of entries that were present but not numbers."""
    present = s.notna()
    if _is_time(s):  # pandas would turn dates into nanosecond counts
        return pd.Series(np.nan, index=s.index, dtype="float64"), present
    if pd.api.types.is_bool_dtype(s):
        num = s.astype("float64")
    else:
        num = pd.to_numeric(s, errors="coerce")
    if pd.api.types.is_complex_dtype(num.dtype):  # keep real numbers, reject the rest
        z = num.to_numpy()
        num = pd.Series(np.where(z.imag == 0, z.real, np.nan), index=s.index)
    num = num.astype("float64")
    bad = present & num.isna()
    return num, bad


def did_you_mean(name: str, known: Sequence[object]) -> str:
    """Text to append to a message: the closest name in ``known`` (ignoring case), or ""."""
    lowered = {str(k).lower(): str(k) for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def looks_wide(df: pd.DataFrame) -> str | None:
    """A hint when ``df`` looks like wide data: at least 3 columns sharing a stem with a number.

    Parameters
    ----------
    df
        Any table.

    Returns
    -------
    str or None
        A sentence naming the numbered column groups and how to reshape them with
        :func:`bayes_alliance.data.reshape.wide_to_long` (or ``bayes-alliance reshape``), or None.
    """
    groups: dict[str, list[str]] = {}
    for c in df.columns:
        m = _NUMBERED.match(str(c))
        if m:
            groups.setdefault(m["stem"], []).append(str(c))
    wide = {stem: cols for stem, cols in groups.items() if len(cols) >= 3}
    if not wide:
        return None
    numbered = {c for cols in wide.values() for c in cols}
    ids = [str(c) for c in df.columns if str(c) not in numbered][:4]
    seen = "; ".join(f"{cols[0]} ... {cols[-1]} ({len(cols)} columns)" for cols in wide.values())
    patterns = {stem.rstrip("_.- ") or "value": f"{stem}{{session}}" for stem in wide}
    flags = f"--id {' '.join(ids) or 'COL'} --pattern " + " ".join(
        f"{k}={v}" for k, v in patterns.items()
    )
    return (
        f"the table looks wide (one row per patient, a column per session: {seen}); reshape it "
        f"to one row per session first with bayes_alliance.data.readers.wide_to_long(df, "
        f"id_columns={ids}, patterns={patterns}) or `bayes-alliance reshape WIDE {flags} "
        "--out LONG.csv`, then name the long table's columns"
    )


def _column_problems(df: pd.DataFrame, roles: Roles) -> list[Problem]:
    """Missing, doubled and reserved role columns; a wide table gets one hint instead."""
    problems: list[Problem] = []
    names = list(df.columns)
    missing = [c for c in dict.fromkeys(roles.columns()) if c not in df.columns]
    # No session column, and none misspelt: a wide table (item columns of a long table would
    # look wide too, so a near-miss of the session's name wins).
    if roles.session in missing and not did_you_mean(roles.session, names):
        hint = looks_wide(df)
        if hint:
            cols = ", ".join(repr(c) for c in missing)
            return [Problem(f"missing column{'s' if len(missing) > 1 else ''} {cols}: {hint}")]
    for c in missing:
        problems.append(
            Problem(
                f"missing column {c!r}{did_you_mean(c, names)}; "
                f"the table has {listing([repr(n) for n in names])}"
            )
        )
    for c in sorted({c for c in roles.columns() if roles.columns().count(c) > 1}):
        problems.append(Problem("column is given more than one role", column=c))
    for c in dict.fromkeys(roles.columns()):
        if names.count(c) > 1:
            problems.append(Problem(f"{names.count(c)} columns have this name", column=c))
        if c in RESERVED:
            problems.append(Problem("name is reserved for the grid's codes; rename it", column=c))
    return problems


def _normalise_ids(s: pd.Series) -> pd.Series:
    """Ids mixing text and numbers (spreadsheet columns) become text, so they can be sorted."""
    if s.dtype != object:
        return s
    values = s[s.notna()]
    has_text = values.map(lambda v: isinstance(v, str)).astype(bool)
    if has_text.any() and not has_text.all():
        return s.where(s.isna(), s.astype(str))
    return s


def unhashable(s: pd.Series) -> pd.Series:
    """Mask of entries that cannot be ids (lists, dicts: cells pandas holds as objects)."""

    def bad(v: object) -> bool:
        try:
            hash(v)
        except TypeError:
            return True
        return False

    if s.dtype != object:
        return pd.Series(False, index=s.index)
    return s.map(bad).astype(bool)


def _sentinels(num: pd.Series) -> list[float]:
    """Values shaped like missing-value codes (-9, -99, 99, 999, 88, ...) far outside the rest."""

    def shaped(v: float) -> bool:
        if v != np.floor(v) or abs(v) >= 1e15:
            return False
        digits = str(int(abs(v)))
        return (set(digits) in ({"9"}, {"8"}) and len(digits) >= 2) or v in (-9.0, -8.0)

    values = num.dropna()
    codes = [float(v) for v in np.unique(values.to_numpy()) if shaped(float(v))]
    rest = values[~values.isin(codes)]
    if not codes or rest.empty:
        return []
    lo, hi = float(rest.min()), float(rest.max())
    margin = hi - lo  # a score one range-width beyond the others is no longer plausible
    return [v for v in codes if v < lo - margin or v > hi + margin]


def _far_sessions(sess: pd.Series) -> tuple[float, float]:
    """The main block of session numbers, after peeling off values beyond long empty runs."""
    u, counts = np.unique(sess.dropna().to_numpy(), return_counts=True)
    lo, hi = 0, len(u) - 1
    while hi > lo:
        k = int(np.argmax(np.diff(u[lo : hi + 1])))
        gap = u[lo + k + 1] - u[lo + k]
        left, right = counts[lo : lo + k + 1].sum(), counts[lo + k + 1 : hi + 1].sum()
        main = (lo, lo + k) if left >= right else (lo + k + 1, hi)
        if gap <= max(FAR_SESSION_GAP, u[main[1]] - u[main[0]]):
            break
        lo, hi = main
    return (float(u[lo]), float(u[hi])) if len(u) else (np.nan, np.nan)


def _check_sessions(
    df: pd.DataFrame, roles: Roles, rows: RowNumbers, out: CheckResult
) -> pd.Series:
    """Session numbers define lags, so they must be whole, non-negative, plausible numbers."""
    col = roles.session
    sess_raw = df[col]
    sess, non_num = _to_float(sess_raw)
    if _is_time(sess_raw) or (
        non_num.any() and sess_raw[non_num].astype(str).str.match(_DATE_LIKE).mean() > 0.5
    ):
        out.problems.append(
            Problem(
                "the session column holds dates; number the sessions per patient with "
                "bayes_alliance.data.readers.sessions_from_dates (command line: --dates)",
                column=col,
            )
        )
        return pd.Series(np.nan, index=df.index)
    null_sess = sess_raw.isna()
    if null_sess.any():
        out.problems.append(rows.problem("empty session number", col, null_sess))
    bad = non_num | (sess.notna() & ((sess != np.floor(sess)) | ~np.isfinite(sess)))
    if bad.any():
        out.problems.append(rows.problem("session number is not a whole number", col, bad))
    neg = sess.notna() & ~bad & (sess < 0)
    if neg.any():
        out.problems.append(rows.problem("negative session number", col, neg))
    big = sess.notna() & ~bad & (sess > MAX_SESSION)
    if big.any():
        out.problems.append(
            rows.problem(
                f"session number above {MAX_SESSION:,} (a date written as a number? see "
                "bayes_alliance.data.readers.sessions_from_dates)",
                col,
                big,
            )
        )
    ok = sess.notna() & ~bad & ~neg & ~big
    sess = sess.where(ok)
    if ok.any():
        n_pat = df.loc[ok, roles.patient].nunique()
        lo_all, hi_all = float(sess.min()), float(sess.max())
        cells = n_pat * (hi_all - lo_all + 1)
        if cells > MAX_GRID_CELLS:
            out.problems.append(
                Problem(
                    f"session numbers run from {lo_all:.0f} to {hi_all:.0f}: the grid of {n_pat} "
                    f"patients x every session number between would have {cells:,.0f} cells "
                    f"(limit {MAX_GRID_CELLS:,}); check the session numbers for typos",
                    column=col,
                )
            )
        lo, hi = _far_sessions(sess)
        far = ok & ((sess < lo) | (sess > hi))
        if far.any():
            values = listing([f"{v:.0f}" for v in np.unique(sess[far])])
            out.warnings.append(
                f"column {col!r}: session numbers {values} lie far from the rest ({lo:.0f} to "
                f"{hi:.0f}) ({rows.unit} {listing(rows(far))}); the grid has a column for every "
                f"session number from {lo_all:.0f} to {hi_all:.0f}, {hi_all - lo_all + 1:.0f} "
                f"columns instead of {hi - lo + 1:.0f}, mostly empty; check them for typos"
            )
    return sess


def _check_values(
    df: pd.DataFrame, roles: Roles, rows: RowNumbers, out: CheckResult, clean: pd.DataFrame
) -> None:
    """Variables and covariates: numbers, finite, not all missing; warn on codes and constants."""
    for c in (*roles.variables, *roles.indicators, *roles.covariates):
        num, non_num = _to_float(df[c])
        if non_num.any():
            commas = df[c][non_num].astype(str).str.match(_COMMA_NUMBER).any()
            hint = " (decimal commas? read_table detects them)" if commas else ""
            out.problems.append(rows.problem(f"value is not a number{hint}", c, non_num))
        inf = np.isinf(num)
        if inf.any():
            out.problems.append(rows.problem("infinite value", c, inf))
        num = num.where(~inf)
        if num.notna().sum() == 0 and not non_num.any() and len(df):
            out.problems.append(Problem("variable is entirely missing", column=c))
        clean[c] = num
        codes = _sentinels(num)
        if codes:
            shown = ", ".join(f"{v:g}" for v in codes)
            rest = num[~num.isin(codes)]
            what = "looks like a missing-value code" if len(codes) == 1 else "look like codes"
            out.warnings.append(
                f"column {c!r}: {shown} {what} ({rows.unit} {listing(rows(num.isin(codes)))}), "
                f"far outside the other values ({rest.min():g} to {rest.max():g}); the model "
                "fits them as real scores: if they mean missing, declare them "
                f"(--missing-code {c}={','.join(f'{v:g}' for v in codes)}, "
                "missing_codes in [data] or in Python) or leave those cells empty"
            )
        elif num.nunique() == 1:
            what = "patient" if c in roles.covariates else "observation"
            out.warnings.append(
                f"column {c!r} is constant (every {what} has {num.dropna().iloc[0]:g}): it carries "
                "no information and its effects cannot be estimated"
            )


def check_frame(
    df: pd.DataFrame, roles: Roles, *, therapist_level: bool | None = None
) -> CheckResult:
    """Apply every validation rule to a long table (one row per patient and session).

    Parameters
    ----------
    df
        Long data: one row per observed session. When ``df.attrs["first_line"]`` is set (by
        :func:`bayes_alliance.data.readers.read_table`), rows are reported by the file's numbering.
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
    out.problems += _column_problems(df, roles)
    if out.problems:
        return out

    rows = RowNumbers(df)
    labels = df.index
    # Positions from here on: duplicate index labels would break alignment.
    df = df.set_axis(pd.RangeIndex(len(df)), axis=0)
    clean = pd.DataFrame(index=df.index)
    id_cols = [roles.patient] + ([roles.therapist] if roles.therapist else [])
    for c in id_cols:
        out.problems += _id_problems(df, c, rows)
        clean[c] = df[c]
    sess = _check_sessions(df, roles, rows, out)
    clean[roles.session] = sess
    _check_values(df, roles, rows, out, clean)
    keyed = clean[df[id_cols].notna().all(axis=1) & sess.notna()]
    out.problems += _duplicate_sessions(df, keyed, roles, rows)
    out.problems += _nesting_problems(df, clean, roles, id_cols)
    if roles.time is not None:
        out.problems += _time_problems(df, keyed, roles, rows, clean)
    if out.problems:
        return out
    clean[roles.session] = clean[roles.session].astype("int64")
    clean.index = labels
    out.warnings += _design_warnings(clean, roles, therapist_level)
    out.frame = clean
    return out


def _time_problems(
    df: pd.DataFrame, keyed: pd.DataFrame, roles: Roles, rows: RowNumbers, clean: pd.DataFrame
) -> list[Problem]:
    """The time column (continuous time): a finite number on every row, and within each
    patient strictly increasing with the session number -- two sessions at the same time have
    no interval between them, and a time that goes back contradicts the session order. Each
    problem names the patient and the rows; the times are written to ``clean`` as floats."""
    col = roles.time
    assert col is not None
    num, bad = _to_float(df[col])
    problems = []
    empty = df[col].isna().to_numpy()
    who = df[roles.patient].to_numpy(dtype=object)
    if empty.any():
        problems.append(rows.problem(f"empty time of {patients_named(who[empty])}", col, empty))
    unread = bad.to_numpy() & ~empty
    if unread.any():
        message = f"time is not a number, {patients_named(who[unread])}"
        problems.append(rows.problem(message, col, unread))
    clean[col] = num
    ok = keyed.index[np.isfinite(num[keyed.index].to_numpy(dtype=float))]
    if not len(ok):
        return problems
    table = pd.DataFrame(
        {"p": keyed.loc[ok, roles.patient], "s": keyed.loc[ok, roles.session], "t": num[ok]}
    ).sort_values(["p", "s"], kind="stable")
    step = table.groupby("p", sort=False)["t"].diff()
    for why, mask in (
        ("two sessions of one patient at the same time (no interval between them)", step == 0),
        ("time goes back within a patient (earlier than the patient's previous session)", step < 0),
    ):
        at = table.index[mask.to_numpy()]
        if len(at):
            # the row and the one before it in the patient's order
            prev = table.index[np.flatnonzero(mask.to_numpy()) - 1]
            who_here = patients_named(list(table.loc[at, "p"]))
            where = rows(df.index.isin(at.union(prev)))
            problems.append(Problem(f"{why}: {who_here}", column=col, rows=where, unit=rows.unit))
    return problems


def _id_problems(df: pd.DataFrame, column: str, rows: RowNumbers) -> list[Problem]:
    """Empty ids and ids that are neither one number nor one text; normalises the column in
    place (whole-number floats to integers, text stripped) so that ids compare as written."""
    problems = []
    nulls = df[column].isna()
    if nulls.any():
        problems.append(rows.problem("empty id", column, nulls))
    odd = unhashable(df[column])
    if odd.any():
        problems.append(rows.problem("id is not a single number or text", column, odd))
        df[column] = df[column].where(~odd)
    df[column] = _normalise_ids(df[column])
    return problems


def _duplicate_sessions(
    df: pd.DataFrame, keyed: pd.DataFrame, roles: Roles, rows: RowNumbers
) -> list[Problem]:
    """A (patient, session) pair on two rows, named by its ids and its rows."""
    dup = keyed.duplicated([roles.patient, roles.session], keep=False)
    if not dup.any():
        return []
    pairs = keyed.loc[dup, [roles.patient, roles.session]].drop_duplicates()
    pair_ids = tuple(f"{p}/session {int(s)}" for p, s in pairs.itertuples(index=False))
    at = rows(df.index.isin(keyed.index[dup]))
    return [
        Problem(
            f"duplicate (patient, session) pair; {rows.unit} {listing(at)}",
            column=roles.patient,
            ids=pair_ids,
        )
    ]


def _nesting_problems(
    df: pd.DataFrame, clean: pd.DataFrame, roles: Roles, id_cols: list[str]
) -> list[Problem]:
    """Too few patients, a patient with two therapists (unless crossed), and a patient-level
    covariate that varies within a patient."""
    problems = []
    patients = pd.unique(df.loc[df[roles.patient].notna(), roles.patient])
    if len(patients) < 2:
        problems.append(
            Problem(f"at least 2 patients are needed, found {len(patients)}", column=roles.patient)
        )
    if roles.therapist and not roles.crossed:
        valid = df[id_cols].notna().all(axis=1)
        n_ther = df[valid].groupby(roles.patient, sort=False)[roles.therapist].nunique()
        multi = n_ther.index[n_ther > 1]
        if len(multi):
            problems.append(
                Problem(
                    "patient is seen by more than one therapist (declare crossed data if intended)",
                    column=roles.therapist,
                    ids=_sorted_ids(list(multi)),
                )
            )
    for c in roles.covariates:
        valid = df[roles.patient].notna()
        varies = clean[valid].groupby(df.loc[valid, roles.patient], sort=False)[c].nunique()
        bad_ids = varies.index[varies > 1]
        if len(bad_ids):
            problems.append(
                Problem(
                    "patient-level covariate varies within patient",
                    column=c,
                    ids=_sorted_ids(list(bad_ids)),
                )
            )
    return problems


def _design_warnings(clean: pd.DataFrame, roles: Roles, therapist_level: bool) -> list[str]:
    """Warnings about what the data can identify: patients with too few sessions to separate
    trait and state, and too few therapists for a therapist variance."""
    warns = []
    observed = clean[list(roles.variables)].notna().any(axis=1)
    counts = observed.groupby(clean[roles.patient], sort=False).sum()
    short = counts.index[counts < MIN_SESSIONS_TRAIT_STATE]
    if len(short):
        warns.append(
            f"{len(short)} patient(s) have fewer than {MIN_SESSIONS_TRAIT_STATE} observed sessions "
            f"(ids {listing(_sorted_ids(list(short)))}): their trait and state parts cannot be "
            "separated, so their traits are informed mostly by the population distribution"
        )
    if therapist_level and roles.therapist:
        n_distinct = int(clean[roles.therapist].nunique())
        if n_distinct < MIN_THERAPISTS:
            warns.append(
                f"only {n_distinct} therapists: with fewer than {MIN_THERAPISTS}, the therapist variance "
                "is poorly identified and its prior dominates, and three-level models understate the "
                "uncertainty of within-patient effects (the therapist SDs' prior was calibrated at "
                "10-40 therapists); consider a two-level model with therapist as a fixed covariate"
            )
    return warns


__all__ = [
    "CheckResult",
    "DataValidationError",
    "DataWarning",
    "Problem",
    "Roles",
    "RowNumbers",
    "check_frame",
    "did_you_mean",
    "looks_wide",
    "unhashable",
]
