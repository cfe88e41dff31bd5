"""Posterior predictive replicates: their moments against the VAR(1) the draw defines, and the
ArviZ groups that line up with them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import xarray as xr

from bayes_alliance.core import vocab
from bayes_alliance.inference import predictive
from bayes_alliance.inference.fit import FitResult
from bayes_alliance.inference.unit_group import posterior_of


def _one_draw_tiled(result, n: int) -> xr.Dataset:
    """The posterior's first draw repeated ``n`` times (one chain)."""
    post = posterior_of(result.idata).isel(chain=[0], draw=[0])
    return xr.concat([post] * n, dim="draw").assign_coords(draw=np.arange(n))


def _stationary(phi: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    # vec(S) = (I - Phi kron Phi)^-1 vec(Sigma): the stationary covariance of a VAR(1).
    vec = np.linalg.solve(np.eye(4) - np.kron(phi, phi), sigma.reshape(-1))
    return vec.reshape(2, 2)


def test_replicates_follow_the_draws_var1(recovery):
    _, _, data, result = recovery
    n = 3000
    post = _one_draw_tiled(result, n)
    pp = predictive.posterior_predictive(post, data, result.spec, random_seed=11)
    p0 = post.isel(chain=0, draw=0)
    phi = np.array(
        [
            [float(p0[vocab.PREDICTOR_AUTOREGRESSION]), float(p0[vocab.REVERSE_STATE_EFFECT])],
            [float(p0[vocab.STATE_EFFECT]), float(p0[vocab.OUTCOME_AUTOREGRESSION])],
        ]
    )
    sx, sy = float(p0[vocab.INNOVATION_SD_PREDICTOR]), float(p0[vocab.INNOVATION_SD_OUTCOME])
    r = float(p0[vocab.INNOVATION_CORR])
    stat = _stationary(phi, np.array([[sx**2, r * sx * sy], [r * sx * sy, sy**2]]))
    # Back onto the patient x session grid (NaN where a score is missing).
    shape = (n, data.n_patients, data.n_sessions)
    x, y = np.full(shape, np.nan), np.full(shape, np.nan)
    x[(slice(None), *np.nonzero(data.observed_x))] = pp[vocab.PREDICTOR].values[0]
    y[(slice(None), *np.nonzero(data.observed_y))] = pp[vocab.OUTCOME].values[0]
    mean_x = p0["trait_predictor"].values[None, :, None]
    mean_y = p0["trait_outcome"].values[None, :, None]
    wx, wy = x - mean_x, y - mean_y
    # Means: each cell's replicates centre on the draw's latent mean (SE over n replicates).
    z_mean = np.nanmean(wx, 0) / np.sqrt(stat[0, 0] / n)
    assert np.nanmax(np.abs(z_mean)) < 5.5 and abs(np.nanmean(z_mean)) < 0.1
    # Variances, covariance and the lag-1 cross-covariance, pooled over patients and sessions.
    for got, want in (
        (np.nanmean(wx**2), stat[0, 0]),
        (np.nanmean(wy**2), stat[1, 1]),
        (np.nanmean(wx * wy), stat[0, 1]),
        (np.nanmean(wy[..., 1:] * wx[..., :-1]), (phi @ stat)[1, 0]),
        (np.nanmean(wx[..., 1:] * wx[..., :-1]), (phi @ stat)[0, 0]),
    ):
        assert abs(got - want) < 0.03 * stat.diagonal().max(), (got, want)


def test_groups_line_up_for_arviz(recovery):
    import arviz_plots as azp

    _, _, data, result = recovery
    tree = result.idata
    obs, pp = tree.observed_data, tree.posterior_predictive
    for which in (vocab.PREDICTOR, vocab.OUTCOME):
        assert obs[which].dims == pp[which].dims[2:]
        assert obs[which].size == int((~np.isnan(data.variable(which))).sum())
    pid = obs[vocab.PREDICTOR]["observed_predictor_cell_patient"].values
    assert pid[0] == str(data.patients[0])
    azp.plot_ppc_dist(tree, var_names=[vocab.OUTCOME], num_samples=20)
    azp.plot_rank(tree, var_names=[vocab.STATE_EFFECT])
    matplotlib.pyplot.close("all")


def test_groups_recomputed_exactly_on_load(recovery, tmp_path):
    _, _, _, result = recovery
    path = result.save(tmp_path / "fit.nc")
    again = FitResult.load(path)
    for group in ("observed_data", "posterior_predictive"):
        a, b = result.idata[group].to_dataset(), again.idata[group].to_dataset()
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values)


def test_prior_predictive_on_request(recovery):
    import arviz_plots as azp

    _, _, data, result = recovery
    copy = FitResult(
        result.idata.copy(), result.spec, data, dict(result.provenance), result.convergence
    )
    tree = copy.prior_predictive(draws=40)
    assert tree.prior_predictive[vocab.OUTCOME].shape == (1, 40, tree.observed_data.outcome.size)
    assert "prior_predictive" not in result.idata.children
    azp.plot_ppc_dist(tree, group="prior_predictive", var_names=[vocab.OUTCOME], num_samples=10)
    matplotlib.pyplot.close("all")


def test_replicates_on_a_non_default_spec_match_matrix_moments():
    """Late starts, session-specific innovations, a free first session, a lag-0 path x -> y,
    patient slopes and trends: each cell's mean and covariance and the lag-1 cross-covariance of
    the replicates against moments propagated with matrices (B0 inverted directly)."""
    import pandas as pd

    from bayes_alliance import SessionData
    from bayes_alliance.spec.model_spec import ModelSpec

    rng = np.random.default_rng(0)
    n_s, n_p = 6, 5
    starts = [1, 2, 3, 1, 4]
    rows = [
        (i % 2, f"p{i}", s, rng.normal(), rng.normal())
        for i in range(n_p)
        for s in range(starts[i], n_s + 1)
    ]
    df = pd.DataFrame(rows, columns=["therapist", "patient", "session", "x", "y"])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(
            df, patient="patient", session="session", predictor="x", outcome="y",
            therapist="therapist",
        )  # fmt: skip
    spec = ModelSpec(
        innovations="session",
        first_session="free",
        same_session="predictor_to_outcome",
        random_slopes=("patient",),
        trend=True,
    )
    n = 20000
    sdx = np.array([0.5, 0.8, 1.1, 0.6, 0.9])
    sdy = np.array([0.7, 0.4, 1.0, 1.3, 0.5])
    raw = np.array([0.5, -1.0, 0.0, 1.5, -0.3])
    traw_x, traw_y = rng.normal(size=n_p), rng.normal(size=n_p)
    par = {
        "state_effect": 0.2, "reverse_state_effect": -0.15, "outcome_autoregression": 0.5,
        "predictor_autoregression": 0.3, "same_session_effect": 0.4,
        "sd_state_effect_patient": 0.2, "intercept_predictor": 3.0, "intercept_outcome": -1.0,
        "trend_predictor": 0.1, "trend_outcome": -0.2, "sd_trend_predictor": 0.05,
        "sd_trend_outcome": 0.03, "first_sd_predictor": 1.2, "first_sd_outcome": 0.6,
        "first_corr": 0.5, "trait_effect_patient": 0.0, "sd_patient_predictor": 1.0,
        "sd_patient_outcome": 1.0,
    }  # fmt: skip
    mx, my = rng.normal(size=n_p), rng.normal(size=n_p)
    ds = {k: xr.DataArray(np.full((1, n), val), dims=("chain", "draw")) for k, val in par.items()}

    def tile(a, dim):
        return xr.DataArray(np.broadcast_to(a, (1, n, len(a))).copy(), dims=("chain", "draw", dim))

    ds["innovation_sd_predictor"] = tile(sdx, "innovation_session")
    ds["innovation_sd_outcome"] = tile(sdy, "innovation_session")
    ds["state_effect_patient_raw"] = tile(raw, "patient")
    ds["trend_predictor_raw"] = tile(traw_x, "patient")
    ds["trend_outcome_raw"] = tile(traw_y, "patient")
    ds["trait_predictor"] = tile(3.0 + mx, "patient")
    ds["trait_outcome"] = tile(-1.0 + my, "patient")
    pp = predictive.posterior_predictive(xr.Dataset(ds), data, spec, random_seed=5)
    x, y = np.full((n, n_p, n_s), np.nan), np.full((n, n_p, n_s), np.nan)
    x[(slice(None), *np.nonzero(data.observed_x))] = pp["predictor"].values[0]
    y[(slice(None), *np.nonzero(data.observed_y))] = pp["outcome"].values[0]
    b0_inv = np.linalg.inv(np.array([[1, 0], [-0.4, 1]]))
    t = (data.sessions - data.sessions[0]).astype(float)
    first = np.array([[1.44, 0.5 * 1.2 * 0.6], [0.5 * 1.2 * 0.6, 0.36]])
    worst = 0.0
    for i in range(n_p):
        lag = b0_inv @ np.array([[0.3, -0.15], [0.2 + 0.2 * raw[i], 0.5]])
        cov = first
        for col in range(data.first[i], n_s):
            if col > data.first[i]:
                innov = np.diag([sdx[col - 1] ** 2, sdy[col - 1] ** 2])
                cross, before = lag @ cov, cov
                cov = lag @ cov @ lag.T + b0_inv @ innov @ b0_inv.T
                got = np.mean(
                    (y[:, i, col] - y[:, i, col].mean())
                    * (x[:, i, col - 1] - x[:, i, col - 1].mean())
                )
                se = 1.5 * np.sqrt(cov[1, 1] * before[0, 0] / n)
                worst = max(worst, abs(got - cross[1, 0]) / se)
            mean_x = 3.0 + mx[i] + (0.1 + 0.05 * traw_x[i]) * t[col]
            mean_y = -1.0 + my[i] + (-0.2 + 0.03 * traw_y[i]) * t[col]
            worst = max(
                worst,
                abs(x[:, i, col].mean() - mean_x) / np.sqrt(cov[0, 0] / n),
                abs(y[:, i, col].mean() - mean_y) / np.sqrt(cov[1, 1] / n),
            )
            rel = np.abs(np.cov(x[:, i, col], y[:, i, col]) - cov)
            rel /= np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
            worst = max(worst, rel.max() / (3 / np.sqrt(n)))
        assert np.isnan(x[:, i, : data.first[i]]).all()
    assert worst < 4.5, worst
