"""Feedback for mechanism fits (issue 26): the state sampler against the dense Gaussian
conditional, exact observed cells without measurement error, the k-series null of the change
against Monte Carlo, the flag probabilities' calibration on data without change (at the true
parameters), and the command on a small fit."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dense_k import var_block

from bayes_alliance.analysis.pattern_null import linear_null_sd, state_covariance_k
from bayes_alliance.core.diagnostics import Convergence
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.feedback.mechanism_feedback import mechanism_feedback
from bayes_alliance.mechanisms.fit import MechanismResult
from bayes_alliance.mechanisms.records import series_provenance
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.mechanisms.states import sample_states
from bayes_alliance.sim.mechanisms import simulate_mechanisms


def _dense_conditional(resid, phi, sigma, first, error):
    """Brute force: the states (n k, stacked per column) and the observed residuals are jointly
    Gaussian, w ~ N(0, C), r = w[o] + eps; condition on r."""
    n, _k = resid.shape
    cov = var_block(phi, sigma, first, n)
    obs = np.flatnonzero(np.isfinite(resid).reshape(-1))
    noise = np.diag(np.tile(error, n)[obs])
    c_wo = cov[:, obs]
    gain = np.linalg.solve(cov[np.ix_(obs, obs)] + noise, c_wo.T).T
    mean = gain @ resid.reshape(-1)[obs]
    return mean, cov - gain @ c_wo.T


CASES = {
    "k2": dict(
        phi=np.array([[0.5, 0.2], [-0.3, 0.4]]),
        sigma=np.array([[1.0, 0.3], [0.3, 0.8]]),
        first=np.array([[1.6, 0.2], [0.2, 1.3]]),
        error=np.array([0.0, 0.4]),
        resid=np.array([[0.5, np.nan], [np.nan, np.nan], [-0.4, 1.1], [np.nan, -0.7], [1.2, 0.3]]),
    ),
    "k3": dict(
        # a patient's own lag matrix (a random a path added to the average's)
        phi=np.array([[0.4, 0.0, 0.0], [0.45, 0.3, 0.0], [-0.1, -0.35, 0.3]]),
        sigma=np.array([[1.0, 0.2, 0.1], [0.2, 0.9, 0.2], [0.1, 0.2, 1.1]]),
        first=np.diag([1.4, 1.5, 1.6]),
        error=np.array([0.0, 0.5, 0.0]),
        resid=np.array(
            [[0.3, -0.2, np.nan], [np.nan, np.nan, np.nan], [0.9, np.nan, -1.0], [-0.5, 0.4, 0.2]]
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_draws_have_the_dense_conditional_moments(case: str) -> None:
    c = CASES[case]
    n, k = c["resid"].shape
    n_d = 40_000
    rng = np.random.default_rng(1)
    resid = np.broadcast_to(c["resid"], (n_d, n, k))
    draws = sample_states(resid, c["phi"], c["sigma"], c["first"], c["error"], rng)
    mean, cov = _dense_conditional(c["resid"], c["phi"], c["sigma"], c["first"], c["error"])
    flat = draws.reshape(n_d, -1)
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    assert np.all(np.abs(flat.mean(0) - mean) <= 4.5 * sd / np.sqrt(n_d) + 1e-9)
    emp = np.cov(flat, rowvar=False)
    scale = np.outer(sd, sd)
    # SE of a sample covariance <= sqrt(2 / N) of the scale: 0.007 here; the cells observed
    # without error have variance 0 in both
    assert np.all(np.abs(emp - cov) <= 0.035 * scale + 1e-9)


def test_cells_without_measurement_error_come_back_exactly() -> None:
    c = CASES["k3"]
    rng = np.random.default_rng(2)
    resid = np.broadcast_to(c["resid"], (50, *c["resid"].shape))
    draws = sample_states(resid, c["phi"], c["sigma"], c["first"], c["error"], rng)
    exact = np.isfinite(c["resid"]) & (c["error"] == 0)
    assert np.array_equal(draws[:, exact], resid[:, exact])  # bit for bit
    # the series with error, and every missing cell, are drawn: they vary over draws
    drawn = ~exact
    assert np.all(draws[:, drawn].std(0) > 0.05)


def test_k_series_null_of_the_change_matches_monte_carlo() -> None:
    """The change's null SD from state_covariance_k against simulated VAR(1) series."""
    phi = np.array([[0.5, 0.1, 0.0], [0.3, 0.3, 0.0], [-0.2, -0.3, 0.4]])
    sigma = np.array([[1.0, 0.3, 0.1], [0.3, 1.2, 0.2], [0.1, 0.2, 0.9]])
    first = np.diag([2.0, 1.0, 1.5])
    n, n_sim = 6, 200_000
    rng = np.random.default_rng(3)
    w = np.zeros((n_sim, n, 3))
    w[:, 0] = rng.multivariate_normal(np.zeros(3), first, size=n_sim)
    chol = np.linalg.cholesky(sigma)
    for t in range(1, n):
        w[:, t] = w[:, t - 1] @ phi.T + rng.standard_normal((n_sim, 3)) @ chol.T
    seen = np.array([True, True, False, True, True, True])
    t_obs = np.arange(1.0, n + 1)
    for var in range(3):
        cov = state_covariance_k(phi[None], sigma[None], first[None], n, var)
        assert np.allclose(cov[0], np.cov(w[:, :, var], rowvar=False), atol=0.03)
        sd = linear_null_sd(cov, seen, t_obs)[0]
        tt = t_obs[seen]
        c = (tt - tt.mean()) * (tt.max() - tt.min()) / np.sum((tt - tt.mean()) ** 2)
        change = w[:, seen, var] @ c
        assert abs(change.std() / sd - 1) < 0.01


ROLES = dict(patient="patient", session="session", predictor="alliance", outcome="symptoms")


def _truth_result(
    seed: int, n: int, n_sessions: int, n_draws: int = 10, design: str = "two_series"
) -> MechanismResult:
    """A two-level 'fit' (two series, or two informants and the symptoms) whose every draw is
    the simulation's truth (no change, no measurement error, no random lags): at the true
    parameters the calibration is exact."""
    df, truth = simulate_mechanisms(
        seed=seed, design=design, patients_per_therapist=n, n_sessions=n_sessions
    )
    second = {"second_predictor": "alliance_therapist"} if design == "informants" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SeriesData.from_frame(df, **ROLES, **second)
    spec = MechanismSpec(random_paths=()).resolved(data)
    phi, sig, k = truth.lag, truth.innovation_cov, data.k
    stat = np.linalg.solve(np.eye(k * k) - np.kron(phi, phi), sig.reshape(-1)).reshape(k, k)
    cp, beta = truth.trait_cov_predictors, truth.trait_effects
    cov_t = np.block(
        [[cp, cp @ beta[:, None]], [beta[None] @ cp, beta @ cp @ beta + truth.trait_residual_sd**2]]
    )

    def sd_corr(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sd = np.sqrt(np.diag(cov))
        return sd, cov / np.outer(sd, sd)

    arrays = {"lag": phi, "intercept": np.full(k, 3.0)}
    for name, cov in (("innovation", sig), ("first", stat), ("patient", cov_t)):
        arrays[f"sd_{name}"], arrays[f"corr_{name}"] = sd_corr(cov)
    post = xr.Dataset(
        {
            name: (
                ("chain", "draw", *[f"{name}_dim_{i}" for i in range(np.ndim(a))]),
                np.broadcast_to(a, (1, n_draws, *np.shape(a))).copy(),
            )
            for name, a in arrays.items()
        }
    )
    conv = Convergence(1.0, 1e4, 1e4, 0, 1.0, n_draws)
    stats = xr.Dataset(  # what the convergence check reads on loading
        {
            "diverging": (("chain", "draw"), np.zeros((1, n_draws), dtype=bool)),
            "energy": (("chain", "draw"), np.random.default_rng(0).normal(size=(1, n_draws))),
        }
    )
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    prov = {"random_seed": 1, "spec": spec.to_dict(), **series_provenance(data)}
    return MechanismResult(tree, spec, data, prov, conv)


def test_flag_probabilities_average_alpha_without_change() -> None:
    """Data without change, the parameters at their truth: the strengthening and weakening
    probabilities average alpha = 0.05 over patients (Bernoulli here: without measurement error
    the change is the same in every draw), within three binomial SEs."""
    probs = []
    for seed in (11, 12, 13):
        result = _truth_result(seed, n=40, n_sessions=8)
        for pid in result.data.coords()["patient"]:
            tr = mechanism_feedback(result, pid, n_draws=10).summary["state_trend"]
            probs += [tr["probability_strengthening"], tr["probability_weakening"]]
    m, se = np.mean(probs), np.sqrt(0.05 * 0.95 / len(probs))
    assert abs(m - 0.05) < 3 * se, m


@pytest.fixture(scope="module")
def saved_informants(tmp_path_factory) -> Path:
    """A saved two-informant result (its draws at the truth) in a result folder."""
    folder = tmp_path_factory.mktemp("informants_fit")
    _truth_result(21, n=16, n_sessions=7, n_draws=20, design="informants").save(folder / "fit.nc")
    return folder


def _feedback_argv(fit: Path, out: Path, *extra: str) -> list[str]:
    return ["feedback", str(fit), "--out", str(out), "--allow-unconverged", *extra]


def test_command_writes_the_page_and_json_the_same_for_the_same_seed(
    saved_informants: Path, tmp_path: Path, capsys
) -> None:
    from bayes_alliance.cli.app import main

    docs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(_feedback_argv(saved_informants, out, "--patient", "p0003", "--seed", "5")) == 0
        assert (out / "feedback.html").is_file()
        docs.append(json.loads((out / "feedback.json").read_text()))
    a, b = docs
    for doc in docs:
        doc.pop("seconds_conditioning")
    assert a == b
    assert a["model"]["design"] == "informants" and a["variable"] == "alliance"
    other = a["other_series"]["second_predictor"]
    assert other["series"] == "alliance_therapist" and other["state_deviation"] is not None
    html = (tmp_path / "a" / "feedback.html").read_text()
    assert "therapist-rated alliance" in html and "k-series multilevel VAR(1)" in html
    assert "NOT CONVERGED" in html  # draws at one point: the check fails and the page says so
    out = tmp_path / "c"
    assert main(_feedback_argv(saved_informants, out, "--patient", "p0003", "--seed", "6")) == 0
    c = json.loads((out / "feedback.json").read_text())
    assert c["state_deviation"] != a["state_deviation"]  # the seed does seed the draws


def test_command_names_an_unknown_patient(saved_informants: Path, tmp_path: Path, capsys) -> None:
    from bayes_alliance.cli.app import main

    rc = main(_feedback_argv(saved_informants, tmp_path / "o", "--patient", "nobody"))
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown patient id 'nobody'" in err and "p0000" in err
    assert not (tmp_path / "o").exists()


def test_new_sessions_of_a_fitted_patient_are_conditioned_on(
    saved_informants: Path, tmp_path: Path
) -> None:
    """Two new sessions move the latest session and enter the trend; a session the fit
    already has is refused, naming it."""
    from bayes_alliance.mechanisms.load import load_result

    result = load_result(saved_informants / "fit.nc")
    new = pd.DataFrame(
        {
            "patient": ["p0002", "p0002"],
            "session": [8, 9],
            "alliance": [5.5, 6.5],
            "alliance_therapist": [4.0, np.nan],
            "symptoms": [2.0, 1.5],
        }
    )
    fb = mechanism_feedback(result, "p0002", new, random_seed=1)
    s = fb.summary
    assert s["new_sessions"] == 2 and s["latest_session"] == 9
    assert s["state_trend"]["sessions"][-2:] == [8, 9]
    # without measurement error the latest state is the rating less the drawn level
    level = fb.states.level[:, fb.states.row, 0]
    assert np.allclose(fb.states.states[:, -1, 0], 6.5 - level)
    with pytest.raises(ValueError, match=r"already has session\(s\) \[7\]"):
        mechanism_feedback(result, "p0002", new.assign(session=[7, 9]))


@pytest.mark.slow
def test_flag_probabilities_on_a_fit_without_change(tmp_path: Path) -> None:
    """On a sampled fit (two series, 80 patients x 10 sessions, no change), the mean
    strengthening / weakening probability over patients stays near or below alpha: the
    parameters' posterior uncertainty adds little to the exact calibration at the truth."""
    from bayes_alliance.mechanisms.fit import fit_mechanisms

    df, _ = simulate_mechanisms(
        seed=31, design="two_series", patients_per_therapist=80, n_sessions=10
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SeriesData.from_frame(df, **ROLES)
        result = fit_mechanisms(data, draws=150, tune=200, random_seed=2, progressbar=False)
    probs = []
    for pid in data.coords()["patient"]:
        tr = mechanism_feedback(result, pid, n_draws=100).summary["state_trend"]
        probs += [tr["probability_strengthening"], tr["probability_weakening"]]
    assert np.mean(probs) < 0.05 + 3 * np.sqrt(0.05 * 0.95 / len(probs)), np.mean(probs)
