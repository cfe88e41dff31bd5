"""Continuous time on dates: the drift's matrix exponential, the exact discretisation against a
fine simulation of the process, the model's density against the discrete model and against a
dense Gaussian, and the time column's checks (bayes_alliance.kernels.ctime,
bayes_alliance.model.continuous)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.linalg as sl
from scipy.stats import multivariate_normal

from bayes_alliance.core import vocab as v
from bayes_alliance.data.session_data import DataValidationError, SessionData
from bayes_alliance.kernels import ctime
from bayes_alliance.kernels.gaps import GapCells
from bayes_alliance.kernels.kalman_op import filter_factor_op
from bayes_alliance.model.build import build_model
from bayes_alliance.spec.model_spec import ModelSpec

DRIFT = np.array([[-0.15, 0.04], [-0.06, -0.1]])  # per day
DIFFUSION = np.array([[0.25, 0.09], [0.09, 0.36]])


def _entries(a: np.ndarray) -> tuple[float, float, float, float]:
    return a[0, 0], a[0, 1], a[1, 0], a[1, 1]


def _matrices(rng: np.random.Generator) -> list[np.ndarray]:
    """Real distinct, complex, repeated (defective and diagonal) and nearly repeated
    eigenvalues."""
    out = [rng.normal(size=(2, 2)) for _ in range(20)]
    out += [np.array([[-0.3, 2.0], [-2.0, -0.3]]), np.array([[-0.5, 1.0], [0.0, -0.5]])]
    out += [-0.4 * np.eye(2), np.array([[-0.5, 1.0], [1e-9, -0.5]])]
    return out


def test_expm_matches_scipy():
    rng = np.random.default_rng(3)
    for a in _matrices(rng):
        for dt in (0.01, 1.0, 7.0, 21.0):
            got = np.array(ctime.expm(_entries(a), dt)).reshape(2, 2)
            ref = sl.expm(a * dt)
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


def test_expm_gradient_matches_finite_differences():
    """Smooth everywhere: also at a repeated eigenvalue (z = 0) and at the switch between real
    and complex eigenvalues, where the Taylor branch takes over."""
    a = pt.dvector("a")
    dt = pt.dscalar("dt")
    w = np.array([0.3, -1.1, 0.7, 1.9])
    out = sum(wk * e for wk, e in zip(w, ctime.expm((a[0], a[1], a[2], a[3]), dt, pt), strict=True))
    f = pytensor.function([a, dt], out)
    g = pytensor.function([a, dt], pytensor.grad(out, a))
    rng = np.random.default_rng(4)
    cases = [_entries(m) for m in _matrices(rng)[-6:]] + [(-0.2, 0.05, -0.05, -0.2 + 1e-4)]
    for entries in cases:
        x = np.array(entries, dtype=float)
        for step in (3.0, 12.0):
            fd = np.array([(f(x + h, step) - f(x - h, step)) / 2e-6 for h in np.eye(4) * 1e-6])
            np.testing.assert_allclose(g(x, step), fd, rtol=1e-5, atol=1e-7)


def test_stationary_cov_matches_scipy():
    rng = np.random.default_rng(5)
    for _ in range(20):
        a = rng.normal(size=(2, 2)) - 2 * np.eye(2)
        g = rng.normal(size=(2, 2))
        q = g @ g.T
        ref = sl.solve_continuous_lyapunov(a, -q)
        got = ctime.stationary_cov(_entries(a), (q[0, 0], q[0, 1], q[1, 1]))
        np.testing.assert_allclose(got, (ref[0, 0], ref[0, 1], ref[1, 1]), rtol=1e-10)


def test_discretisation_matches_simulated_process():
    """Moments of w(t + dt) given w(t) over many series simulated by a fine Euler-Maruyama
    scheme of dw = A w dt + G dW (not the same formula): mean Phi(dt) w(t), covariance Q(dt)."""
    rng = np.random.default_rng(11)
    n, dt, h = 40_000, 9.0, 0.01
    w0 = np.array([1.5, -2.0])
    chol = np.linalg.cholesky(DIFFUSION)
    w = np.tile(w0, (n, 1))
    for _ in range(round(dt / h)):
        w = w + h * w @ DRIFT.T + np.sqrt(h) * rng.standard_normal((n, 2)) @ chol.T
    phi, q, _ = ctime.discretise(
        _entries(DRIFT), (DIFFUSION[0, 0], DIFFUSION[0, 1], DIFFUSION[1, 1]), dt
    )
    mean = np.array(phi).reshape(2, 2) @ w0
    cov = np.array([[q[0], q[1]], [q[1], q[2]]])
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(w.mean(axis=0) - mean) < 4 * se_mean + 2e-3)
    emp = np.cov(w.T)
    # SE of a sample covariance entry ~ sqrt((s_ii s_jj + s_ij^2) / n); Euler bias O(h)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(emp - cov) < 4 * se_cov + 0.01 * np.abs(cov).max())
    # and the data tell the exact discretisation from the naive Euler step over dt
    assert np.abs(emp - DIFFUSION * dt).max() > 10 * se_cov.max()


def _frame(seed=0, n_pat=12, n_ses=6, lo=1, hi=21, n_ther=None, equal=False):
    """Series from the continuous process at irregular integer day intervals (exact draws)."""
    rng = np.random.default_rng(seed)
    stat = sl.solve_continuous_lyapunov(DRIFT, -DIFFUSION)
    rows = []
    for i in range(n_pat):
        mean = np.array([3.0, 2.0]) + rng.normal(size=2)
        w = rng.multivariate_normal([0, 0], stat)
        t = 0.0
        for s in range(n_ses):
            if s:
                dt = 1.0 if equal else float(rng.integers(lo, hi + 1))
                p = sl.expm(DRIFT * dt)
                w = p @ w + rng.multivariate_normal([0, 0], stat - p @ stat @ p.T)
                t += dt
            z = mean + w
            row = dict(patient=f"p{i}", session=s + 1, time=t, x=z[0], y=z[1])
            if n_ther:
                row["therapist"] = f"t{i % n_ther}"
            rows.append(row)
    return pd.DataFrame(rows)


def _data(df, therapist=None):
    return SessionData.from_frame(
        df,
        patient="patient",
        session="session",
        predictor="x",
        outcome="y",
        therapist=therapist,
        time="time",
    )


def _potential(model, values):
    """The potential ``integrated_series`` with every free variable fixed at ``values``."""
    fixed = pm.do(model, {k: np.asarray(val, dtype=float) for k, val in values.items()})
    return float(fixed.compile_fn(fixed["integrated_series"], inputs=[])({}))


TRAITS = {
    v.INTERCEPT_PREDICTOR: 3.1,
    v.INTERCEPT_OUTCOME: 1.8,
    v.SD_PATIENT_PREDICTOR: 0.9,
    v.SD_PATIENT_OUTCOME_TOTAL: 1.2,
    v.TRAIT_CORR_PATIENT: 0.35,
}
CT = {
    v.DRIFT_PREDICTOR_AUTOREGRESSION: DRIFT[0, 0],
    v.DRIFT_REVERSE_STATE_EFFECT: DRIFT[0, 1],
    v.DRIFT_STATE_EFFECT: DRIFT[1, 0],
    v.DRIFT_OUTCOME_AUTOREGRESSION: DRIFT[1, 1],
    v.DIFFUSION_SD_PREDICTOR: np.sqrt(DIFFUSION[0, 0]),
    v.DIFFUSION_SD_OUTCOME: np.sqrt(DIFFUSION[1, 1]),
    v.DIFFUSION_CORR: DIFFUSION[0, 1] / np.sqrt(DIFFUSION[0, 0] * DIFFUSION[1, 1]),
}


def test_equal_intervals_give_the_discrete_model():
    """Unit intervals: the continuous model's density is the session-number model's (there on
    its sums-of-products path) at Phi = expm(A), Sigma = Q(1)."""
    df = _frame(seed=2, equal=True)
    data = _data(df)
    ct = _potential(
        build_model(data, ModelSpec(therapist_level=False, time_model="continuous")),
        {**TRAITS, **CT},
    )
    phi = sl.expm(DRIFT)
    stat = sl.solve_continuous_lyapunov(DRIFT, -DIFFUSION)
    q = stat - phi @ stat @ phi.T
    discrete = {
        v.PREDICTOR_AUTOREGRESSION: phi[0, 0],
        v.REVERSE_STATE_EFFECT: phi[0, 1],
        v.STATE_EFFECT: phi[1, 0],
        v.OUTCOME_AUTOREGRESSION: phi[1, 1],
        v.INNOVATION_SD_PREDICTOR: np.sqrt(q[0, 0]),
        v.INNOVATION_SD_OUTCOME: np.sqrt(q[1, 1]),
        v.INNOVATION_CORR: q[0, 1] / np.sqrt(q[0, 0] * q[1, 1]),
    }
    plain = SessionData.from_frame(
        df, patient="patient", session="session", predictor="x", outcome="y"
    )
    ds = _potential(build_model(plain, ModelSpec(therapist_level=False)), {**TRAITS, **discrete})
    assert ct == pytest.approx(ds, abs=1e-9, rel=0)


def _dense_loglik(data, values, error=(0.0, 0.0), therapist=None):
    """log N(observed cells | intercepts, traits + therapist parts + the continuous process at
    the cells' times + measurement error), built cell by cell from the process's covariance
    Cov(w(s), w(t)) = expm(A (t - s)) S (t >= s)."""
    stat = sl.solve_continuous_lyapunov(DRIFT, -DIFFUSION)
    sx, sy, r = (
        values[k]
        for k in (v.SD_PATIENT_PREDICTOR, v.SD_PATIENT_OUTCOME_TOTAL, v.TRAIT_CORR_PATIENT)
    )
    trait = np.array([[sx**2, r * sx * sy], [r * sx * sy, sy**2]])
    cells = []  # (patient, time, variable, value)
    for p in range(data.n_patients):
        for t in range(data.n_sessions):
            for k, grid in enumerate((data.x, data.y)):
                if np.isfinite(grid[p, t]):
                    cells.append((p, data.times[p, t], k, grid[p, t]))
    n = len(cells)
    cov = np.zeros((n, n))
    mean = np.array([values[v.INTERCEPT_PREDICTOR], values[v.INTERCEPT_OUTCOME]])[
        [c[2] for c in cells]
    ]
    for i, (p, t, k, _) in enumerate(cells):
        for j, (p2, t2, k2, _) in enumerate(cells):
            if therapist is not None and data.patient_therapist[p] == data.patient_therapist[p2]:
                cov[i, j] += therapist[k, k2]
            if p != p2:
                continue
            cov[i, j] += trait[k, k2]
            if t2 >= t:
                cov[i, j] += (sl.expm(DRIFT * (t2 - t)) @ stat)[k2, k]
            else:
                cov[i, j] += (sl.expm(DRIFT * (t - t2)) @ stat)[k, k2]
            if i == j:
                cov[i, j] += error[k]
    return multivariate_normal(mean, cov).logpdf(np.array([c[3] for c in cells]))


def test_density_matches_dense_gaussian_with_gaps_error_and_therapists():
    df = _frame(seed=7, n_pat=10, n_ses=5, n_ther=3)
    rng = np.random.default_rng(1)
    df.loc[rng.random(len(df)) < 0.15, "x"] = np.nan  # missing values at dated sessions
    df.loc[rng.random(len(df)) < 0.1, "y"] = np.nan
    data = _data(df, therapist="therapist")
    spec = ModelSpec(therapist_level=True, time_model="continuous", measurement_error=True)
    ther = {
        v.SD_THERAPIST_PREDICTOR: 0.5,
        v.SD_THERAPIST_OUTCOME_TOTAL: 0.7,
        v.TRAIT_CORR_THERAPIST: -0.3,
    }
    err = {v.MEASUREMENT_ERROR_SD_PREDICTOR: 0.3, v.MEASUREMENT_ERROR_SD_OUTCOME: 0.4}
    values = {**TRAITS, **CT, **ther, **err}
    got = _potential(build_model(data, spec), values)
    tcov = np.array([[0.25, -0.3 * 0.5 * 0.7], [-0.3 * 0.5 * 0.7, 0.49]])
    ref = _dense_loglik(data, values, error=(0.09, 0.16), therapist=tcov)
    assert got == pytest.approx(ref, abs=1e-8, rel=0)


def test_per_cell_lags_in_the_filter_match_a_dense_gaussian():
    """The Kalman Op with one lag matrix per transition (a, b, c, d of shape (P, S)) against
    the Gaussian of the time-varying process built directly: w_t = Phi_t w_(t-1) + u_t."""
    rng = np.random.default_rng(8)
    n_p, n_s = 3, 5
    phis = rng.uniform(-0.6, 0.6, size=(n_p, n_s, 2, 2))
    sig = np.array([[0.5, 0.1], [0.1, 0.4]])
    first = np.array([[1.2, 0.2], [0.2, 0.9]])
    z = rng.normal(size=(n_p, n_s, 2))
    cells = GapCells(
        z[..., 0], z[..., 1], np.ones((n_p, n_s)), np.ones((n_p, n_s)), np.eye(n_s)[[0] * n_p]
    )
    log_c, factor = filter_factor_op(
        cells,
        tuple(pt.as_tensor(phis[..., i, j]) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1))),
        (
            sig[0, 0] * np.ones((n_p, n_s)),
            sig[0, 1] * np.ones((n_p, n_s)),
            sig[1, 1] * np.ones((n_p, n_s)),
        ),
        (first[0, 0], first[0, 1], first[1, 1]),
    )
    # q is the quadratic form at a zero latent mean: log p(z) = log C - q / 2
    got = (log_c - 0.5 * factor.q).eval()
    for p in range(n_p):
        # covariance of the stacked states from the recursion, propagated exactly
        covs = [first]
        trans = [np.eye(2)]
        for t in range(1, n_s):
            covs.append(phis[p, t] @ covs[-1] @ phis[p, t].T + sig)
            trans.append(phis[p, t])
        big = np.zeros((2 * n_s, 2 * n_s))
        for s in range(n_s):
            for t in range(s, n_s):
                prod = np.eye(2)
                for u in range(s + 1, t + 1):
                    prod = trans[u] @ prod
                block = prod @ covs[s]
                big[2 * t : 2 * t + 2, 2 * s : 2 * s + 2] = block
                big[2 * s : 2 * s + 2, 2 * t : 2 * t + 2] = block.T
        ref = multivariate_normal(np.zeros(2 * n_s), big).logpdf(z[p].ravel())
        assert got[p] == pytest.approx(ref, abs=1e-10)


def test_per_cell_lag_gradient_matches_finite_differences():
    rng = np.random.default_rng(9)
    n_p, n_s = 2, 4
    a0 = rng.uniform(-0.5, 0.5, size=(4, n_p, n_s))
    z = rng.normal(size=(2, n_p, n_s))
    obs = (rng.random((2, n_p, n_s)) > 0.2).astype(float)
    lags = pt.dtensor3("lags")
    cells = GapCells(z[0] * obs[0], z[1] * obs[1], obs[0], obs[1], np.eye(n_s)[[0] * n_p])
    log_c, f = filter_factor_op(
        cells, tuple(lags[i] for i in range(4)), (0.5, 0.1, 0.4), (1.1, 0.2, 0.9), error=(0.05, 0.0)
    )
    out = (log_c - 0.5 * (f.q + f.l11 - 0.3 * f.g1 + f.l22)).sum()
    fn = pytensor.function([lags], out)
    grad = pytensor.function([lags], pytensor.grad(out, lags))(a0)
    fd = np.zeros_like(a0)
    for idx in np.ndindex(a0.shape):
        h = np.zeros_like(a0)
        h[idx] = 1e-6
        fd[idx] = (fn(a0 + h) - fn(a0 - h)) / 2e-6
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)
    assert np.abs(grad[:, :, 0]).max() == 0.0  # no transition into a first column


def test_time_column_problems_name_patient_and_rows():
    df = _frame(n_pat=3, n_ses=4)
    back = df.copy()
    back.loc[5, "time"] = back.loc[4, "time"] - 1.0  # p1's 2nd session before its 1st
    with pytest.raises(DataValidationError) as err:
        _data(back)
    msg = str(err.value)
    assert "time goes back" in msg and "p1" in msg and "rows 4, 5" in msg
    same = df.copy()
    same.loc[10, "time"] = same.loc[9, "time"]
    with pytest.raises(DataValidationError) as err:
        _data(same)
    msg = str(err.value)
    assert "same time" in msg and "p2" in msg and "rows 9, 10" in msg
    text = df.astype({"time": object})
    text.loc[2, "time"] = "next week"
    with pytest.raises(DataValidationError) as err:
        _data(text)
    assert "time is not a number" in str(err.value) and "rows 2" in str(err.value)


def test_dates_that_are_not_dates_or_repeat_name_rows():
    from bayes_alliance.data.reshape import sessions_from_dates

    df = pd.DataFrame(
        {
            "patient": ["a", "a", "b", "b"],
            "date": ["2024-01-02", "soon", "2024-01-03", "2024-01-03"],
        }
    )
    with pytest.raises(DataValidationError) as err:
        sessions_from_dates(df, patient="patient", date="date", elapsed="days")
    msg = str(err.value)
    assert "not a date" in msg and "same date" in msg
    ok = pd.DataFrame(
        {"patient": ["a", "a", "b"], "date": ["2024-01-09", "2024-01-02", "2024-02-01"]}
    )
    out = sessions_from_dates(ok, patient="patient", date="date", elapsed="weeks", unit_days=7)
    np.testing.assert_allclose(out["weeks"], [1.0, 0.0, 0.0])
    assert out["session"].tolist() == [2, 1, 1]


def test_continuous_time_needs_times_and_refuses_what_it_lacks():
    df = _frame(n_pat=3, n_ses=3)
    plain = SessionData.from_frame(
        df, patient="patient", session="session", predictor="x", outcome="y"
    )
    with pytest.raises(ValueError, match="time column"):
        build_model(plain, ModelSpec(therapist_level=False, time_model="continuous"))
    with pytest.raises(ValueError, match="does not support trend"):
        ModelSpec(time_model="continuous", trend=True)
