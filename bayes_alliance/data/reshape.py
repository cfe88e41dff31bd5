"""The two reshapes session data most often need before they become a grid.

:func:`wide_to_long` turns one row per patient (a column per session) into one row per session;
:func:`sessions_from_dates` numbers sessions given as dates; :func:`looks_wide` recognises a wide
table handed over as long (validation uses it to give one hint instead of a list of missing
columns). All three are also importable from :mod:`bayes_alliance.data.readers`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayes_alliance.core.problems import patients_named
from bayes_alliance.data.validate import (
    MAX_SESSION,
    DataValidationError,
    DataWarning,
    Problem,
    RowNumbers,
    did_you_mean,
    looks_wide,
    unhashable,
)

__all__ = ["looks_wide", "sessions_from_dates", "wide_to_long"]

_DATE_FORMATS = (
    "ISO8601",
    "%d.%m.%Y",
    "%d.%m.%y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d-%m-%Y",
    "%d.%m.%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
)


def wide_to_long(
    df: pd.DataFrame,
    *,
    id_columns: Sequence[str],
    patterns: Mapping[str, str],
    session: str = "session",
) -> pd.DataFrame:
    """Reshape one row per patient (a column per session) into one row per patient and session.

    Parameters
    ----------
    df
        Wide table, e.g. columns ``patient, therapist, wai_1 ... wai_12, oq_1 ... oq_12``.
    id_columns
        Columns repeated on every session row: ids and patient-level covariates.
    patterns
        Output column -> column name pattern with ``{session}`` where the session number
        stands, e.g. ``{"alliance": "wai_{session}", "symptoms": "oq_{session}"}``. The number
        must be written with digits; ``wai_01`` is session 1.
    session
        Name of the session number column in the result.

    Returns
    -------
    pandas.DataFrame
        Columns ``id_columns``, ``session`` (int64) and one per pattern, rows ordered by input
        row then session. A session with no value in any pattern is left out (a skipped session
        of a long table has no row either). ``attrs["source"]`` is kept; file line numbers are
        not (each input row became several).

    Raises
    ------
    DataValidationError
        Unknown id columns, patterns without ``{session}`` or matching no column (with the
        nearest column names), two columns giving one session, or output names that clash.

    Warns
    -----
    DataWarning
        Columns that are neither ids nor matched by a pattern: they are dropped.
    """
    names = [str(c) for c in df.columns]
    ids = list(id_columns)
    problems = _layout_problems(df.columns, names, ids, patterns, session)
    regexes: dict[str, re.Pattern[str]] = {}
    for name, pattern in patterns.items():
        if pattern.count("{session}") != 1:
            problems.append(Problem(f"pattern {pattern!r} for {name!r} needs '{{session}}' once"))
            continue
        before, after = pattern.split("{session}")
        regexes[name] = re.compile(re.escape(before) + r"(\d+)" + re.escape(after))
    matched, owner = _match_columns(names, ids, regexes, problems)
    unused = [t for j, t in enumerate(names) if j not in owner and t not in ids]
    for name, found in matched.items():
        if not found:
            example = patterns[name].replace("{session}", "1")
            problems.append(
                Problem(
                    f"pattern {patterns[name]!r} for {name!r} matches no column"
                    f"{did_you_mean(example, names)}; columns not matched by any pattern: "
                    f"{', '.join(unused[:20]) or 'none'}"
                )
            )
    if problems:
        raise DataValidationError(problems)
    if unused:
        warnings.warn(
            f"wide_to_long drops columns that are neither ids nor matched by a pattern: "
            f"{', '.join(unused)} (list patient-level ones in id_columns to keep them)",
            DataWarning,
            stacklevel=2,
        )
    return _stack(df, ids, matched, session)


def _layout_problems(
    columns: pd.Index, names: list[str], ids: list[str], patterns: Mapping[str, str], session: str
) -> list[Problem]:
    """Id columns that are missing or repeated, no patterns, output names that clash."""
    problems = []
    for c in ids:
        if c not in columns:
            problems.append(Problem(f"id column {c!r} not found{did_you_mean(c, names)}"))
        elif names.count(c) > 1:
            problems.append(Problem(f"{names.count(c)} columns are named {c!r}"))
    if not patterns:
        problems.append(Problem("no patterns given: name each output column's pattern"))
    for clash in sorted(({*patterns, session} & set(ids)) | ({session} & set(patterns))):
        problems.append(Problem(f"output column {clash!r} is also an id column or the session"))
    return problems


def _match_columns(
    names: list[str],
    ids: list[str],
    regexes: Mapping[str, re.Pattern[str]],
    problems: list[Problem],
) -> tuple[dict[str, dict[int, int]], dict[int, str]]:
    """Output column -> session number -> position of the input column (positions, because
    labels need not be unique or strings), and which output owns each matched position;
    ambiguous or implausible matches are added to ``problems``."""
    matched: dict[str, dict[int, int]] = {name: {} for name in regexes}
    owner: dict[int, str] = {}
    for j, text in enumerate(names):
        if text in ids:
            continue
        for name, rx in regexes.items():
            hit = rx.fullmatch(text)
            if not hit:
                continue
            k = int(hit[1])
            if k > MAX_SESSION:
                problems.append(Problem(f"column {text!r}: session number {k} is implausible"))
            elif j in owner:
                problems.append(
                    Problem(f"column {text!r} matches the patterns of {owner[j]!r} and {name!r}")
                )
            elif k in matched[name]:
                other = names[matched[name][k]]
                problems.append(
                    Problem(f"columns {other!r} and {text!r} both give session {k} of {name!r}")
                )
            else:
                matched[name][k] = j
                owner[j] = name
    return matched, owner


def _stack(
    df: pd.DataFrame, ids: list[str], matched: Mapping[str, Mapping[int, int]], session: str
) -> pd.DataFrame:
    """One row per input row and session (ordered so), without sessions that have no value."""
    sessions = sorted({k for found in matched.values() for k in found})
    n, m = len(df), len(sessions)
    take = np.repeat(np.arange(n), m)
    out = pd.DataFrame({c: df[c].iloc[take].reset_index(drop=True) for c in ids})
    out[session] = np.tile(np.asarray(sessions, dtype=np.int64), n)
    for name, found in matched.items():
        block = np.full((n, m), np.nan, dtype=object)
        for i, k in enumerate(sessions):
            if k in found:
                block[:, i] = df.iloc[:, found[k]].to_numpy(dtype=object)
        out[name] = pd.Series(block.ravel(), dtype=object).infer_objects()
    keep = out[list(matched)].notna().any(axis=1).to_numpy()
    out = out[keep].reset_index(drop=True)
    out.attrs = {"source": df.attrs["source"]} if "source" in df.attrs else {}
    return out


# ------------------------------------------------------------------------------------ dates
def _to_datetime(values: pd.Series, fmt: str | None = None) -> pd.Series:
    """Timestamps, NaT where unreadable; mixed time zones are compared in UTC."""
    try:
        return pd.to_datetime(values, format=fmt, errors="coerce")
    except (ValueError, TypeError):  # "Mixed timezones detected"
        return pd.to_datetime(values, format=fmt, errors="coerce", utc=True)


def _parse_dates(values: pd.Series, date_format: str | None) -> tuple[pd.Series, str | None]:
    """Timestamps (NaT where unparsed) and, when the format is ambiguous, why."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values, None
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        # Dates kept as numbers are usually YYYYMMDD.
        v = values.astype("float64")
        whole = v.where(np.isfinite(v) & (v == np.floor(v)) & (v.abs() < 1e9))
        text = whole.map(lambda d: "" if pd.isna(d) else str(int(d)))
        return _to_datetime(text, "%Y%m%d"), None
    if values.dtype == object and values.dropna().map(lambda v: hasattr(v, "year")).all():
        # Date objects (SPSS / Stata); naive and zoned ones together are compared in UTC.
        return pd.to_datetime(values, errors="coerce", utc=True), None
    text = values.astype("str").str.strip().where(values.notna())
    if date_format is not None:
        return _to_datetime(text, date_format), None
    parsed = {f: _to_datetime(text, f) for f in _DATE_FORMATS}
    most = max(int(p.notna().sum()) for p in parsed.values())
    best = [f for f, p in parsed.items() if int(p.notna().sum()) == most]
    chosen = parsed[best[0]]
    clash = [f for f in best[1:] if not parsed[f].equals(chosen)]
    if most and clash:
        why = (
            f"dates such as {text.dropna().iloc[0]!r} read as {best[0]!r} and as {clash[0]!r} "
            "differ; pass date_format or write dates as YYYY-MM-DD"
        )
        return chosen, why
    return chosen, None


def sessions_from_dates(
    df: pd.DataFrame,
    *,
    patient: str,
    date: str,
    session: str = "session",
    gap: str | None = "days_since_previous",
    date_format: str | None = None,
    elapsed: str | None = None,
    unit_days: float = 1.0,
) -> pd.DataFrame:
    """Number each patient's sessions 1, 2, ... in date order.

    Parameters
    ----------
    df
        Long table with a column of session dates (dates, date-times, text such as
        ``2021-03-14``, ``14.03.2021`` or ``03/14/2021``, or numbers such as ``20210314``).
    patient, date
        Column names of the patient id and the date.
    session
        Name of the new session number column; it may be ``date`` itself (the dates are then
        replaced by the numbers).
    gap
        Name of a new column with the days since the patient's previous session (NaN at the
        first; fractional when times are given), or None for none. It is a session-level
        column for inspection and the classic methods; the model's covariates are patient-level.
    date_format
        A ``strftime`` format for text dates, when the automatic choice is ambiguous.
    elapsed
        Name of a new column with the time since the patient's first session in units of
        ``unit_days`` days (1: days, 7: weeks), or None: the time column of continuous time
        (``Roles.time``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` (same rows, order, index and attributes, so file line numbers still
        apply) with the session numbers (int64) and the gap column.

    Raises
    ------
    DataValidationError
        Unknown columns, empty ids, empty or unreadable dates, ambiguous date formats, and two
        sessions of a patient at the same date (and time) -- their order is unknown. Each
        problem names its rows.
    """
    rows = RowNumbers(df)
    names = [str(c) for c in df.columns]
    problems = [
        Problem(f"missing column {c!r}{did_you_mean(c, names)}")
        for c in (patient, date)
        if c not in df.columns
    ]
    problems += [
        Problem(f"{names.count(c)} columns have this name", column=c)
        for c in dict.fromkeys((patient, date))
        if names.count(c) > 1
    ]
    for new in (session, gap, elapsed):
        if new is not None and new != date and new in df.columns:
            problems.append(Problem(f"column {new!r} exists already; choose another name"))
    if gap is not None and gap in (session, date):
        problems.append(Problem(f"the gap column needs its own name, not {gap!r}"))
    if problems:
        raise DataValidationError(problems)
    ids = df[patient].reset_index(drop=True)
    when, ambiguous = _parse_dates(df[date].reset_index(drop=True), date_format)
    if ambiguous:
        problems.append(Problem(ambiguous, column=date))
    if ids.isna().any():
        problems.append(rows.problem("empty id", patient, ids.isna()))
    odd = unhashable(ids)
    if odd.any():
        problems.append(rows.problem("id is not a single number or text", patient, odd))
    raw_missing = df[date].isna().to_numpy()
    who = ids.to_numpy(dtype=object)
    if raw_missing.any():
        message = f"empty date of {patients_named(who[raw_missing])}"
        problems.append(rows.problem(message, date, raw_missing))
    unread = when.isna().to_numpy() & ~raw_missing
    if unread.any():
        message = f"not a date (write YYYY-MM-DD), {patients_named(who[unread])}"
        problems.append(rows.problem(message, date, unread))
    valid = ids.notna() & when.notna() & ~odd
    tie = pd.Series(False, index=ids.index)
    tie[valid] = pd.DataFrame({"p": ids[valid], "w": when[valid]}).duplicated(keep=False)
    if tie.any():
        problems.append(
            rows.problem(
                "two sessions of one patient at the same date (their order is unknown): "
                + patients_named(who[tie.to_numpy()]),
                date,
                tie,
            )
        )
    if problems:
        raise DataValidationError(problems)
    order = when.sort_values(kind="stable").index
    by_patient = ids[order].groupby(ids[order], sort=False)
    number = (by_patient.cumcount() + 1).sort_index().to_numpy(dtype=np.int64)
    out = df.copy()
    out[session] = number
    if gap is not None:
        previous = when[order].groupby(ids[order], sort=False).shift()
        days = ((when[order] - previous).dt.total_seconds() / 86400.0).sort_index()
        out[gap] = days.to_numpy(dtype=float)
    if elapsed is not None:
        start = when[order].groupby(ids[order], sort=False).transform("min")
        since = ((when[order] - start).dt.total_seconds() / 86400.0).sort_index()
        out[elapsed] = since.to_numpy(dtype=float) / unit_days
    return out
