"""The report of a simulation study: ``DIR/report/`` with ``index.html``, its figures (PNG) and
``summary.csv``, written atomically and replaced on each call (the study may still be running).

The page gives the study's name (``[study] name`` of ``DIR/study.toml``, else the folder's
name), how many tasks are done, the bias, coverage and power figures, a sentence per method and
parameter on the smallest setting that reaches 80% power (when the conditions form a power
grid), and per parameter a table of the performance measures with their Monte Carlo standard
errors (see :mod:`bayes_alliance.study.summary` for the definitions).
"""

from __future__ import annotations

import html
import logging
import os
import tomllib
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bayes_alliance.core.files import atomic_dir, atomic_write_text
from bayes_alliance.report.render import CSS, Table, table_html
from bayes_alliance.study import plots as study_plots
from bayes_alliance.study.summary import (
    POWER_TARGET,
    TASK,
    clean_rows,
    default_x,
    is_numeric_setting,
    power_x,
    read_conditions,
    read_results,
    summarise_results,
    varied_settings,
)

log = logging.getLogger(__name__)

REFERENCE = (
    "Morris, T. P., White, I. R., & Crowther, M. J. (2019). Using simulation studies to evaluate "
    "statistical methods. Statistics in Medicine, 38(11), 2074-2102."
)


def study_name(out_dir: str | os.PathLike[str]) -> str:
    """``[study] name`` of ``DIR/study.toml``; the folder's name when the file, the key or a
    readable file is missing."""
    path = Path(out_dir) / "study.toml"
    if path.is_file():
        try:
            with path.open("rb") as fh:
                name = tomllib.load(fh).get("study", {}).get("name")
        except (tomllib.TOMLDecodeError, OSError, AttributeError) as exc:
            log.warning("could not read the study name from %s (%s)", path, exc)
            name = None
        if isinstance(name, str) and name.strip():
            return name.strip()
    return Path(out_dir).resolve().name


def _value(v: object) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):g}"
    return str(v)


def _num(v: float, digits: int = 3) -> str:
    return "" if not np.isfinite(v) else f"{v:.{digits}f}"


def _with_mcse(v: float, se: float) -> str:
    """``0.012 (0.004)``: a measure and its Monte Carlo SE in brackets."""
    if not np.isfinite(v):
        return ""
    return f"{v:.3f} ({se:.3f})" if np.isfinite(se) else f"{v:.3f}"


def power_statements(
    summary: pd.DataFrame, x: str | None = None, target: float = POWER_TARGET
) -> list[str]:
    """One sentence per method, parameter (and combination of the other varied settings):
    the smallest value of the setting ``x`` at which power >= ``target``, or "not reached",
    with the power there, its Monte Carlo SE and the +-2 MCSE range.

    A power grid needs ``x`` (by default :func:`~bayes_alliance.study.summary.power_x`)
    numeric with at least two values; cells whose truth is 0 are left out (their share of
    intervals excluding 0 is a false-positive rate). Returns [] when there is no grid.
    """
    x = x if x is not None else power_x(summary)
    if x is None or x not in summary or not is_numeric_setting(summary, x):
        return []
    if summary[x].nunique(dropna=True) < 2:
        return []
    others = [s for s in varied_settings(summary) if s != x]
    data = summary[(summary["truth"] != 0) & summary["truth"].notna() & summary[x].notna()]
    out = []
    for key, cells in data.groupby(["method", "parameter", *others], sort=True):
        method, param, *fixed = key
        cells = cells.dropna(subset=["power"]).sort_values(x)
        if cells[x].nunique() < 2:
            continue
        where = "".join(f", {s} = {_value(v)}" for s, v in zip(others, fixed, strict=True))
        head = f"{method}, {param}{where}:"
        reached = cells[cells["power"] >= target]
        if reached.empty:
            best = cells.iloc[int(np.argmax(cells["power"].to_numpy()))]
            out.append(
                f"{head} power {target:g} not reached up to {x} = {_value(cells[x].max())} "
                f"(highest {_power_range(best)} at {x} = {_value(best[x])})."
            )
            continue
        first = reached.iloc[0]
        lowest = ", the smallest value studied" if first[x] == cells[x].iloc[0] else ""
        text = (
            f"{head} power reaches {target:g} first at {x} = {_value(first[x])}{lowest} "
            f"({_power_range(first)})"
        )
        low = first["power"] - 2 * first["power_mcse"]
        if np.isfinite(low) and low < target:
            text += (
                f"; the range reaches below {target:g}, so more replications are needed to be sure"
            )
        out.append(text + ".")
    return out


def _power_range(cell: pd.Series) -> str:
    p, se, n = float(cell["power"]), float(cell["power_mcse"]), int(cell["n"])
    if not np.isfinite(se):
        return f"power {p:.2f}, {n} fits"
    low, high = max(0.0, p - 2 * se), min(1.0, p + 2 * se)
    return f"power {p:.2f}, MCSE {se:.2f}, +-2 MCSE {low:.2f} to {high:.2f}, {n} fits"


def parameter_table(summary: pd.DataFrame, parameter: str) -> pd.DataFrame:
    """The report's table of one parameter: one row per condition and method, the varied
    settings, then the measures rounded to 3 decimals, MCSEs in brackets."""
    part = summary[summary["parameter"] == parameter]
    shown = pd.DataFrame(
        {"condition": part["condition"], "method": part["method"]}, index=part.index
    )
    for s in varied_settings(summary):
        shown[s.replace("_", " ")] = [_value(v) for v in part[s]]

    def pair(col: str, se: str) -> list[str]:
        return [_with_mcse(v, e) for v, e in zip(part[col], part[se], strict=True)]

    def num(col: str, digits: int = 3) -> list[str]:
        return [_num(v, digits) for v in part[col]]

    shown["fits"] = part["n"].astype(int)
    shown["failed"] = part["n_failed"].astype(int)
    shown["truth"] = [_value(v) for v in part["truth"]]
    shown["bias (MCSE)"] = pair("bias", "bias_mcse")
    shown["relative bias"] = num("relative_bias")
    shown["RMSE (MCSE)"] = pair("rmse", "rmse_mcse")
    shown["empirical SD"] = num("empirical_sd")
    shown["SD ratio"] = num("sd_ratio", 2)
    shown["coverage (MCSE)"] = pair("coverage", "coverage_mcse")
    shown["width"] = num("interval_width")
    shown["power (MCSE)"] = pair("power", "power_mcse")
    shown["converged"] = [f"{v:.0%}" if np.isfinite(v) else "" for v in part["convergence_rate"]]
    shown["s per fit"] = num("seconds_per_fit", 1)
    return shown.reset_index(drop=True)


# The tables' cells are text ("0.012 (0.004)"); numbers read best aligned right.
NUMBERS_RIGHT = "\ntd.text{text-align:right}td.text:nth-child(-n+2){text-align:left}"

LEGEND = [
    "fits: successful fits in the measures; failed: tasks without an estimate (error).",
    "bias: mean of estimate - truth; relative bias: bias / |truth|; RMSE: root mean squared "
    "error; empirical SD: SD of the estimates; SD ratio: mean reported SD / empirical SD.",
    "coverage: share of intervals containing the truth; width: mean interval width; power: "
    "share of intervals excluding 0 (the false-positive rate where truth is 0).",
    "converged: converged fits among all tasks; brackets: Monte Carlo standard errors.",
]


def _tasks_line(rows: pd.DataFrame, conditions: pd.DataFrame | None) -> str:
    if rows.empty:
        return "No tasks are done yet."
    tasks = rows.groupby(list(TASK))["failed"].all()
    n_cond = rows["condition"].nunique()
    of = f" of {conditions['condition'].nunique()}" if conditions is not None else ""
    methods = ", ".join(sorted(rows["method"].unique()))
    reps = rows.groupby(["condition", "method"])["replication"].nunique()
    span = str(reps.min()) if reps.min() == reps.max() else f"{reps.min()} to {reps.max()}"
    return (
        f"{len(tasks)} tasks done ({int(tasks.sum())} failed) in {n_cond}{of} conditions; "
        f"methods: {methods}; replications per condition and method: {span}."
    )


def _figure(tmp: Path, stem: str, fig: Figure, number: int, caption: str) -> str:
    fig.savefig(tmp / f"{stem}.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    text = html.escape(f"Figure {number}. {caption}")
    return (
        f"<figure id='{stem}'><img src='{stem}.png' alt='{text}'>"
        f"<figcaption>{text}</figcaption></figure>"
    )


def write_study_report(out_dir: str | os.PathLike[str], *, converged_only: bool = False) -> Path:
    """Summarise the study folder ``out_dir`` and write its report.

    Writes ``DIR/summary.csv`` (as :func:`~bayes_alliance.study.summary.write_summary`) and
    the folder ``DIR/report/`` (``index.html``, ``bias.png``, ``coverage.png``, ``power.png``
    and a copy of ``summary.csv``), atomically, replacing an earlier report. Works while the
    study runs (the report covers the tasks done so far). Returns the path of ``index.html``.
    """
    out = Path(out_dir)
    rows = read_results(out)
    conditions = read_conditions(out)
    summary = summarise_results(rows, conditions, converged_only=converged_only)
    csv = summary.to_csv(index=False)
    atomic_write_text(out / "summary.csv", csv, force=True)
    cleaned = clean_rows(rows) if not rows.empty else rows.assign(failed=pd.Series(dtype=bool))
    title = f"Simulation study: {study_name(out)}"
    which = "converged successful fits only" if converged_only else "every successful fit"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}{NUMBERS_RIGHT}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='meta'>{html.escape(_tasks_line(cleaned, conditions))}</p>",
    ]
    with atomic_dir(out / "report", force=True) as tmp:
        (tmp / "summary.csv").write_text(csv, encoding="utf-8")
        if summary.empty:
            parts.append("<p>No results to summarise yet.</p>")
        else:
            parts += _body(tmp, summary, which)
        parts.append("</body></html>")
        (tmp / "index.html").write_text("\n".join(parts), encoding="utf-8")
    return out / "report" / "index.html"


def _body(tmp: Path, summary: pd.DataFrame, which: str) -> list[str]:
    x = default_x(summary)
    px = power_x(summary)
    xname = (x or "condition").replace("_", " ")
    pxname = (px or "condition").replace("_", " ")
    parts = [
        "<h2>Measures</h2>",
        "<p>"
        + html.escape(
            f"Performance measures per condition, method and parameter over {which}; failed "
            "fits count in 'failed' and lower the convergence rate. Monte Carlo standard errors "
            "(MCSE) say how much a measure would move with another set of replications; "
            f"definitions and MCSEs follow {REFERENCE}"
        )
        + "</p>",
    ]
    statements = power_statements(summary, px)
    if statements:
        parts.append("<h2>Power</h2>")
        parts.append(
            "<p>"
            + html.escape(
                f"Smallest {pxname} at which the share of intervals excluding 0 reaches "
                f"{POWER_TARGET:g}, with its Monte Carlo standard error:"
            )
            + "</p><ul>"
        )
        parts += [f"<li>{html.escape(s)}</li>" for s in statements]
        parts.append("</ul>")
    parts.append("<h2>Figures</h2>")
    levels = ", ".join(f"{p:g}" for p in sorted(summary["ci_prob"].dropna().unique()))
    figures = [
        (
            "bias",
            study_plots.bias_plot(summary, x),
            f"Bias (mean of estimate - truth) against {xname}, one panel per parameter and "
            "one line per method; error bars +-2 Monte Carlo SE, dashed line at 0.",
        ),
        (
            "coverage",
            study_plots.coverage_plot(summary, x),
            f"Coverage of the intervals against {xname}; dashed line at the nominal level "
            f"({levels or 'not recorded'}), grey band +-2 Monte Carlo SE around it for the "
            "smallest number of fits in the panel.",
        ),
        (
            "power",
            study_plots.power_plot(summary, px),
            f"Power (share of intervals excluding 0) against {pxname}; error bars +-2 Monte "
            f"Carlo SE, dashed line at {POWER_TARGET:g}. Where the truth is 0 the share is the "
            "false-positive rate.",
        ),
    ]
    for number, (stem, fig, caption) in enumerate(figures, start=1):
        parts.append(_figure(tmp, stem, fig, number, caption))
    parts.append("<h2>Tables</h2>")
    for number, param in enumerate(dict.fromkeys(summary["parameter"]), start=1):
        table = Table(parameter_table(summary, param), f"{param}", LEGEND)
        parts.append(table_html(table, number))
    return parts


__all__ = [
    "parameter_table",
    "power_statements",
    "study_name",
    "write_study_report",
]
