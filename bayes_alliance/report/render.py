"""Rendering of report sections: one self-contained HTML page and a Markdown file.

A report of either model family is built as data first (:class:`ReportSection` with
:class:`Table` and :class:`Plot` items, see :mod:`bayes_alliance.report.write` and
:mod:`bayes_alliance.report.mechanisms`) and rendered here. Tables and figures are numbered in
the order they appear and carry captions; a failed convergence check becomes a banner at the
top of both renderings. :func:`write_rendered` writes both renderings and the figures.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_alliance.report.mathml import equations_html
from bayes_alliance.report.tables import to_markdown

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Table:
    """A table of the report: the frame, its caption, and a legend of lines below it."""

    frame: pd.DataFrame
    caption: str
    legend: list[str] = field(default_factory=list)


@dataclass
class Plot:
    """A figure of the report: file stem (``<stem>.png``), the figure and its caption."""

    stem: str
    figure: Figure
    caption: str


@dataclass
class ReportSection:
    """One section: paragraphs, equation blocks (the linear notation of
    :mod:`bayes_alliance.report.mathml`: MathML in HTML, text in Markdown), tables, then
    figures."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Plot] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    provisional: bool = False  # paragraphs not to be reported (convergence failed)


def fig_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (closed afterwards, so figures do not pile up in memory)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


CSS = """body{font-family:DejaVu Sans,Arial,sans-serif;max-width:64em;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{color:#08306b}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#f0f4f8;text-align:left}td:first-child,th:first-child{text-align:left}td.text{text-align:left}
caption{caption-side:top;text-align:left;font-weight:bold;padding:.3em 0}
figure{margin:1em 0}figcaption{font-size:.9em;color:#333}img{max-width:100%}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em;line-height:1.35}
.meta{color:#666;font-size:.85em}.legend{font-size:.82em;color:#444;margin:.2em 0 1em}
.banner{background:#fde0dc;border:2px solid #c62828;color:#7f0000;padding:.8em 1em;margin:1em 0;font-weight:bold}
.provisional{color:#7f0000;border-left:4px solid #c62828;padding-left:.6em}
.equations{background:#f6f8fa;padding:.4em 1em;overflow-x:auto}.equations math{margin:.25em 0 .25em 1.5em;text-align:left}
.eqhead{margin:.6em 0 .1em;font-size:.92em;color:#333}"""


def _cell(value: object) -> tuple[str, bool]:
    """Cell text for HTML, and whether it is text (left-aligned) rather than a number."""
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return "", False
        return f"{float(value):.3f}", False
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return str(value), False
    if value is None or value is pd.NA:
        return "", False
    return html.escape(str(value)), True


def table_html(table: Table, number: int) -> str:
    """An HTML table with a numbered caption; the index becomes the first column."""
    frame = table.frame
    named_index = not isinstance(frame.index, pd.RangeIndex)
    cols = ([str(frame.index.name or "")] if named_index else []) + [str(c) for c in frame.columns]
    out = [
        f"<table><caption>Table {number}. {html.escape(table.caption)}</caption><thead><tr>",
        *(f"<th>{html.escape(c)}</th>" for c in cols),
        "</tr></thead><tbody>",
    ]
    for idx, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        out.append("<tr>")
        values = ([idx] if named_index else []) + list(row)
        for val in values:
            text, is_text = _cell(val)
            out.append(f"<td class='text'>{text}</td>" if is_text else f"<td>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    if table.legend:
        out.append(
            "<div class='legend'>" + "<br>".join(html.escape(x) for x in table.legend) + "</div>"
        )
    return "".join(out)


def banner_text(message: str) -> str:
    return (
        f"{message.rstrip('.')}. The estimates below are shown for diagnosis only; the summary in words "
        "is marked provisional until the check passes."
    )


def render_html(
    title: str, sections: list[ReportSection], pngs: dict[str, bytes], meta: str, banner: str = ""
) -> str:
    """The self-contained page: every figure is a data URI, nothing is fetched."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if banner:
        parts.append(f"<div class='banner' role='alert'>{html.escape(banner_text(banner))}</div>")
    parts.append(f"<p class='meta'>{html.escape(meta)}</p>")
    n_table = n_fig = 0
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        css = " class='provisional'" if s.provisional else ""
        parts += [f"<p{css}>{html.escape(p)}</p>" for p in s.paragraphs]
        parts += [equations_html(b) for b in s.blocks]
        for t in s.tables:
            n_table += 1
            parts.append(table_html(t, n_table))
        for f in s.figures:
            n_fig += 1
            b64 = base64.b64encode(pngs[f.stem]).decode()
            caption = f"Figure {n_fig}. {f.caption}"
            parts.append(
                f"<figure id='{html.escape(f.stem)}'><img alt='{html.escape(caption)}' "
                f"src='data:image/png;base64,{b64}'><figcaption>{html.escape(caption)}"
                "</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(title: str, sections: list[ReportSection], meta: str, banner: str = "") -> str:
    """The Markdown twin of the page; figures are the PNG files beside it."""
    lines = [f"# {title}", ""]
    if banner:
        lines += [f"> **{banner_text(banner)}**", ""]
    lines += [meta, ""]
    n_table = n_fig = 0
    for s in sections:
        lines += [f"## {s.title}", ""]
        for p in s.paragraphs:
            lines += [f"> {p}" if s.provisional else p, ""]
        for b in s.blocks:
            lines += ["```text", b, "```", ""]
        for t in s.tables:
            n_table += 1
            lines += [to_markdown(t.frame, f"Table {n_table}. {t.caption}", decimals=3)]
            lines += [*(f"{x}  " for x in t.legend), ""] if t.legend else []
        for f in s.figures:
            n_fig += 1
            lines += [f"![Figure {n_fig}]({f.stem}.png)", "", f"*Figure {n_fig}.* {f.caption}", ""]
    return "\n".join(lines)


def write_rendered(
    folder: Path,
    title: str,
    sections: list[ReportSection],
    meta: str,
    banner: str = "",
    formats: Sequence[str] = (),
) -> Path:
    """Render the sections into ``folder``: ``report.html`` (self-contained), ``report.md``
    and one PNG per figure (``<stem>.png``, which the Markdown links); with "docx" in
    ``formats`` also ``report.docx``, with "pdf" ``report.pdf`` (the page printed by a headless
    Chromium, :mod:`bayes_alliance.report.export`). Returns the HTML file."""
    from bayes_alliance.report import export

    formats = export.check_formats(formats)
    pngs = {f.stem: fig_png(f.figure) for s in sections for f in s.figures}
    page = folder / "report.html"
    page.write_text(render_html(title, sections, pngs, meta, banner))
    (folder / "report.md").write_text(render_markdown(title, sections, meta, banner))
    for stem, png in pngs.items():
        (folder / f"{stem}.png").write_bytes(png)
    if "docx" in formats:
        export.write_docx(folder / "report.docx", title, sections, pngs, meta, banner)
    if "pdf" in formats:
        export.write_pdf(page, folder / "report.pdf")
    return page
