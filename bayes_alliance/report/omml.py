"""Equations for Word: the report's presentation MathML (:mod:`bayes_alliance.report.mathml`)
rewritten as Office Math Markup Language (OMML, ECMA-376 Part 1, section 22.1), which Word
shows and edits as its own equations.

:func:`~bayes_alliance.report.mathml.math_line` writes a small subset of MathML, and each of its
elements has a direct OMML counterpart, so no XSLT (Microsoft's MML2OMML.XSL) is needed:

========================  ==========================================================
MathML                    OMML
========================  ==========================================================
``mi``, ``mn``, ``mo``    a math run ``m:r`` (upright ``m:sty p`` for
                          ``mathvariant='normal'``)
``mtext``                 a run of normal text (``m:nor``)
``mspace``                a run of spaces
``msub``                  ``m:sSub`` (``m:e`` base, ``m:sub``)
``msup``                  ``m:sSup`` (``m:e``, ``m:sup``)
``msubsup``               ``m:sSubSup`` (``m:e``, ``m:sub``, ``m:sup``)
``mrow``                  its children in sequence
========================  ==========================================================
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from bayes_alliance.report.mathml import math_line

M_NS = "http://schemas.openxmlformats.org/officeDocument/2006/math"
_MATHML = "{http://www.w3.org/1998/Math/MathML}"
# MathML element -> OMML element and the names of its script parts after the base.
_SCRIPTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "msub": ("sSub", ("sub",)),
    "msup": ("sSup", ("sup",)),
    "msubsup": ("sSubSup", ("sub", "sup")),
}


def _run(text: str, props: str = "") -> str:
    rpr = f"<m:rPr>{props}</m:rPr>" if props else ""
    return f'<m:r>{rpr}<m:t xml:space="preserve">{escape(text)}</m:t></m:r>'


def _convert(el: ET.Element) -> str:
    tag = el.tag.removeprefix(_MATHML)
    kids = list(el)
    if tag in ("math", "mrow"):
        return "".join(_convert(k) for k in kids)
    if tag in ("mi", "mn", "mo"):
        upright = tag == "mi" and el.get("mathvariant") == "normal"
        return _run(el.text or "", '<m:sty m:val="p"/>' if upright else "")
    if tag == "mtext":
        return _run(el.text or "", "<m:nor/>")
    if tag == "mspace":
        return _run("\u2003\u2003" if el.get("width") == "2em" else " ")
    if tag in _SCRIPTS:
        name, parts = _SCRIPTS[tag]
        if len(kids) != 1 + len(parts):
            raise ValueError(f"<{tag}> needs {1 + len(parts)} children, has {len(kids)}")
        inner = f"<m:e>{_convert(kids[0])}</m:e>" + "".join(
            f"<m:{p}>{_convert(k)}</m:{p}>" for p, k in zip(parts, kids[1:], strict=True)
        )
        return f"<m:{name}>{inner}</m:{name}>"
    raise ValueError(f"no OMML counterpart for MathML element <{tag}>")


def omml(mathml: str) -> str:
    """One ``<math>`` element (as :func:`~bayes_alliance.report.mathml.math_line` writes it) as
    an ``<m:oMath>`` element; the ``m`` prefix must be bound to :data:`M_NS` by the document."""
    return f"<m:oMath>{_convert(ET.fromstring(mathml))}</m:oMath>"


def equation_paragraph(line: str, style: str = "Equation") -> str:
    """A WordprocessingML paragraph holding one line of the linear notation as a display
    equation (``m:oMathPara``)."""
    return (
        f'<w:p><w:pPr><w:pStyle w:val="{style}"/></w:pPr>'
        f"<m:oMathPara>{omml(math_line(line))}</m:oMathPara></w:p>"
    )


__all__ = ["M_NS", "equation_paragraph", "omml"]
