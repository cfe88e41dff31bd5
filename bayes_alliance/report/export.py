"""The report as a Word document (.docx) and as a PDF.

The .docx file is WordprocessingML written here (a zip of XML parts: the document, its
styles, its relationships and the PNG figures), so the report needs no further dependency:
headings, paragraphs, numbered table and figure captions, tables with a header row, the
figures at their size, and the equations as Word equations (OMML, converted from the page's
MathML by :mod:`bayes_alliance.report.omml`; their headings in words stay text). The PDF is the
HTML page printed by a headless Chromium (``chromium --headless --print-to-pdf``), which
renders the page's MathML; without Chromium :func:`write_pdf` says what to install.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from bayes_alliance.report.omml import M_NS, equation_paragraph
from bayes_alliance.report.render import ReportSection, Table, banner_text

FORMATS = ("html", "docx", "pdf")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_EMU_PER_INCH = 914400
_DPI = 110  # the figures' resolution (render.fig_png)
_MAX_WIDTH_IN = 6.3  # an A4 or Letter page's text width
_QUOTE = {'"': "&quot;"}  # escaped in attributes

CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Default Extension="png" ContentType="image/png"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>
</Types>"""
PACKAGE_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{_PKG}">
<Relationship Id="rId1" Type="{_R}/officeDocument" Target="word/document.xml"/>
</Relationships>"""


def _style(sid: str, name: str, run: str, para: str = "", based: str = "Normal") -> str:
    return (
        f'<w:style w:type="paragraph" w:styleId="{sid}"><w:name w:val="{name}"/>'
        f'<w:basedOn w:val="{based}"/><w:next w:val="Normal"/><w:qFormat/>'
        f"<w:pPr>{para}</w:pPr><w:rPr>{run}</w:rPr></w:style>"
    )


STYLES = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:styles xmlns:w="{_W}">'
    '<w:docDefaults><w:rPrDefault><w:rPr><w:rFonts w:ascii="Calibri" w:hAnsi="Calibri" '
    'w:cs="Calibri"/><w:sz w:val="22"/></w:rPr></w:rPrDefault><w:pPrDefault><w:pPr>'
    '<w:spacing w:after="120" w:line="264" w:lineRule="auto"/></w:pPr></w:pPrDefault>'
    "</w:docDefaults>"
    '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/>'
    "<w:qFormat/></w:style>"
    + _style("Title", "Title", '<w:b/><w:sz w:val="36"/><w:color w:val="08306B"/>')
    + _style(
        "Heading1",
        "heading 1",
        '<w:b/><w:sz w:val="28"/>',
        '<w:keepNext/><w:spacing w:before="360" w:after="120"/><w:outlineLvl w:val="0"/>',
    )
    + _style("Caption", "caption", '<w:b/><w:sz w:val="20"/>', "<w:keepNext/>")
    + _style("Note", "Table note", '<w:sz w:val="18"/><w:color w:val="444444"/>')
    + _style(
        "Equation",
        "Equation",
        '<w:rFonts w:ascii="Cambria Math" w:hAnsi="Cambria Math"/><w:sz w:val="20"/>',
        '<w:spacing w:after="0"/><w:ind w:left="360"/>',
    )
    + _style("Banner", "Banner", '<w:b/><w:color w:val="7F0000"/>')
    + "</w:styles>"
)


def _run(text: str, bold: bool = False) -> str:
    props = "<w:rPr><w:b/></w:rPr>" if bold else ""
    return f'<w:r>{props}<w:t xml:space="preserve">{escape(text)}</w:t></w:r>'


def _para(text: str, style: str | None = None, bold: bool = False) -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{props}{_run(text, bold)}</w:p>"


def cell_text(value: object) -> str:
    """A table cell as the HTML page shows it: numbers to three decimals, missing empty."""
    if isinstance(value, float | np.floating):
        return f"{float(value):.3f}" if math.isfinite(float(value)) else ""
    if value is None or value is pd.NA:
        return ""
    return str(value)


def _table(table: Table, number: int) -> str:
    frame = table.frame
    named_index = not isinstance(frame.index, pd.RangeIndex)
    header = ([str(frame.index.name or "")] if named_index else []) + [str(c) for c in frame]
    rows = [
        ([idx] if named_index else []) + list(row)
        for idx, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]
    border = "".join(
        f'<w:{side} w:val="single" w:sz="4" w:space="0" w:color="BBBBBB"/>'
        for side in ("top", "left", "bottom", "right", "insideH", "insideV")
    )

    def tr(cells: Sequence[object], head: bool) -> str:
        shade = '<w:shd w:val="clear" w:color="auto" w:fill="F0F4F8"/>' if head else ""
        repeat = "<w:trPr><w:tblHeader/></w:trPr>" if head else ""  # on every page
        return (
            f"<w:tr>{repeat}"
            + "".join(
                f'<w:tc><w:tcPr>{shade}</w:tcPr><w:p><w:pPr><w:spacing w:after="0"/></w:pPr>'
                f"{_run(cell_text(c), bold=head)}</w:p></w:tc>"
                for c in cells
            )
            + "</w:tr>"
        )

    out = [
        _para(f"Table {number}. {table.caption}", "Caption"),
        f'<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/><w:tblBorders>{border}'
        '</w:tblBorders><w:tblCellMar><w:left w:w="80" w:type="dxa"/><w:right w:w="80" '
        'w:type="dxa"/></w:tblCellMar></w:tblPr>',
        tr(header, True),
        *(tr(r, False) for r in rows),
        "</w:tbl>",
    ]
    out += [_para(line, "Note") for line in table.legend if line]
    return "".join(out)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels of a PNG, from its header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def _image(rid: str, number: int, png: bytes, caption: str) -> str:
    w_px, h_px = png_size(png)
    scale = min(1.0, _MAX_WIDTH_IN * _DPI / w_px)
    cx = int(w_px * scale * _EMU_PER_INCH / _DPI)
    cy = int(h_px * scale * _EMU_PER_INCH / _DPI)
    pic = "http://schemas.openxmlformats.org/drawingml/2006/picture"
    drawing = (
        '<w:drawing><wp:inline xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/'
        f'wordprocessingDrawing"><wp:extent cx="{cx}" cy="{cy}"/>'
        f'<wp:docPr id="{number}" name="Figure {number}" descr="{escape(caption, _QUOTE)}"/>'
        '<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
        f'<a:graphicData uri="{pic}"><pic:pic xmlns:pic="{pic}">'
        f'<pic:nvPicPr><pic:cNvPr id="{number}" name="figure{number}.png"/><pic:cNvPicPr/>'
        f'</pic:nvPicPr><pic:blipFill><a:blip r:embed="{rid}"/><a:stretch><a:fillRect/>'
        '</a:stretch></pic:blipFill><pic:spPr><a:xfrm><a:off x="0" y="0"/>'
        f'<a:ext cx="{cx}" cy="{cy}"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/>'
        "</a:prstGeom></pic:spPr></pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing>"
    )
    return f"<w:p><w:r>{drawing}</w:r></w:p>" + _para(f"Figure {number}. {caption}", "Caption")


def docx_parts(
    title: str,
    sections: list[ReportSection],
    pngs: dict[str, bytes],
    meta: str,
    banner: str = "",
) -> dict[str, bytes]:
    """The parts of the .docx package by their path in the zip."""
    body = [_para(title, "Title")]
    if banner:
        body.append(_para(banner_text(banner), "Banner"))
    body.append(_para(meta, "Note"))
    media: dict[str, bytes] = {}
    rels = [f'<Relationship Id="rIdStyles" Type="{_R}/styles" Target="styles.xml"/>']
    n_table = n_fig = 0
    for s in sections:
        body.append(_para(s.title, "Heading1"))
        body += [_para(p, bold=False) for p in s.paragraphs]
        for block in s.blocks:
            # As on the page (mathml.equations_html): indented lines are equations.
            body += [
                equation_paragraph(line)
                if line.startswith("  ") and line.strip()
                else _para(line.strip() or " ", "Equation")
                for line in block.splitlines()
            ]
        for t in s.tables:
            n_table += 1
            body.append(_table(t, n_table))
        for f in s.figures:
            n_fig += 1
            rid = f"rIdImg{n_fig}"
            media[f"word/media/figure{n_fig}.png"] = pngs[f.stem]
            rels.append(
                f'<Relationship Id="{rid}" Type="{_R}/image" Target="media/figure{n_fig}.png"/>'
            )
            body.append(_image(rid, n_fig, pngs[f.stem], f.caption))
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{_W}" xmlns:r="{_R}" xmlns:m="{M_NS}"><w:body>'
        + "".join(body)
        + '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="1134" w:right="1134" '
        'w:bottom="1134" w:left="1134" w:header="709" w:footer="709" w:gutter="0"/>'
        "</w:sectPr></w:body></w:document>"
    )
    doc_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<Relationships xmlns="{_PKG}">' + "".join(rels) + "</Relationships>"
    )
    return {
        "[Content_Types].xml": CONTENT_TYPES.encode(),
        "_rels/.rels": PACKAGE_RELS.encode(),
        "word/document.xml": document.encode(),
        "word/styles.xml": STYLES.encode(),
        "word/_rels/document.xml.rels": doc_rels.encode(),
        **media,
    }


def write_docx(
    path: Path,
    title: str,
    sections: list[ReportSection],
    pngs: dict[str, bytes],
    meta: str,
    banner: str = "",
) -> Path:
    """Write the report as a Word document at ``path`` (inside a report folder that is written
    atomically as a whole)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in docx_parts(title, sections, pngs, meta, banner).items():
            z.writestr(name, data)
    return path


def find_chromium() -> str | None:
    """The path of a Chromium or Chrome executable on the PATH, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def write_pdf(html_path: Path, pdf_path: Path, timeout: float = 120.0) -> Path:
    """Print the HTML page to ``pdf_path`` with a headless Chromium.

    Raises
    ------
    RuntimeError
        Without Chromium (saying what to install), or when Chromium fails (with its message).
    """
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError(
            "PDF export prints the HTML report with a headless Chromium, and none was found "
            "on the PATH (looked for " + ", ".join(CHROMIUM_NAMES) + "). Install it (Debian "
            "or Ubuntu: apt-get install chromium) or ask for --format docx or html."
        )
    cmd = [
        chromium,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",  # as root in a container Chromium refuses its sandbox
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf_path}",
        html_path.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or not pdf_path.exists():
        raise RuntimeError(
            f"Chromium could not print {html_path} to PDF (exit {done.returncode}): "
            + (done.stderr.strip()[-500:] or "no message")
        )
    return pdf_path


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The formats asked for, checked (the HTML page and Markdown are always written)."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown report format(s) {bad}; choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(formats))


__all__ = [
    "FORMATS",
    "check_formats",
    "docx_parts",
    "find_chromium",
    "png_size",
    "write_docx",
    "write_pdf",
]
