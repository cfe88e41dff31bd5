"""The report: self-contained HTML, Markdown with numbered figures, labelled CSV and manuscript
tables, the model stated (equations, priors, sampler, methods), sentences with numbers.

Report-level tests share one report of the session's fitted result (``recovery``); the model
text, plots and file names are tested on hand-built inputs.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bayes_alliance import SessionData
from bayes_alliance.core.diagnostics import Convergence
from bayes_alliance.data.session_data import DataWarning
from bayes_alliance.report import methods as report_methods
from bayes_alliance.report import model_text as report_text
from bayes_alliance.report import priors_text
from bayes_alliance.report.checks import session_predictive
from bayes_alliance.report.plots import forest, patient_panels, scale_groups, trace_rank
from bayes_alliance.report.render import render_html, render_markdown
from bayes_alliance.report.sections import convergence_banner
from bayes_alliance.report.words import PROVISIONAL
from bayes_alliance.report.write import build_sections, safe_stem, sentences, write_report
from bayes_alliance.spec.model_spec import ModelSpec
from tests.conftest import long_frame

TITLES = (
    "Summary in words",
    "Data",
    "Model",
    "Convergence and sampler",
    "Named effects",
    "Trait and state effects",
    "Variance of symptoms explained",
    "chosen patients",
    "Posterior predictive check",
    "Classic two-step analysis",
    "Why decompose",
    "Software and references",
)


@pytest.fixture(scope="module")
def report95(recovery, tmp_path_factory):
    """One report of the shared fit at the level psychology journals print (95%)."""
    *_, data, result = recovery
    out = tmp_path_factory.mktemp("report") / "rep"
    path = write_report(result, out, patients=[data.patients[0], data.patients[3]], ci_prob=0.95)
    return result, out, path.read_text()


def test_report_files_and_self_contained_html(report95):
    result, out, html = report95
    # Self-contained: every image is a data URI, nothing is fetched.
    assert not re.search(r"(?:src|href)=.(?:http|//|file:)", html)
    # trace/rank, forest, R-squared, two patients, predictive check
    assert html.count("data:image/png;base64,") == 6
    positions = [html.find(f"<h2>{t}") if t[0].isupper() else html.find(t) for t in TITLES]
    assert -1 not in positions, dict(zip(TITLES, positions, strict=True))
    assert positions == sorted(positions)
    files = {p.name for p in out.iterdir()}
    assert {
        "report.html",
        "report.md",
        "summary.csv",
        "r2.csv",
        "effects.csv",
        "effects.md",
        "effects.tex",
        "r2.md",
        "r2.tex",
        "trace_rank.png",
        "forest.png",
        "r2.png",
        "ppc.png",
        f"patient_{result.data.patients[0]}.png",
        f"patient_{result.data.patients[3]}.png",
    } <= files
    md = (out / "report.md").read_text()
    assert "![Figure 1](trace_rank.png)" in md and "*Figure 2.* State-like and trait-like" in md
    with pytest.raises(FileExistsError):
        write_report(result, out)


def test_figures_and_tables_are_numbered_with_captions(report95):
    *_, html = report95
    figs = re.findall(r"<figcaption>Figure (\d+)\. ([^<]+)</figcaption>", html)
    assert [int(n) for n, _ in figs] == list(range(1, 7))
    assert all(len(caption) > 40 for _, caption in figs)
    tabs = re.findall(r"<caption>Table (\d+)\. ", html)
    assert [int(n) for n in tabs] == list(range(1, len(tabs) + 1)) and len(tabs) >= 8


def test_interval_level_is_named_in_every_header_and_plot(report95):
    _, out, html = report95
    assert not re.search(r"\b94% (HDI|interval)", html)
    headers = re.findall(r"<th>([^<]*(?:low|high))</th>", html)
    assert headers and all(h.startswith(("95% HDI", "95% interval")) for h in headers), headers
    captions = re.findall(r"<figcaption>([^<]+)</figcaption>", html)
    for stem in ("forest", "ppc", "patient_"):
        caption = next(
            c
            for c, s in zip(captions, re.findall(r"<figure id='([^']+)'", html), strict=True)
            if s.startswith(stem)
        )
        assert "95%" in caption, (stem, caption)
    assert (pd.read_csv(out / "effects.csv")["interval"] == "95% HDI").all()
    assert (pd.read_csv(out / "r2.csv")["interval"] == "95% interval").all()
    assert (pd.read_csv(out / "summary.csv")["interval"] == "95% HDI").all()
    assert "95% HDI" in (out / "effects.md").read_text().splitlines()[2]


def test_csv_tables_read_on_their_own(report95):
    result, out, _ = report95
    r2 = pd.read_csv(out / "r2.csv")
    assert list(r2.columns[:5]) == ["equation", "denominator", "component", "label", "share_of"]
    # No random slopes in this model: no slope rows; the predictor has no trait effects.
    assert not set(r2.component) & {"v12", "v13", "v23", "fv"}
    assert not ((r2.equation == "predictor") & r2.component.isin(["f2", "f3"])).any()
    f1 = r2[(r2.equation == "outcome") & (r2.component == "f1")]
    assert set(f1.label) == {"state effects and autoregression (f1)"}
    # The numbers are the fit's own.
    raw = result.r2(0.95).set_index(["equation", "denominator", "component"])
    for _, row in r2.iterrows():
        assert row["mean"] == pytest.approx(
            raw.loc[(row.equation, row.denominator, row.component), "mean"]
        )
    eff = pd.read_csv(out / "effects.csv").set_index("parameter")
    assert {"label", "group", "note", "ci_low", "ci_high"} <= set(eff.columns)
    assert "within-person SD" in eff.loc["standardised_state_effect", "note"]
    assert "sustained" in eff.loc["long_run_state_effect", "note"]
    assert eff.loc["state_effect", "mean"] == pytest.approx(
        result.summary(0.95).loc["state_effect", "mean"]
    )
    assert eff.loc["icc_outcome_patient", "mean"] == pytest.approx(
        result.effects(0.95).loc["icc_outcome_patient", "mean"]
    )


def test_manuscript_tables_beside_the_csv(report95):
    _, out, _ = report95
    tex = (out / "effects.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "95\\% HDI" in tex
    assert "\\textit{Note.}" in tex and "$-$" in tex
    md = (out / "r2.md").read_text()
    assert "| Component | R² | 95% interval |" in md
    assert "| state effects and autoregression (f1) | ." in md  # two decimals, no leading zero


def test_model_section_states_the_fitted_model(report95):
    result, out, html = report95
    # The equations: text in the Markdown, typeset MathML in the page.
    assert "x^w_ti = φ_xx x^w_t-1,i + φ_xy y^w_t-1,i + e^x_ti" in (out / "report.md").read_text()
    assert "<msub><mi>φ</mi><mi mathvariant='italic'>xx</mi></msub>" in html
    assert "Priors actually used (after scaling to the data)" in html
    s = result.data
    ratio = float(np.nanstd(s.y) / np.nanstd(s.x))
    assert f"Normal(mu=0, sigma={ratio:.3g})" in html  # state_effect's scaled default
    prov = result.provenance
    assert f"<td class='text'>random seed</td><td class='text'>{prov['random_seed']}</td>" in html
    assert (
        f"<td class='text'>draws per chain (kept)</td><td class='text'>{prov['draws']}</td>" in html
    )
    assert "Hamaker, E. L., Kuiper, R. M., &amp; Grasman" in html
    assert "Zilcha-Mano, S., &amp; Fisher, H. (2022)" in html
    assert f"<td class='text'>pymc</td><td class='text'>{prov['versions']['pymc']}</td>" in html
    # the banner shows exactly when the shared fit's convergence check failed (its margins
    # depend on the kernels' rounding; test_failed_convergence_is_a_banner... forces a failure)
    assert ("class='banner'" in html) == (not result.convergence.ok)


def test_failed_convergence_is_a_banner_and_marks_the_sentences(recovery):
    *_, result = recovery
    bad = Convergence(
        1.3, 40.0, 35.0, 3, 0.5, 1200, ["R-hat 1.300 > 1.01 (worst: state_effect)"], ["Run longer."]
    )
    failing = dataclasses.replace(result, convergence=bad)
    sections, _ = build_sections(failing, patients=[result.data.patients[0]], ci_prob=0.95)
    plt.close("all")
    words = sections[0]
    assert words.title == "Summary in words" and words.provisional
    assert words.paragraphs and all(p.startswith(PROVISIONAL) for p in words.paragraphs)
    pngs = {f.stem: b"" for s in sections for f in s.figures}
    html = render_html("t", sections, pngs, "meta", convergence_banner(bad))
    banner = html.index("class='banner'")
    assert html.index("<h1>") < banner < html.index("<h2>Summary in words")
    assert "CONVERGENCE CHECK FAILED" in html[banner : html.index("</div>", banner)]
    # The check's paragraph (what failed, what to change) once: in its section, not also in
    # the banner (issue 28: the report repeated it).
    md = render_markdown("t", sections, "meta", convergence_banner(bad))
    for text in (html, md):
        assert text.count("1.01 (worst: state_effect)") == 1
        assert text.count("Run longer.") == 1
        assert text.count("CONVERGENCE CHECK FAILED") == 2  # the banner and the section
    assert "the checks FAILED" in html  # the methods paragraph says so too


def test_without_stored_states_the_report_says_what_is_missing(recovery):
    *_, data, result = recovery
    tree = result.idata.copy()
    del tree["latent_states"]
    lean = dataclasses.replace(result, idata=tree)
    sections, _ = build_sections(lean, patients=[data.patients[0]], ci_prob=0.9)
    plt.close("all")
    by_title = {s.title: s for s in sections}
    check = by_title["Posterior predictive check"]
    assert not check.figures and check.paragraphs[0].startswith("Not drawn")
    # Patient panels come from FitResult.states where the result can compute them.
    has_panels = any("chosen patients" in t for t in by_title)
    assert has_panels == callable(getattr(result, "states", None))


def test_sentences_carry_the_numbers(recovery):
    *_, result = recovery
    s = result.summary()
    text = " ".join(sentences(result, s, result.r2(), 0.94))
    m = s.loc["state_effect"]
    assert f"{abs(m['mean']):.3f} points in symptoms" in text
    assert f"({m['ci_low']:.3f} to {m['ci_high']:.3f}), 94% HDI" in text
    assert "Of the total variance of symptoms" in text


def test_unknown_patient_is_named(recovery):
    *_, result = recovery
    with pytest.raises(ValueError, match=r"unknown patient id\(s\) \['ghost'\]"):
        build_sections(result, patients=["ghost"])


def test_predictive_check_over_sessions(recovery):
    *_, data, result = recovery
    t = session_predictive(result, ci_prob=0.95, n_rep=150, seed=1)
    assert set(t.variable) == {"predictor", "outcome"}
    assert list(t.loc[t.variable == "outcome", "session"]) == list(data.sessions[1:])
    # Compared cells: observed now, both variables observed at the previous session.
    prev = ~np.isnan(data.x[:, :-1]) & ~np.isnan(data.y[:, :-1]) & data.in_series[:, :-1]
    for var, grid in (("predictor", data.x), ("outcome", data.y)):
        ok = prev & ~np.isnan(grid[:, 1:]) & data.in_series[:, 1:]
        sub = t[t.variable == var]
        assert list(sub.n) == list(ok.sum(axis=0))
        means = [grid[:, 1:][ok[:, k], k].mean() for k in range(ok.shape[1])]
        assert np.allclose(sub.observed, means)
    assert (t.rep_low <= t.replicated).all() and (t.replicated <= t.rep_high).all()
    # The data were simulated from this model: most observed means lie inside the bands.
    inside = (t.rep_low <= t.observed) & (t.observed <= t.rep_high)
    assert inside.mean() >= 0.8, t


@pytest.fixture(scope="module")
def small_data() -> SessionData:
    rows = [
        (th, f"p{k}", s, 3 + 0.1 * k + 0.2 * np.sin(s + k), 20 - k + np.cos(s * k))
        for k in range(6)
        for th in [f"t{k % 2}"]
        for s in range(1, 6)
    ]
    df = long_frame(rows)
    df["z"] = df["patient"].str[1:].astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # two therapists: fine for prior tables
        return SessionData.from_frame(
            df,
            patient="patient",
            session="session",
            predictor="x",
            outcome="y",
            therapist="therapist",
            covariates=["z"],
        )


@pytest.mark.parametrize(
    ("options", "present", "absent"),
    [
        (
            {},
            ["a^x_j", "β_T a^x_j", "φ_xy y^w_t-1,i", "ρ σ_x", "S_i = Φ*_i"],
            ["c_j", "d_i", "b_0", "s^x_i", "μ_x(t)"],
        ),
        ({"therapist_level": False}, ["b^x_i ~ N"], ["a^x_j", "β_T", "therapist j"]),
        (
            {"random_slopes": ("patient", "therapist")},
            ["φ_yx,i = φ_yx + c_j + d_i", "d_i ~ N(0, τ_d²), truncated"],
            [],
        ),
        ({"moderators": ("z",)}, ["φ_yx,i = φ_yx + λ'z_i", "centred moderators (z)"], ["d_i"]),
        ({"same_session": "predictor_to_outcome"}, ["+ b_0 x^w_ti", "diag(σ_x²"], ["ρ σ_x"]),
        ({"reverse_lag": False}, ["x^w_ti = φ_xx x^w_t-1,i + e^x_ti"], ["φ_xy"]),
        ({"session_means": True}, ["μ_x(t) + a^x_j", "one grand mean per session"], []),
        ({"trend": True}, ["+ s^x_i (t - t_0)", "s^x_i ~ N(γ_x, τ_sx²)"], []),
        ({"equations": "outcome"}, ["x^w_ti = e^x_ti"], ["φ_xx"]),
        (
            {"dynamics": "none", "same_session": "predictor_to_outcome"},
            ["y^w_ti = b_0 x^w_ti + e^y_ti"],
            ["φ", "First observed"],
        ),
        (
            {"first_session": "free", "innovations": "session"},
            ["Σ_1", "Σ_t", "one innovation covariance per session"],
            ["S_i = Φ*_i"],
        ),
    ],
)
def test_equations_follow_the_spec(options, present, absent):
    text = report_text.equations(ModelSpec(**options), "alliance", "symptoms")
    assert text.startswith("x = alliance (predictor), y = symptoms (outcome)")
    for piece in present:
        assert piece in text, (piece, text)
    for piece in absent:
        assert piece not in text, (piece, text)


def test_priors_table_is_scaled_to_the_data(small_data):
    spec = ModelSpec(
        moderators=("z",),
        priors={"trait_corr_patient": {"dist": "LKJCorr", "eta": 4.0}},
    )
    t = priors_text.priors_table(spec, small_data)
    assert list(t.index) == spec.prior_names()
    sd_x, sd_y = np.nanstd(small_data.x), np.nanstd(small_data.y)
    assert t.loc["state_effect", "prior"] == f"Normal(mu=0, sigma={sd_y / sd_x:.3g})"
    assert t.loc["state_effect", "source"] == "default: σ = SD(y) / SD(x)"
    assert "truncated to stationary" in t.loc["state_effect", "note"]
    z_sd = np.std(np.arange(6.0))
    assert (
        t.loc["moderator_effect", "prior"]
        == f"Normal(mu=0, sigma=[{0.5 * sd_y / sd_x / z_sd:.3g}])"
    )
    assert t.loc["trait_corr_patient", "prior"] == "LKJCorr(eta=4)"
    assert t.loc["trait_corr_patient", "source"] == "set in the spec"
    assert t.loc["trait_corr_therapist", "prior"] == "LKJCorr(eta=1)"
    assert t.loc["sd_therapist_predictor", "prior"].startswith("Gamma(alpha=2, beta=")
    assert (
        t.loc["intercept_outcome", "prior"]
        == f"Normal(mu={np.nanmean(small_data.y):.3g}, sigma={2.5 * sd_y:.3g})"
    )
    free = priors_text.priors_table(ModelSpec(first_session="free"), small_data)
    assert not free["note"].any()  # nothing is truncated without a stationary first session


def test_methods_paragraph_cites_what_the_references_list(small_data):
    conv = Convergence(1.002, 900.0, 800.0, 0, 0.9, 2000)
    prov = {"draws": 1000, "tune": 800, "chains": 2, "sampler": "nutpie", "random_seed": 11}
    text = report_methods.methods_paragraph(ModelSpec(), small_data, prov, conv, 0.95)
    refs = " ".join(report_methods.references())
    cited = re.findall(
        r"([A-Z][\w-]+(?: et al\.)?(?:, [A-Z]\w+)*(?: & [A-Z][\w-]+)?) \(?(\d{4})", text
    )
    assert len(cited) >= 8, cited
    for who, year in cited:
        assert re.search(rf"{who.split()[0].rstrip(',')}.*\({year}\)", refs), (who, year)
    for key in report_methods.REFERENCES:
        assert key.split()[0].rstrip(",") in text, key
    assert "1000 posterior draws in each of 2 chains after 800 tuning steps" in text
    assert "seed 11" in text and "95% HDIs" in text and "all checks passed" in text


def test_sampler_table_reads_the_provenance():
    prov = {
        "draws": 500,
        "tune": 700,
        "chains": 4,
        "sampler": "pymc",
        "random_seed": 3,
        "timing": {"sample_s": 12.34},
    }
    t = report_methods.sampler_table(prov, ModelSpec(traits="sampled"))["value"]
    assert t["draws in all"] == "2000" and t["chains"] == "4"
    assert t["tuning steps per chain (discarded)"] == "700"
    assert t["sampler"] == "pymc (No-U-Turn Sampler)" and t["random seed"] == "3"
    assert t["sampling time (s)"] == "12.3"
    assert t["latent means (traits)"] == "sampled with the other parameters"


def test_patient_file_names_carry_the_sanitised_id():
    taken: set[str] = set()
    assert safe_stem("P0001", taken) == "patient_P0001"
    assert safe_stem("clinic A/07", taken) == "patient_clinic_A_07"
    assert safe_stem("clinic A 07", taken) == "patient_clinic_A_07_2"  # unique
    assert safe_stem("../x", taken) == "patient_x"
    assert safe_stem("///", taken) == "patient_id"


def test_forest_gives_a_wide_interval_its_own_panel():
    assert scale_groups([0.1, 0.12, 3.0, 0.2]) == [[0, 1, 3], [2]]
    assert scale_groups([0.1, 0.4]) == [[0, 1]]
    summary = pd.DataFrame(
        {
            "mean": [0.2, -0.1, 0.3, -2.0],
            "ci_low": [0.1, -0.2, 0.25, -6.0],
            "ci_high": [0.3, 0.0, 0.35, 2.0],
        },
        index=["a", "b", "c", "wide"],
    )
    fig = forest(summary, {"paths": ["a", "b"], "traits": ["c", "wide"]}, "95% HDI")
    assert len(fig.axes) == 3  # paths; traits split by scale
    assert [ax.get_xlabel() for ax in fig.axes] == ["posterior mean and 95% HDI"] * 3
    assert fig.axes[2].get_title(loc="left").startswith("traits (wider intervals")
    narrow = forest(summary, ["a", "b", "c"], "90% HDI")
    assert len(narrow.axes) == 1
    plt.close("all")


def test_patient_panels_show_both_variables_on_integer_sessions():
    sessions = np.array([1, 2, 3])
    draws = np.random.default_rng(0).normal(size=(50, 3))
    fig = patient_panels(
        sessions,
        [np.array([1.0, np.nan, 2.0]), np.array([3.0, 2.0, 1.0])],
        [draws, draws + 1],
        [np.array([0.2, np.nan, -0.1]), np.array([0.1, 0.0, -0.3])],
        "P/1",
        ("alliance", "symptoms"),
        0.95,
    )
    fig.canvas.draw()
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes[0]] == ["alliance", "symptoms"]
    for ax in axes[1]:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    legend = [t.get_text() for t in axes[0, 0].get_legend().get_texts()]
    assert "latent level, 95% interval" in legend
    plt.close("all")


def test_trace_rank_has_a_row_per_parameter():
    rng = np.random.default_rng(2)
    fig = trace_rank({"a": rng.normal(size=(2, 100)), "b": rng.normal(size=(3, 100))})
    assert len(fig.axes) == 4
    assert len(fig.axes[3].patches) == 3  # one rank histogram per chain of "b"
    plt.close("all")


def test_the_report_cites_no_repository_docs(tmp_path):
    """Journal readers get citations or plain words, never docs/*.md paths; the data warning
    of too few therapists (which used to point at docs/methods.md) is in the text."""
    from bayes_alliance import simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.inference.fit import fit

    df, _ = simulate(seed=3, n_therapists=3, patients_per_therapist=3, sessions=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        result = fit(data, draws=40, tune=40, random_seed=1, progressbar=False)
        html = write_report(result, tmp_path / "rep").read_text()
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S))
    text = re.sub(r"data:[^\s\"']+", " ", text)
    assert "only 3 therapists" in text
    assert "docs/" not in text and ".md" not in text
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "docs/" not in md
