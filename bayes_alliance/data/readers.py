"""Session tables from the files researchers have.

:func:`read_table` reads CSV (delimiter and decimal comma detected), Parquet, Excel, SPSS and
Stata files by extension and records where its rows start in the file (``df.attrs``), so that
validation names the file's own line numbers. The reshapes a table often needs next
(:func:`wide_to_long`, :func:`sessions_from_dates`, :func:`looks_wide`) live in
:mod:`bayes_alliance.data.reshape` and are importable from here too.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance.data.missing_codes import apply_missing_codes, describe_counts
from bayes_alliance.data.reshape import looks_wide, sessions_from_dates, wide_to_long
from bayes_alliance.data.validate import DataWarning

__all__ = ["ReadError", "looks_wide", "read_table", "sessions_from_dates", "wide_to_long"]

log = logging.getLogger(__name__)
FORMATS = {
    ".csv": "CSV",
    ".tsv": "CSV",
    ".txt": "CSV",
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".xlsx": "Excel",
    ".xlsm": "Excel",
    ".xls": "Excel",
    ".sav": "SPSS",
    ".zsav": "SPSS",
    ".dta": "Stata",
}
# How each format numbers its records, for messages ("lines 7, 9", "cases 3").
_UNITS = {
    "CSV": "lines",
    "Excel": "rows",
    "Parquet": "rows",
    "SPSS": "cases",
    "Stata": "observations",
}
_SNIFF_LINES = 200
# On a tie the first wins: semicolon files hold commas in decimal numbers and text.
_DELIMITERS = ("\t", ";", ",")
_NUMBER_COMMA = re.compile(r"^\s*[-+]?(\d+,\d*|,\d+)([eE][-+]?\d+)?\s*$")
_NUMBER_DOT = re.compile(r"^\s*[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_NEWLINE = re.compile(r"\r\n|\r|\n")  # what the CSV parsers break lines on (not str.splitlines)
# A column is an id when every word of its name is one of these ("patient", "TherapistID",
# "client_nr"); "therapist_gender" is not, so its value labels do not turn it into text.
_ID_WORDS = ("patient", "client", "klient", "therap", "subject", "particip", "proband", "person")
_NUMBER_WORDS = {"nr", "no", "num", "number"}
_ID_TOKENS = {"id", "ids", "pid", "tid", "cid", "pat", "ther", "code", "case", "vp", "vpn", "subj"}
_ID_TOKENS |= _NUMBER_WORDS


class ReadError(ValueError):
    """A file could not be read; the message names the file and the format tried."""

    def __init__(self, path: str | os.PathLike[str], fmt: str | None, reason: str):
        self.path = str(path)
        self.format = fmt
        as_what = f" as {fmt}" if fmt else ""
        super().__init__(f"cannot read {self.path!r}{as_what}: {reason}")


# --------------------------------------------------------------------------------- reading
def read_table(
    path: str | os.PathLike[str],
    *,
    sheet: str | int | None = None,
    missing_codes: object = None,
    keep: Iterable[str | None] = (),
) -> pd.DataFrame:
    """Read a data file into a DataFrame, choosing the reader by the file extension.

    Parameters
    ----------
    path
        ``.csv``, ``.tsv`` or ``.txt`` (text; the delimiter -- comma, semicolon or tab -- and a
        decimal comma are detected), ``.parquet`` / ``.pq``, ``.xlsx`` / ``.xlsm`` / ``.xls``
        (Excel; ``.xls`` needs the ``xlrd`` package), ``.sav`` / ``.zsav`` (SPSS) or ``.dta``
        (Stata).
    sheet
        Excel only: sheet name or 0-based position (default: the first sheet).
    missing_codes
        Values that mean "missing" in this file, set to missing after reading: a number or a
        list for every column but ``keep``, or a mapping of column names to numbers
        (:class:`~bayes_alliance.data.missing_codes.MissingCodes`). A code named for a column
        the file does not have is a ``ValueError`` naming it.
    keep
        The id and session columns, which codes for every column leave alone.

    Returns
    -------
    pandas.DataFrame
        The table. Entirely empty rows are dropped (their labels are skipped, so labels keep
        matching the file). SPSS and Stata value labels replace the codes of id-like columns
        (patient, client, therapist, subject, ... id), so patients are named; every other
        column keeps its numbers, and values SPSS declares missing are NaN.
        ``attrs["missing_codes"]`` counts the cells each declared code emptied per column,
        ``attrs["source"]`` is the path, ``attrs["first_line"]`` the file's number of the row
        labelled 0 (2 for a CSV with its header on line 1), ``attrs["row_unit"]`` what those
        numbers count ("lines", "rows", "cases", "observations").

    Raises
    ------
    ReadError
        Missing file, unknown extension, or a file the reader for its extension cannot parse.
    """
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        known = ", ".join(FORMATS)
        raise ReadError(
            p, None, f"unknown file type {p.suffix or '(no extension)'!r}; known: {known}"
        )
    if not p.is_file():
        raise ReadError(p, fmt, "no such file")
    if sheet is not None and fmt != "Excel":
        raise ReadError(p, fmt, "a sheet can only be chosen in an Excel file")
    if fmt == "CSV":
        df, first = _read_csv(p)
    elif fmt == "Excel":
        df, first = _read_excel(p, sheet)
    else:
        df, first = _read_binary(p, fmt), 1
    empty_rows = df.isna().all(axis=1) if df.shape[1] else pd.Series(False, index=df.index)
    df = df[~empty_rows.to_numpy()]
    df.attrs = {"source": str(p), "first_line": first, "row_unit": _UNITS[fmt]}
    log.info("read %s (%s): %d rows, %d columns", p, fmt, len(df), df.shape[1])
    df, counts = apply_missing_codes(df, missing_codes, keep)
    if counts:
        df.attrs["missing_codes"] = counts
        log.info(describe_counts(counts, missing_codes))
    return df


def _decode(raw: bytes, p: Path) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's "Unicode text"
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ReadError(p, "CSV", f"broken UTF-16 text ({exc.reason})") from None
    if b"\x00" in raw:
        raise ReadError(p, "CSV", "the file holds binary data (NUL bytes), not text")
    # UTF-8 first; then the Windows code page that SPSS and Excel exports use in Europe; Latin-1
    # decodes any byte, so the last resort never fails.
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _records(lines: Sequence[str], sep: str) -> list[list[str]]:
    return list(csv.reader(lines, delimiter=sep, skipinitialspace=True))


def _sniff(sample: Sequence[str]) -> tuple[str, str]:
    """Delimiter (the one giving the same number of fields, most of them, on every line) and
    decimal mark (a comma when numbers like 3,5 outnumber numbers like 3.5)."""
    # With no delimiter in the header (one column), any delimiter absent from the sample keeps
    # each line whole, so a decimal comma in the values is still recognised.
    absent = [d for d in _DELIMITERS if not any(d in line for line in sample)]
    best, best_score = (absent[0] if absent else ","), (0.0, 1)
    for sep in _DELIMITERS:
        try:
            counts = [len(r) for r in _records(sample, sep) if r]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        score = (sum(c == counts[0] for c in counts) / len(counts), counts[0])
        if score > best_score:
            best, best_score = sep, score
    decimal = "."
    if best != ",":
        fields = [f for r in _records(sample, best) for f in r]
        n_comma = sum(bool(_NUMBER_COMMA.match(f)) for f in fields)
        if n_comma > sum(bool(_NUMBER_DOT.match(f)) for f in fields):
            decimal = ","
    return best, decimal


def _read_csv(p: Path) -> tuple[pd.DataFrame, int]:
    text = _decode(p.read_bytes(), p)
    lines = _NEWLINE.split(text)
    header = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header is None:
        raise ReadError(p, "CSV", "the file is empty")
    try:
        sep, decimal = _sniff(lines[header : header + _SNIFF_LINES])
        df = pd.read_csv(io.StringIO(text), sep=sep, decimal=decimal, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError) as exc:
        reason = str(exc).strip().replace("\n", " ") or type(exc).__name__
        raise ReadError(p, "CSV", reason) from None
    stripped = [c.strip() if isinstance(c, str) else c for c in df.columns]
    if len(set(stripped)) == len(stripped):  # "patient " would otherwise not be found
        df.columns = pd.Index(stripped)
    first = header + 2
    starts = _record_lines(text, sep)
    if (
        starts is not None
        and len(starts) == len(df)
        and starts != list(range(first, first + len(df)))
    ):
        # Blank lines or quoted line breaks: label rows so that label + first is the line.
        df.index = pd.Index(np.asarray(starts, dtype=np.int64) - first)
    return df, first


def _record_lines(text: str, sep: str) -> list[int] | None:
    """1-based first line of each non-blank data record, as pandas counts records; None when the
    csv module cannot parse the text the way pandas did."""
    starts: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, skipinitialspace=True)
    end = 0
    try:
        for record in reader:
            if record and not (len(record) == 1 and not record[0].strip()):
                starts.append(end + 1)
            end = reader.line_num
    except csv.Error:
        return None
    return starts[1:]  # the first record is the header


def _read_excel(p: Path, sheet: str | int | None) -> tuple[pd.DataFrame, int]:
    try:
        book = pd.ExcelFile(p, engine="xlrd" if p.suffix.lower() == ".xls" else "openpyxl")
    except ImportError:
        raise ReadError(
            p, "Excel", "old .xls files need the xlrd package (pip install xlrd); or save as .xlsx"
        ) from None
    except Exception as exc:  # openpyxl and zipfile raise many types for a foreign file
        raise ReadError(
            p, "Excel", f"not a readable workbook ({type(exc).__name__}: {exc})"
        ) from None
    with book:
        names = [str(n) for n in book.sheet_names]
        chosen = 0 if sheet is None else sheet
        if (isinstance(chosen, int) and not 0 <= chosen < len(names)) or (
            isinstance(chosen, str) and chosen not in names
        ):
            raise ReadError(p, "Excel", f"no sheet {chosen!r}; the workbook has {names}")
        try:
            df = pd.read_excel(book, sheet_name=chosen)
            header = 0
            if len(df) and all(str(c).startswith("Unnamed: ") for c in df.columns):
                # Blank rows above the header: take the first row with anything in it.
                header = int(np.flatnonzero(df.notna().any(axis=1).to_numpy())[0]) + 1
                df = pd.read_excel(book, sheet_name=chosen, header=header)
        except Exception as exc:  # same reason as above: foreign content fails in many ways
            raise ReadError(p, "Excel", f"{type(exc).__name__}: {exc}") from None
    unnamed = [c for c in df.columns if str(c).startswith("Unnamed: ") and df[c].isna().all()]
    return df.drop(columns=unnamed), header + 2


def _read_binary(p: Path, fmt: str) -> pd.DataFrame:
    try:
        if fmt == "Parquet":
            df = pd.read_parquet(p)
            if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
                df = df.reset_index()  # a stored index (e.g. patient ids) becomes a column
            return df.reset_index(drop=True)
        import pyreadstat

        read = pyreadstat.read_sav if fmt == "SPSS" else pyreadstat.read_dta
        df, meta = read(str(p), dates_as_pandas_datetime=True)
    except Exception as exc:  # pyarrow / pyreadstat raise their own types for foreign content
        raise ReadError(p, fmt, f"{type(exc).__name__}: {exc}") from None
    labels: dict[str, dict[Any, str]] = dict(meta.variable_value_labels or {})
    for col in df.columns:
        if _id_like(col):
            df[col] = _label_ids(df[col], labels.get(col, {}))
    return df


def _id_like(name: object) -> bool:
    words = [t.lower() for t in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", str(name))]
    is_id = [w in _ID_TOKENS or w.startswith(_ID_WORDS) for w in words]
    return bool(words) and all(is_id) and not set(words) <= _NUMBER_WORDS


def _label_ids(s: pd.Series, labels: Mapping[Any, str]) -> pd.Series:
    """Codes of an id column replaced by their value labels (unlabelled codes as text)."""

    def code(v: Any) -> str:
        return (
            str(int(v)) if isinstance(v, float | np.floating) and float(v).is_integer() else str(v)
        )

    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return s
    if not labels:  # SPSS stores every number as a double: show id 7 as 7, not 7.0
        v = s.dropna()
        whole = bool(((v == np.floor(v)) & (v.abs() < 2**53)).all())
        return s.astype("Int64") if whole else s
    present = pd.unique(s.dropna())
    names = {v: labels.get(v, code(v)) for v in present}
    if len(set(names.values())) < len(names):  # merging two patients would be silent and wrong
        warnings.warn(
            f"column {s.name!r}: value labels name different codes alike; the codes are kept",
            DataWarning,
            stacklevel=4,
        )
        return s
    return pd.Series([None if pd.isna(v) else names[v] for v in s], index=s.index, dtype="str")
