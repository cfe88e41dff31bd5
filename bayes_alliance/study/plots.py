"""Figures of a simulation study's summary (matplotlib, Agg backend): bias, coverage and power
against one condition setting, one panel per parameter and one line per method.

Every function takes the table of :func:`bayes_alliance.study.summary.summarise_results` (or
``summary.csv`` read back) and returns a Figure. The x axis is a condition setting: by default
``sessions`` when it is varied, else the first varied numeric setting (power curves prefer a
sample size, see :func:`~bayes_alliance.study.summary.power_x`); a study without a varied
numeric setting gets its condition names on the x axis. When settings other than x vary too,
each method gets one line per combination of them (same colour, another line style), labelled
with those settings. Lines of different methods at the same x are set slightly apart so that
their error bars do not hide each other.

Monte Carlo uncertainty is drawn as in Morris, White & Crowther (2019, Stat Med 38:2074):
error bars of +-2 MCSE around each bias and power, and around the nominal coverage a band of
+-2 sqrt(p (1 - p) / n), the coverage a method with exact intervals would show with n fits.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bayes_alliance.study.summary import (
    POWER_TARGET,
    default_x,
    is_numeric_setting,
    power_x,
    varied_settings,
)

REFERENCE = "reference"  # gid of the reference lines and bands (zero bias, nominal, target)
STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


@dataclass
class _Axis:
    """What the x axis shows: a setting's values, or the condition names at 0, 1, ..."""

    name: str  # the setting, or "condition"
    positions: dict[object, float]  # x value -> position on the axis
    numeric: bool


def _x_axis(summary: pd.DataFrame, x: str | None) -> _Axis:
    if x is None or x == "condition":
        names = sorted(summary["condition"].astype(str).unique())
        return _Axis("condition", {c: float(i) for i, c in enumerate(names)}, False)
    if x not in summary.columns:
        raise ValueError(
            f"x {x!r} is not a column of the summary; settings: {varied_settings(summary)}"
        )
    values = summary[x].dropna().unique()
    if is_numeric_setting(summary, x):
        return _Axis(x, {v: float(v) for v in values}, True)
    names = sorted(values, key=str)
    return _Axis(x, {v: float(i) for i, v in enumerate(names)}, False)


def _select(
    summary: pd.DataFrame, parameters: Sequence[str] | None, methods: Sequence[str] | None
) -> tuple[pd.DataFrame, list[str], list[str]]:
    params = (
        list(parameters) if parameters is not None else list(dict.fromkeys(summary["parameter"]))
    )
    meths = list(methods) if methods is not None else sorted(summary["method"].unique())
    for what, asked, known in (
        ("parameter", params, set(summary["parameter"])),
        ("method", meths, set(summary["method"])),
    ):
        unknown = [a for a in asked if a not in known]
        if unknown:
            raise ValueError(f"no {what} {unknown} in the summary; it has {sorted(known)}")
    if not params or not meths:
        raise ValueError("the summary has no rows to plot")
    keep = summary["parameter"].isin(params) & summary["method"].isin(meths)
    return summary[keep], params, meths


def _dodge(axis: _Axis, n_groups: int) -> float:
    """Offset between neighbouring lines at one x: 4% of the smallest gap between x values."""
    if n_groups < 2:
        return 0.0
    pos = np.unique(np.fromiter(axis.positions.values(), dtype=float))
    gap = float(np.min(np.diff(pos))) if pos.size > 1 else 1.0
    return 0.04 * gap


def _panels(
    summary: pd.DataFrame,
    x: str | None,
    parameters: Sequence[str] | None,
    methods: Sequence[str] | None,
    y: str,
    half_width: Callable[[pd.DataFrame], np.ndarray] | None,
    ylabel: str,
    decorate: Callable[[Axes, pd.DataFrame], None],
) -> Figure:
    """One panel per parameter; per panel one line per method (and combination of the other
    varied settings), error bars of +-``half_width``; ``decorate`` adds the references."""
    data, params, meths = _select(summary, parameters, methods)
    axis = _x_axis(data, x)
    key = axis.name
    others = [s for s in varied_settings(summary) if s != key]
    combos = (
        [tuple(r) for r in data[others].drop_duplicates().sort_values(others).to_numpy()]
        if others
        else [()]
    )
    groups = list(itertools.product(meths, range(len(combos))))
    step = _dodge(axis, len(groups))
    colors = plt.get_cmap("tab10").colors  # type: ignore[attr-defined]
    ncols = min(3, len(params))
    nrows = math.ceil(len(params) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(4.3 * ncols, 3.3 * nrows + 0.6),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    handles: dict[str, Line2D] = {}
    for k, (ax, param) in enumerate(zip(axes.flat, params, strict=False)):
        part = data[data["parameter"] == param]
        for g, (method, c) in enumerate(groups):
            sel = part["method"] == method
            for col, val in zip(others, combos[c], strict=True):
                sel &= part[col] == val
            cells = part[sel].dropna(subset=[key] if key != "condition" else [])
            if cells.empty:
                continue
            pos = np.array([axis.positions[v] for v in cells[key]], dtype=float)
            order = np.argsort(pos)
            xs = pos[order] + (g - (len(groups) - 1) / 2) * step
            label = ", ".join(
                [
                    method,
                    *(
                        f"{s}={v:g}" if isinstance(v, float) else f"{s}={v}"
                        for s, v in zip(others, combos[c], strict=True)
                    ),
                ]
            )
            style = {
                "color": colors[meths.index(method) % len(colors)],
                "linestyle": STYLES[c % len(STYLES)],
                "marker": MARKERS[c % len(MARKERS)],
                "markersize": 4,
                "label": label,
            }
            line = _line(ax, xs, cells.iloc[order], y, half_width, style)
            line.set_gid(f"method={method}")
            handles.setdefault(label, line)
        decorate(ax, part)
        truths = part["truth"].dropna().unique()
        title = param if len(truths) != 1 else f"{param} (truth {truths[0]:g})"
        ax.set_title(title, fontsize=10)
        if k % ncols == 0:
            ax.set_ylabel(ylabel)
    _label_axes(axes, len(params), key, axis)
    fig.legend(
        handles=list(handles.values()),
        labels=list(handles),
        loc="outside lower center",
        ncols=min(4, max(1, len(handles))),
        fontsize=8,
        frameon=False,
    )
    return fig


def _line(
    ax: Axes,
    xs: np.ndarray,
    cells: pd.DataFrame,
    y: str,
    half_width: Callable[[pd.DataFrame], np.ndarray] | None,
    style: dict[str, Any],
) -> Line2D:
    """One method's line in a panel, with error bars of +-``half_width`` when given."""
    ys = cells[y].to_numpy(dtype=float)
    if half_width is None:
        (line,) = ax.plot(xs, ys, **style)
        return line
    bar = ax.errorbar(xs, ys, yerr=half_width(cells), capsize=0, elinewidth=1, **style)
    line = bar.lines[0]
    line.set_label(style["label"])  # errorbar gives its label to the container
    return line


def _label_axes(axes: np.ndarray, n_used: int, key: str, axis: Any) -> None:
    """Hide the unused panels, put the x label under the lowest panel of each column and name
    the ticks of a non-numeric setting."""
    for ax in axes.flat[n_used:]:
        ax.set_visible(False)
    for j in range(axes.shape[1]):  # the lowest panel of each column carries the axis label
        bottom = [ax for ax in axes[:, j] if ax.get_visible()][-1]
        bottom.set_xlabel(key.replace("_", " "))
        bottom.xaxis.set_tick_params(labelbottom=True)
    if not axis.numeric:
        names = sorted(axis.positions, key=lambda v: axis.positions[v])
        for ax in axes.flat:
            ax.set_xticks([axis.positions[v] for v in names], [str(v) for v in names])
    elif len(axis.positions) <= 8:
        for ax in axes.flat:
            ax.set_xticks(sorted(axis.positions.values()))


def _two_mcse(col: str, scale: Callable[[pd.DataFrame], np.ndarray] | None = None):
    def half(cells: pd.DataFrame) -> np.ndarray:
        v = 2 * cells[col].to_numpy(dtype=float)
        return v if scale is None else v / scale(cells)

    return half


def bias_plot(
    summary: pd.DataFrame,
    x: str | None = None,
    *,
    parameters: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    relative: bool = False,
) -> Figure:
    """Bias (mean of estimate - truth) against the setting ``x``, +-2 MCSE error bars, a
    dashed line at 0. With ``relative`` the relative bias, bias / abs(truth), and its MCSE
    bias_mcse / abs(truth) (cells with truth 0 have none and are left out)."""
    x = x if x is not None else default_x(summary)

    def zero(ax: Axes, part: pd.DataFrame) -> None:
        ax.axhline(0.0, color="0.3", linewidth=0.8, linestyle="--", gid=REFERENCE, label="_zero")

    if relative:
        half = _two_mcse("bias_mcse", lambda cells: cells["truth"].abs().to_numpy(dtype=float))
        return _panels(
            summary, x, parameters, methods, "relative_bias", half, "relative bias", zero
        )
    half = _two_mcse("bias_mcse")
    return _panels(summary, x, parameters, methods, "bias", half, "bias (estimate - truth)", zero)


def coverage_plot(
    summary: pd.DataFrame,
    x: str | None = None,
    *,
    parameters: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
) -> Figure:
    """Coverage of the intervals against ``x``; a dashed line at each nominal level p
    (``ci_prob``) in the panel and a band of p +- 2 sqrt(p (1 - p) / n) around it, n the
    smallest number of fits of the panel's cells at that level (the widest band)."""
    x = x if x is not None else default_x(summary)

    def nominal(ax: Axes, part: pd.DataFrame) -> None:
        for p, cells in part.dropna(subset=["ci_prob"]).groupby("ci_prob"):
            p = float(p)  # type: ignore[arg-type]
            n = int(cells["n"].min())
            ax.axhline(
                p,
                color="0.3",
                linewidth=0.8,
                linestyle="--",
                gid=REFERENCE,
                label=f"_nominal {p:g}",
            )
            if n > 0:
                half = 2 * math.sqrt(p * (1 - p) / n)
                ax.axhspan(
                    max(0.0, p - half),
                    min(1.0, p + half),
                    color="0.85",
                    alpha=0.6,
                    zorder=0,
                    gid=REFERENCE,
                )

    return _panels(summary, x, parameters, methods, "coverage", None, "coverage", nominal)


def power_plot(
    summary: pd.DataFrame,
    x: str | None = None,
    *,
    parameters: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    target: float = POWER_TARGET,
) -> Figure:
    """Power (share of intervals excluding 0) against ``x`` (by default a sample size, see
    :func:`~bayes_alliance.study.summary.power_x`), +-2 MCSE error bars and a dashed line at
    ``target``. In a cell whose truth is 0 the same share is the false-positive rate."""
    x = x if x is not None else power_x(summary)

    def goal(ax: Axes, part: pd.DataFrame) -> None:
        ax.axhline(
            target,
            color="0.3",
            linewidth=0.8,
            linestyle="--",
            gid=REFERENCE,
            label=f"_target {target:g}",
        )
        ax.set_ylim(-0.02, 1.02)

    return _panels(summary, x, parameters, methods, "power", _two_mcse("power_mcse"), "power", goal)


__all__ = ["REFERENCE", "bias_plot", "coverage_plot", "power_plot"]
