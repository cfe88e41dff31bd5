"""One series alone (k = 1: alliance dynamics without symptoms): its data and their checks,
its marginal density against the dense joint Gaussian, its effects against hand computations
and simulation, the command line without --outcome, and the recovery of its autoregression
and of that autoregression's SD between patients on data simulated here."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.cli.app import main
from bayes_alliance.data.readers import read_table
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.data.validate import DataValidationError
from bayes_alliance.mechanisms import effects as me
from bayes_alliance.mechanisms.fit import fit_mechanisms, load_mechanisms
from bayes_alliance.mechanisms.integrated import (
    EndParams,
    IntegratedParams,
    filter_inputs,
    marginal_logp,
)
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.mechanisms.spec import MechanismSpec
from tests.dense_k import EndOutcome, dense_logp

ROLES = ["--patient", "patient", "--session", "session", "--predictor", "alliance"]


def simulate_single(
    seed: int,
    *,
    n_patients: int = 40,
    n_sessions: int = 10,
    n_therapists: int = 0,
    phi: float = 0.4,
    sd_phi: float = 0.0,
    sd_innovation: float = 1.0,
    sd_patient: float = 1.0,
    sd_therapist: float = 0.5,
    error_sd: float = 0.0,
    missing: float = 0.0,
    end: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """x_ti = 4 + u_j + v_i + w_ti + eps_ti, w_ti = phi_i w_(t-1)i + e_ti with phi_i ~
    N(phi, sd_phi^2), the first state from the stationary variance of phi_i; an end outcome
    ``post = 10 + g v_i + eta_i`` (``end = (g, sd_eta)``) when asked."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, sd_therapist, max(n_therapists, 1)) if n_therapists else np.zeros(1)
    rows = []
    for i in range(n_patients):
        j = i % n_therapists if n_therapists else 0
        v = rng.normal(0.0, sd_patient)
        p = float(np.clip(phi + rng.normal(0.0, sd_phi), -0.95, 0.95))
        w = rng.normal(0.0, sd_innovation / np.sqrt(1.0 - p * p))
        post = 10.0 + end[0] * v + rng.normal(0.0, end[1]) if end else np.nan
        for t in range(1, n_sessions + 1):
            if t > 1:
                w = p * w + rng.normal(0.0, sd_innovation)
            x = 4.0 + u[j] + v + w + rng.normal(0.0, error_sd) if error_sd else 4.0 + u[j] + v + w
            rows.append(
                (f"t{j:02d}", f"p{i:03d}", t, np.nan if rng.random() < missing else x, post)
            )
    df = pd.DataFrame(rows, columns=["therapist", "patient", "session", "alliance", "post"])
    if not n_therapists:
        df = df.drop(columns="therapist")
    return df if end else df.drop(columns="post")


def _single(df: pd.DataFrame, **kw) -> SeriesData:
    return SeriesData.single(df, patient="patient", session="session", predictor="alliance", **kw)


# ----------------------------------------------------------------------------- data


def test_a_single_series_holds_the_predictor_alone_on_the_grid():
    df = simulate_single(1, n_patients=4, n_sessions=5, n_therapists=2, missing=0.2)
    data = _single(df, therapist="therapist")
    assert data.roles == ("predictor",) and data.columns == ("alliance",) and data.k == 1
    assert data.z.shape == (4, 5, 1)
    # the grid holds the table's values where they are, NaN elsewhere
    for row in df.itertuples():
        p, s = int(row.patient[1:]), row.session - 1
        want = row.alliance
        got = data.z[p, s, 0]
        assert (np.isnan(want) and np.isnan(got)) or got == want
    assert list(data.patient_therapist) == [0, 1, 0, 1]
    assert np.isnan(data.base.y).all()  # no outcome


def test_a_bad_value_is_named_by_column_and_file_line(tmp_path: Path):
    df = simulate_single(2, n_patients=3, n_sessions=4)
    df["alliance"] = df["alliance"].astype(object)
    df.loc[3, "alliance"] = "high"  # the 4th data row: line 5 of the file (header on line 1)
    df.loc[6, "alliance"] = np.inf
    df.loc[7, "patient"] = None
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataValidationError) as err:
        _single(read_table(path))
    text = str(err.value)
    assert "column 'alliance': value is not a number (lines 5)" in text
    assert "column 'alliance': infinite value (lines 8)" in text
    assert "column 'patient': empty id (lines 9)" in text
    assert "__" not in text  # nothing of the stand-in outcome column


def test_missing_and_empty_columns_are_named_once_without_the_stand_in():
    df = simulate_single(3, n_patients=3, n_sessions=3)
    with pytest.raises(DataValidationError) as err:
        SeriesData.single(df, patient="patient", session="session", predictor="aliance")
    text = str(err.value)
    assert "missing column 'aliance' (did you mean 'alliance'?)" in text
    assert "the table has 'patient', 'session', 'alliance'" in text and "__" not in text
    df["alliance"] = np.nan
    with pytest.raises(DataValidationError) as err:
        _single(df)
    assert err.value.problems == [err.value.problems[0]]  # one problem, the predictor's
    assert str(err.value.problems[0]) == "column 'alliance': variable is entirely missing"
    with pytest.raises(DataValidationError, match="'patient': column is given more than one"):
        SeriesData.single(df, patient="patient", session="session", predictor="patient")


def test_short_series_are_warned_about_by_the_predictors_own_count():
    df = simulate_single(4, n_patients=3, n_sessions=4)
    df.loc[(df.patient == "p001") & (df.session > 2), "alliance"] = np.nan  # 2 observed
    with pytest.warns(UserWarning, match=r"1 patient\(s\) have fewer than 3 .*ids p001"):
        _single(df)


def test_an_end_outcome_comes_one_per_patient():
    df = simulate_single(5, n_patients=5, n_sessions=3, end=(0.5, 1.0))
    data = _single(df, end_outcome="post")
    want = df.groupby("patient")["post"].first().to_numpy()
    np.testing.assert_array_equal(data.end_outcome, want)
    df.loc[df.patient == "p002", "post"] = [1.0, 2.0, 3.0]
    with pytest.raises(DataValidationError, match="'post': patient-level covariate varies"):
        _single(df, end_outcome="post")


# ----------------------------------------------------------------------- the density


@pytest.mark.parametrize(("therapists", "end"), [(0, False), (3, True)])
def test_the_marginal_density_is_the_dense_joint_gaussian(therapists, end):
    df = simulate_single(6, n_patients=6, n_sessions=5, n_therapists=therapists, missing=0.2,
                         end=(0.7, 1.0) if end else None)  # fmt: skip
    df = df[~((df.patient == "p001") & (df.session <= 2))].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _single(
            df, therapist="therapist" if therapists else None, end_outcome="post" if end else None
        )
    grid = MechanismGrid.of(data)
    n = data.n_patients
    rng = np.random.default_rng(2)
    phi = rng.uniform(-0.5, 0.8, size=(n, 1, 1))  # each patient its own autoregression
    sigma, first_cov, omega = np.array([[0.8]]), np.array([[1.3]]), np.array([0.5])
    sigma_p = np.array([[1.1, 0.05], [0.05, 0.02]]) if end else np.array([[1.1]])
    sigma_t = np.array([[0.4]]) if therapists else None
    endp = EndParams(9.5, 0.7, -2.0, 0.3 if therapists else None, 1.2, 0.5 if therapists else None)
    slope = 0.1 if end else None
    params = IntegratedParams(
        np.array([4.2]), phi, sigma, first_cov, np.linalg.cholesky(sigma_p), slope, omega**2,
        None if sigma_t is None else np.linalg.cholesky(sigma_t), endp if end else None,
    )  # fmt: skip
    logp, _ = marginal_logp(
        data, filter_inputs(data, grid, end), grid.filled, grid.time, params, np
    )
    observed = np.isfinite(data.z)
    dense_end = None
    if end:
        dense_end = EndOutcome(
            O=data.end_outcome, g0=9.5, gP=0.7, sdO=1.2, gT=endp.trait_therapist or 0.0,
            gS=-2.0, tauO=endp.sd_therapist or 0.0,
        )  # fmt: skip
    want = dense_logp(
        np.where(observed, data.z, 0.0), observed, data.first, data.last, grid.time,
        np.array([4.2]), phi, sigma, first_cov, sigma_p, omega,
        therapist=data.patient_therapist if therapists else None, sigma_t=sigma_t,
        trend=slope or 0.0, end=dense_end,
    )  # fmt: skip
    assert float(np.sum(logp)) == pytest.approx(want, abs=1e-8)


# ------------------------------------------------------------------------ effects


def test_single_series_effects_by_hand():
    # A stationary first state (var 1 = 0.75 / (1 - 0.5^2)): every session's state variance
    # is 1, so the shares are 2 : 1 : (1 + 1/3) of 4 1/3.
    lag = np.array([[[0.5]]])
    out = me.single_series_effects(
        lag, np.array([[[0.75]]]), np.array([[[2.0]]]), np.array([[[1.0]]]),
        me.within_variance(lag, np.array([[[0.75]]]), np.array([[[1.0]]]), np.array([3, 7])),
        np.array([1.0 / 3.0]),
    )  # fmt: skip
    total = 2.0 + 1.0 + 1.0 + 1.0 / 3.0
    assert out["icc_predictor_patient"] == pytest.approx([2.0 / total])
    assert out["icc_predictor_therapist"] == pytest.approx([1.0 / total])
    assert out["icc_predictor_session"] == pytest.approx([(4.0 / 3.0) / total])
    assert out["reliability_predictor"] == pytest.approx([0.75])
    assert out["innovation_sd_predictor"] == pytest.approx([np.sqrt(0.75)])
    assert out["sd_patient_predictor"] == pytest.approx([np.sqrt(2.0)])
    assert out["measurement_error_sd_predictor"] == pytest.approx([np.sqrt(1.0 / 3.0)])
    two = me.single_series_effects(lag, lag, lag, None, np.array([[1.0]]), None)
    assert "sd_therapist_predictor" not in two and "reliability_predictor" not in two
    assert two["icc_predictor_patient"] + two["icc_predictor_session"] == pytest.approx([1.0])


def test_the_average_innovation_covariance_is_the_simulated_one():
    rng = np.random.default_rng(0)
    sigma = np.array([[1.0, 0.3], [0.3, 0.5]])
    s = np.array([0.4, 0.25])
    scale = np.exp(rng.normal(size=(400_000, 2)) * s)
    simulated = np.mean(scale[:, :, None] * sigma * scale[:, None, :], axis=0)
    np.testing.assert_allclose(me.average_innovation_cov(sigma, s), simulated, rtol=4e-3)


# -------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def single_cli(tmp_path_factory):
    """One small fit of the series alone with every option that applies to it."""
    df = simulate_single(7, n_patients=24, n_sessions=6, n_therapists=4, sd_phi=0.1,
                         error_sd=0.3, missing=0.05)  # fmt: skip
    folder = tmp_path_factory.mktemp("single_fit")
    csv = folder / "d.csv"
    df.to_csv(csv, index=False)
    out = folder / "o"
    argv = ["fit", str(csv), *ROLES, "--therapist", "therapist", "--random-lags"]
    argv += ["predictor_autoregression", "--measurement-error", "--random-innovations"]
    argv += ["patient", "--out", str(out), "--draws", "40", "--tune", "60", "--seed", "2"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main([*argv, "--quiet"])
    return out, rc, csv


def test_fit_without_an_outcome_writes_the_single_series_effects(single_cli, capsys):
    out, rc, _ = single_cli
    assert rc in (0, 3)  # 40 draws: the check may fail; the files are written either way
    for name in ("fit.nc", "effects.csv", "summary.csv", "report/report.html"):
        assert (out / name).is_file(), name
    eff = pd.read_csv(out / "effects.csv").set_index("parameter")
    rows = [
        "predictor_autoregression",
        "sd_predictor_autoregression_patient",
        "innovation_sd_predictor",
        "sd_patient_predictor",
        "sd_therapist_predictor",
        "measurement_error_sd_predictor",
        "reliability_predictor",
        "icc_predictor_patient",
        "icc_predictor_therapist",
        "icc_predictor_session",
        "stationary",
        "stationary_patients",
    ]
    assert sorted(eff.index) == sorted(rows)  # no outcome rows
    ranged = eff.drop(index="stationary")  # a probability: no interval
    assert eff.loc["stationary", ["ci_low", "ci_high"]].isna().all()
    assert (ranged["ci_low"] <= ranged["mean"]).all()
    assert (ranged["mean"] <= ranged["ci_high"]).all()
    icc = eff.loc[["icc_predictor_patient", "icc_predictor_therapist", "icc_predictor_session"]]
    assert icc["mean"].sum() == pytest.approx(1.0)
    assert eff.loc["icc_predictor_therapist", "label"] == "ICC of alliance: therapist share"
    report = (out / "report" / "report.md").read_text()
    assert "Mechanism model: one series" in report and "outcome last" not in report


def test_the_saved_single_fit_reads_back_and_reports(single_cli, tmp_path):
    out, _, _ = single_cli
    result = load_mechanisms(out / "fit.nc")
    assert result.design == "single" and result.data.columns == ("alliance",)
    assert main(["report", str(out), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.html").is_file()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--mediator", "alliance"], "--mediator"),
        (["--covariates", "z"], "--covariates"),
        (["--moderators", "z"], "moderators"),
        (["--no-reverse-lag"], "reverse_lag"),
        (["--random-lags", "state_effect"], "random lag 'state_effect'"),
    ],
)
def test_options_that_need_an_outcome_are_named(single_cli, tmp_path, capsys, extra, named):
    _, _, csv = single_cli
    argv = ["fit", str(csv), *ROLES, *extra, "--out", str(tmp_path / "o"), "--seed", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err


def test_validate_without_an_outcome(single_cli, tmp_path, capsys):
    _, _, csv = single_cli
    assert main(["validate", str(csv), *ROLES]) == 0
    assert "ok:" in capsys.readouterr().out
    df = pd.read_csv(csv)
    df.loc[2, "alliance"] = -np.inf
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    assert main(["validate", str(bad), *ROLES]) == 1
    assert "column 'alliance': infinite value (lines 4)" in capsys.readouterr().err


# ------------------------------------------------------------------------ recovery


@pytest.mark.slow
def test_recovery_of_the_autoregression_and_its_sd_over_seeds():
    """Three simulated data sets (60 patients x 12 sessions, phi_i ~ N(0.4, 0.15^2)): each
    posterior mean within 2.5 posterior SDs of the truth, and their average near it."""
    means = {"predictor_autoregression": [], "sd_predictor_autoregression_patient": []}
    truth = {"predictor_autoregression": 0.4, "sd_predictor_autoregression_patient": 0.15}
    for seed in (11, 12, 13):
        df = simulate_single(seed, n_patients=60, n_sessions=12, phi=0.4, sd_phi=0.15)
        data = _single(df)
        spec = MechanismSpec(random_paths=(("predictor", "predictor"),))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_mechanisms(data, spec, draws=300, tune=400, chains=2, random_seed=seed,
                                 progressbar=False)  # fmt: skip
        eff = fit.effects()
        for name, want in truth.items():
            mean, sd = float(eff.at[name, "mean"]), float(eff.at[name, "sd"])
            assert abs(mean - want) < 2.5 * sd, (seed, name, mean, sd)
            means[name].append(mean)
    assert np.mean(means["predictor_autoregression"]) == pytest.approx(0.4, abs=0.05)
    assert np.mean(means["sd_predictor_autoregression_patient"]) == pytest.approx(0.15, abs=0.07)
