"""The small inline-styled HTML table of the package's notebook views (``_repr_html_``)."""

from __future__ import annotations

from html import escape

TABLE_STYLE = (
    "font-family:system-ui,sans-serif;font-size:13px;border-collapse:collapse;margin:2px 0 6px 0"
)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    """A small HTML table (first column left-aligned, the rest right-aligned), every cell
    escaped."""
    cell = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:{}"
    head = "".join(f'<th style="{cell.format("left")}">{escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="{cell.format("left" if i == 0 else "right")}">{escape(v)}</td>'
            for i, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f'<table style="{TABLE_STYLE}"><tr>{head}</tr>{body}</table>'
