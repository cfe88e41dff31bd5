"""The mechanism report states the model that was fitted, all of it: every prior the builder used
(read back from the PyMC graph), each option's lines and equations, what the sampler drew and
what was integrated out, and a label for every effects row.

The fits here are draws from the prior (``pm.sample_prior_predictive``) wrapped as a
:class:`MechanismResult`: the report's text depends on the spec, the data and the model, not on
the draws, and no sampler needs to run.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

from bayes_alliance.core.vocab import MECHANISM_EFFECTS
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.fit import MechanismResult, convergence_of
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.priors import PRIOR_RULES
from bayes_alliance.mechanisms.spec import LAG_NAMES, MechanismSpec, path_name, random_lag_row
from bayes_alliance.report import mechanism_text as text
from bayes_alliance.report.labels import mechanism_label
from bayes_alliance.report.mechanisms import mechanism_sections
from bayes_alliance.sim.mechanisms import simulate_mechanisms
from tests.test_mechanism_single import simulate_single

N_DRAWS = 30


def _with_baseline(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A patient-level baseline column z1 (constant within patient)."""
    rng = np.random.default_rng(seed)
    ids = sorted(df.patient.unique())
    df = df.copy()
    df["z1"] = df.patient.map(dict(zip(ids, 2.0 + rng.normal(size=len(ids)), strict=True)))
    return df


def _mediation_data(sampled: bool = False) -> SeriesData:
    """Mediation, three levels, an end outcome, missing cells and a baseline column; for the
    sampled form neither missing cells nor an end outcome (its missing cells and changes are
    flat parameters, with no prior to draw from)."""
    df, _ = simulate_mechanisms(
        seed=3, design="mediation", n_therapists=3, patients_per_therapist=3, n_sessions=5,
        missing=0.0 if sampled else 0.1, change_sd=0.1, end_effects=(0.5, 1.0),
        end_therapist_sd=0.3,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SeriesData.from_frame(
            _with_baseline(df, 3), patient="patient", session="session", predictor="alliance",
            outcome="symptoms", mediator="mediator", therapist="therapist",
            end_outcome=None if sampled else "post_symptoms", covariates=["z1"],
        )  # fmt: skip


def _single_data() -> SeriesData:
    df = simulate_single(5, n_patients=9, n_sessions=5, n_therapists=3, missing=0.1, end=(1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SeriesData.single(
            _with_baseline(df, 5), patient="patient", session="session", predictor="alliance",
            therapist="therapist", end_outcome="post", covariates=("z1",),
        )  # fmt: skip


EVERY_OPTION = {
    "therapist_level": True,
    "random_innovations": True,
    "baseline": ("z1",),
    "lag_trait_covariance": True,
}
CASES = {
    # integrated form, every option on: two random lags, one of them between therapists too
    "mediation": lambda: (
        _mediation_data(),
        MechanismSpec(
            **EVERY_OPTION,
            measurement_error=("predictor", "mediator", "outcome"),
            therapist_paths=(("mediator", "predictor"),),
        ),
    ),
    # one series alone: every SD a plain half-normal or Gamma (no LKJ) but the trend's
    "single": lambda: (
        _single_data(),
        MechanismSpec(
            therapist_level=True,
            baseline=("z1",),
            random_innovations=True,
            measurement_error=("predictor",),
            random_paths=(("predictor", "predictor"),),
            therapist_paths=(("predictor", "predictor"),),
        ),
    ),
    # the sampled form: latent means and therapist parts are parameters
    "sampled": lambda: (_mediation_data(sampled=True), MechanismSpec(True, traits="sampled")),
}


def prior_result(data: SeriesData, spec: MechanismSpec) -> tuple[pm.Model, MechanismResult]:
    """The model and a result holding draws from its prior in place of the posterior."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_mechanism_model(data, spec)
        with model:
            prior = pm.sample_prior_predictive(draws=N_DRAWS, random_seed=1)
        post = prior["prior"].to_dataset()
        stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, N_DRAWS), bool))})
        idata = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
        convergence = convergence_of(idata)
    provenance = {
        "random_seed": 1, "chains": 1, "draws": N_DRAWS, "tune": 0, "sampler": "nutpie",
        "prior_rules": PRIOR_RULES,
    }  # fmt: skip
    return model, MechanismResult(idata, spec.resolved(data), data, provenance, convergence)


@pytest.fixture(scope="module", params=list(CASES))
def fitted(request):
    data, spec = CASES[request.param]()
    return request.param, *prior_result(data, spec)


# ----------------------------------------------------------------------- priors


def _values(var) -> dict[str, np.ndarray]:
    """A random variable's distribution and parameters, read from its graph node."""
    op = type(var.owner.op).__name__
    params = [np.asarray(p.eval(), dtype=float) for p in var.owner.op.dist_params(var.owner)]
    if op == "NormalRV":
        return {"dist": "Normal", "mu": params[0], "sigma": params[1]}
    if op == "HalfNormalRV":
        assert np.all(params[0] == 0)
        return {"dist": "HalfNormal", "sigma": params[1]}
    if op == "GammaRV":  # pytensor's gamma takes (shape, scale)
        return {"dist": "Gamma", "alpha": params[0], "beta": 1.0 / params[1]}
    raise AssertionError(f"{var.name}: a prior of kind {op} the test does not know")


def graph_priors(model: pm.Model, data: SeriesData) -> list[tuple[str, str, dict[str, float]]]:
    """Every free parameter's prior per entry, from the model graph: (row name with the
    entries' coordinates, roles written as the data's columns; distribution; parameters).
    Offsets of non-centred parts and the sampled form's latent means and missing cells are
    left out (their priors are standard normals or the covariances' rows)."""
    columns = dict(zip(data.roles, data.columns, strict=True))
    out = []

    def entries(name, var, dims, shape):
        values = _values(var)
        dist = str(values.pop("dist"))
        for idx in np.ndindex(*shape):
            coords = [columns.get(str(model.coords[d][i]), str(model.coords[d][i]))
                      for d, i in zip(dims, idx, strict=True)]  # fmt: skip
            row = f"{name}[{', '.join(coords)}]" if coords else name
            params = {k: float(np.broadcast_to(v, shape)[idx]) for k, v in values.items()}
            out.append((row, dist, params))

    for rv in model.free_RVs:
        name = rv.name
        if "offset" in name or name in ("patient_mean", "missing_values"):
            continue
        if type(rv.owner.op).__name__ == "LKJCorrRV":  # two random paths: SDs of their own
            _, eta = rv.owner.op.dist_params(rv.owner)
            out.append(
                (f"corr_{name.removeprefix('chol_corr_')}", "LKJ", {"eta": float(eta.eval())})
            )
            continue
        if type(rv.owner.op).__name__ == "_LKJCholeskyCovRV":
            n, eta, sd_dist = rv.owner.op.dist_params(rv.owner)
            base = name.removeprefix("chol_")
            out.append((f"corr_{base}", "LKJ", {"eta": float(eta.eval())}))
            if base == "paths_patient":  # the random lags' and the coefficients' SDs, in order
                sig = np.asarray(_values(sd_dist)["sigma"], dtype=float)
                n_d = len(model.coords["path"])
                for part, scale in (("sd_paths", sig[:n_d]), ("sd_patient", sig[n_d:])):
                    dims = model.named_vars_to_dims[part]
                    for i, c in enumerate(model.coords[dims[0]]):
                        label = columns.get(str(c), str(c))
                        out.append((f"{part}[{label}]", "HalfNormal", {"sigma": float(scale[i])}))
                continue
            entries(f"sd_{base}", sd_dist, model.named_vars_to_dims[f"sd_{base}"], (int(n.eval()),))
            continue
        dims = model.named_vars_to_dims.get(name, ())
        entries(name, rv, dims, tuple(len(model.coords[d]) for d in dims))
    return out


def _parse(prior: str) -> tuple[str, dict[str, float]]:
    dist, args = re.fullmatch(r"(\w+)\((.*)\)", prior).groups()
    return dist, {k: float(v) for k, v in (a.split("=") for a in args.split(", "))}


def test_the_priors_table_has_every_prior_the_builder_used(fitted):
    case, model, result = fitted
    table = text.priors_table(result)
    expected = graph_priors(model, result.data)
    assert len(expected) > 10
    missing, wrong = [], []
    for row, dist, params in expected:
        # a row may carry its other name after it: "sd_patient[change] (sd_trend)"
        found = [r for r in table.index if r == row or r.startswith(f"{row} (")]
        if not found:
            missing.append(row)
            continue
        got_dist, got = _parse(str(table.at[found[0], "prior"]))
        ok = got_dist == dist and got.keys() == params.keys()
        # the table prints three significant digits
        ok = ok and all(np.isclose(got[k], v, rtol=5.1e-3, atol=1e-9) for k, v in params.items())
        if not ok:
            wrong.append((row, table.at[found[0], "prior"], dist, params))
    assert not missing, f"{case}: no row for {missing}"
    assert not wrong, f"{case}: rows with other numbers than the model's: {wrong}"


# ----------------------------------------------------------------- the model's text


def _section(sections, title):
    return next(s for s in sections if s.title == title)


def _sampler_table(sections) -> pd.DataFrame:
    conv = _section(sections, "Convergence and sampler")
    return next(t.frame for t in conv.tables if "random seed" in t.frame.index)


@pytest.fixture(scope="module")
def sections(fitted):
    case, _, result = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built, _ = mechanism_sections(result)
    return case, result, built


def test_the_sampler_table_says_what_was_integrated_out_and_what_was_sampled(sections):
    case, result, built = sections
    values = _sampler_table(built)["value"]
    latent = ["latent means (traits)", "therapist parts", "missing cells inside a series"]
    if result.spec.trend:  # with an end outcome
        latent.append("patients' changes over sessions")
    if case == "sampled":
        assert all(values[r].startswith("sampled") for r in latent)
    else:
        assert all(values[r].startswith("integrated out in closed form") for r in latent)
        assert values["patients' innovation scales"].startswith("sampled")
    assert values["random lagged paths"].startswith("sampled")
    paragraph = _section(built, "Model").paragraphs[0]
    said = "sampled with the other" if case == "sampled" else "integrated out in closed form"
    assert f"missing cells were {said}" in paragraph


# Words that each option adds to the model's lines and equations, and only that option.
OPTION_WORDS = {
    "measurement_error": ["Measurement error on", "eps_ti ~ N(0, diag(omega^2))"],
    "random_innovations": ["Random innovations:", "D_i = diag(exp(s_r u_ir))"],
    "therapist_paths": ["varying between therapists as well", "c_j ~ MVN(0, Sigma_c)"],
    "baseline": ["Baseline z1 (centred over patients)", "b_i = baseline (z1)"],
}


def test_the_model_lines_and_equations_name_each_option_the_fit_has(sections):
    case, result, built = sections
    model = _section(built, "Model")
    said = "\n".join([*model.paragraphs, *model.blocks])
    for option, words in OPTION_WORDS.items():
        present = bool(getattr(result.spec, option))
        assert present == (case in ("mediation", "single"))
        for w in words:
            assert (w in said) == present, (case, option, w)
    if result.spec.measurement_error:
        named = dict(zip(result.data.roles, result.data.columns, strict=True))
        cols = [named[r] for r in result.spec.measurement_error]
        assert f"Measurement error on {', '.join(cols)}:" in said


def test_every_citation_of_the_model_section_is_in_the_references(sections):
    _, result, built = sections
    model = _section(built, "Model")
    said = " ".join(model.paragraphs)
    refs = text.references(result)
    cited = set(re.findall(r"([A-Z][\w\-ü]+(?:,? (?:&|et al\.|[A-Z][\w\-]+))*,? \d{4})", said))
    assert cited
    for c in cited:
        first_author = c.split()[0].rstrip(",")
        year = c.split()[-1]
        assert any(r.startswith(first_author) and f"({year})" in r for r in refs), c
    # and the options' references only where the text cites them
    options = {
        "Schuurman & Hamaker 2019": "Schuurman, N. K.",
        "Preacher, Zyphur & Zhang 2010": "Preacher, K. J., Zyphur",
        "Durbin & Koopman 2012": "Durbin, J.",
        "MacKinnon 2008": "MacKinnon, D. P.",
    }
    for citation, start in options.items():
        assert any(r.startswith(start) for r in refs) == (citation in said), citation


# ------------------------------------------------------------------------- labels

WORDS = {"x": "alliance", "y": "symptoms", "m": "hope", "x2": "alliance_t", "o": "post",
         "z": "age", "at": "trait of"}  # fmt: skip
ROLES = ("predictor", "outcome", "mediator", "second_predictor")


def every_row() -> list[str]:
    """Every name an effects table can hold: the vocabulary's effects and the random lags'
    SDs at both levels, by lag name or as ``to<-from`` for any pair of series."""
    rows = list(MECHANISM_EFFECTS)
    pairs = {*LAG_NAMES.values(), *((a, b) for a in ROLES for b in ROLES)}
    for to, source in sorted(pairs):
        rows += [random_lag_row(path_name(to, source), level) for level in ("patient", "therapist")]
    return rows


@pytest.mark.parametrize(
    "design", ["single", "two_series", "mediation", "informants", "mediation_informants"]
)
def test_every_effects_row_has_a_label_in_words(design):
    raw = re.compile(r"[a-z]+_[a-z]+|<-|[{}]")  # a name, a role path or a placeholder left
    bad = {}
    for name in every_row():
        label = mechanism_label(name, WORDS, design).replace("alliance_t", "ALLIANCE_T")
        if label == name or raw.search(label.replace("a_i", "").replace("b_i", "")):
            bad[name] = label
    assert not bad, bad


def test_a_random_lag_without_a_name_is_labelled_by_its_columns():
    label = mechanism_label("sd_path_predictor<-mediator_therapist", WORDS, "mediation")
    assert label == "SD between therapists of the path hope (t-1) → alliance (t)"


def test_each_paragraph_and_note_once_and_every_citation_listed(sections):
    """A mechanism report says each paragraph and table note once, and its references hold
    every work its text cites (read by :mod:`bayes_alliance.report.citations`)."""
    from collections import Counter

    from bayes_alliance.report import citations

    _, _, built = sections
    texts = [p for s in built for p in s.paragraphs if p != "References:"]
    texts += [line for s in built for t in s.tables for line in t.legend if line]
    repeated = [t[:60] for t, n in Counter(texts).items() if n > 1]
    assert not repeated, repeated
    software = _section(built, "Software and references")
    refs = [r for r in software.paragraphs[2:] if "[Computer software]" not in r]
    listed = {citations.reference_key(r) for r in refs}
    cited = set().union(*(citations.citations(t) for t in citations.section_texts(built)))
    assert cited and cited <= listed, cited - listed


def test_mechanism_report_renders_mathml_and_a_word_document(sections):
    """The mechanism report's equations are well-formed MathML in the page, one per line, and
    its sections make a well-formed Word document with every table and figure."""
    import xml.etree.ElementTree as ET

    from bayes_alliance.report.export import docx_parts
    from bayes_alliance.report.render import render_html

    _, _, built = sections
    pngs = {f.stem: _PNG for s in built for f in s.figures}
    page = render_html("t", built, pngs, "meta")
    maths = re.findall(r"<math .*?</math>", page, re.S)
    lines = [ln for s in built for b in s.blocks for ln in b.splitlines() if ln.strip()]
    assert maths and len(maths) == len(lines)
    for m in maths:
        ET.fromstring(m)
    doc = docx_parts("t", built, pngs, "meta")["word/document.xml"].decode()
    ET.fromstring(doc)
    assert doc.count("<w:tbl>") == page.count("<table>")
    assert doc.count("<w:drawing>") == page.count("<figure ")


# A 1 x 1 PNG: the figures' bytes do not matter to the layout checked above.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)
