"""A newcomer's first analysis, end to end, as README.md and docs/ show it (issue 28's check).

A researcher has an SPSS file: ids with value labels, alliance and symptoms with ``-99`` for
"not answered" (labelled so in SPSS, but not declared missing). They run, as separate
processes, ``validate`` and ``describe`` with ``--missing-code -99``, ``fit --model "..."``
and ``report --format docx``; then in Python ``load_result``, ``loo()``, ArviZ's ``loo`` on
``result.idata``, ``pp_check(kind=...)`` and ``hypothesis(...)``; and they open the HTML page in
a browser and the .docx in Word (python-docx here).

The expected values come from the table the test wrote (which cells hold -99, the labels it
gave), from the posterior draws directly (a hypothesis' probability is a share of draws) and
from the page itself (every ``<img>`` and ``<math>`` it holds), not from the code under test.
One small fit (12 patients x 6 sessions, 2 x 100 draws) is shared by the module.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_alliance import simulate
from tests.browser import CHROMIUM, SKIP_REASON, probe

pyreadstat = pytest.importorskip("pyreadstat")

MODEL = (
    "symptoms ~ lag(alliance) + lag(symptoms) + (1 | therapist/patient); "
    "alliance ~ lag(alliance) + lag(symptoms); session = session"
)
ROLES = ["--patient", "patient", "--therapist", "therapist", "--session", "session"]
ROLES += ["--predictor", "alliance", "--outcome", "symptoms"]
CODED = {"alliance": [2, 9, 30], "symptoms": [5, 40]}  # rows holding -99
THERAPISTS = {1.0: "Dr. Müller", 2.0: "Dr. Okafor", 3.0: "Dr. Lind", 4.0: "Dr. Sato"}
SEED = 5


@dataclass
class Flow:
    frame: pd.DataFrame  # the table written to the .sav, codes included
    sav: Path
    fit_dir: Path
    outputs: dict[str, subprocess.CompletedProcess[str]]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``bayes-alliance ARGS`` as a separate process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "bayes_alliance.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def spss_file(path: Path) -> pd.DataFrame:
    """12 patients of 4 therapists, 6 sessions each; numeric ids with value labels (the
    therapists' names, the patients' none), and -99 in five score cells, labelled
    "not answered" but not declared missing (as hand-kept files often are)."""
    df, _ = simulate(seed=3, n_therapists=4, patients_per_therapist=3, sessions=6)
    df["patient"] = df["patient"].str[1:].astype(float)
    df["therapist"] = df["therapist"].str[1:].astype(float)
    for column, rows in CODED.items():
        df.loc[rows, column] = -99.0
    pyreadstat.write_sav(
        df,
        str(path),
        variable_value_labels={
            "therapist": THERAPISTS,
            "alliance": {-99.0: "not answered"},
            "symptoms": {-99.0: "not answered"},
        },
    )
    return df


@pytest.fixture(scope="module")
def flow(tmp_path_factory) -> Flow:
    folder = tmp_path_factory.mktemp("newcomer")
    sav = folder / "sessions.sav"
    frame = spss_file(sav)
    fit_dir = folder / "results"
    outputs = {
        "validate_plain": cli("validate", str(sav), *ROLES),
        "validate": cli("validate", str(sav), *ROLES, "--missing-code", "-99"),
        "describe": cli(
            *["describe", str(sav), *ROLES, "--missing-code", "-99"],
            *["--out", str(folder / "descriptives.csv")],
        ),
        "fit": cli(
            *["fit", str(sav), "--model", MODEL, "--missing-code", "-99", "--out", str(fit_dir)],
            *["--draws", "100", "--tune", "150", "--seed", str(SEED), "--quiet"],
        ),
    }
    outputs["report"] = cli("report", str(fit_dir), "--format", "docx")
    return Flow(frame, sav, fit_dir, outputs)


@pytest.fixture(scope="module")
def result(flow):
    import bayes_alliance as ba

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the few-therapists warning, said by the CLI already
        return ba.load_result(flow.fit_dir / "fit.nc")


def _ok(run: subprocess.CompletedProcess[str], codes: tuple[int, ...] = (0,)) -> None:
    assert run.returncode in codes, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]


# -- data: the -99 codes ---------------------------------------------------------------------


def test_validate_warns_about_the_code_until_it_is_declared(flow):
    plain, declared = flow.outputs["validate_plain"], flow.outputs["validate"]
    _ok(plain)
    _ok(declared)
    said, said_declared = plain.stdout + plain.stderr, declared.stdout + declared.stderr
    # Undeclared, -99 is a score: the check names it, its SPSS cases (1-based) and the flag.
    cases = ", ".join(str(r + 1) for r in CODED["alliance"])
    assert f"column 'alliance': -99 looks like a missing-value code (cases {cases})" in said
    assert "--missing-code alliance=-99" in said
    assert "looks like a missing-value code" not in said_declared
    assert "cells set missing: 3 in 'alliance', 2 in 'symptoms'" in said_declared


def test_describe_counts_the_coded_cells_missing(flow):
    _ok(flow.outputs["describe"])
    table = pd.read_csv(flow.fit_dir.parent / "descriptives.csv")
    variables = table.set_index("variable") if "variable" in table else None
    assert variables is not None, table.columns.tolist()
    n_rows = len(flow.frame)
    for column, rows in CODED.items():
        real = flow.frame[column].drop(index=rows)
        row = variables.loc[column]
        assert int(row["n_observed"]) == n_rows - len(rows)
        assert float(row["missing_share"]) == pytest.approx(len(rows) / n_rows, abs=0.005)
        assert float(row["min"]) == pytest.approx(real.min(), abs=0.005)
        assert float(row["mean"]) == pytest.approx(real.mean(), abs=0.005)


# -- the fit from a model string -------------------------------------------------------------


def test_fit_from_model_string_says_how_to_get_the_report(flow):
    # 2 x 100 draws do not pass the convergence check: results written, exit status 3.
    run = flow.outputs["fit"]
    _ok(run, (0, 3))
    assert (flow.fit_dir / "fit.nc").is_file()
    assert f"bayes-alliance report {flow.fit_dir}" in run.stdout
    assert "cells set missing: 3 in 'alliance', 2 in 'symptoms'" in run.stdout + run.stderr


def test_fitted_data_has_labels_and_no_codes(flow, result):
    assert result.provenance["random_seed"] == SEED
    assert result.spec.equations == "bivariate"
    data = result.data
    assert data.n_therapists == 4 and data.n_patients == 12
    # SPSS value labels name the therapists; scores keep their numbers, codes are gone.
    assert set(map(str, data.coords["therapist"])) == set(THERAPISTS.values())
    assert int(data.observed_x.sum()) == len(flow.frame) - len(CODED["alliance"])
    assert int(data.observed_y.sum()) == len(flow.frame) - len(CODED["symptoms"])
    assert np.nanmin(data.x[data.observed_x]) > -99 and np.nanmin(data.y[data.observed_y]) > -99


# -- the brms-style methods ------------------------------------------------------------------


def test_loo_per_patient_and_arviz_on_idata(result):
    import arviz_stats as azs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pareto-k warnings at 200 draws
        own = result.loo()
        # docs/reading_results.md: ensure_log_likelihood(), then var_name="by_patient" (a fit
        # that already writes the log-likelihood makes the first call a no-op).
        result.ensure_log_likelihood()
        theirs = azs.loo(result.idata, var_name="by_patient")
    assert own.unit == "patient" and np.isfinite(own.elpd_loo)
    assert np.asarray(theirs.pareto_k).shape == (result.data.n_patients,)
    assert float(theirs.elpd) == pytest.approx(own.elpd_loo, rel=1e-9)


def test_patient_log_likelihood_is_a_variable(result):
    import arviz_stats as azs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result.ensure_log_likelihood()
        elpd = azs.loo(result.idata, var_name="by_patient")
    assert "by_patient" in result.idata.log_likelihood.data_vars
    assert elpd.n_data_points == result.data.n_patients


@pytest.mark.parametrize("kind", ["density", "series", "stat"])
def test_pp_check_draws_each_kind(result, kind):
    fig = result.pp_check(kind=kind)
    drawn = [ax for ax in fig.axes if ax.lines or ax.patches or ax.collections]
    assert drawn, f"pp_check(kind={kind!r}) drew nothing"


def test_pp_check_names_the_kinds_on_a_typo(result):
    with pytest.raises(ValueError, match="density"):
        result.pp_check(kind="dens_overlay")


def test_hypothesis_is_a_share_of_the_draws(result):
    table = result.hypothesis(["state_effect < 0", "state_effect > 0"])
    below, above = table["post_prob"].to_numpy()
    draws = result.idata.posterior["state_effect"].values
    assert 0.0 <= below <= 1.0
    assert below == pytest.approx(float(np.mean(draws < 0)))
    assert below + above == pytest.approx(1.0)


# -- the report: Word and the browser --------------------------------------------------------


def test_report_command_writes_html_and_docx(flow):
    _ok(flow.outputs["report"])
    folder = flow.fit_dir / "report"
    assert (folder / "report.html").is_file() and (folder / "report.docx").is_file()


def _citations(text: str) -> set[tuple[str, str]]:
    """(first author, year) of every author-year citation in running text."""
    pattern = r"([A-Z][\w'-]+)(?:,? (?:&|and) [A-Z][\w'-]+| et al\.)?,? \(?((?:19|20)\d\d)\b"
    return {(m[1], m[2]) for m in re.finditer(pattern, text)}


def test_docx_has_headings_tables_and_every_cited_work(flow):
    docx = pytest.importorskip("docx")
    doc = docx.Document(str(flow.fit_dir / "report" / "report.docx"))
    paragraphs = doc.paragraphs
    headings = [p.text for p in paragraphs if p.style.name == "Heading 1"]
    assert {"Data", "Model", "Software and references"} <= set(headings)
    assert len(headings) == len(set(headings)), headings  # each section once
    texts = [p.text for p in paragraphs]
    start = texts.index("References:")
    references = [t for t in texts[start + 1 :] if t]
    body = " ".join(texts[:start])
    listed = " ".join(references)
    for author, year in _citations(body):
        if author in {"Table", "Figure", "Python"}:
            continue
        assert re.search(rf"{author}\b[^()]*\({year}\)", listed), (author, year)
    for software in ("PyMC", "PyTensor", "nutpie", "arviz-stats"):
        assert software in listed, software
    # Tables: a header row and data rows; the figures are embedded pictures.
    assert doc.tables and all(len(t.rows) >= 2 for t in doc.tables)
    html = (flow.fit_dir / "report" / "report.html").read_text()
    assert len(doc.inline_shapes) == html.count("<img ")
    # Every equation of the page is a Word equation (OMML), not monospace text.
    omml = "{http://schemas.openxmlformats.org/officeDocument/2006/math}oMath"
    assert len(doc.element.body.findall(f".//{omml}")) == html.count("<math") > 0


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_html_report_renders_in_chromium(flow, tmp_path):
    page = flow.fit_dir / "report" / "report.html"
    html = page.read_text()
    record, console = probe(page, tmp_path)
    assert record["errors"] == [] and console == [], (record["errors"], console)
    assert record["images"] == html.count("<img ") > 0
    assert record["broken"] == [], record["broken"]
    assert all(w > 0 for w in record["widths"])
    # MathML: the browser has it, every <math> of the page is a MathML element with a box,
    # and a subscript is laid out below its base (typeset, not text with tags).
    assert record["mathml"], "this Chromium has no MathMLElement"
    assert record["maths"] == record["math_native"] == html.count("<math") > 0
    assert all(w > 0 and h > 0 for w, h in record["math_boxes"]), record["math_boxes"]
    assert record["sub_lowered"] is True
