"""The mechanism models through the command line and back: one small fit with a mediator and
an end-of-treatment outcome (output files, effects rows, report with the path diagram, the
saved result read back), and the errors a user meets."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.cli.app import main
from bayes_alliance.mechanisms.fit import load_mechanisms
from bayes_alliance.report.mechanisms import cautions, mechanism_effects_table
from bayes_alliance.sim.mechanisms import simulate_mechanisms

ROLES = ["--patient", "patient", "--session", "session", "--predictor", "alliance"]
ROLES += ["--outcome", "symptoms"]


@pytest.fixture(scope="module")
def mediation_cli(tmp_path_factory):
    df, _ = simulate_mechanisms(
        seed=4,
        design="mediation",
        patients_per_therapist=30,
        n_sessions=8,
        missing=0.05,
        change_sd=0.1,
        end_effects=(-0.5, 3.0),
    )
    folder = tmp_path_factory.mktemp("mechanism_fit")
    csv = folder / "d.csv"
    df.to_csv(csv, index=False)
    out = folder / "o"
    argv = ["fit", str(csv), *ROLES, "--mediator", "mediator", "--end-outcome"]
    argv += ["post_symptoms", "--out", str(out), "--draws", "60", "--tune", "100"]
    argv += ["--seed", "3", "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(argv)
    return out, rc, csv


def test_fit_writes_effects_rows_and_report(mediation_cli) -> None:
    out, rc, _ = mediation_cli
    assert rc in (0, 3)  # 60 draws: the check may fail; the files are written either way
    for name in ("fit.nc", "effects.csv", "effects.md", "effects.tex", "summary.csv"):
        assert (out / name).is_file(), name
    assert (out / "convergence.json").is_file() and not (out / "r2.csv").exists()
    eff = pd.read_csv(out / "effects.csv").set_index("parameter")
    for row in (
        "indirect_effect_within",
        "proportion_mediated_within",
        "direct_effect_within",
        "direct_path_within",
        "total_effect_within",
        "cov_random_paths",
        "end_trait_effect_patient",
        "end_change_effect",
        "change_reliability",
    ):
        assert row in eff.index, row
        assert eff.loc[row, "ci_low"] <= eff.loc[row, "mean"] <= eff.loc[row, "ci_high"]
    assert set(eff["interval"]) == {"94% HDI"}  # highest-density, as the main model's
    assert list(pd.read_csv(out / "effects.csv").columns) == [
        "parameter",
        "label",
        "mean",
        "sd",
        "ci_low",
        "ci_high",
        "interval",
        "ess_bulk",
        "ess_tail",
        "r_hat",
        "converged",
    ]
    html = (out / "report" / "report.html").read_text()
    assert "<figure id='path_diagram'>" in html and "indirect effect E[a_i b_i]" in html
    assert "Priors actually used" in html and "<caption>Table 1. " in html
    assert (out / "report" / "path_diagram.png").stat().st_size > 10_000
    # The report cautions exactly when the series resolve the patients' changes poorly.
    reliability = eff.loc["change_reliability", "mean"]
    assert 0.0 < reliability < 1.0
    assert ("weakly identified" in html) == (reliability < 0.5)
    # Below 0.3 it is an identification warning, recorded with the fit and shown in the report.
    assert ("Identification warning: the patients" in html) == (reliability < 0.3)
    # The mediation design's trait effect adjusts for the mediator, and its label says so.
    assert eff.loc["trait_effect_patient", "label"].startswith("partial trait-like effect")
    assert "adjusting for mediator" in eff.loc["trait_effect_patient", "label"]
    summary = pd.read_csv(out / "summary.csv").set_index("parameter")
    assert list(summary.columns) == [
        "mean",
        "sd",
        "ci_low",
        "ci_high",
        "interval",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    ]
    # Correlation matrices are summarised by their entries below the diagonal only.
    assert "corr_innovation[mediator,predictor]" in summary.index
    assert not any(i.startswith("corr_innovation[predictor,predictor]") for i in summary.index)


def test_saved_result_reads_back_with_the_same_effects(mediation_cli) -> None:
    out, _, _ = mediation_cli
    result = load_mechanisms(out / "fit.nc")
    assert result.design == "mediation"
    assert result.provenance["random_seed"] == 3
    again = mechanism_effects_table(result, 0.94).set_index("parameter")
    written = pd.read_csv(out / "effects.csv").set_index("parameter")
    np.testing.assert_allclose(again["mean"], written.loc[again.index, "mean"], rtol=1e-9)


def test_report_command_rewrites_a_mechanism_report(mediation_cli, tmp_path: Path) -> None:
    out, _, _ = mediation_cli
    rc = main(["report", str(out), "--out", str(tmp_path / "r"), "--ci", "0.9"])
    assert rc == 0
    assert "90% HDI" in (tmp_path / "r" / "report.html").read_text()


def test_main_model_loader_names_the_mechanism_loader(mediation_cli) -> None:
    from bayes_alliance.core.files import ResultsFileError
    from bayes_alliance.inference.fit import FitResult

    out, _, _ = mediation_cli
    with pytest.raises(ResultsFileError, match="load_mechanisms"):
        FitResult.load(out / "fit.nc")


def test_options_the_mechanism_models_lack_are_named(mediation_cli, tmp_path, capsys) -> None:
    _, _, csv = mediation_cli
    argv = ["fit", str(csv), *ROLES, "--mediator", "mediator", "--out", str(tmp_path / "x")]
    rc = main([*argv, "--random-slopes", "patient"])
    assert rc == 2
    assert "random_slopes" in capsys.readouterr().err
    rc = main([*argv[:-2], "--mediator", "nosuch", "--out", str(tmp_path / "y")])
    assert rc == 2
    assert "nosuch" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cautions_name_a_low_change_reliability_only() -> None:
    def table(rel: float) -> pd.DataFrame:
        rows = ["end_change_effect", "change_reliability"]
        return pd.DataFrame({"parameter": rows, "mean": [-2.0, rel]})

    (note,) = cautions(table(0.31))
    assert "reliability of 0.31" in note
    assert cautions(table(0.8)) == []
    assert cautions(table(0.31).iloc[1:]) == []  # no change effect, nothing to caution


def test_mediation_trait_effects_are_labelled_partial() -> None:
    """With a mediator the trait effects come from the regression of the outcome's trait on
    the predictor's and the mediator's: partial effects, and their labels say so; the other
    designs keep the shared labels."""
    from bayes_alliance.report.labels import mechanism_label

    words = {"x": "wai", "y": "phq", "m": "processing"}
    label = mechanism_label("trait_effect_patient", words, "mediation")
    assert label.startswith("partial trait-like effect between patients: wai")
    assert label.endswith("adjusting for processing")
    assert "adjusting for wai" in mechanism_label(
        "trait_effect_therapist_mediator", words, "mediation"
    )
    assert "partial" not in mechanism_label("trait_effect_patient", words, "two_series")


def test_random_lags_send_a_two_series_fit_to_the_k_series_model(tmp_path, capsys) -> None:
    df, _ = simulate_mechanisms(
        seed=6, design="two_series", patients_per_therapist=25, n_sessions=8, missing=0.05
    )
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "o"
    argv = ["fit", str(csv), *ROLES, "--out", str(out), "--draws", "60", "--tune", "100"]
    argv += ["--seed", "2", "--quiet", "--random-lags", "predictor_autoregression,state_effect"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main([*argv, "--measurement-error", "--random-innovations", "patient"])
    assert rc in (0, 3)
    result = load_mechanisms(out / "fit.nc")
    assert result.spec.random_paths == (("predictor", "predictor"), ("outcome", "predictor"))
    assert result.spec.measurement_error == ("predictor", "outcome")
    assert result.spec.random_innovations
    eff = pd.read_csv(out / "effects.csv").set_index("parameter")
    for row in ("sd_predictor_autoregression_patient", "sd_state_effect_patient"):
        assert row in eff.index and eff.loc[row, "mean"] > 0
        assert eff.loc[row, "label"].startswith("SD between patients of the")
    summary = pd.read_csv(out / "summary.csv").set_index("parameter")
    assert "measurement_error_sd[outcome]" in summary.index
    assert "sd_log_innovation[predictor]" in summary.index
    # leave-one-patient-out works on the k-series fit as on the main model's
    from bayes_alliance.analysis.comparison import loo

    res = loo(result)
    assert np.isfinite(res.elpd_loo) and len(np.asarray(res.elpd.pareto_k)) == 25
    with pytest.raises(ValueError, match="unit='patient'"):
        result.pointwise_loglik("session")
    # a lag the design does not have is named, with the ones it has
    rc = main([*argv[:-1], "mediator_effect", "--out", str(tmp_path / "bad"), "--force"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "mediator_effect" in err and "state_effect" in err


def test_the_main_model_refuses_random_lags_and_names_the_k_series_model() -> None:
    from bayes_alliance.data.session_data import SessionData
    from bayes_alliance.model.build import build_model
    from bayes_alliance.spec.model_spec import ModelSpec

    df, _ = simulate_mechanisms(seed=1, design="two_series", patients_per_therapist=5, n_sessions=4)
    data = SessionData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms"
    )
    with pytest.raises(ValueError, match="fit_mechanisms"):
        build_model(data, ModelSpec(therapist_level=False, random_lags=("state_effect",)))


def test_compare_command_reads_mechanism_fits(mediation_cli, tmp_path, capsys) -> None:
    # The command loaded every folder as a main-model fit, so mechanism fits could only be
    # compared through the API; two copies of one fit give an ELPD difference of 0.
    import shutil

    out, _, _ = mediation_cli
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(out, first)
    shutil.copytree(out, second)
    table_path = tmp_path / "cmp.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["compare", str(first), str(second), "--out", str(table_path)])
    assert rc == 0, capsys.readouterr().err
    table = pd.read_csv(table_path)
    assert set(table["model"]) == {"first", "second"}
    assert abs(table["elpd_diff"]).max() < 1e-9
    assert "delta_r2_fvm" not in table.columns  # R-squared by component is the main model's


def test_report_patients_of_a_mechanism_fit_is_refused(mediation_cli, tmp_path, capsys) -> None:
    # --patients was ignored without a word for a mechanism fit
    out, _, _ = mediation_cli
    rc = main(["report", str(out), "--out", str(tmp_path / "r"), "--patients", "p0001"])
    assert rc == 2
    assert "no patient pages" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
