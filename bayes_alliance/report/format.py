"""Manuscript layout and rendering of result tables: Markdown and APA-style LaTeX.

Written here rather than borrowed: pandas' ``to_markdown`` needs tabulate and its
``to_latex`` needs jinja2, neither of which the package depends on. :func:`manuscript` lays a
labelled estimates table out as a journal prints it (two decimals, a typeset minus sign, the
interval in brackets, no leading zero for quantities that cannot exceed one, group headings,
a note); :func:`to_markdown` and :func:`to_latex` render any frame.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab

v = vocab
MINUS = "−"  # U+2212: typeset minus sign for manuscript cells


def number(value: float, decimals: int = 2, leading_zero: bool = True) -> str:
    """A number as a manuscript prints it: fixed decimals, a typeset minus sign, and no
    leading zero where the quantity cannot exceed one (APA), e.g. ``.46``."""
    if value is None or not math.isfinite(value):
        return ""
    text = f"{abs(value):.{decimals}f}"
    if not leading_zero and text.startswith("0."):
        text = text[1:]
    # A value that rounds to zero carries no sign.
    negative = value < 0 and float(text) != 0
    return (MINUS if negative else "") + text


def manuscript(table: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """A labelled table laid out for a manuscript: label, estimate, ``[low, high]``.

    Parameters
    ----------
    table
        From :func:`effects_table` or :func:`r2_table` (or any frame with ``label``, ``mean``,
        ``ci_low``, ``ci_high`` and ``interval`` columns, optionally ``group``).
    decimals
        Decimals of every number.

    Returns
    -------
    pandas.DataFrame
        String cells: ``Effect`` (or ``Component``), ``Estimate`` (or ``R²``) and the interval
        named by its level (e.g. ``95% HDI``), plus ``group`` (headings) when the input has
        groups; ``attrs["note"]`` carries the input's note.
    """
    is_r2 = "share_of" in table.columns
    interval = str(table["interval"].iloc[0]) if len(table) else "interval"
    rows = []
    for _, r in table.iterrows():
        if is_r2:
            eq = "Outcome" if r[v.EQUATION] == v.OUTCOME else "Predictor"
            group = f"{eq}: share of the {r['share_of']}"
            bounded = True
        else:
            group = str(r["group"]) if "group" in table.columns else ""
            name = str(r.get("parameter", ""))
            bounded = name.startswith("icc_") or name == "stationary"
        est = number(float(r["mean"]), decimals, not bounded)
        lo = number(float(r["ci_low"]), decimals, not bounded)
        hi = number(float(r["ci_high"]), decimals, not bounded)
        rows.append(
            {
                "group": group,
                "Component" if is_r2 else "Effect": str(r["label"]),
                "R²" if is_r2 else "Estimate": est,
                interval: f"[{lo}, {hi}]" if lo and hi else "",
            }
        )
    cols = ["group", "Component" if is_r2 else "Effect", "R²" if is_r2 else "Estimate", interval]
    out = pd.DataFrame(rows, columns=cols)
    if not is_r2 and "group" not in table.columns:
        out = out.drop(columns="group")
    out.attrs["note"] = table.attrs.get("note", "")
    return out


def _is_estimates(df: pd.DataFrame) -> bool:
    return {"label", "mean", "ci_low", "ci_high", "interval"} <= set(df.columns)


def _cells(df: pd.DataFrame, decimals: int) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body cells (strings) and the group of each row (empty without groups)."""
    frame = df.reset_index() if not isinstance(df.index, pd.RangeIndex) else df
    groups = [str(g) for g in frame["group"]] if "group" in frame.columns else [""] * len(frame)
    frame = frame.drop(columns="group") if "group" in frame.columns else frame
    header = [str(c) for c in frame.columns]
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for val in row:
            if isinstance(val, float | np.floating):
                cells.append(number(float(val), decimals))
            elif val is None or (isinstance(val, float) and math.isnan(val)) or val is pd.NA:
                cells.append("")
            else:
                cells.append(str(val))
        body.append(cells)
    return header, body, groups


def to_markdown(df: pd.DataFrame, caption: str = "", decimals: int = 2) -> str:
    """A Markdown (pipe) table with a bold caption above and the note below.

    Parameters
    ----------
    df
        Any frame: a labelled estimates table (from :func:`effects_table` or
        :func:`r2_table`) is laid out by :func:`manuscript` first. A ``group`` column becomes
        italic heading rows; a named index becomes the first column. Floats get ``decimals``
        decimals.
    caption
        Printed in bold above the table (empty: none).
    decimals
        Decimals of floats.

    Returns
    -------
    str
        The table, its caption and ``*Note.* ...`` when ``df.attrs["note"]`` is set.
    """
    if _is_estimates(df):
        df = manuscript(df, decimals)
    header, body, groups = _cells(df, decimals)

    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    numeric = [
        all(_looks_numeric(r[j]) for r in body if r[j]) and any(r[j] for r in body)
        for j in range(len(header))
    ]
    lines = [f"**{esc(caption)}**", ""] if caption else []
    lines.append("| " + " | ".join(esc(h) for h in header) + " |")
    lines.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")
    current = None
    for g, row in zip(groups, body, strict=True):
        if g and g != current:
            lines.append("| *" + esc(g) + "* |" + " |" * (len(header) - 1))
            current = g
        lines.append("| " + " | ".join(esc(c) for c in row) + " |")
    note = str(df.attrs.get("note", ""))
    if note:
        lines += ["", f"*Note.* {esc(note)}"]
    return "\n".join(lines) + "\n"


def _looks_numeric(s: str) -> bool:
    return bool(re.fullmatch(r"\[?[−-]?\d*\.?\d+(, [−-]?\d*\.?\d+\])?", s))


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    MINUS: r"$-$",
    "→": r"$\rightarrow$",
    "²": r"\textsuperscript{2}",
    "×": r"$\times$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "–": "--",
    "—": "---",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters and typeset the few Unicode signs tables use."""
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "", decimals: int = 2) -> str:
    """An APA-style LaTeX table (booktabs rules, no vertical lines, note below).

    Parameters
    ----------
    df
        As for :func:`to_markdown`: labelled estimates tables are laid out by
        :func:`manuscript` first; a ``group`` column becomes italic heading rows with the rows
        below them indented.
    caption, label
        ``\\caption`` and ``\\label`` (empty: left out).
    decimals
        Decimals of floats.

    Returns
    -------
    str
        A ``table`` environment; needs ``\\usepackage{booktabs}`` in the preamble.
    """
    if _is_estimates(df):
        df = manuscript(df, decimals)
    header, body, groups = _cells(df, decimals)
    numeric = [
        all(_looks_numeric(r[j]) for r in body if r[j]) and any(r[j] for r in body)
        for j in range(len(header))
    ]
    spec = "".join("r" if n else "l" for n in numeric)
    n = len(header)
    lines = [
        "% requires \\usepackage{booktabs}",
        "\\begin{table}[htbp]",
        "\\centering",
    ]
    if caption:
        lines.append(f"\\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(f"\\label{{{label}}}")
    lines += [
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in header) + " \\\\",
        "\\midrule",
    ]
    current = None
    for g, row in zip(groups, body, strict=True):
        if g and g != current:
            lines.append(f"\\multicolumn{{{n}}}{{l}}{{\\textit{{{latex_escape(g)}}}}} \\\\")
            current = g
        cells = [latex_escape(c) for c in row]
        if g:
            cells[0] = "\\quad " + cells[0]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    note = str(df.attrs.get("note", ""))
    if note:
        lines += [
            "\\par\\smallskip",
            f"\\parbox{{\\linewidth}}{{\\footnotesize\\textit{{Note.}} {latex_escape(note)}}}",
        ]
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"
