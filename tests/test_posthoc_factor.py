"""The post-hoc factor of series with gaps through the compiled kernel
(:func:`bayes_alliance.inference.filter_draws.gap_factor`): against the dense Gaussian of the
observed cells, bit for bit against the numpy filter it replaced, and the whole post-hoc
draws unchanged by it."""

import numpy as np
import pytest
import xarray as xr

from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference import filter_draws, posthoc
from bayes_alliance.kernels.gaps import GapCells, filter_factor
from bayes_alliance.model.grid import censored_cells
from bayes_alliance.model.structure import Dynamics
from bayes_alliance.sim.sessions import simulate
from bayes_alliance.spec.model_spec import ModelSpec
from tests.dense import series_cov

PHI = np.array([[0.5, 0.1], [0.3, 0.4]])
SIGMA = np.array([[1.0, 0.3], [0.3, 0.8]])
FIRST = np.array([[1.6, 0.5], [0.5, 1.3]])


def _grid(rng, n_p=6, n_s=7):
    """Series of different starts and ends with missing x, missing y and skipped cells."""
    first = np.array([0, 2, 0, 1, 0, 3])[:n_p]
    last = np.array([6, 6, 3, 5, 6, 6])[:n_p]
    cols = np.arange(n_s)[None]
    inside = (cols >= first[:, None]) & (cols <= last[:, None])
    obs_x = inside & (rng.random((n_p, n_s)) > 0.3)
    obs_y = inside & (rng.random((n_p, n_s)) > 0.3)
    for i in range(n_p):
        obs_x[i, first[i]] = obs_y[i, last[i]] = True
    x, y = rng.normal(0.3, 1.0, (2, n_p, n_s))
    first_m = np.zeros((n_p, n_s))
    first_m[np.arange(n_p), first] = 1.0
    cells = GapCells(
        np.where(obs_x, x, 0.0), np.where(obs_y, y, 0.0), obs_x * 1.0, obs_y * 1.0, first_m
    )
    return cells, first, last


def _dyn(n_p, n_s, *, slopes=False, by_session=False, per_patient_sigma=False) -> Dynamics:
    a, b, c, d = PHI.ravel()
    if slopes:
        c = c + np.linspace(-0.1, 0.1, n_p)
    sigma = (SIGMA[0, 0], SIGMA[0, 1], SIGMA[1, 1])
    if by_session:
        scale = 1.0 + 0.1 * np.arange(n_s - 1)
        sigma = tuple(e * scale for e in sigma)
    elif per_patient_sigma:
        scale = 1.0 + 0.2 * np.arange(n_p)
        sigma = tuple(e * scale for e in sigma)
    first = (FIRST[0, 0], FIRST[0, 1], FIRST[1, 1])
    return Dynamics(
        (a, b, c, d), sigma, first, varying=slopes, by_session=by_session,
        sigma_varying=per_patient_sigma,
    )  # fmt: skip


def test_gap_factor_is_the_dense_gaussian_factor():
    """L = H' S^-1 H, g = H' S^-1 z, q = z' S^-1 z over each patient's observed cells, with S
    their dense covariance given the latent mean (tests/dense.py) and H the mean's loadings."""
    rng = np.random.default_rng(11)
    cells, first, last = _grid(rng)
    n_p, n_s = cells.x.shape
    dyn = _dyn(n_p, n_s, by_session=True)
    got = filter_draws.gap_factor(cells, dyn, (0.0, 0.0))
    scale = 1.0 + 0.1 * np.arange(n_s - 1)
    for i in range(n_p):
        span = range(first[i], last[i] + 1)
        cov = series_cov(PHI, [SIGMA * scale[t - 1] for t in span][1:], FIRST)
        keep, vals, load = [], [], []
        for k, t in enumerate(span):
            for j, (o, z) in enumerate(((cells.obs_x, cells.x), (cells.obs_y, cells.y))):
                if o[i, t]:
                    keep.append(2 * k + j)
                    vals.append(z[i, t])
                    load.append(np.eye(2)[j])
        prec = np.linalg.inv(cov[np.ix_(keep, keep)])
        h, z = np.array(load), np.array(vals)
        lam, g = h.T @ prec @ h, h.T @ prec @ z
        np.testing.assert_allclose(
            [got.l11[i], got.l12[i], got.l22[i]], [lam[0, 0], lam[0, 1], lam[1, 1]], rtol=1e-10
        )
        np.testing.assert_allclose([got.g1[i], got.g2[i]], g, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.q[i], z @ prec @ z, rtol=1e-10)


@pytest.mark.parametrize(
    "kind", ["shared", "slopes", "by_session", "per_patient_sigma", "error", "cell_error"]
)
def test_gap_factor_equals_the_numpy_filter_bit_for_bit(kind):
    rng = np.random.default_rng(5)
    cells, _, _ = _grid(rng)
    n_p, n_s = cells.x.shape
    dyn = _dyn(
        n_p,
        n_s,
        slopes=kind == "slopes",
        by_session=kind == "by_session",
        per_patient_sigma=kind == "per_patient_sigma",
    )
    error: tuple = (0.0, 0.0)
    if kind == "error":
        error = (np.float64(0.2), np.float64(0.35))
    elif kind == "cell_error":  # indicators: one variance per cell
        error = tuple(0.1 + rng.random((n_p, n_s)) for _ in range(2))
    _, want, _ = filter_factor(
        cells, dyn.phi, dyn.sigma, dyn.first, n_s, dyn.by_session, error=error
    )
    got = filter_draws.gap_factor(cells, dyn, error)
    for name in ("l11", "l12", "l22", "g1", "g2", "q"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name


def _random_grid(rng, n_p: int, n_s: int, cut: int, p_missing: float) -> GapCells:
    """Series starting in one of the first 3 columns and ending up to ``cut - 1`` columns
    early (dropout), each entry missing with ``p_missing`` (the first x kept)."""
    first = rng.integers(0, 3, n_p)
    last = np.maximum(first, n_s - 1 - rng.integers(0, cut, n_p))
    cols = np.arange(n_s)[None]
    inside = (cols >= first[:, None]) & (cols <= last[:, None])
    obs_x = inside & (rng.random((n_p, n_s)) > p_missing)
    obs_y = inside & (rng.random((n_p, n_s)) > p_missing)
    obs_x[np.arange(n_p), first] = True
    x, y = rng.normal(0.3, 1.0, (2, n_p, n_s))
    first_m = np.zeros((n_p, n_s))
    first_m[np.arange(n_p), first] = 1.0
    return GapCells(
        np.where(obs_x, x, 0.0), np.where(obs_y, y, 0.0), obs_x * 1.0, obs_y * 1.0, first_m
    )


@pytest.mark.parametrize("error_kind", ["none", "per_patient", "cell"])
def test_gap_factor_equals_the_numpy_filter_over_several_blocks(error_kind):
    """More patients than one block of the batched kernel (64 lanes), series of different
    starts and ends (dropout), gaps, per-patient lags and innovations: the factor to the last
    bit and log C to rounding."""
    rng = np.random.default_rng(11)
    n_p, n_s = 150, 9
    cells = _random_grid(rng, n_p, n_s, cut=5, p_missing=0.2)
    a, b, c, d = PHI.ravel()
    c = c + 0.1 * rng.normal(size=n_p)
    scale = 1.0 + 0.3 * rng.random(n_p)
    sigma = (SIGMA[0, 0] * scale, SIGMA[0, 1] * scale, SIGMA[1, 1] * scale)
    dyn = Dynamics(
        (a, b, c, d), sigma, (FIRST[0, 0], FIRST[0, 1], FIRST[1, 1]), varying=True,
        sigma_varying=True,
    )  # fmt: skip
    error: tuple = (0.0, 0.0)
    if error_kind == "per_patient":
        error = (0.1 + rng.random(n_p), 0.1 + rng.random(n_p))
    elif error_kind == "cell":
        error = (0.1 + rng.random((n_p, n_s)), 0.1 + rng.random((n_p, n_s)))
    want_c, want, _ = filter_factor(cells, dyn.phi, dyn.sigma, dyn.first, n_s, error=error)
    got_c, got = filter_draws.gap_filter(cells, dyn, error)
    for name in ("l11", "l12", "l22", "g1", "g2", "q"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    np.testing.assert_allclose(got_c, want_c, rtol=1e-12)


def _fake_posterior(spec: ModelSpec, data: SessionData, n: int, seed: int) -> xr.Dataset:
    """Draws of the free parameters spread around plausible values (the post-hoc step reads
    only these): innovations and SDs positive, lags small."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in spec.free_parameters():
        if name.startswith(("sd_", "innovation_sd")):
            val = rng.uniform(0.3, 0.6, (2, n))
        elif name.endswith("corr"):
            val = rng.uniform(-0.3, 0.3, (2, n))
        elif name.startswith("intercept"):
            val = rng.normal(3.0, 0.1, (2, n))
        else:
            val = rng.uniform(-0.3, 0.3, (2, n))
        out[name] = xr.DataArray(val, dims=("chain", "draw"))
    return xr.Dataset(out)


def _numpy_filter(cells, dyn, error, innovations=True):
    """The numpy filter in :func:`filter_draws.filter_cells`' signature."""
    return filter_factor(
        cells, dyn.phi, dyn.sigma, dyn.first, np.shape(cells.x)[1], dyn.by_session,
        per_cell=innovations, error=error, by_cell=dyn.by_cell,
    )  # fmt: skip


@pytest.mark.parametrize(
    "kind",
    ["shared", "slopes", "by_session", "per_patient_sigma", "by_session_per_patient", "by_cell"],
)
@pytest.mark.parametrize("error_kind", ["none", "scalar", "per_patient", "cell"])
def test_filter_cells_equals_the_numpy_filter_with_innovations(kind, error_kind):
    """The per-patient kernel's factor and every cell's innovation (e0, gx, gy, s) against the
    numpy filter, over 70 patients with dropout and gaps: the factor and innovations to the
    last bit, log C to rounding; lags and innovations of every form the post-hoc draws pass
    (per cell: continuous time; session-specific innovations per patient)."""
    rng = np.random.default_rng(17)
    n_p, n_s = 70, 8
    cells = _random_grid(rng, n_p, n_s, cut=4, p_missing=0.25)
    a, b, c, d = PHI.ravel()
    sigma = (SIGMA[0, 0], SIGMA[0, 1], SIGMA[1, 1])
    fc = (FIRST[0, 0], FIRST[0, 1], FIRST[1, 1])
    options: dict = {}
    if kind == "slopes":
        c = c + 0.1 * rng.normal(size=n_p)
        options["varying"] = True
    elif kind == "by_session":
        sigma = tuple(e * (1.0 + 0.1 * np.arange(n_s - 1)) for e in sigma)
        options["by_session"] = True
    elif kind == "per_patient_sigma":
        sigma = tuple(e * (1.0 + 0.3 * rng.random(n_p)) for e in sigma)
        options["sigma_varying"] = True
    elif kind == "by_session_per_patient":
        scale = 1.0 + 0.3 * rng.random((n_p, n_s - 1))
        sigma = tuple(e * scale for e in sigma)
        options.update(by_session=True, sigma_varying=True)
    elif kind == "by_cell":  # one lag matrix and innovation covariance per cell
        scale = 1.0 + 0.3 * rng.random((n_p, n_s))
        a, b, c, d = (e * (0.8 + 0.4 * rng.random((n_p, n_s))) for e in (a, b, c, d))
        sigma = tuple(e * scale for e in sigma)
        options.update(by_cell=True, varying=True)
    options.setdefault("varying", False)
    dyn = Dynamics((a, b, c, d), sigma, fc, **options)
    error: tuple = (0.0, 0.0)
    if error_kind == "scalar":
        error = (np.float64(0.2), np.float64(0.35))
    elif error_kind == "per_patient":
        error = (0.1 + rng.random(n_p), 0.1 + rng.random(n_p))
    elif error_kind == "cell":
        error = (0.1 + rng.random((n_p, n_s)), 0.1 + rng.random((n_p, n_s)))
    want_c, want, want_inn = _numpy_filter(cells, dyn, error)
    got_c, got, got_inn = filter_draws.filter_cells(cells, dyn, error)
    for name in ("l11", "l12", "l22", "g1", "g2", "q"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    np.testing.assert_allclose(got_c, want_c, rtol=1e-12)
    for var in ("x", "y"):
        for name in ("e0", "gx", "gy", "s", "o"):
            w, g = getattr(want_inn[var], name), getattr(got_inn[var], name)
            assert np.array_equal(np.broadcast_to(w, g.shape), g), (var, name)
    no_inn_c, no_inn, none = filter_draws.filter_cells(cells, dyn, error, innovations=False)
    assert none is None and np.array_equal(no_inn.q, want.q)
    np.testing.assert_allclose(no_inn_c, want_c, rtol=1e-12)


@pytest.mark.parametrize(
    ("log_likelihood", "terms"),
    [
        (False, {}),
        (True, {}),
        (True, {"measurement_error": True}),
        (True, {"measurement_error": True, "ceiling": True}),
        (True, {"ceiling": True}),
    ],
)
def test_post_hoc_draws_unchanged_by_the_compiled_filters(monkeypatch, log_likelihood, terms):
    """Traits, therapist parts and (with ``log_likelihood``) the pointwise log-likelihood of
    data with gaps equal those of the numpy filter's path (forced by replacing the kernels by
    the numpy filter), to the last bit (the log-likelihood to rounding); also with
    measurement error and with scores at a ceiling (censored cells: their drawn latent scores
    in the grid, the log probability of the event from the innovations)."""
    df, _ = simulate(
        seed=4,
        n_therapists=4,
        patients_per_therapist=5,
        sessions=8,
        p_missing_value=0.1,
        p_missing_session=0.1,
        dropout=0.3,
    )
    terms = dict(terms)
    ceiling = None
    if terms.pop("ceiling", False):
        ceiling = float(np.nanquantile(df["alliance"], 0.85))
        df["alliance"] = np.minimum(df["alliance"], ceiling)
        terms["ceiling_predictor"] = ceiling
    data = SessionData.from_frame(
        df,
        patient="patient",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        therapist="therapist",
    )
    spec = ModelSpec(therapist_level=True, **terms)
    post = _fake_posterior(spec, data, 6, seed=2)
    if ceiling is not None:
        n_cen = censored_cells(data, spec).cells["predictor"].n
        assert n_cen > 0
        values = ceiling + np.random.default_rng(0).uniform(0, 1, (2, 6, n_cen))
        post["censored_predictor_value"] = xr.DataArray(values, dims=("chain", "draw", "cell"))
    ll = {"log_likelihood": log_likelihood}
    got, got_ll = posthoc.complete(post, data, spec, random_seed=7, states=False, **ll)
    monkeypatch.setattr(posthoc, "compiled_filter", lambda dyn: False)
    monkeypatch.setattr(posthoc, "filter_cells", _numpy_filter)
    want, want_ll = posthoc.complete(post, data, spec, random_seed=7, states=False, **ll)
    assert set(got) == set(want)
    for name in want:
        assert np.array_equal(got[name].values, want[name].values), name
    assert set(got_ll) == set(want_ll) == ({"predictor", "outcome"} if log_likelihood else set())
    for name in want_ll:
        np.testing.assert_allclose(got_ll[name].values, want_ll[name].values, rtol=1e-12)
