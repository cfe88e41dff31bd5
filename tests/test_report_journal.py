"""The report as a journal takes it: each paragraph and note once, the options as a table,
every cited work in the references (software with versions), equations in MathML, colours
that follow each variable's direction, Word and PDF export, and `fit` naming the command that
writes the report.

The report-level tests share one report of the session's fitted result (``recovery``); the
MathML builder, the citation reader, the colours and the .docx writer are tested on
hand-written inputs.
"""

from __future__ import annotations

import html as html_lib
import os
import re
import shlex
import shutil
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bayes_alliance.report import citations, export, mathml
from bayes_alliance.report import model_text as report_text
from bayes_alliance.report.direction import higher_is_better, parse_better
from bayes_alliance.report.plots import BETTER, WORSE, patient_panels, state_colours
from bayes_alliance.report.render import Plot, ReportSection, Table, fig_png
from bayes_alliance.report.sections import options_table
from bayes_alliance.report.write import write_report
from bayes_alliance.spec.model_spec import ModelSpec

MATHML = "{http://www.w3.org/1998/Math/MathML}"


@pytest.fixture(scope="module")
def journal(recovery, tmp_path_factory):
    """One report of the shared fit with a Word document beside it."""
    *_, result = recovery
    out = tmp_path_factory.mktemp("journal") / "rep"
    path = write_report(result, out, ci_prob=0.95, formats=["docx"])
    return result, out, path.read_text()


def _texts(page: str) -> list[str]:
    """The text of every paragraph, legend line and caption of the page, unescaped."""
    out = []
    for m in re.finditer(r"<p[^>]*>(.*?)</p>|<div class='legend'>(.*?)</div>", page, re.S):
        if m[1] is not None:
            out.append(m[1])
        else:
            out += m[2].split("<br>")
    out += re.findall(r"<caption>(.*?)</caption>|<figcaption>(.*?)</figcaption>", page)
    flat = [t if isinstance(t, str) else "".join(t) for t in out]
    return [html_lib.unescape(re.sub(r"<[^>]+>", "", t)).strip() for t in flat]


# -- the report ------------------------------------------------------------------------------


def test_every_paragraph_and_note_appears_once(journal):
    _, _, page = journal
    texts = [t for t in _texts(page) if t and t != "References:"]
    repeated = {t[:80]: n for t, n in Counter(texts).items() if n > 1}
    assert not repeated, repeated
    # The stationarity paragraph once, in the model's section.
    assert page.count("Stationarity is") == 1


def test_options_are_a_labelled_table_not_a_dict(journal):
    result, _, page = journal
    head = page[: page.find("<h2>")]
    assert "{'" not in head and "{&#x27;" not in head and "model options" not in head
    assert "Model options as fitted" in page
    table = page[page.find("Model options as fitted") :]
    table = table[: table.find("</table>")]
    assert "<th>option</th><th>value</th>" in table
    # Every option of the spec is a row, with its value as a reader writes it.
    opts = {k: val for k, val in result.spec.to_dict().items() if k != "priors"}
    for key in opts:
        assert f"<td class='text'>{key.replace('_', ' ')}</td>" in table, key
    assert "{" not in table and "[" not in table and "None" not in table


def test_every_citation_is_in_the_references(journal):
    _, _, page = journal
    refs_at = page.find("References:")
    assert refs_at > 0
    body = " ".join(_texts(page[:refs_at]))
    refs = page[refs_at : page.find("<table", refs_at)]
    ref_lines = [html_lib.unescape(r) for r in re.findall(r"<p>(.*?)</p>", refs)]
    cited = citations.citations(body)
    # The works this report is known to cite, read independently of the reader under test.
    for known in [("Nickell", 1, "1981"), ("Rights", 1, "2023"), ("Lüdtke", 3, "2008")]:
        assert known in cited, known
    assert ("Rights", 2, "2023") in cited  # the three-level R-squared, another work
    assert ("Kallioinen", 3, "2024") in cited or "Prior sensitivity" not in page
    listed = {citations.reference_key(r) for r in ref_lines if "[Computer software]" not in r}
    for author, n, year in cited:
        assert any(r.startswith(author) and f"({year})" in r for r in ref_lines), (author, year)
        assert (author, n, year) in listed, (author, n, year)
    assert "Rights, J. D. (2023). Aberrant" in " ".join(ref_lines)
    # and nothing is listed that is not cited (software entries name their version instead)
    for r in ref_lines:
        if "[Computer software]" in r:
            continue
        assert citations.reference_key(r) in cited, r
    assert "Luedtke" not in page and "Lüdtke et al. 2008" in page


def test_software_is_cited_with_versions(journal):
    result, _, page = journal
    versions = result.provenance["versions"]
    text = html_lib.unescape(page)
    for lib, name in [("pymc", "PyMC"), ("pytensor", "PyTensor"), ("nutpie", "nutpie")]:
        assert f"{name} {versions[lib]}" in text, lib
    for lib in ("arviz-base", "arviz-stats", "numpy", "bayes_alliance"):
        assert versions[lib] in text, lib
    assert "Abril-Pla, O." in text and "Kumar, R." in text and "Harris, C. R." in text
    assert "arviz-plots" in text


def test_equations_are_well_formed_mathml(journal):
    _, _, page = journal
    maths = re.findall(r"<math .*?</math>", page, re.S)
    assert len(maths) >= 6
    for m in maths:
        ET.fromstring(m)  # well-formed XML
    assert "<pre>" not in page
    # The state equation's lagged state is typeset with its scripts.
    assert any("<mi>φ</mi>" in m and "<mn>1</mn>" in m for m in maths)


def test_docx_is_a_word_document_with_every_table_and_figure(journal):
    _, out, page = journal
    path = out / "report.docx"
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        assert {"[Content_Types].xml", "word/document.xml", "word/styles.xml"} <= names
        for n in names:
            if n.endswith(".xml") or n.endswith(".rels"):
                ET.fromstring(z.read(n))
        doc = z.read("word/document.xml").decode()
        rels = z.read("word/_rels/document.xml.rels").decode()
        media = [n for n in names if n.startswith("word/media/")]
    n_fig = page.count("<figure ")
    assert len(media) == n_fig == doc.count("<w:drawing>")
    for k in range(1, n_fig + 1):
        assert f'Target="media/figure{k}.png"' in rels
    assert doc.count("<w:tbl>") == page.count("<table>")
    assert doc.count('w:val="Heading1"') == page.count("<h2>")
    assert "Software and references" in doc and "Nickell, S. (1981)" in doc


def test_docx_opens_in_an_independent_reader(journal):
    """python-docx (a reader written apart from this package) opens the Word document and
    finds the page's sections, tables and figures in it."""
    docx = pytest.importorskip("docx", reason="python-docx (the dev extra) reads the .docx")
    _, out, page = journal
    doc = docx.Document(str(out / "report.docx"))
    headings = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    assert headings == [html_lib.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", page)]
    assert len(doc.tables) == page.count("<table>")
    assert len(doc.inline_shapes) == page.count("<figure ")
    first = re.search(r"<thead><tr>(.*?)</tr>", page)
    assert first is not None
    header = [html_lib.unescape(h) for h in re.findall(r"<th>(.*?)</th>", first[1])]
    assert [c.text for c in doc.tables[0].rows[0].cells] == header
    assert all(0 < s.width <= docx.shared.Inches(6.31) for s in doc.inline_shapes)


@pytest.mark.skipif(
    export.find_chromium() is None,
    reason="chromium is not installed (apt-get install chromium): PDF export prints the HTML "
    "report with a headless Chromium",
)
def test_pdf_is_printed_by_chromium(recovery, tmp_path):
    *_, result = recovery
    out = tmp_path / "rep"
    write_report(result, out, formats=["pdf"])
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"


def test_pdf_without_chromium_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "find_chromium", lambda: None)
    page = tmp_path / "r.html"
    page.write_text("<p>x</p>")
    with pytest.raises(RuntimeError, match="apt-get install chromium"):
        export.write_pdf(page, tmp_path / "r.pdf")
    assert not (tmp_path / "r.pdf").exists()


FAKE_CHROMIUM = """#!/bin/sh
# Stands in for Chromium: records its arguments, prints to the --print-to-pdf path.
printf '%s\\n' "$@" > "$(dirname "$0")/args.txt"
[ -n "$FAIL" ] && { echo "cannot open display" >&2; exit 1; }
for a in "$@"; do case "$a" in --print-to-pdf=*) printf '%%PDF-1.4 fake' > "${a#*=}";; esac; done
"""


def test_pdf_command_line_and_failure(tmp_path, monkeypatch):
    """The command handed to Chromium (headless, printing the page's file URI to the PDF
    path), and Chromium's own message when it fails; a stand-in script plays Chromium."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "chromium"
    fake.write_text(FAKE_CHROMIUM)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    assert export.find_chromium() == str(fake)
    page = tmp_path / "my report.html"
    page.write_text("<p>x</p>")
    pdf = export.write_pdf(page, tmp_path / "r.pdf")
    assert pdf.read_bytes().startswith(b"%PDF-")
    args = (bin_dir / "args.txt").read_text().splitlines()
    assert "--headless" in args and f"--print-to-pdf={tmp_path / 'r.pdf'}" in args
    assert args[-1] == page.resolve().as_uri() and "%20" in args[-1]
    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(RuntimeError, match="cannot open display"):
        export.write_pdf(page, tmp_path / "other.pdf")


def test_unknown_format_is_refused_before_the_folder_is_written(recovery, tmp_path):
    *_, result = recovery
    with pytest.raises(ValueError, match="unknown report format"):
        write_report(result, tmp_path / "rep", formats=["odt"])
    assert not (tmp_path / "rep").exists()


# -- MathML ----------------------------------------------------------------------------------


def test_mathml_of_a_lagged_state_by_hand():
    got = mathml.math_line("y^w_ti = φ_yx x^w_t-1,i")
    want = (
        "<math xmlns='http://www.w3.org/1998/Math/MathML' display='block'><mrow>"
        "<msubsup><mi>y</mi><mi mathvariant='italic'>ti</mi><mi>w</mi></msubsup><mo>=</mo>"
        "<msub><mi>φ</mi><mi mathvariant='italic'>yx</mi></msub>"
        "<msubsup><mi>x</mi><mrow><mi>t</mi><mo>\u2212</mo><mn>1</mn><mo>,</mo><mi>i</mi>"
        "</mrow><mi>w</mi></msubsup></mrow></math>"
    )
    assert got == want


def test_mathml_squares_primes_words_and_functions():
    m = ET.fromstring(mathml.math_line("σ_Px² = diag(c', Φ*_i)  (indirect a, direct)"))
    sigma = m.find(f"{MATHML}mrow/{MATHML}msubsup")
    assert sigma is not None
    assert [e.text for e in sigma] == ["σ", "Px", "2"]
    fn = m.find(f"{MATHML}mrow/{MATHML}mi")
    assert fn is not None and fn.text == "diag" and fn.get("mathvariant") == "normal"
    sups = [e for e in m.iter(f"{MATHML}msup")]
    assert [e[0].text for e in sups] == ["c"] and sups[0][1].text == "\u2032"
    phi = [e for e in m.iter(f"{MATHML}msubsup") if e[0].text == "Φ"]
    assert phi and phi[0][2].text == "*"
    texts = [e.text.strip("\u00a0") for e in m.iter(f"{MATHML}mtext")]
    assert texts == ["indirect", "direct"]
    assert m.find(f"{MATHML}mrow/{MATHML}mspace") is not None  # the wide gap
    # Runs of words are one text span.
    spans = ET.fromstring(mathml.math_line("one covariance per session (as in the RI)"))
    first = next(e.text for e in spans.iter(f"{MATHML}mtext"))
    assert first == "\u00a0one covariance per session\u00a0"


def test_mathml_of_the_mechanism_notation():
    """ASCII Greek names and parenthesised scripts, as the mechanism models write them."""
    m = ET.fromstring(mathml.math_line("w_ti = Phi_i w_(t-1)i + e_ti,   e_ti ~ MVN(0, Sigma_e)"))
    subs = [e for e in m.iter(f"{MATHML}msub")]
    assert [e[0].text for e in subs] == ["w", "Φ", "w", "e", "e", "Σ"]
    lag = subs[2][1]
    assert [e.text for e in lag] == ["t", "\u2212", "1", "i"]
    mvn = [e for e in m.iter(f"{MATHML}mi") if e.text == "MVN"]
    assert mvn and mvn[0].get("mathvariant") == "normal"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"measurement_error": True, "random_slopes": ("patient",), "trend": True},
        {"first_session": "free", "reverse_lag": True, "innovations": "session"},
        {"dynamics": "none", "same_session": "predictor_to_outcome"},
        {"baseline": ("g",), "session_means": True},
        {"time_model": "continuous", "random_slopes": ("patient",)},
        {"predictor_indicators": ("a2",), "random_innovations": ("patient",)},
    ],
)
def test_mathml_of_every_equation_block_is_well_formed(options):
    try:
        spec = ModelSpec(**options)
    except (TypeError, ValueError) as exc:  # an option this version names otherwise
        pytest.fail(f"spec {options}: {exc}")
    block = report_text.equations(spec, "alliance", "symptoms")
    page = mathml.equations_html(block)
    root = ET.fromstring(page)
    maths = list(root.iter(f"{MATHML}math"))
    equations = [ln for ln in block.splitlines() if ln.startswith("  ")]
    assert len(maths) == len(equations)
    heads = [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("  ")]
    assert [p.text for p in root.iter("p")] == heads


# -- citations -------------------------------------------------------------------------------


def test_citations_are_read_as_author_and_year():
    text = (
        "latent centring; Lüdtke et al. 2008), R-squared of Rights & Sterba (2019; three levels: "
        "Rights & Sterba 2023), the RI-CLPM (Hamaker, Kuiper & Grasman 2015) and Nickell 1981. "
        "Table 2018 is not a citation."
    )
    assert citations.citations(text) == {
        ("Lüdtke", 3, "2008"),
        ("Rights", 2, "2019"),
        ("Rights", 2, "2023"),
        ("Hamaker", 3, "2015"),
        ("Nickell", 1, "1981"),
    }
    assert citations.citations("(Rights & Sterba 2019, 2023; Rights 2023)") == {
        ("Rights", 2, "2019"),
        ("Rights", 2, "2023"),
        ("Rights", 1, "2023"),
    }


def test_an_unlisted_citation_is_named():
    with pytest.raises(ValueError, match="Nobody 1999"):
        citations.cited_references(["as shown before (Nobody 1999)"])
    assert citations.cited_references(["(Nickell 1981)"]) == [
        citations.SECTION_REFERENCES["Nickell 1981"]
    ]


def test_every_citation_written_in_the_report_modules_has_its_reference():
    """The text of every report module (string constants, docstrings aside): a citation added
    to any sentence, of either model family, must come with its full reference."""
    import ast
    from pathlib import Path

    import bayes_alliance.report as report_pkg

    keys = {citations.reference_key(r) for r in citations.catalogue()}
    found = set()
    for path in sorted(Path(report_pkg.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
            and ast.get_docstring(node)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docstrings:
                    cited = citations.citations(node.value)
                    found |= cited
                    assert cited <= keys, (path.name, cited - keys)
    assert ("Nickell", 1, "1981") in found and ("Kallioinen", 3, "2024") in found


def test_catalogue_keys_are_unique():
    keys = [citations.reference_key(r) for r in citations.catalogue()]
    assert len(keys) == len(set(keys))


# -- options and directions ------------------------------------------------------------------


def test_options_table_writes_values_as_a_reader_does():
    t = options_table(
        {"random_slopes": ("patient", "therapist"), "trend": False, "baseline": (), "priors": {}}
    ).frame
    assert t.index.name == "option"
    assert t["value"].to_dict() == {
        "random slopes": "patient, therapist",
        "trend": "no",
        "baseline": "none",
    }


def test_direction_defaults_and_statements():
    assert higher_is_better("alliance", "symptoms") == (True, False)
    assert higher_is_better("alliance", "wellbeing", {"wellbeing": "higher"}) == (True, True)
    assert parse_better(["symptoms=lower", " alliance = higher"]) == {
        "symptoms": "lower",
        "alliance": "higher",
    }
    with pytest.raises(ValueError, match=r"mood.*not a variable"):
        higher_is_better("alliance", "symptoms", {"mood": "higher"})
    with pytest.raises(ValueError, match="'symptoms=up'"):
        parse_better(["symptoms=up"])


def test_state_colours_follow_the_direction():
    state = np.array([1.5, -0.5, 0.0])
    assert state_colours(state, True).tolist() == [True, False, True]
    assert state_colours(state, False).tolist() == [False, True, True]


def test_a_worse_symptom_session_is_red():
    sessions = np.array([1, 2])
    draws = np.random.default_rng(0).normal(size=(20, 2))
    states = [np.array([0.5, -0.5]), np.array([0.5, -0.5])]  # alliance, symptoms
    fig = patient_panels(
        sessions, [np.ones(2), np.ones(2)], [draws, draws], states, "P1", ("a", "s"), 0.9
    )
    axes = np.array(fig.axes).reshape(2, 2)
    colour = [[p.get_facecolor() for p in ax.patches] for ax in axes[1]]
    rgb = {name: plt.matplotlib.colors.to_rgba(c) for name, c in (("b", BETTER), ("w", WORSE))}
    # A session above the usual alliance is better; above the usual symptoms, worse.
    assert colour[0] == [rgb["b"], rgb["w"]]
    assert colour[1] == [rgb["w"], rgb["b"]]
    titles = [ax.get_legend().get_title().get_text() for ax in axes[1]]
    assert titles == ["higher is better", "higher is worse"]
    plt.close("all")


# -- Word document on hand-made sections ------------------------------------------------------


def test_docx_parts_of_hand_made_sections():
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1])
    png = fig_png(fig)
    sections = [
        ReportSection(
            "Data & <model>",
            ["A paragraph with <angle> & ampersand."],
            tables=[Table(pd.DataFrame({"mean": [0.12345, np.nan]}, index=["a", "b"]), "T", ["n"])],
            figures=[Plot("f", plt.figure(), "a caption")],
            blocks=["Heading\n  x_ti = M^x_i"],
        )
    ]
    parts = export.docx_parts("Title", sections, {"f": png}, "meta", banner="failed")
    doc = parts["word/document.xml"].decode()
    ET.fromstring(doc)
    assert "Data &amp; &lt;model&gt;" in doc and "0.123" in doc and "Table 1. T" in doc
    assert "Figure 1. a caption" in doc and ">Heading<" in doc
    # The indented line is a Word equation (OMML), not the linear notation as text.
    assert doc.count("<m:oMath>") == 1 and "x_ti = M^x_i" not in doc
    w, h = export.png_size(png)
    assert parts["word/media/figure1.png"] == png and w > h > 0
    plt.close("all")


# -- command line ----------------------------------------------------------------------------


def test_report_command_writes_docx_and_checks_its_flags(recovery, tmp_path, capsys):
    from bayes_alliance.cli.app import main

    *_, result = recovery
    folder = tmp_path / "fit"
    folder.mkdir()
    result.save(folder / "fit.nc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["report", str(folder), "--format", "docx", "--better", "mood=higher"]) != 0
        assert "mood" in capsys.readouterr().err
        assert not (folder / "report").exists()
        assert main(["report", str(folder), "--format", "odt"]) != 0
        assert "odt" in capsys.readouterr().err
        if shutil.which("chromium") is None:
            assert main(["report", str(folder), "--format", "pdf"]) != 0
            assert "apt-get install chromium" in capsys.readouterr().err
        rc = main(["report", str(folder), "--format", "docx", "--better", "symptoms=lower"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert str(folder / "report" / "report.docx") in printed
    assert zipfile.is_zipfile(folder / "report" / "report.docx")


def test_fit_prints_the_command_that_writes_the_report(recovery, tmp_path, capsys, monkeypatch):
    """`fit` offers the report: it prints the exact command (the sampling is stood in for by
    the session's fit of the same data, so only the command's own work runs)."""
    from bayes_alliance.cli import commands
    from bayes_alliance.cli.app import main

    df, _, _, result = recovery
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    monkeypatch.setattr(commands.fitting, "fit", lambda *a, **k: result)
    out = tmp_path / "my results"
    argv = ["fit", str(csv), "--patient", "patient", "--therapist", "therapist"]
    argv += ["--session", "session", "--predictor", "alliance", "--outcome", "symptoms"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main([*argv, "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    line = next(ln for ln in printed.splitlines() if ln.startswith("report: "))
    assert line.startswith(f"report: bayes-alliance report '{out}'")
    assert not (out / "report").exists()  # offered, not written
    # The printed command works as printed.
    command = line.removeprefix("report: ").split(" (add")[0]
    assert main(shlex.split(command)[1:]) == 0
    assert (out / "report" / "report.html").exists()
