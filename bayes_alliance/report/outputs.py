"""The labelled tables of a fit as files: ``summary.csv``, ``effects.csv`` (with Markdown and
APA-style LaTeX versions) and, for the joint model, ``r2.csv`` (the same three).

:class:`ResultTables` holds a fit's tables with their captions, built by
:func:`bayes_alliance.report.tables.joint_tables` or
:func:`bayes_alliance.report.mechanisms.mechanism_tables` (either through
:func:`bayes_alliance.report.write.result_tables`); :func:`write_tables` writes them, for the
command line's output folder and for the report's folder alike.

The convergence check travels with the numbers: ``effects.csv`` and ``r2.csv`` end with a
``converged`` column (True or False on every row, so that a script reading the file with pandas
or R cannot lose it; a leading comment line would break a plain ``read_csv``), and when the check
failed the Markdown and LaTeX tables say so in their caption and note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_alliance.core.diagnostics import Convergence
from bayes_alliance.report.format import to_latex, to_markdown

# The column of effects.csv and r2.csv that carries the convergence check.
CONVERGED = "converged"
NOT_CONVERGED = "NOT CONVERGED, do not report"


@dataclass
class ResultTables:
    """A fit's labelled tables: ``summary`` (indexed by parameter), ``effects`` (a
    ``parameter`` column), ``r2`` (None where the family has no R-squared), and per table
    written as a manuscript table its caption and LaTeX label; ``convergence``: the fit's
    convergence check, written with the tables (None: not known, nothing written)."""

    summary: pd.DataFrame
    effects: pd.DataFrame
    r2: pd.DataFrame | None = None
    captions: dict[str, tuple[str, str]] = field(default_factory=dict)
    convergence: Convergence | None = None

    def manuscript(self) -> dict[str, pd.DataFrame]:
        """The tables written with Markdown and LaTeX versions, by file stem."""
        out = {"effects": self.effects}
        if self.r2 is not None:
            out["r2"] = self.r2
        return out


def write_tables(folder: Path, tables: ResultTables) -> None:
    """``summary.csv``, ``effects.csv`` / ``.md`` / ``.tex`` and (where there is one)
    ``r2.csv`` / ``.md`` / ``.tex`` in ``folder``, with the convergence check (module
    docstring)."""
    tables.summary.to_csv(folder / "summary.csv")
    conv = tables.convergence
    for stem, table in tables.manuscript().items():
        caption, label = tables.captions.get(stem, (stem, f"tab:{stem}"))
        csv = table if conv is None else table.assign(**{CONVERGED: conv.ok})
        csv.to_csv(folder / f"{stem}.csv", index=False)
        if conv is not None and not conv.ok:
            caption, table = _flagged(caption, table, conv)
        (folder / f"{stem}.md").write_text(to_markdown(table, caption))
        (folder / f"{stem}.tex").write_text(to_latex(table, caption, label))


def _flagged(caption: str, table: pd.DataFrame, conv: Convergence) -> tuple[str, pd.DataFrame]:
    """A manuscript table of a fit whose convergence check failed: the caption starts with
    :data:`NOT_CONVERGED` and the note names the failed checks."""
    out = table.copy()
    why = "; ".join(conv.problems)
    note = str(table.attrs.get("note", ""))
    out.attrs["note"] = (
        f"The convergence check failed ({why}): do not report these estimates." + " " + note
    ).strip()
    return f"{NOT_CONVERGED}. {caption}", out


__all__ = ["CONVERGED", "NOT_CONVERGED", "ResultTables", "write_tables"]
