"""Posterior predictive replicates: their moments against the VAR(1) the draw defines, and the
ArviZ groups that line up with them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import xarray as xr

from bayes_alliance import predictive, vocab
from bayes_alliance.fit import FitResult


def _one_draw_tiled(result, n: int) -> xr.Dataset:
    """The posterior's first draw repeated ``n`` times (one chain)."""
    post = result.idata.posterior.to_dataset().isel(chain=[0], draw=[0])
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
