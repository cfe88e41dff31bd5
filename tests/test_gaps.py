"""The Kalman filter of series with missing cells against the dense joint Gaussian of the
observed cells (tests/dense.py), in numpy and pytensor, and its backward draws against the
dense conditional distribution of the missing cells."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from bayes_alliance.kernels import marginal
from bayes_alliance.kernels.gaps import GapCells, draw_missing, filter_factor
from tests.dense import mvn_logpdf, series_cov

PHI = np.array([[0.5, 0.1], [0.3, 0.4]])
SIGMA = np.array([[1.0, 0.3], [0.3, 0.8]])
FIRST = np.array([[1.6, 0.5], [0.5, 1.3]])
TAU = np.array([[0.7, 0.2], [0.2, 0.5]])


def _grid(rng, n_p=5, n_s=7):
    """Series of different lengths and starts, with missing x, missing y and skipped cells."""
    first = np.array([0, 2, 0, 1, 0])[:n_p]
    last = np.array([6, 6, 3, 5, 6])[:n_p]
    inside = (np.arange(n_s)[None] >= first[:, None]) & (np.arange(n_s)[None] <= last[:, None])
    obs_x = inside & (rng.random((n_p, n_s)) > 0.25)
    obs_y = inside & (rng.random((n_p, n_s)) > 0.25)
    # the first and last cells keep at least one observation (as in real series)
    for i in range(n_p):
        obs_x[i, first[i]] = obs_y[i, last[i]] = True
    x = rng.normal(0.3, 1.0, (n_p, n_s))
    y = rng.normal(-0.2, 1.0, (n_p, n_s))
    return first, last, inside, obs_x, obs_y, x, y


def _cells(first, obs_x, obs_y, x, y) -> GapCells:
    """The filter's view of a grid: values (0 where unobserved), masks, first cells."""
    first_m = np.zeros(x.shape)
    first_m[np.arange(x.shape[0]), first] = 1.0
    return GapCells(
        np.where(obs_x, x, 0.0), np.where(obs_y, y, 0.0), obs_x * 1.0, obs_y * 1.0, first_m
    )


def _dense(i, first, last, obs_x, obs_y, x, y, m0, phi, sigmas, f, tau):
    """log p(observed cells of patient i) with the latent mean ~ N(m0, tau) integrated out."""
    n = last[i] - first[i] + 1
    cov = series_cov(phi, sigmas[first[i] : last[i]], f)
    cov = cov + np.kron(np.ones((n, n)), tau)
    vals, keep = [], []
    for k, t in enumerate(range(first[i], last[i] + 1)):
        for j, (o, z) in enumerate(((obs_x, x), (obs_y, y))):
            if o[i, t]:
                keep.append(2 * k + j)
                vals.append(z[i, t])
    mean = np.tile(m0, n)[keep]
    return mvn_logpdf(np.array(vals), mean, cov[np.ix_(keep, keep)])


def test_filter_matches_dense_gaussian_numpy_and_pytensor():
    rng = np.random.default_rng(3)
    first, last, _inside, obs_x, obs_y, x, y = _grid(rng)
    n_p, n_s = x.shape
    cells = _cells(first, obs_x, obs_y, x, y)
    # session-specific innovations over the transition columns
    scales = 1.0 + 0.1 * np.arange(n_s - 1)
    sig = (SIGMA[0, 0] * scales, SIGMA[0, 1] * scales, SIGMA[1, 1] * scales)
    sigmas = [SIGMA * s for s in scales]
    phi = tuple(PHI.ravel())
    fc = (FIRST[0, 0], FIRST[0, 1], FIRST[1, 1])
    tau = (TAU[0, 0], TAU[0, 1], TAU[1, 1])
    m0 = np.array([0.2, -0.1])
    log_c, factor, _ = filter_factor(cells, phi, sig, fc, n_s, by_session=True)
    ours = log_c + marginal.mean_integral(factor, (m0[0], m0[1]), tau)
    dense = [
        _dense(i, first, last, obs_x, obs_y, x, y, m0, PHI, sigmas, FIRST, TAU) for i in range(n_p)
    ]
    np.testing.assert_allclose(ours, dense, rtol=1e-10)

    # the same graph in pytensor, with per-patient lag entries (random slopes)
    c_slope = PHI[1, 0] + np.linspace(-0.1, 0.1, n_p)
    dense_s = []
    for i in range(n_p):
        phi_i = PHI.copy()
        phi_i[1, 0] = c_slope[i]
        dense_s.append(_dense(i, first, last, obs_x, obs_y, x, y, m0, phi_i, sigmas, FIRST, TAU))
    cv = pt.dvector("c")
    lc, fac, _ = filter_factor(
        GapCells(*(pt.as_tensor(np.asarray(a)) for a in cells.__dict__.values())),
        (phi[0], phi[1], cv, phi[3]),
        tuple(pt.as_tensor(s) for s in sig),
        fc,
        n_s,
        by_session=True,
        xp=pt,
    )
    fn = pytensor.function([cv], lc + marginal.mean_integral(fac, (m0[0], m0[1]), tau, xp=pt))
    np.testing.assert_allclose(fn(c_slope), dense_s, rtol=1e-10)


def test_cell_innovations_sum_to_the_factor():
    rng = np.random.default_rng(4)
    first, last, _inside, obs_x, obs_y, x, y = _grid(rng)
    n_p, n_s = x.shape
    cells = _cells(first, obs_x, obs_y, x, y)
    sig = (SIGMA[0, 0], SIGMA[0, 1], SIGMA[1, 1])
    fc = (FIRST[0, 0], FIRST[0, 1], FIRST[1, 1])
    log_c, f, inn = filter_factor(cells, tuple(PHI.ravel()), sig, fc, n_s, per_cell=True)
    mx, my = rng.normal(size=(2, n_p))
    total = (
        inn["x"].loglik(mx[:, None], my[:, None]) + inn["y"].loglik(mx[:, None], my[:, None])
    ).sum(1)
    quad = f.q - 2 * (f.g1 * mx + f.g2 * my) + f.l11 * mx**2 + 2 * f.l12 * mx * my + f.l22 * my**2
    np.testing.assert_allclose(total, log_c - 0.5 * quad, rtol=1e-10)
    # and the dense density given the mean (tau = 0)
    sigmas = [SIGMA] * (n_s - 1)
    for i in range(n_p):
        dense = _dense(
            i,
            first,
            last,
            obs_x,
            obs_y,
            x,
            y,
            np.array([mx[i], my[i]]),
            PHI,
            sigmas,
            FIRST,
            np.zeros((2, 2)),
        )
        assert total[i] == pytest.approx(dense, rel=1e-10)


def test_backward_draws_match_dense_conditional():
    rng = np.random.default_rng(5)
    first, last, inside, obs_x, obs_y, x, y = _grid(rng, n_p=1)
    cells = _cells(first, obs_x, obs_y, x, y)
    sig = (SIGMA[0, 0], SIGMA[0, 1], SIGMA[1, 1])
    fc = (FIRST[0, 0], FIRST[0, 1], FIRST[1, 1])
    draws = np.array(
        [
            np.stack(draw_missing(cells, tuple(PHI.ravel()), sig, fc, False, inside, rng))[:, 0]
            for _ in range(20000)
        ]
    )  # (n, 2, S)
    # dense conditional of the missing cells given the observed ones (zero mean)
    cols = range(first[0], last[0] + 1)
    cov = series_cov(PHI, [SIGMA] * (len(cols) - 1), FIRST)
    obs, miss, vals = [], [], []
    for k, t in enumerate(cols):
        for j, (o, z) in enumerate(((obs_x, x), (obs_y, y))):
            (obs if o[0, t] else miss).append(2 * k + j)
            if o[0, t]:
                vals.append(z[0, t])
    k_mo = cov[np.ix_(miss, obs)] @ np.linalg.inv(cov[np.ix_(obs, obs)])
    mean = k_mo @ np.array(vals)
    var = cov[np.ix_(miss, miss)] - k_mo @ cov[np.ix_(obs, miss)]
    got = np.stack([draws[:, m % 2, first[0] + m // 2] for m in miss], axis=1)
    se = np.sqrt(np.diag(var) / len(draws))
    assert np.all(np.abs(got.mean(0) - mean) < 4.5 * se)
    np.testing.assert_allclose(np.cov(got.T), var, atol=0.05)
    # observed cells come back exactly; outside the series NaN
    for o, z, j in ((obs_x, x, 0), (obs_y, y, 1)):
        assert np.all(draws[:, j, o[0]] == z[0, o[0]])
    assert np.all(np.isnan(draws[:, :, ~inside[0]]))


def test_fit_draws_missing_states_only_when_asked(tmp_path):
    """States of missing cells are NaN by default and drawn (finite, observed cells exact) with
    impute_missing; a loaded result reproduces either choice bit for bit."""
    import warnings

    from bayes_alliance import SessionData, simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.inference.fit import FitResult, fit

    df, _ = simulate(
        seed=2, n_therapists=3, patients_per_therapist=3, sessions=6, p_missing_value=0.15
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        kw = dict(draws=20, tune=20, chains=1, random_seed=3, progressbar=False)
        plain = fit(data, **kw)
        filled = fit(data, impute_missing=True, **kw)
    miss = data.in_series & np.isnan(data.x)
    assert miss.any()
    assert np.isnan(plain.draws("state_predictor")[..., miss]).all()
    assert np.isfinite(filled.draws("state_predictor")[..., miss]).all()
    obs = data.in_series & ~np.isnan(data.x)
    np.testing.assert_allclose(
        filled.draws("state_predictor")[..., obs]
        + filled.draws("trait_predictor")[..., np.nonzero(obs)[0]],
        plain.draws("state_predictor")[..., obs]
        + plain.draws("trait_predictor")[..., np.nonzero(obs)[0]],
    )
    back = FitResult.load(filled.save(tmp_path / "fit.nc"))
    np.testing.assert_array_equal(back.draws("state_predictor"), filled.draws("state_predictor"))


def test_patient_without_any_observed_predictor_is_finite_and_exact():
    """L is singular when no predictor cell is observed (the factor says nothing about M_x);
    the integral over the latent mean must stay finite and exact (marginal.mean_integral
    inverts neither T nor L)."""
    n_s = 4
    obs_x = np.zeros((1, n_s), dtype=bool)
    obs_y = np.array([[True, False, True, True]])
    x = np.zeros((1, n_s))
    y = np.array([[0.4, 0.0, -0.3, 0.9]])
    cells = _cells([0], obs_x, obs_y, x, y)
    sig = (SIGMA[0, 0], SIGMA[0, 1], SIGMA[1, 1])
    fc = (FIRST[0, 0], FIRST[0, 1], FIRST[1, 1])
    log_c, factor, _ = filter_factor(cells, tuple(PHI.ravel()), sig, fc, n_s)
    assert factor.l11[0] == 0.0  # nothing about M_x
    tau = (TAU[0, 0], TAU[0, 1], TAU[1, 1])
    m0 = np.array([0.1, 0.2])
    ours = log_c + marginal.mean_integral(factor, (m0[0], m0[1]), tau)
    dense = _dense(0, [0], [n_s - 1], obs_x, obs_y, x, y, m0, PHI, [SIGMA] * (n_s - 1), FIRST, TAU)
    assert np.isfinite(ours[0]) and ours[0] == pytest.approx(dense, rel=1e-10)
    # and the patient's factor in its therapist part, integrated against a therapist prior,
    # equals integrating over the sum of both covariances
    const, pseudo = marginal.pseudo_observation(factor, tau)
    tau_t = (0.3, 0.05, 0.2)
    both = log_c + const + marginal.mean_integral(pseudo, (m0[0], m0[1]), tau_t)
    direct = log_c + marginal.mean_integral(
        factor, (m0[0], m0[1]), tuple(a + b for a, b in zip(tau, tau_t, strict=True))
    )
    np.testing.assert_allclose(both, direct, rtol=1e-12)


def test_posthoc_grid_draws_states_of_the_data_grid():
    """PosthocGrid.draw_states (the one place the post-hoc draws and states_of call the
    backward sampler): without measurement error the observed cells come back as value minus
    mean exactly, cells outside a series are NaN, missing cells inside are drawn, and the draw
    is :func:`draw_missing` on the grid's cells built here by hand, with the same generator."""
    import warnings

    from bayes_alliance import SessionData, simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.inference.posthoc import PosthocGrid
    from bayes_alliance.model.structure import Dynamics
    from bayes_alliance.spec.model_spec import ModelSpec

    df, _ = simulate(
        seed=4, n_therapists=2, patients_per_therapist=3, sessions=7, p_missing_value=0.2,
        dropout=0.3,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
    lay = PosthocGrid.of(data, ModelSpec())
    dyn = Dynamics((0.4, 0.1, -0.2, 0.3), (1.0, 0.2, 0.8), (1.5, 0.3, 1.2), varying=False)
    rng = np.random.default_rng(0)
    mean = (rng.normal(size=(data.n_patients, 1)), rng.normal(size=(data.n_patients, 1)))

    def no_draw_values(name: str) -> None:
        raise AssertionError(f"no indicators: {name} is not read")

    inside = lay.inside
    wx, wy = lay.draw_states(no_draw_values, mean, dyn, lay.grid, inside, np.random.default_rng(7))
    g = lay.grid
    for w, z, obs, m in ((wx, g.x, g.obs_x, mean[0]), (wy, g.y, g.obs_y, mean[1])):
        seen = (obs > 0) & inside
        np.testing.assert_array_equal(w[seen], (z - m)[seen])
        assert np.isnan(w[~inside]).all()
        assert np.isfinite(w[inside & (obs == 0)]).all() and (inside & (obs == 0)).any()
    cells = GapCells(
        (g.x - mean[0]) * g.obs_x, (g.y - mean[1]) * g.obs_y, g.obs_x, g.obs_y, g.first
    )
    ref = draw_missing(
        cells, dyn.phi, dyn.sigma, dyn.first, False, inside, np.random.default_rng(7)
    )
    np.testing.assert_array_equal(wx, ref[0])
    np.testing.assert_array_equal(wy, ref[1])
