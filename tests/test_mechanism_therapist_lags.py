"""Random lags between therapists (``NAME@therapist``): parsing, the model's lag matrices and
potential against the marginal density built by hand, the covariance of the patients' whole
deviations, and the command line's rows."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_alliance.cli.app import main
from bayes_alliance.mechanisms.effect_draws import path_covariance
from bayes_alliance.mechanisms.integrated import (
    EndParams,
    IntegratedParams,
    filter_inputs,
    marginal_logp,
)
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.mechanisms.spec import MechanismSpec, lag_levels, random_lag_row
from bayes_alliance.report.labels import mechanism_label
from bayes_alliance.sim.mechanisms import simulate_mechanisms
from tests.model_points import cov_of, potential_at_random_point
from tests.test_mechanism_integrated import _design

ROLES3 = ("predictor", "mediator", "outcome")


def test_lag_names_carry_their_level():
    patient, between = lag_levels(["effect_on_mediator", "mediator_effect@therapist"], ROLES3)
    assert patient == (("mediator", "predictor"), ("outcome", "mediator"))
    assert between == (("outcome", "mediator"),)
    # NAME@therapist alone makes the path vary between patients too
    patient, between = lag_levels(["state_effect@therapist"], ROLES3)
    assert patient == between == (("outcome", "predictor"),)
    with pytest.raises(ValueError, match="listed twice"):
        lag_levels(["state_effect", "state_effect"], ROLES3)
    with pytest.raises(ValueError, match="not a lagged path"):
        lag_levels(["no_such_lag@therapist"], ROLES3)
    assert random_lag_row("outcome<-mediator", "therapist") == "sd_mediator_effect_therapist"
    assert random_lag_row("mediator<-outcome", "therapist") == "sd_path_mediator<-outcome_therapist"


def test_a_therapist_path_needs_the_level_and_the_patient_path():
    data = _design("mediation", 2, False)
    path = (("outcome", "mediator"),)
    with pytest.raises(ValueError, match="need therapist_level"):
        MechanismSpec(therapist_level=False, therapist_paths=path).resolved(data)
    a_only = (("mediator", "predictor"),)
    with pytest.raises(ValueError, match="not between patients"):
        MechanismSpec(therapist_level=True, random_paths=a_only, therapist_paths=path).resolved(
            data
        )
    # one message for every reason
    with pytest.raises(ValueError, match="need therapist_level") as err:
        MechanismSpec(random_paths=a_only, therapist_paths=path).resolved(data)
    assert "not between patients" in str(err.value)


def test_the_potential_adds_the_therapists_deviation_to_each_patients_lags():
    data = _design("mediation", 2, True)
    spec = MechanismSpec(therapist_level=True, therapist_paths=(("outcome", "mediator"),))
    model = build_mechanism_model(data, spec)
    spec = spec.resolved(data)
    names = [
        "intercept", "lag", "path_offset", "sd_paths", "corr_paths", "path_offset_therapist",
        "sd_paths_therapist", "path_deviation", "sd_innovation", "corr_innovation", "sd_first",
        "corr_first", "sd_patient", "corr_patient", "sd_therapist", "corr_therapist", "trend",
        "end_intercept", "end_trait_effect_patient", "end_change_effect",
        "end_trait_effect_therapist", "end_sd", "sd_end_therapist",
    ]  # fmt: skip
    got, v = potential_at_random_point(model, names, seed=4, scale=0.3)

    def cov(name):
        return cov_of(v, name)

    # d_i from the patients' offsets and covariance (a, b) through the eigen square root of the
    # correlation matrix (parts._two_paths), c_j on b only
    tj = data.patient_therapist
    s = np.sqrt(np.diag(cov("paths")))
    rho = cov("paths")[0, 1] / (s[0] * s[1])
    root = np.diag(s) @ np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2)
    root = root @ np.diag(np.sqrt([1 + rho, 1 - rho]))
    np.testing.assert_allclose(root @ root.T, cov("paths"), rtol=1e-12)
    d_i = v["path_offset"] @ root.T
    c_j = v["path_offset_therapist"][:, 0] * v["sd_paths_therapist"][0]
    assert np.abs(c_j).max() > 0.01
    whole = d_i.copy()
    whole[:, 1] += c_j[tj]
    np.testing.assert_allclose(v["path_deviation"], whole, rtol=1e-10, atol=1e-12)
    m, x, y = data.index("mediator"), data.index("predictor"), data.index("outcome")
    phi = np.broadcast_to(v["lag"], (data.n_patients, 3, 3)).copy()
    phi[:, m, x] += d_i[:, 0]
    phi[:, y, m] += d_i[:, 1] + c_j[tj]
    params = IntegratedParams(
        v["intercept"], phi, cov("innovation"), cov("first"),
        np.linalg.cholesky(cov("patient")), v["trend"], None,
        np.linalg.cholesky(cov("therapist")),
        EndParams(v["end_intercept"], v["end_trait_effect_patient"], v["end_change_effect"],
                  v["end_trait_effect_therapist"], v["end_sd"], v["sd_end_therapist"]),
    )  # fmt: skip
    grid = MechanismGrid.of(data)
    want, _ = marginal_logp(data, filter_inputs(data, grid, True), grid.filled, grid.time, params)
    assert float(got) == pytest.approx(float(np.sum(want)), rel=1e-10)


def test_the_patients_whole_deviation_covariance_adds_the_therapists():
    # Patients: paths (a, b) with SDs (0.2, 0.3) and correlation 0.5; therapists: b alone with
    # SD 0.4. Cov(c_j + d_i) = [[0.04, 0.03], [0.03, 0.09 + 0.16]].
    post = xr.Dataset(
        {
            "sd_paths": (("chain", "draw", "path"), [[[0.2, 0.3]]]),
            "corr_paths": (("chain", "draw", "path", "path_"), [[[[1.0, 0.5], [0.5, 1.0]]]]),
            "sd_paths_therapist": (("chain", "draw", "path_therapist"), [[[0.4]]]),
        },
        coords={
            "path": ["mediator<-predictor", "outcome<-mediator"],
            "path_therapist": ["outcome<-mediator"],
        },
    )
    got = path_covariance(post)
    assert got is not None
    np.testing.assert_allclose(got[0, 0], [[0.04, 0.03], [0.03, 0.25]], atol=1e-15)
    without = path_covariance(post.drop_vars("sd_paths_therapist"))
    assert without is not None
    np.testing.assert_allclose(without[0, 0], [[0.04, 0.03], [0.03, 0.09]], atol=1e-15)


def test_the_command_line_fits_a_lag_that_varies_between_therapists(tmp_path, capsys):
    df, _ = simulate_mechanisms(
        seed=8, design="two_series", n_therapists=6, patients_per_therapist=4, n_sessions=8
    )
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    roles = ["--patient", "patient", "--session", "session", "--predictor", "alliance"]
    roles += ["--outcome", "symptoms"]
    out = tmp_path / "o"
    argv = ["fit", str(csv), *roles, "--draws", "40", "--tune", "60", "--seed", "3", "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lags = ["--random-lags", "predictor_autoregression,state_effect@therapist"]
        lags += ["--lag-trait-covariance"]
        rc = main([*argv, "--therapist", "therapist", "--out", str(out), *lags])
    assert rc in (0, 3)
    eff = pd.read_csv(out / "effects.csv").set_index("parameter")
    for row in ("sd_state_effect_patient", "sd_state_effect_therapist"):
        assert eff.loc[row, "mean"] > 0
    assert "sd_predictor_autoregression_therapist" not in eff.index
    assert eff.loc["sd_state_effect_therapist", "label"].startswith("SD between therapists of")
    summary = pd.read_csv(out / "summary.csv").set_index("parameter")
    assert "sd_paths_therapist[outcome<-predictor]" in summary.index
    # the patients' lag deviations covary with their latent means
    assert "corr_paths_patient[outcome<-predictor,predictor]" in summary.index
    # two mechanism fits compare by LOO alone (no R-squared columns); families do not mix
    from types import SimpleNamespace

    from bayes_alliance.analysis.comparison import compare
    from bayes_alliance.mechanisms.fit import load_mechanisms

    fitted = load_mechanisms(out / "fit.nc")
    table = compare({"a": fitted, "b": fitted})
    assert list(table.index) == ["a", "b"] or set(table.index) == {"a", "b"}
    assert table["elpd_diff"].abs().max() == pytest.approx(0.0, abs=1e-9)
    assert "r2_fvm" not in table.columns
    with pytest.raises(ValueError, match="one model family"):
        compare({"a": fitted, "b": SimpleNamespace(kind="main")})  # type: ignore[dict-item]
    # without a therapist column the level is refused by name
    rc = main([*argv, "--out", str(tmp_path / "two"), "--random-lags", "state_effect@therapist"])
    assert rc == 2
    assert "--therapist" in capsys.readouterr().err


def test_labels_name_the_level():
    words = {"x": "alliance", "y": "symptoms"}
    assert mechanism_label("sd_state_effect_therapist", words).startswith(
        "SD between therapists of the"
    )
    assert mechanism_label("sd_state_effect_patient", words).startswith(
        "SD between patients of the"
    )
