"""The JAX Kalman filter factor (:mod:`bayes_alliance.kernels.kalman_jax`) against the numba
kernels of :mod:`bayes_alliance.kernels.kalman_op` (forward and gradient to 1e-9), time-varying
lags (continuous time) against a dense joint Gaussian, and the whole gap model's log density and
gradient compiled through PyTensor's JAX backend against the numba backend."""

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="the JAX path needs jax (pip install bayes_alliance[jax])")

from bayes_alliance.kernels.factor_op import DIFFERENTIABLE  # noqa: E402
from bayes_alliance.kernels.kalman_jax import kalman_factor_jax, kalman_factor_vjp_jax  # noqa: E402
from bayes_alliance.kernels.kalman_op import kalman_factor, kalman_factor_vjp  # noqa: E402

TOL = 1e-9


def _problem(seed: int, n_p: int = 7, n_s: int = 9, error: str = "none", shared: bool = True):
    """Inputs of the Op: rows starting and ending at different columns, cells with x only, y
    only and neither, per-patient lags and first-cell covariances, innovations per column
    (shared (1, S) or per patient (P, S)), measurement-error variances none / per patient / per
    cell."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 3, n_p)
    last = n_s - 1 - rng.integers(0, 3, n_p)
    cols = np.arange(n_s)[None]
    inside = (cols >= first[:, None]) & (cols <= last[:, None])
    ox = (inside & (rng.random((n_p, n_s)) > 0.25)).astype(float)
    oy = (inside & (rng.random((n_p, n_s)) > 0.25)).astype(float)
    ox[np.arange(n_p), first] = 1.0
    fm = np.zeros((n_p, n_s))
    fm[np.arange(n_p), first] = 1.0
    dx = rng.normal(size=(n_p, n_s)) * ox
    dy = rng.normal(size=(n_p, n_s)) * oy
    lags = [e + 0.1 * rng.normal(size=n_p) for e in (0.5, 0.15, -0.2, 0.4)]
    fc = [e + 0.2 * rng.random(n_p) for e in (1.6, 0.4, 1.3)]
    rows = 1 if shared else n_p
    sig = [e * (0.7 + 0.6 * rng.random((rows, n_s))) for e in (1.0, 0.0, 0.8)]
    sig[1] = 0.3 * np.sqrt(sig[0] * sig[2]) * rng.uniform(-1, 1, (rows, n_s))
    if error == "none":
        err = [np.zeros((n_p, n_s)), np.zeros((n_p, n_s))]
    elif error == "patient":
        err = [np.repeat(e * (0.5 + rng.random(n_p))[:, None], n_s, 1) for e in (0.4, 0.3)]
    else:
        err = [e * (0.5 + rng.random((n_p, n_s))) for e in (0.4, 0.3)]
    return [dx, dy, ox, oy, fm, *lags, *fc, *sig, *err]


CASES = [
    ("none", True),
    ("none", False),
    ("patient", True),
    ("cell", False),
]


@pytest.mark.parametrize(("error", "shared"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_forward_matches_numba(error, shared, seed):
    args = _problem(seed, error=error, shared=shared)
    want = np.stack(kalman_factor(*args)[:7])
    got = np.stack([np.asarray(o) for o in jax.jit(kalman_factor_jax)(*args)])
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)


@pytest.mark.parametrize(("error", "shared"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_matches_numba(error, shared, seed):
    args = _problem(seed, error=error, shared=shared)
    n_p = args[0].shape[0]
    cot = list(np.random.default_rng(100 + seed).normal(size=(7, n_p)))
    tape = kalman_factor(*args)[7]
    want = kalman_factor_vjp(*args, tape, *cot)
    got = jax.jit(kalman_factor_vjp_jax)(*args, np.zeros((0, 0, 3, 9)), *cot)
    assert len(got) == len(DIFFERENTIABLE)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        g = np.asarray(g)
        assert g.shape == np.shape(w), i
        if i >= 12:
            # rx, ry: at a zero variance the numba kernel takes its error-free branch, which
            # has no error variance to differentiate (its adjoint stays 0), where JAX gives the
            # one-sided derivative; a model without measurement error holds them constant.
            keep = args[3 + i] > 0  # rx is input 15, ry 16
            g, w = g[keep], w[keep]
        np.testing.assert_allclose(g, w, rtol=TOL, atol=TOL, err_msg=f"input {i}")


def _dense_logpdf(args, p: int, mu: np.ndarray) -> float:
    """Patient p's observed cells as one joint Gaussian, written as a linear map of independent
    shocks: the state at the row's first column ~ N(0, F), then z_t = Phi_t z_{t-1} + eta_t with
    Phi_t = [[a, b], [c, d]][p, t] and Var eta_t = Sigma_t; a cell is mu + z + error."""
    dx, dy, ox, oy, fm, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry = args
    n_s = dx.shape[1]
    row = lambda e: e[p] if e.shape[0] > 1 else e[0]  # noqa: E731
    t0 = int(np.argmax(fm[p]))
    n = n_s - t0
    shocks = [np.array([[f11[p], f12[p]], [f12[p], f22[p]]])]
    shocks += [
        np.array([[row(s11)[t], row(s12)[t]], [row(s12)[t], row(s22)[t]]])
        for t in range(t0 + 1, n_s)
    ]
    lin = np.zeros((2 * n, 2 * n))  # state (t, variable) <- shock (u, variable)
    lin[0:2, 0:2] = np.eye(2)
    for k in range(1, n):
        t = t0 + k
        phi = np.array([[a[p, t], b[p, t]], [c[p, t], d[p, t]]])
        lin[2 * k : 2 * k + 2] = phi @ lin[2 * k - 2 : 2 * k]
        lin[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] += np.eye(2)
    shock_cov = np.zeros((2 * n, 2 * n))
    for k, s in enumerate(shocks):
        shock_cov[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = s
    cov = lin @ shock_cov @ lin.T
    obs = np.ravel(np.column_stack([ox[p, t0:], oy[p, t0:]])) > 0
    vals = np.ravel(np.column_stack([dx[p, t0:], dy[p, t0:]]))[obs]
    err = np.ravel(np.column_stack([rx[p, t0:], ry[p, t0:]]))[obs]
    cov = cov[np.ix_(obs, obs)] + np.diag(err)
    r = vals - np.tile(mu, n)[obs]
    _, logdet = np.linalg.slogdet(cov)
    return float(-0.5 * (obs.sum() * np.log(2 * np.pi) + logdet + r @ np.linalg.solve(cov, r)))


def _varying_lags(seed: int, error: str):
    """Lag entries per patient and column (the transition into column t, as after
    ``expm(A dt_t)`` with irregular intervals)."""
    args = _problem(seed, n_p=5, n_s=7, error=error, shared=False)
    rng = np.random.default_rng(50 + seed)
    n_p, n_s = args[0].shape
    for i, centre in zip(range(5, 9), (0.5, 0.15, -0.2, 0.4), strict=True):
        args[i] = centre + 0.25 * rng.uniform(-1, 1, (n_p, n_s))
    return args


def _factor_logpdf(out, p: int, mu: np.ndarray) -> float:
    lc, l11, l12, l22, g1, g2, q = (float(o[p]) for o in out)
    quad = q - 2 * (g1 * mu[0] + g2 * mu[1]) + l11 * mu[0] ** 2 + 2 * l12 * mu[0] * mu[1]
    return lc - 0.5 * (quad + l22 * mu[1] ** 2)


@pytest.mark.parametrize("error", ["none", "cell"])
def test_lags_per_column_match_dense_gaussian(error):
    args = _varying_lags(3, error)
    out = [np.asarray(o) for o in jax.jit(kalman_factor_jax)(*args)]
    rng = np.random.default_rng(7)
    for p in range(args[0].shape[0]):
        for mu in rng.normal(size=(3, 2)):
            assert _factor_logpdf(out, p, mu) == pytest.approx(
                _dense_logpdf(args, p, mu), rel=TOL, abs=TOL
            )


def test_lags_per_column_gradient_matches_dense_differences():
    """jax.vjp of the (P, S) lags against central differences of the dense density."""
    args = _varying_lags(4, "cell")
    mu = np.array([0.3, -0.5])
    n_p = args[0].shape[0]

    def total(lag_a):
        out = kalman_factor_jax(*args[:5], lag_a, *args[6:])
        lc, l11, l12, l22, g1, g2, q = out
        quad = q - 2 * (g1 * mu[0] + g2 * mu[1]) + l11 * mu[0] ** 2 + 2 * l12 * mu[0] * mu[1]
        return (lc - 0.5 * (quad + l22 * mu[1] ** 2)).sum()

    grad = np.asarray(jax.grad(total)(args[5]))
    h = 1e-6
    observed = (args[2] + args[3]) > 0
    starts = np.argmax(args[4], axis=1)
    ends = args[0].shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
    # per patient the transition into its second column and into its last observed column
    for p, t in [(i, t) for i in range(n_p) for t in (starts[i] + 1, ends[i])]:
        up, down = [list(args) for _ in range(2)]
        up[5], down[5] = args[5].copy(), args[5].copy()
        up[5][p, t] += h
        down[5][p, t] -= h
        fd = (_dense_logpdf(up, p, mu) - _dense_logpdf(down, p, mu)) / (2 * h)
        assert abs(fd) > 1e-6, (p, t)  # an entry the density depends on
        assert grad[p, t] == pytest.approx(fd, rel=1e-6, abs=1e-7), (p, t)


def _logp_and_grad(model, mode: str):
    import pytensor

    from bayes_alliance.inference.sampling import compile_settings

    logp = model.logp()
    grads = pytensor.grad(logp, model.value_vars)
    with compile_settings():
        return pytensor.function(model.value_vars, [logp, *grads], mode=mode)


def test_gap_model_logp_and_gradient_jax_equal_numba():
    """The integrated model with gaps, three levels, measurement error and random slopes: one
    log density and gradient through PyTensor's JAX backend and its numba backend, at the
    initial point and at a jittered point."""
    import warnings

    import pymc.sampling.jax  # noqa: F401  (JAX functions of PyMC's own Ops)

    from bayes_alliance import SessionData, simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.model.build import build_model
    from bayes_alliance.spec.model_spec import ModelSpec

    df, _ = simulate(
        seed=3,
        n_therapists=3,
        patients_per_therapist=4,
        sessions=6,
        p_missing_value=0.1,
        p_missing_session=0.15,
        dropout=0.2,
        reliability=0.8,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
    assert np.isnan(data.x).any() and np.isnan(data.y).any()
    spec = ModelSpec(store_states=False, measurement_error=True, random_slopes=("patient",))
    model = build_model(data, spec)
    from pytensor.graph.traversal import applys_between

    from bayes_alliance.kernels.kalman_batch import BatchFactor
    from bayes_alliance.kernels.kalman_op import KalmanFactor

    ops = {type(n.op) for n in applys_between(model.value_vars, [model.logp()])}
    # the filter path (the batched Op by default), which had no JAX function before
    assert ops & {KalmanFactor, BatchFactor}
    f_jax, f_numba = _logp_and_grad(model, "JAX"), _logp_and_grad(model, "NUMBA")
    point = model.initial_point()
    rng = np.random.default_rng(0)
    for jitter in (0.0, 0.3):
        x = [
            point[v.name] + jitter * rng.normal(size=np.shape(point[v.name]))
            for v in model.value_vars
        ]
        got, want = f_jax(*x), f_numba(*x)
        assert np.isfinite(want[0])
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(g), w, rtol=TOL, atol=TOL)


@pytest.mark.slow
def test_numpyro_fit_of_gap_model_agrees_with_nutpie():
    """``fit(..., sampler="numpyro")`` samples the gap model with measurement error through JAX
    and lands on the posterior that nutpie's numba path samples: the posterior means of the
    dynamics agree within five combined Monte Carlo standard errors."""
    import warnings

    from bayes_alliance import SessionData, simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.inference.fit import fit
    from bayes_alliance.spec.model_spec import ModelSpec

    df, _ = simulate(
        seed=5,
        n_therapists=4,
        patients_per_therapist=6,
        sessions=8,
        p_missing_value=0.1,
        p_missing_session=0.1,
        dropout=0.2,
        reliability=0.8,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
    spec = ModelSpec(measurement_error=True, store_states=False)
    names = [
        "state_effect",
        "reverse_state_effect",
        "outcome_autoregression",
        "innovation_sd_outcome",
    ]
    fits = [
        fit(data, spec, draws=400, tune=400, chains=2, sampler=s, random_seed=2, progressbar=False)
        for s in ("numpyro", "nutpie")
    ]
    assert fits[0].provenance["sampler"] == "numpyro"
    tables = [f.summary() for f in fits]
    for name in names:
        means = [float(t.loc[name, "mean"]) for t in tables]
        # Monte Carlo standard error of a mean: sd / sqrt(bulk ESS)
        se = [float(t.loc[name, "sd"] / np.sqrt(t.loc[name, "ess_bulk"])) for t in tables]
        assert abs(means[0] - means[1]) < 5 * np.hypot(*se), (name, means, se)
