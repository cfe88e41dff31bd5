"""Several indicators per session (issue 24, item 2): the one-cell factorisation against
scipy's normal densities, the model's log density against the dense joint Gaussian of all
observed indicators (two levels, gaps, a missing indicator, with and without measurement
error), and the input checks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_alliance import SessionData
from bayes_alliance.model import indicators
from bayes_alliance.model.build import build_model
from bayes_alliance.spec.model_spec import ModelSpec
from tests import dense
from tests.likelihood_cases import ROWS, natural_point, transformed_point

POINT = {
    "indicator_loading_predictor": np.array([0.8, 1.3]),
    "indicator_intercept_predictor": np.array([0.1, -0.2]),
    "indicator_sd_predictor": np.array([0.3, 0.45, 0.5]),
    "indicator_loading_outcome": np.array([0.9]),
    "indicator_intercept_outcome": np.array([0.05]),
    "indicator_sd_outcome": np.array([0.25, 0.35]),
}


def test_one_cell_factorises_into_score_and_residual():
    """prod_k N(z_k; nu_k + lambda_k eta, theta_k) = N(eta_hat; eta, V) R for every eta."""
    z = np.array([[[3.1, 2.2, 4.0]]])
    grid = indicators.IndicatorGrid(
        ("a", "b", "c"), z, np.ones_like(z), np.array([3.0, 2.5, 3.5]), np.ones(3)
    )
    loading, intercept, sd = np.array([0.7, 1.4]), np.array([0.2, -0.1]), np.array([0.4, 0.6, 0.5])
    eta_hat, var, log_r = indicators.composite(grid, loading, intercept, sd)
    lam = np.array([1.0, *loading])
    nu = np.array([0.0, *(grid.mean[1:] + intercept - loading * grid.mean[0])])
    for eta in (-1.0, 2.5, 3.3, 6.0):
        direct = stats.norm.logpdf(z[0, 0], nu + lam * eta, sd).sum()
        ours = stats.norm.logpdf(eta_hat[0, 0], eta, np.sqrt(var[0, 0])) + log_r[0, 0]
        assert ours == pytest.approx(direct, rel=1e-12)


def _frame(rng: np.random.Generator) -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=["therapist", "patient", "session", "x", "y", "moderator"])
    df = df.drop(columns="therapist")
    df["x2"] = 0.8 * df["x"] + 0.4 + rng.normal(0, 0.3, len(df))
    df["x3"] = 1.2 * df["x"] - 0.5 + rng.normal(0, 0.3, len(df))
    df["y2"] = 0.9 * df["y"] + 0.1 + rng.normal(0, 0.3, len(df))
    df.loc[2, "x3"] = np.nan  # an indicator missing where the marker is observed
    df.loc[6, "y2"] = np.nan
    return df


def _dense(df: pd.DataFrame, data: SessionData, spec: ModelSpec, nat: dict) -> float:
    """Two levels: per patient, the latent scores' covariance (states, traits, error) mapped
    to the observed indicators by the loadings, plus the indicators' residual variances."""
    p = {k: np.asarray(val, dtype=float) for k, val in nat.items()}
    phi = np.array([[0.3, -0.15], [p["state_effect"], 0.4]])
    sx, sy, r = p["innovation_sd_predictor"], p["innovation_sd_outcome"], p["innovation_corr"]
    sigma = np.array([[sx**2, r * sx * sy], [r * sx * sy, sy**2]])
    first = dense.stationary(phi, sigma)
    var_px, beta = p["sd_patient_predictor"] ** 2, p["trait_effect_patient"]
    tau = np.array(
        [[var_px, beta * var_px], [beta * var_px, beta**2 * var_px + p["sd_patient_outcome"] ** 2]]
    )
    items = {"x": ["x", "x2", "x3"], "y": ["y", "y2"]}
    # Intercepts at the marker's mean, over the cells where the marker is observed.
    nu, lam, theta = {}, {}, {}
    for var, cols in items.items():
        which = "predictor" if var == "x" else "outcome"
        read = df[df[var].notna()]
        means = [read[c].mean() for c in cols]
        loads = [1.0, *p[f"indicator_loading_{which}"]]
        offs = [0.0, *p[f"indicator_intercept_{which}"]]
        for k, c in enumerate(cols):
            lam[c] = loads[k]
            nu[c] = 0.0 if k == 0 else means[k] + offs[k] - loads[k] * means[0]
            theta[c] = p[f"indicator_sd_{which}"][k] ** 2
    omega2 = [0.0, 0.0]
    if spec.measurement_error:
        omega2 = [p["measurement_error_sd_predictor"] ** 2, p["measurement_error_sd_outcome"] ** 2]
    mu = np.array([p["intercept_predictor"], p["intercept_outcome"]])
    total = 0.0
    for pid in data.patients:
        rows = df[df["patient"] == pid].set_index("session")
        cols = np.arange(rows.index.min(), rows.index.max() + 1)
        n = len(cols)
        cov_eta = dense.series_cov(phi, [sigma] * (n - 1), first)
        cov_eta = cov_eta + np.kron(np.ones((n, n)), tau) + np.kron(np.eye(n), np.diag(omega2))
        a_rows, means, values, resid = [], [], [], []
        for t, s in enumerate(cols):
            if s not in rows.index:
                continue
            for j, var in enumerate(("x", "y")):
                if not np.isfinite(rows.loc[s, var]):
                    continue  # without the marker the cell's indicators are not read
                for c in items[var]:
                    val = rows.loc[s, c]
                    if not np.isfinite(val):
                        continue
                    row = np.zeros(2 * n)
                    row[2 * t + j] = lam[c]
                    a_rows.append(row)
                    means.append(nu[c] + lam[c] * mu[j])
                    values.append(val)
                    resid.append(theta[c])
        a = np.array(a_rows)
        cov = a @ cov_eta @ a.T + np.diag(resid)
        total += dense.mvn_logpdf(np.array(values), np.array(means), cov)
    return total


@pytest.mark.parametrize("error", [False, True])
def test_loglik_equals_dense_gaussian(error):
    df = _frame(np.random.default_rng(4))
    spec = ModelSpec(
        therapist_level=False,
        predictor_indicators=("x", "x2", "x3"),
        outcome_indicators=("y2",),
        measurement_error=error,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(
            df,
            patient="patient",
            session="session",
            predictor="x",
            outcome="y",
            indicators=("x2", "x3", "y2"),
        )
    model = build_model(data, spec)
    nat = {**natural_point(model, data, spec, np.random.default_rng(5)), **POINT}
    point = transformed_point(model, nat)
    terms = [model["integrated_series"], model["indicator_residuals"]]
    fn = model.compile_fn(model.logp(vars=terms), inputs=model.value_vars, on_unused_input="ignore")
    ours = float(fn(point))
    assert ours == pytest.approx(_dense(df, data, spec, nat), rel=1e-9, abs=1e-9)


def test_bad_indicators_named():
    df = _frame(np.random.default_rng(4))
    df["words"] = "high"
    with pytest.raises(Exception, match="words"):
        SessionData.from_frame(
            df, patient="patient", session="session", predictor="x", outcome="y",
            indicators=("words",),
        )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(
            df, patient="patient", session="session", predictor="x", outcome="y"
        )
    with pytest.raises(ValueError, match="x2"):  # not read as an indicator: named
        build_model(data, ModelSpec(therapist_level=False, predictor_indicators=("x2",)))
    with pytest.raises(ValueError, match="no column other than"):
        build_model(data, ModelSpec(therapist_level=False, predictor_indicators=("x",)))


def test_patient_densities_add_up_to_the_model_density():
    """Leave-one-patient-out reads each patient's marginal density (its own filter, with the
    indicators' scores and residuals): at one draw they add up to the model's log density
    (two levels: patients are independent given the parameters)."""
    from bayes_alliance.analysis import patient_density

    df = _frame(np.random.default_rng(4))
    spec = ModelSpec(
        therapist_level=False, predictor_indicators=("x2", "x3"), outcome_indicators=("y2",)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(
            df, patient="patient", session="session", predictor="x", outcome="y",
            indicators=("x2", "x3", "y2"),
        )  # fmt: skip
    model = build_model(data, spec)
    nat = {**natural_point(model, data, spec, np.random.default_rng(5)), **POINT}
    terms = [model["integrated_series"], model["indicator_residuals"]]
    fn = model.compile_fn(model.logp(vars=terms), inputs=model.value_vars, on_unused_input="ignore")
    ours = float(fn(transformed_point(model, nat)))
    post = {rv.name: np.asarray(nat[rv.name], dtype=float)[None] for rv in model.free_RVs}
    per_patient = patient_density._filter(post, data, spec)
    assert per_patient.shape == (1, data.n_patients)
    assert per_patient.sum() == pytest.approx(ours, rel=1e-9)


def test_indicators_identify_the_error_and_recover_the_lags():
    """Three indicators of alliance (residual SDs making the marker's reliability about .6):
    with the factor model the autoregression and the state effect cover the truth; the marker
    alone, fitted as error-free, attenuates the autoregression below its interval."""
    from bayes_alliance import simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.inference.fit import fit

    df, truth = simulate(
        seed=8,
        n_therapists=12,
        patients_per_therapist=6,
        sessions=12,
        predictor_autoregression=0.5,
        outcome_autoregression=0.4,
        state_effect=-0.3,
    )
    rng = np.random.default_rng(8)
    x = df["alliance"].to_numpy()
    df["alliance"] = x + rng.normal(0, 0.35, len(df))  # the marker
    df["task"] = 0.5 + 0.9 * x + rng.normal(0, 0.35, len(df))
    df["bond"] = -0.3 + 1.1 * x + rng.normal(0, 0.4, len(df))
    roles = {**EXAMPLE_ROLES, "indicators": ("task", "bond")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **roles)
        kw = dict(draws=500, tune=500, random_seed=2, progressbar=False)
        factor = fit(data, ModelSpec(predictor_indicators=("task", "bond")), **kw)
        marker = fit(data, ModelSpec(), **kw)
    s, m = factor.summary(ci_prob=0.94), marker.summary(ci_prob=0.94)
    p = truth.params
    for name in ("predictor_autoregression", "state_effect"):
        true = getattr(p, name)
        assert s.loc[name, "ci_low"] <= true <= s.loc[name, "ci_high"], (name, s.loc[name])
    assert m.loc["predictor_autoregression", "ci_high"] < p.predictor_autoregression
    loads = s.loc[[i for i in s.index if i.startswith("indicator_loading_predictor")]]
    for true, (_, row) in zip((0.9, 1.1), loads.iterrows(), strict=True):
        assert row["ci_low"] <= true <= row["ci_high"], row


def test_total_beside_its_subscales_refused():
    df = _frame(np.random.default_rng(4))
    df["x4"] = df["x2"] + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(
            df, patient="patient", session="session", predictor="x", outcome="y",
            indicators=("x2", "x3", "x4"),
        )  # fmt: skip
    spec = ModelSpec(therapist_level=False, predictor_indicators=("x2", "x3", "x4"))
    with pytest.raises(ValueError, match="linearly dependent"):
        build_model(data, spec)
