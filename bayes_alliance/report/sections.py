"""Report sections and pieces that the reports of both model families share: the convergence
and sampler section (with trace and rank plots of the key parameters), the software and
references section, the report view of a labelled table, the line of metadata under the
title, and the writing of a report folder (rendered pages, figures and tables, atomically).

The joint model's sections are built in :mod:`bayes_alliance.report.write`, the mechanism
models' in :mod:`bayes_alliance.report.mechanisms`; both are rendered by
:mod:`bayes_alliance.report.render`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance.core.diagnostics import Convergence
from bayes_alliance.core.files import atomic_dir
from bayes_alliance.report import methods as report_methods
from bayes_alliance.report import plots
from bayes_alliance.report.outputs import ResultTables, write_tables
from bayes_alliance.report.render import Plot, ReportSection, Table, write_rendered

# Columns of the parameter and effect tables shown in a report (the CSVs have all).
SHOWN = ("label", "mean", "sd", "ci_low", "ci_high", "ess_bulk", "ess_tail", "r_hat")


def display_table(t: pd.DataFrame, interval: str, keep: Sequence[str] = SHOWN) -> pd.DataFrame:
    """A report view of a labelled table: chosen columns, interval bounds named by level."""
    out = t[[c for c in keep if c in t.columns]].copy()
    out = out.rename(
        columns={
            "ci_low": f"{interval}: low",
            "ci_high": f"{interval}: high",
            "ess_bulk": "ESS bulk",
            "ess_tail": "ESS tail",
            "r_hat": "R-hat",
        }
    )
    for c in ("ESS bulk", "ESS tail"):
        if c in out:
            out[c] = out[c].round(0).astype("Int64")
    return out


def as_sentence(text: str) -> str:
    """Capitalised, one full stop (messages come with and without one)."""
    return text[:1].upper() + text[1:].rstrip(".") + "."


def convergence_banner(conv: Convergence) -> str:
    """The banner at the top of a report whose convergence check failed: that it failed and
    where to read why. The check's full message (what failed, what to change) is the first
    paragraph of :func:`convergence_section`, so it is written once, not twice."""
    return (
        "CONVERGENCE CHECK FAILED: do not report these estimates (what failed and what to "
        "change: section Convergence and sampler)"
    )


def convergence_section(
    conv: Convergence,
    provenance: Mapping[str, Any],
    sampler: pd.DataFrame,
    draws: Mapping[str, np.ndarray],
    labels: Mapping[str, str],
    identification: Sequence[str] = (),
) -> ReportSection:
    """The convergence check in words and numbers, the sampler settings, and trace and rank
    plots of ``draws`` (the key parameters and the worst ones), rows explained by ``labels``;
    each message of ``identification`` (parameters the data do not identify, e.g.
    :func:`bayes_alliance.report.checks.identification_messages`) as a warning after the
    check."""
    return ReportSection(
        "Convergence and sampler",
        [
            as_sentence(conv.message()),
            f"Largest R-hat {conv.max_r_hat:.3f}; smallest bulk / tail ESS "
            f"{conv.min_ess_bulk:.0f} / {conv.min_ess_tail:.0f}; divergences "
            f"{conv.divergences}; smallest E-BFMI {conv.min_bfmi:.2f}; {conv.n_draws} draws "
            f"(seed {provenance.get('random_seed')}).",
            *(as_sentence(f"Identification warning: {m}") for m in identification),
        ],
        tables=[Table(sampler, "Sampler settings")],
        figures=[
            Plot(
                "trace_rank",
                plots.trace_rank(draws, {n: n for n in draws}),
                "Trace (left) and rank histograms per chain (right) of the key parameters "
                "and of the parameters with the worst R-hat and ESS. Chains that mix well "
                "overlap in the trace and give flat rank histograms. Rows: "
                + "; ".join(f"{n} = {lab}" for n, lab in labels.items())
                + ".",
            )
        ],
    )


def software_section(
    provenance: Mapping[str, Any], cited_in: Sequence[ReportSection]
) -> ReportSection:
    """The software the fit was made with (a citable sentence with versions), the full
    references of every work cited in the sections ``cited_in`` and of the software, and the
    library versions of the fit and of the report."""
    from bayes_alliance.report import citations

    software = citations.software_paragraph(provenance)
    texts = [*citations.section_texts(cited_in), software]
    return ReportSection(
        "Software and references",
        [
            software,
            "References:",
            *citations.cited_references(texts),
            *citations.software_references(provenance),
        ],
        tables=[
            Table(
                report_methods.versions_table(provenance),
                "Library versions of the fit and of this report",
            )
        ],
    )


def meta_line(provenance: Mapping[str, Any]) -> str:
    """The line under the title: data hash and the main libraries' versions (the model's
    options are a table of their own, :func:`options_table`)."""
    v = provenance.get("versions", {})
    return (
        f"Data hash {str(provenance.get('data_hash', ''))[:12]}; fitted with "
        f"bayes_alliance {v.get('bayes_alliance')}, pymc {v.get('pymc')}, nutpie "
        f"{v.get('nutpie')}."
    )


def _option_value(value: Any) -> str:
    """An option's value as a reader writes it: lists joined, None as "none", no quotes."""
    if value is None or value == "" or (isinstance(value, list | tuple | dict) and not value):
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_option_value(x) for x in value)
    if isinstance(value, dict):
        return "; ".join(f"{k} = {_option_value(x)}" for k, x in value.items())
    return str(value)


def options_table(options: Mapping[str, Any]) -> Table:
    """The model's options as a labelled table (option, value), one row per option; prior
    overrides (``priors``) are left to the table of the priors used, which shows every prior."""
    shown = {k: val for k, val in options.items() if k != "priors"}
    frame = pd.DataFrame(
        {"value": [_option_value(val) for val in shown.values()]},
        index=pd.Index([str(k).replace("_", " ") for k in shown], name="option"),
    )
    return Table(frame, "Model options as fitted")


def write_report_folder(
    out: str | Path,
    title: str,
    build: Callable[[], tuple[list[ReportSection], ResultTables]],
    meta: str,
    banner: str,
    *,
    force: bool = False,
    formats: Sequence[str] = (),
) -> Path:
    """Write a report into the folder ``out`` atomically (refused when it exists, unless
    ``force``): ``build()`` -> (sections, :class:`ResultTables`) is called inside the folder
    guard, so an existing folder is refused before any work is done; ``formats`` adds
    ``report.docx`` and ``report.pdf`` (:func:`~bayes_alliance.report.render.write_rendered`).
    Returns the HTML file."""
    from bayes_alliance.report.export import check_formats

    formats = check_formats(formats)  # a typo is refused before the folder is touched
    with atomic_dir(out, force=force) as tmp:
        sections, tables = build()
        write_rendered(tmp, title, sections, meta, banner, formats)
        write_tables(tmp, tables)
    return Path(out) / "report.html"


__all__ = [
    "SHOWN",
    "as_sentence",
    "convergence_banner",
    "convergence_section",
    "display_table",
    "meta_line",
    "options_table",
    "software_section",
    "write_report_folder",
]
