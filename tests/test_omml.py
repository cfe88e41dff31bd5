"""Word equations (OMML) from the report's MathML: exact output on hand-written cases, and the
.docx package holding them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile

import pytest

from bayes_alliance.report.export import docx_parts, write_docx
from bayes_alliance.report.mathml import math_line
from bayes_alliance.report.omml import M_NS, omml
from bayes_alliance.report.render import ReportSection


def run(text: str, props: str = "") -> str:
    rpr = f"<m:rPr>{props}</m:rPr>" if props else ""
    return f'<m:r>{rpr}<m:t xml:space="preserve">{text}</m:t></m:r>'


def test_sub_and_superscripts_become_omml_scripts():
    # x^w_ti = φ x^w_t-1,i : written out by hand from ECMA-376's m:sSubSup / m:sSub.
    got = omml(math_line("x^w_ti = φ_xx x^w_t-1,i"))
    state = "<m:sSubSup><m:e>{}</m:e><m:sub>{}</m:sub><m:sup>{}</m:sup></m:sSubSup>"
    lagged = run("t") + run("\u2212") + run("1") + run(",") + run("i")
    want = (
        "<m:oMath>"
        + state.format(run("x"), run("ti"), run("w"))
        + run("=")
        + f"<m:sSub><m:e>{run('φ')}</m:e><m:sub>{run('xx')}</m:sub></m:sSub>"
        + state.format(run("x"), lagged, run("w"))
        + "</m:oMath>"
    )
    assert got == want


def test_functions_upright_words_as_text_and_squares():
    got = omml(math_line("e ~ N(0, σ²) (for each patient)"))
    assert run("N", '<m:sty m:val="p"/>') in got  # a function name, upright
    assert "<m:sSup><m:e>" + run("σ") + "</m:e><m:sup>" + run("2") + "</m:sup></m:sSup>" in got
    assert run("\u00a0for each patient\u00a0", "<m:nor/>") in got  # words stay words


def test_unknown_mathml_is_refused_by_name():
    with pytest.raises(ValueError, match="mfrac"):
        omml("<math xmlns='http://www.w3.org/1998/Math/MathML'><mfrac><mn>1</mn><mn>2</mn>"
             "</mfrac></math>")  # fmt: skip


def test_docx_holds_word_equations_and_text_headings(tmp_path):
    docx = pytest.importorskip("docx")
    block = "Within (states):\n  y^w_ti = φ_yy y^w_t-1,i + e^y_ti\n\n  M^y_i = μ_y + b^y_i"
    section = ReportSection("Model", ["One paragraph."], blocks=[block])
    parts = docx_parts("t", [section], {}, "meta")
    root = ET.fromstring(parts["word/document.xml"])
    maths = root.findall(f".//{{{M_NS}}}oMath")
    assert len(maths) == 2
    assert len(root.findall(f".//{{{M_NS}}}sSubSup")) == 5
    path = write_docx(tmp_path / "r.docx", "t", [section], {}, "meta")
    texts = [p.text for p in docx.Document(str(path)).paragraphs]
    assert "Within (states):" in texts and "One paragraph." in texts
    with zipfile.ZipFile(path) as z:
        assert f'xmlns:m="{M_NS}"' in z.read("word/document.xml").decode()
