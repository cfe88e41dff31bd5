"""The one writer of a fit's output folder, for both model families: ``fit`` (the joint model
and the mechanism models) and ``demo`` write through :func:`write_fit_folder`.

The folder holds ``fit.nc`` (the result, :meth:`save`), ``summary.csv``, ``effects.csv`` with
its manuscript versions ``effects.md`` / ``effects.tex``, ``r2.csv`` / ``.md`` / ``.tex`` where
the family has R-squared (the joint model), ``convergence.json`` and, when asked for, the
report (``report/``). Every table names its interval (highest density at the level of
``--ci``) and carries the convergence check (``effects.csv`` and ``r2.csv``: a ``converged``
column; their Markdown and LaTeX versions: a warning in caption and note when it failed,
:func:`~bayes_alliance.report.outputs.write_tables`). :func:`key_effects_text` is the block of key effects printed after a fit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bayes_alliance.core.intervals import CI_KIND, interval_name
from bayes_alliance.inference.progress import stage
from bayes_alliance.report.outputs import ResultTables, write_tables

if TYPE_CHECKING:  # the mechanism models import PyMC: a fit from the cache does not
    from bayes_alliance.mechanisms.load import AnyResult


def write_fit_folder(
    result: AnyResult,
    folder: Path,
    ci_prob: float,
    *,
    store: tuple[str, ...] = (),
    report: bool = False,
    title: str | None = None,
) -> ResultTables:
    """Write a fit's output files into ``folder`` (the temporary folder of
    :func:`~bayes_alliance.core.files.atomic_dir`); returns the labelled tables.

    Parameters
    ----------
    result
        A fit of either family.
    folder
        Where to write.
    ci_prob
        Probability of every interval.
    store
        Extra float32 groups in ``fit.nc`` (joint model; see ``FitResult.save``).
    report
        Also write the report into ``folder/report``.
    title
        The report's title (default: the family's).
    """
    # The report's modules bring matplotlib: imported when a fit is written, not by every command.
    from bayes_alliance.report.write import result_tables, write_report

    stage("writing the results%s", " and the report" if report else "")
    tables = result_tables(result, ci_prob)
    write_tables(folder, tables)
    result.save(folder / "fit.nc", store=store)
    (folder / "convergence.json").write_text(
        json.dumps(result.convergence.to_dict(), indent=2) + "\n"
    )
    if report:
        write_report(result, folder / "report", ci_prob=ci_prob, title=title)
    return tables


def key_effects_text(
    rows: pd.DataFrame, names: Sequence[str], ci_prob: float, *, head: str, width: int
) -> str:
    """The key effects among ``rows`` (indexed by name: mean, ci_low, ci_high) as a small
    table: a header naming the interval, then one line per effect present."""
    lines = [f"{head:<{width}}{'mean':>9}  {interval_name(ci_prob, CI_KIND)}"]
    for name in names:
        if name in rows.index:
            r = rows.loc[name]
            lines.append(
                f"{name:<{width}}{r['mean']:>9.3f}  [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            )
    return "\n".join(lines)


__all__ = ["key_effects_text", "write_fit_folder"]
