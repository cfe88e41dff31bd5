"""The report of a model with measurement error: labels, notes and groups of the new rows, the
R-squared error component, the measurement equation and its priors, the methods sentence and
reference, and the identification messages in the convergence section. Hand-built inputs only
(no sampling)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_alliance import SessionData
from bayes_alliance.core import vocab as v
from bayes_alliance.core.diagnostics import Convergence
from bayes_alliance.data.session_data import DataWarning
from bayes_alliance.effects import derived, variance
from bayes_alliance.report import checks as report_checks
from bayes_alliance.report import effect_notes, labels, priors_text, r2_words, tables
from bayes_alliance.report import methods as report_methods
from bayes_alliance.report import model_text as report_text
from bayes_alliance.report.sections import convergence_section
from bayes_alliance.spec.model_spec import ModelSpec
from tests.conftest import long_frame

ME = ModelSpec(measurement_error=True)


@pytest.fixture(scope="module")
def small_data() -> SessionData:
    rows = [
        (f"t{k % 2}", f"p{k}", s, 3 + 0.1 * k + 0.2 * np.sin(s + k), 20 - k + np.cos(s * k))
        for k in range(6)
        for s in range(1, 6)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # two therapists: fine for prior tables
        return SessionData.from_frame(
            long_frame(rows),
            patient="patient",
            session="session",
            predictor="x",
            outcome="y",
            therapist="therapist",
        )


def test_labels_notes_and_groups_of_the_new_rows():
    label = labels.parameter_label
    assert label(v.MEASUREMENT_ERROR_SD_PREDICTOR, "alliance", "symptoms") == (
        "measurement error SD of alliance"
    )
    assert label(v.MEASUREMENT_ERROR_SD_OUTCOME, "alliance", "symptoms") == (
        "measurement error SD of symptoms"
    )
    assert label("reliability_outcome", "alliance", "symptoms") == (
        "within-person reliability of symptoms"
    )
    note = effect_notes.effect_note("reliability_predictor", "alliance", "symptoms")
    assert "observed alliance" in note and "Schuurman & Hamaker 2019" in note
    plain = effect_notes.effect_note("icc_outcome_session", "a", "s")
    with_error = effect_notes.effect_note("icc_outcome_session", "a", "s", measurement_error=True)
    assert "measurement error" not in plain and "and measurement error" in with_error
    assert tables.group_of("reliability_predictor") == tables.RELIABILITY
    assert tables.group_of(v.MEASUREMENT_ERROR_SD_OUTCOME) is None  # a scale: summary.csv
    assert r2_words.component_label("omega2", v.OUTCOME, ME) == "measurement error (omega2)"
    assert "omega2" in r2_words.r2_legend(0.95, has_error=True)
    assert "omega2" not in r2_words.r2_legend(0.95)


def _posterior() -> dict[str, np.ndarray]:
    p = {
        v.PREDICTOR_AUTOREGRESSION: 0.5,
        v.REVERSE_STATE_EFFECT: -0.1,
        v.STATE_EFFECT: 0.3,
        v.OUTCOME_AUTOREGRESSION: 0.5,
        v.INNOVATION_SD_PREDICTOR: 0.6,
        v.INNOVATION_SD_OUTCOME: 0.8,
        v.INNOVATION_CORR: 0.3,
        v.TRAIT_EFFECT_PATIENT: 0.8,
        v.SD_PATIENT_PREDICTOR: 1.0,
        v.SD_PATIENT_OUTCOME: 0.6,
        v.SD_THERAPIST_PREDICTOR: 0.3,
        v.SD_THERAPIST_OUTCOME: 0.2,
        v.MEASUREMENT_ERROR_SD_PREDICTOR: 0.5,
        v.MEASUREMENT_ERROR_SD_OUTCOME: 0.7,
    }
    rng = np.random.default_rng(1)
    return {k: val * (1 + 0.01 * rng.standard_normal((2, 30))) for k, val in p.items()}


DESIGN = variance.Design(
    None, None, np.array([0]), np.ones((1, 9)), np.ones((1, 9)), np.arange(9.0)
)


@pytest.mark.parametrize("error", [True, False])
def test_r2_table_shows_the_error_component_only_with_measurement_error(error):
    spec = ModelSpec(measurement_error=error)
    post = _posterior()
    tidy = derived.r2_summary(derived.r2_dataset(derived.r2_components(post, ME, DESIGN), True))
    t = tables.label_r2(tidy, spec, predictor="alliance", outcome="symptoms", ci_prob=0.9)
    rows = t[t[v.COMPONENT] == "omega2"]
    if not error:  # a model without measurement error has no such rows
        assert rows.empty and "omega2" not in t.attrs["note"]
        return
    assert set(rows["denominator"]) == {"total", "level1"}
    assert set(rows[v.EQUATION]) == {v.OUTCOME, v.PREDICTOR}
    assert (rows["label"] == "measurement error (omega2)").all()
    level1 = t[(t.equation == v.OUTCOME) & (t.denominator == "level1")]
    assert level1["mean"].sum() == pytest.approx(1.0, rel=1e-3)
    assert "omega2" in t.attrs["note"]


def test_effects_table_groups_the_reliabilities_last():
    post = _posterior()
    eff = derived.derived_effects(post, ME, DESIGN)
    frame = pd.DataFrame(
        {"mean": {k: float(np.mean(val)) for k, val in eff.items()}, "sd": 0.1, "ci_low": 0.0}
    )
    summary = pd.DataFrame({"mean": [0.3], "sd": [0.1]}, index=[v.STATE_EFFECT])
    t = tables.label_effects(
        summary, frame, predictor="a", outcome="s", ci_prob=0.9, measurement_error=True
    )
    assert list(t["parameter"][-2:]) == ["reliability_predictor", "reliability_outcome"]
    assert (t["group"][-2:] == tables.RELIABILITY).all()
    assert 0 < t["mean"].iloc[-1] < 1
    assert "reliabilities" in t.attrs["note"]
    session = t.set_index("parameter").loc["icc_outcome_session", "note"]
    assert "measurement error" in session


def test_equations_state_the_measurement_equation():
    with_error = report_text.equations(ME, "alliance", "symptoms")
    for piece in ("+ ε^x_ti", "+ ε^y_ti", "ε^x_ti ~ N(0, ω_x²)", "ε^y_ti ~ N(0, ω_y²)"):
        assert piece in with_error, piece
    plain = report_text.equations(ModelSpec(), "alliance", "symptoms")
    assert "ε" not in plain and "ω" not in plain


def test_priors_table_shows_the_error_sds_scaled_to_the_data(small_data):
    t = priors_text.priors_table(ME, small_data)
    sd_x, sd_y = np.nanstd(small_data.x), np.nanstd(small_data.y)
    px = t.loc[v.MEASUREMENT_ERROR_SD_PREDICTOR]
    assert px["prior"] == f"HalfNormal(sigma={0.5 * sd_x:.3g})"
    assert px["symbol"] == "ω_x" and px["source"] == "default: σ = 0.5 SD(x)"
    py = t.loc[v.MEASUREMENT_ERROR_SD_OUTCOME]
    assert py["prior"] == f"HalfNormal(sigma={0.5 * sd_y:.3g})" and py["symbol"] == "ω_y"
    assert (
        v.MEASUREMENT_ERROR_SD_PREDICTOR
        not in priors_text.priors_table(ModelSpec(), small_data).index
    )
    symbols = report_text.symbols_table(ME, "alliance", "symptoms")
    assert symbols.loc["ω_y", "meaning"] == "measurement error SD of symptoms"


def test_methods_sentence_and_reference(small_data):
    conv = Convergence(1.002, 900.0, 800.0, 0, 0.9, 2000)
    prov = {"draws": 1000, "tune": 800, "chains": 2, "sampler": "nutpie", "random_seed": 11}
    text = report_methods.methods_paragraph(ME, small_data, prov, conv, 0.95)
    assert "measurement error" in text and "Schuurman & Hamaker 2019" in text
    assert "half the variable's SD" in text
    ref = report_methods.MEASUREMENT_REFERENCES["Schuurman & Hamaker 2019"]
    assert "Psychological Methods, 24(1), 70-91" in ref
    assert ref in report_methods.references(ME)
    assert ref not in report_methods.references(ModelSpec())
    plain = report_methods.methods_paragraph(ModelSpec(), small_data, prov, conv, 0.95)
    assert "Schuurman & Hamaker" not in plain
    override = ModelSpec(
        measurement_error=True,
        priors={v.MEASUREMENT_ERROR_SD_OUTCOME: {"dist": "HalfNormal", "sigma": 1.0}},
    )
    text = report_methods.methods_paragraph(override, small_data, prov, conv, 0.95)
    assert "half the variable's SD" not in text


def _fake_result(data: SessionData, spec: ModelSpec, provenance: dict) -> SimpleNamespace:
    rng = np.random.default_rng(2)
    sd_x = np.nanstd(data.x)
    post = xr.Dataset(
        {
            # The predictor's error SD drawn from its prior; the outcome's well identified.
            v.MEASUREMENT_ERROR_SD_PREDICTOR: (
                ("chain", "draw"),
                np.abs(rng.normal(0.0, 0.5 * sd_x, (2, 1000))),
            ),
            v.MEASUREMENT_ERROR_SD_OUTCOME: (("chain", "draw"), rng.normal(0.3, 0.02, (2, 1000))),
        }
    )
    return SimpleNamespace(
        spec=spec, data=data, provenance=provenance, idata=SimpleNamespace(posterior=post)
    )


def test_identification_messages_computed_or_read_from_the_provenance(small_data):
    msgs = report_checks.identification_messages(_fake_result(small_data, ME, {}))
    assert len(msgs) == 1 and msgs[0].startswith(v.MEASUREMENT_ERROR_SD_PREDICTOR)
    assert report_checks.identification_messages(_fake_result(small_data, ModelSpec(), {})) == []
    stored = {report_checks.IDENTIFICATION_KEY: ["recorded by the fit"]}
    assert report_checks.identification_messages(_fake_result(small_data, ME, stored)) == [
        "recorded by the fit"
    ]


def test_convergence_section_shows_identification_warnings():
    conv = Convergence(1.002, 900.0, 800.0, 0, 0.9, 2000)
    draws = {"a": np.random.default_rng(0).normal(size=(2, 50))}
    sampler = pd.DataFrame({"value": ["x"]}, index=pd.Index(["sampler"], name="setting"))
    section = convergence_section(conv, {}, sampler, draws, {"a": "a"}, ["omega_y: flat"])
    assert section.paragraphs[-1] == "Identification warning: omega_y: flat."
    plain = convergence_section(conv, {}, sampler, draws, {"a": "a"})
    assert len(plain.paragraphs) == 2
