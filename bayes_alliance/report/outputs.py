"""The labelled tables of a fit as files: ``summary.csv``, ``effects.csv`` (with Markdown and
APA-style LaTeX versions) and, for the joint model, ``r2.csv`` (the same three).

:class:`ResultTables` holds a fit's tables with their captions, built by
:func:`bayes_alliance.report.tables.joint_tables` or
:func:`bayes_alliance.report.mechanisms.mechanism_tables` (either through
:func:`bayes_alliance.report.write.result_tables`); :func:`write_tables` writes them, for the
command line's output folder and for the report's folder alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_alliance.report.format import to_latex, to_markdown


@dataclass
class ResultTables:
    """A fit's labelled tables: ``summary`` (indexed by parameter), ``effects`` (a
    ``parameter`` column), ``r2`` (None where the family has no R-squared), and per table
    written as a manuscript table its caption and LaTeX label."""

    summary: pd.DataFrame
    effects: pd.DataFrame
    r2: pd.DataFrame | None = None
    captions: dict[str, tuple[str, str]] = field(default_factory=dict)

    def manuscript(self) -> dict[str, pd.DataFrame]:
        """The tables written with Markdown and LaTeX versions, by file stem."""
        out = {"effects": self.effects}
        if self.r2 is not None:
            out["r2"] = self.r2
        return out


def write_tables(folder: Path, tables: ResultTables) -> None:
    """``summary.csv``, ``effects.csv`` / ``.md`` / ``.tex`` and (where there is one)
    ``r2.csv`` / ``.md`` / ``.tex`` in ``folder``."""
    tables.summary.to_csv(folder / "summary.csv")
    for stem, table in tables.manuscript().items():
        caption, label = tables.captions.get(stem, (stem, f"tab:{stem}"))
        table.to_csv(folder / f"{stem}.csv", index=False)
        (folder / f"{stem}.md").write_text(to_markdown(table, caption))
        (folder / f"{stem}.tex").write_text(to_latex(table, caption, label))


__all__ = ["ResultTables", "write_tables"]
