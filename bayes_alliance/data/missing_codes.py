"""Declared missing-value codes (``-99``, ``999``, ...): cells holding them become missing.

SPSS, Stata and many hand-kept spreadsheets store "no answer" as a number far outside the scale.
Validation warns about such values (:func:`bayes_alliance.data.validate.check_frame`); declaring
them here turns them into empty cells before validation, so the model never fits them as scores.

Two forms, combinable: codes for every column but the id and session columns (``-99 -98``), and
codes for one column (``symptoms=-99,999``). :class:`MissingCodes` parses both from command-line
words, spec-file values and Python arguments; :func:`apply_missing_codes` applies them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance.data.validate import did_you_mean

__all__ = ["MissingCodes", "apply_missing_codes", "describe_counts"]


def _number(text: object, where: str) -> float:
    """One code as a float; the message names where it came from."""
    if isinstance(text, bool):
        raise ValueError(f"missing-value code {where}: expected a number, got {text!r}")
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(
            f"missing-value code {where}: expected a number such as -99, got {text!r}"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"missing-value code {where}: must be a finite number, got {text!r}")
    return value


def _numbers(values: object, where: str) -> tuple[float, ...]:
    if isinstance(values, str):
        parts: Iterable[object] = [p for p in values.split(",") if p.strip()]
    elif isinstance(values, Iterable):
        parts = values
    else:
        parts = [values]
    out = tuple(_number(p, where) for p in parts)
    if not out:
        raise ValueError(f"missing-value code {where}: no value given")
    return out


@dataclass(frozen=True)
class MissingCodes:
    """Values that mean "missing", for every value column or per column.

    Attributes
    ----------
    everywhere
        Codes for every column except the id and session columns (patients, therapists and
        session numbers are never recoded: a patient with id 99 stays patient 99).
    by_column
        Codes for one named column each (any column, ids included: the user named it).
    """

    everywhere: tuple[float, ...] = ()
    by_column: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.everywhere or self.by_column)

    @classmethod
    def parse(cls, words: Sequence[str]) -> MissingCodes:
        """From command-line words: ``-99``, ``-99,-98`` (every value column) or
        ``symptoms=-99,999`` (one column); a column named twice collects both lists.

        Raises
        ------
        ValueError
            A word that is neither, naming it.
        """
        everywhere: list[float] = []
        by_column: dict[str, list[float]] = {}
        for word in words:
            name, sep, values = word.rpartition("=")
            if sep and not name.strip():
                raise ValueError(f"--missing-code {word!r}: give COLUMN=CODES, e.g. symptoms=-99")
            where = f"{word!r}"
            if sep:
                by_column.setdefault(name.strip(), []).extend(_numbers(values, where))
            else:
                everywhere.extend(_numbers(word, where))
        return cls(tuple(everywhere), {k: tuple(v) for k, v in by_column.items()})

    @classmethod
    def coerce(cls, value: object) -> MissingCodes:
        """From a Python argument or a spec file's ``[data] missing_codes``.

        ``None`` (none); a number (``-99``) or a list of numbers (``[-99, -98]``): every value
        column; a mapping of column names to a number or a list (``{"symptoms": [-99, 999]}``),
        where the key ``"*"`` stands for every value column; a :class:`MissingCodes` as is.
        """
        if value is None:
            return cls()
        if isinstance(value, MissingCodes):
            return value
        if isinstance(value, Mapping):
            everywhere: tuple[float, ...] = ()
            by_column: dict[str, tuple[float, ...]] = {}
            for key, codes in value.items():
                if not isinstance(key, str) or not key:
                    raise ValueError(f"missing codes: column names must be text, got {key!r}")
                numbers = _numbers(codes, f"for column {key!r}")
                if key == "*":
                    everywhere = numbers
                else:
                    by_column[key] = numbers
            return cls(everywhere, by_column)
        return cls(_numbers(value, "(every column)"), {})

    def to_dict(self) -> dict[str, list[float]]:
        """Plain data (the ``coerce`` form), e.g. for a spec file or provenance."""
        out = {"*": list(self.everywhere)} if self.everywhere else {}
        return out | {k: list(v) for k, v in self.by_column.items()}

    def flag_text(self) -> str:
        """The same codes as ``--missing-code`` words."""
        words = [f"{v:g}" for v in self.everywhere]
        words += [f"{k}={','.join(f'{v:g}' for v in vs)}" for k, vs in self.by_column.items()]
        return " ".join(words)


def apply_missing_codes(
    df: pd.DataFrame, codes: MissingCodes | object, keep: Iterable[str | None] = ()
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Set the cells that hold a declared code to missing.

    Parameters
    ----------
    df
        The table as read (``attrs`` such as the file's line numbers are kept).
    codes
        A :class:`MissingCodes`, or anything :meth:`MissingCodes.coerce` takes.
    keep
        The id and session columns: codes for every column skip them (a code named for one of
        them by column still applies).

    Returns
    -------
    (DataFrame, dict)
        A copy with the codes replaced by missing values, and how many cells each column lost
        (columns with none left out). Numeric columns are compared as numbers; text columns
        by their numeric reading ("-99" and "-99.0" both match -99).

    Raises
    ------
    ValueError
        A code given for a column that the table does not have, naming it (and the closest
        column name).
    """
    mc = MissingCodes.coerce(codes)
    if not mc:
        return df, {}
    names = [str(c) for c in df.columns]
    absent = [c for c in mc.by_column if c not in names]
    if absent:
        c = absent[0]
        raise ValueError(
            f"missing-value codes given for column {c!r}, which the table does not have"
            f"{did_you_mean(c, names)}; its columns: {', '.join(names)}"
        )
    kept = {str(k) for k in keep if k is not None}
    out = df.copy()
    counts: dict[str, int] = {}
    for col in df.columns:
        name = str(col)
        wanted = set(mc.by_column.get(name, ()))
        if name not in kept:
            wanted |= set(mc.everywhere)
        if not wanted:
            continue
        s = df[col]
        if pd.api.types.is_bool_dtype(s.dtype):
            continue
        if pd.api.types.is_numeric_dtype(s.dtype):
            num = s.astype("float64")
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            num = pd.to_numeric(s, errors="coerce").astype("float64")
        else:  # dates, categories: never a numeric code
            continue
        hit = np.isin(num.to_numpy(), np.fromiter(wanted, dtype=float)) & num.notna().to_numpy()
        if hit.any():
            if pd.api.types.is_integer_dtype(s.dtype) and not pd.api.types.is_extension_array_dtype(
                s.dtype
            ):
                out[col] = s.astype("float64")  # int64 holds no NaN
            out.loc[hit, col] = np.nan
            counts[name] = int(hit.sum())
    out.attrs = dict(df.attrs)
    return out, counts


def describe_counts(counts: Mapping[str, int], codes: Any) -> str:
    """One line: which columns lost how many cells to the declared codes."""
    if not counts:
        return f"missing-value codes {MissingCodes.coerce(codes).flag_text()}: no cell held them"
    parts = ", ".join(f"{n} in {c!r}" for c, n in counts.items())
    return (
        f"missing-value codes {MissingCodes.coerce(codes).flag_text()}: cells set missing: {parts}"
    )
