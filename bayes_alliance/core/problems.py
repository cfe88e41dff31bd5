"""How problems with a session table are reported: one :class:`Problem` per violated rule (the
column, the rows or ids at fault), all raised together as a :class:`DataValidationError`;
:class:`DataWarning` for what allows a fit but weakens it; :class:`RowNumbers` to name rows by
the file's own numbering."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

_SHOW = 8  # how many offending rows or ids to print per problem


class DataWarning(UserWarning):
    """The data can be fitted, but something limits what the model can learn from it."""


@dataclass(frozen=True)
class Problem:
    """One violated rule: which column, which rows or ids, and what is wrong.

    ``rows`` are index labels, or the file's line (row, case) numbers when the table's reader
    recorded them; ``unit`` names which ("rows", "lines", ...).
    """

    message: str
    column: str | None = None
    rows: tuple[object, ...] = ()
    ids: tuple[object, ...] = ()
    unit: str = "rows"

    def __str__(self) -> str:
        where = f"column {self.column!r}: " if self.column else ""
        extra = ""
        if self.rows:
            extra += f" ({self.unit} {listing(self.rows)})"
        if self.ids:
            extra += f" (ids {listing(self.ids)})"
        return where + self.message + extra


class DataValidationError(ValueError):
    """Raised with every problem found in a session table at once."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        lines = [f"{n} problem{'s' if n != 1 else ''} in the session data:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class RowNumbers:
    """Names the rows of a table in messages: file line numbers when the reader recorded them.

    A reader sets ``df.attrs["first_line"]`` (the number of the row labelled 0) and optionally
    ``df.attrs["row_unit"]``; row ``label`` is then number ``first_line + label``. Index labels
    survive filtering and sorting, so the numbers stay right after ``df[mask]``. Without the
    attribute, or with a non-integer index, rows are named by their index labels.
    """

    def __init__(self, df: pd.DataFrame):
        self.labels = df.index
        self.unit = "rows"
        self.numbers: np.ndarray | None = None
        first = df.attrs.get("first_line")
        if (
            isinstance(first, int | np.integer)
            and not isinstance(first, bool)
            and pd.api.types.is_integer_dtype(df.index.dtype)
        ):
            self.numbers = df.index.to_numpy(dtype=np.int64) + int(first)
            self.unit = str(df.attrs.get("row_unit", "lines"))

    def __call__(self, mask: object) -> tuple[object, ...]:
        """Numbers (or labels) of the rows where the positional boolean ``mask`` is true."""
        pos = np.flatnonzero(np.asarray(mask, dtype=bool))
        if self.numbers is not None:
            return tuple(int(n) for n in self.numbers[pos])
        return tuple(self.labels[pos])

    def problem(self, message: str, column: str | None, mask: object) -> Problem:
        return Problem(message, column=column, rows=self(mask), unit=self.unit)


def patients_named(ids: Iterable[object]) -> str:
    """``"patient p1"`` or ``"patients p1, p2"``: the patients a problem is about, in the words
    a clinician reads (each distinct id once, in the order given; empty ids left out)."""
    seen = tuple(dict.fromkeys(_id_text(i) for i in ids if not _empty(i)))
    if not seen:
        return "patient unknown (empty id)"
    return ("patient " if len(seen) == 1 else "patients ") + listing(seen)


def _empty(value: object) -> bool:
    """None, NaN, pandas' NA or NaT (``==`` on pandas' NA raises, so ask pandas)."""
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):  # an array-like id: not empty
        return False


def _id_text(value: object) -> str:
    """An id as the user wrote it: integer ids that pandas turned into floats (a column with
    an empty cell) without the ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def listing(items: Sequence[object]) -> str:
    shown = ", ".join(str(i) for i in items[:_SHOW])
    more = len(items) - _SHOW
    return shown + (f" and {more} more" if more > 0 else "")


__all__ = ["DataValidationError", "DataWarning", "Problem", "RowNumbers", "patients_named"]
