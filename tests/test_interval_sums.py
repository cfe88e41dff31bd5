"""Continuous time on complete series as sums of products per distinct interval
(bayes_alliance.model.interval_sums): one patient's closed form against a dense Gaussian of
the whole series built with scipy, and the model's log density and gradient against the
Kalman filter path of the same data (several layouts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sl
from scipy.stats import multivariate_normal

from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import gaps, marginal
from bayes_alliance.model import interval_sums
from bayes_alliance.model.interval_sums import IntervalSums, interval_factor

DRIFT = np.array([[-0.15, 0.04], [-0.06, -0.1]])  # per day
DIFFUSION = np.array([[0.25, 0.09], [0.09, 0.36]])
STAT = sl.solve_continuous_lyapunov(DRIFT, -DIFFUSION)


def _frame(times: list[list[float]], seed: int = 0, therapists: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i, ts in enumerate(times):
        for s, t in enumerate(ts):
            row = dict(patient=f"p{i}", session=s + 1, time=t, x=rng.normal(3, 1.5))
            row["y"] = rng.normal(2, 1.5)
            if therapists:
                row["therapist"] = f"t{i % 3}"
            rows.append(row)
    return pd.DataFrame(rows)


def _data(df: pd.DataFrame, therapist: str | None = None) -> SessionData:
    return SessionData.from_frame(
        df, patient="patient", session="session", predictor="x", outcome="y", time="time",
        therapist=therapist,
    )  # fmt: skip


def _per_interval(values: np.ndarray) -> tuple[tuple, tuple]:
    """Phi(d) and Q(d) entries per distinct interval, from scipy (not the package's kernels)."""
    phis = np.array([sl.expm(DRIFT * d) for d in values])
    qs = np.array([STAT - p @ STAT @ p.T for p in phis])
    phi = (phis[:, 0, 0], phis[:, 0, 1], phis[:, 1, 0], phis[:, 1, 1])
    return phi, (qs[:, 0, 0], qs[:, 0, 1], qs[:, 1, 1])


def _dense_cov(ts: np.ndarray) -> np.ndarray:
    """Covariance of (x_1, y_1, x_2, y_2, ...): Cov(w(s), w(t)) = expm(A (t - s)) S, t >= s."""
    n = len(ts)
    cov = np.zeros((2 * n, 2 * n))
    for i in range(n):
        for j in range(n):
            lag = ts[j] - ts[i]
            block = sl.expm(DRIFT * lag) @ STAT if lag >= 0 else (sl.expm(DRIFT * -lag) @ STAT).T
            cov[2 * i : 2 * i + 2, 2 * j : 2 * j + 2] = block.T
    return cov


def test_closed_form_matches_dense_gaussians_given_and_integrated_over_the_means():
    """Two patients (the data need two): the closed form per patient plus the shared ``rest``
    against the sum of each whole series' dense Gaussian, at given latent means and with the
    means integrated out."""
    times = [[0.0, 3.0, 10.0, 17.0, 18.0, 32.0, 35.0], [0.0, 7.0, 8.0, 15.0]]
    df = _frame(times, seed=4)
    data = _data(df)
    loc = (2.5, 1.7)
    cells = IntervalSums.of(data, loc).containers()
    assert list(cells["interval_values"]) == [1.0, 3.0, 7.0, 14.0]
    np.testing.assert_array_equal(cells["interval_n"], [[1, 2, 2, 1], [1, 0, 2, 0]])
    phi, sigma = _per_interval(cells["interval_values"])
    first = (STAT[0, 0], STAT[0, 1], STAT[1, 1])
    known = np.array([[0.4, -0.3], [-0.2, 0.6]])  # each patient's known mean minus loc
    log_c, f, rest = interval_factor(cells, (known[:, 0], known[:, 1]), phi, sigma, first)
    latent = np.array([[0.2, 0.5], [-0.7, 0.1]])
    quad = f.q - 2 * (f.g1 * latent[:, 0] + f.g2 * latent[:, 1])
    quad += f.l11 * latent[:, 0] ** 2 + 2 * f.l12 * latent[:, 0] * latent[:, 1]
    quad += f.l22 * latent[:, 1] ** 2
    tau = np.array([[0.8, 0.2], [0.2, 0.5]])
    ref_given = ref_integrated = 0.0
    for p, ts in enumerate(times):
        n = len(ts)
        z = np.column_stack([data.x[p, :n], data.y[p, :n]]).ravel()
        cov = _dense_cov(np.array(ts))
        mean = np.array(loc) + known[p]
        ref_given += multivariate_normal(np.tile(mean + latent[p], n), cov).logpdf(z)
        big = cov + np.kron(np.ones((n, n)), tau)
        ref_integrated += multivariate_normal(np.tile(mean, n), big).logpdf(z)
    given = (log_c - 0.5 * quad).sum() + rest
    assert given == pytest.approx(ref_given, abs=1e-9, rel=0)
    integral = marginal.mean_integral(f, (0.0, 0.0), (tau[0, 0], tau[0, 1], tau[1, 1]))
    assert (log_c + integral).sum() + rest == pytest.approx(ref_integrated, abs=1e-9, rel=0)


def test_sums_are_counted_by_patient_and_interval_and_need_complete_series():
    df = _frame([[0, 7, 14, 21], [0, 7], [0, 2, 9]], seed=1)
    cells = IntervalSums.of(_data(df), (0.0, 0.0)).containers()
    assert list(cells["interval_values"]) == [2.0, 7.0]
    np.testing.assert_array_equal(cells["interval_n"], [[0, 3], [0, 1], [1, 1]])
    np.testing.assert_array_equal(cells["interval_count"], [1, 5])
    np.testing.assert_array_equal(cells["interval_transitions"], [3, 1, 2])
    data = _data(df)
    # sum over patients of the per-patient sums of z_t equals the global sums' diagonal source
    np.testing.assert_allclose(
        cells["interval_c_x"].sum(), np.nansum(data.x) - data.x[:, 0].sum(), rtol=1e-12
    )
    df.loc[4, "x"] = np.nan
    gap = _data(df)
    assert not interval_sums.complete(gap)
    with pytest.raises(ValueError, match="complete series"):
        IntervalSums.of(gap, (0.0, 0.0))


def _filter_density(data, known, tau, therapist=None):
    """The Kalman filter's log density (numpy, kernels.gaps) with per-cell Phi and Q from
    scipy, latent means (and therapist parts) integrated out."""
    from bayes_alliance.model.continuous import Intervals
    from bayes_alliance.model.grid import SeriesGrid

    dt = Intervals.of(data).grid
    phis = np.array([[sl.expm(DRIFT * d) for d in row] for row in dt])
    qs = STAT - np.einsum("psij,jk,pslk->psil", phis, STAT, phis)
    qs[dt <= 0] = STAT  # no transition there (posthoc_dynamics does the same): never read
    phi = (phis[..., 0, 0], phis[..., 0, 1], phis[..., 1, 0], phis[..., 1, 1])
    sigma = (qs[..., 0, 0], qs[..., 0, 1], qs[..., 1, 1])
    cells = SeriesGrid.of(data).gap_cells(known[:, :1], known[:, 1:])
    first = (STAT[0, 0], STAT[0, 1], STAT[1, 1])
    log_c, f, _ = gaps.filter_factor(cells, phi, sigma, first, data.n_sessions, by_cell=True)
    return _integrate(log_c, f, tau, therapist), f


def _integrate(log_c, f, tau, therapist):
    from bayes_alliance.model.grid import TherapistBlock, therapist_factors

    if therapist is None:
        return (log_c + marginal.mean_integral(f, (0.0, 0.0), tau)).sum()
    codes, tau_t = therapist
    const, pseudo = marginal.pseudo_observation(f, tau)
    block = TherapistBlock(codes, int(codes.max()) + 1, tau_t)
    caseloads = therapist_factors(pseudo, block, xp=np)
    return (log_c + const).sum() + marginal.mean_integral(caseloads, (0.0, 0.0), tau_t).sum()


LAYOUTS = {
    "irregular, therapists, a 2-session patient": ("irregular", True),
    "equal intervals, two levels": ("equal", False),
    "equal intervals, therapists": ("equal", True),
    "irregular, two levels": ("irregular", False),
}


def _layout_times(kind: str, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(9):
        n = 2 if i == 4 else 6
        steps = np.ones(n - 1) * 7 if kind == "equal" else rng.integers(1, 22, n - 1)
        out.append(list(np.concatenate([[0.0], np.cumsum(steps)])))
    return out


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_integrated_density_equals_the_filter(name):
    """Latent means and therapist parts integrated out: the sums against the numpy Kalman
    filter of the same cells (the model's filter path computes the same)."""
    kind, ther = LAYOUTS[name]
    df = _frame(_layout_times(kind, seed=len(name)), seed=2, therapists=ther)
    data = _data(df, therapist="therapist" if ther else None)
    loc = (2.9, 2.1)
    rng = np.random.default_rng(5)
    known = rng.normal(0, 0.5, (data.n_patients, 2))  # per patient (intercept + shifts)
    tau = (0.8, 0.2, 0.5)
    therapist = (data.patient_therapist, (0.3, -0.05, 0.2)) if ther else None
    cells = IntervalSums.of(data, loc).containers()
    phi, sigma = _per_interval(cells["interval_values"])
    first = (STAT[0, 0], STAT[0, 1], STAT[1, 1])
    log_c, f, rest = interval_factor(cells, (known[:, 0], known[:, 1]), phi, sigma, first)
    got = _integrate(log_c, f, tau, therapist) + rest
    ref, f_ref = _filter_density(data, known + np.array(loc), tau, therapist)
    assert got == pytest.approx(ref, abs=1e-9, rel=0)
    # the factor's precision and linear term (what the post-hoc draws of the means read)
    for k in ("l11", "l12", "l22", "g1", "g2"):
        np.testing.assert_allclose(getattr(f, k), getattr(f_ref, k), rtol=1e-10, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_model_log_density_and_gradient_equal_the_filter_path(name):
    """The built model (about 20-40 s a layout on a shared 2-core machine: two compiled
    models): logp and its gradient with the sums and with the filter, at one point."""
    import pytensor.tensor as pt

    from bayes_alliance.model.build import build_model
    from bayes_alliance.spec.model_spec import ModelSpec

    kind, ther = LAYOUTS[name]
    df = _frame(_layout_times(kind, seed=len(name)), seed=2, therapists=ther)
    data = _data(df, therapist="therapist" if ther else None)
    spec = ModelSpec(therapist_level=ther, time_model="continuous")
    got = {}
    for flag in (True, False):
        saved = interval_sums.ENABLED
        interval_sums.ENABLED = flag
        try:
            model = build_model(data, spec)
        finally:
            interval_sums.ENABLED = saved
        assert (interval_sums.KEY in model.named_vars) is flag
        point = model.initial_point()
        # a stable drift with cross effects, and traits away from the prior's centre
        point.update(drift_reverse_state_effect=0.01, drift_state_effect=-0.02)
        point["intercept_predictor"] += 0.3
        point["trait_corr_patient_interval__"] = 0.4
        logp = model.logp()
        fn = model.compile_fn([logp, *pt.grad(logp, model.value_vars)], point_fn=True)
        got[flag] = np.array([float(e) for e in fn(point)])
    assert np.isfinite(got[True]).all()
    np.testing.assert_allclose(got[True], got[False], rtol=1e-9, atol=1e-9)


def test_intervals_equal_but_for_rounding_are_one_interval():
    """Weeks computed as days / 7 differ in the last bits: 7-day gaps must stay one interval
    (else each rounding variant costs a matrix exponential and a column of every per-patient
    table), while intervals that really differ stay apart."""
    from bayes_alliance.kernels.ctime import distinct_intervals

    rng = np.random.default_rng(3)
    days = np.cumsum(rng.choice([7.0, 14.0, 21.0, 3.0], size=(200, 12)), axis=1)
    weeks = np.diff(days / 7.0, axis=1)  # the differences of converted times
    assert len(np.unique(weeks)) > 3  # the premise: exact equality splits them
    values, index = distinct_intervals(weeks)
    np.testing.assert_allclose(values, [3 / 7, 1.0, 2.0, 3.0], rtol=1e-12)
    np.testing.assert_allclose(values[index], weeks, rtol=1e-12)
    close = np.array([1.0, 1.0 + 1e-6, 1.0 + 2e-6])
    assert len(distinct_intervals(close)[0]) == 3


def test_intervals_that_hardly_repeat_take_the_filter():
    """Clock times (weekly sessions +- 0.1 day): nearly every transition its own interval, so
    the (P, D) tables would grow as P x transitions; the filter takes them. Whole days take
    the sums."""
    rng = np.random.default_rng(5)
    frac = [list(np.cumsum(7 + rng.uniform(-0.1, 0.1, 6))) for _ in range(30)]
    whole = [list(np.cumsum(rng.choice([7.0, 14.0], 6))) for _ in range(30)]
    from bayes_alliance.spec.model_spec import ModelSpec

    spec = ModelSpec(therapist_level=False, time_model="continuous")
    assert not interval_sums.applies(_data(_frame(frac, seed=1)), spec)
    assert interval_sums.applies(_data(_frame(whole, seed=1)), spec)


def test_a_refitted_compiled_model_takes_the_new_data_median_interval():
    """The drift and diffusion priors scale with the median interval: swapping a second data
    set's containers into the first model gives the second model's prior densities (the
    median is a container, as the data's SDs are)."""
    import pymc as pm

    from bayes_alliance.model.build import build_model
    from bayes_alliance.spec.model_spec import ModelSpec

    rng = np.random.default_rng(1)
    first = [list(np.cumsum(rng.choice([7.0, 14.0], 5))) for _ in range(8)]
    second = [list(np.cumsum(rng.choice([3.0, 10.0, 21.0, 28.0], 5))) for _ in range(8)]
    spec = ModelSpec(therapist_level=False, time_model="continuous")
    a = build_model(_data(_frame(first, seed=1)), spec)
    b = build_model(_data(_frame(second, seed=2)), spec)
    names = [n for n in ("drift_state_effect", "diffusion_sd_outcome") if n in b.named_vars]
    assert names, sorted(b.named_vars)
    point = b.initial_point()

    def prior_logp(model):
        rvs = [model[n] for n in names]
        values = [model.rvs_to_values[r] for r in rvs]
        fn = model.compile_fn(model.logp(vars=rvs, sum=False), inputs=values, point_fn=False)
        return np.array([float(np.sum(t)) for t in fn(*(point[v.name] for v in values))])

    before = prior_logp(a)
    with a:
        pm.set_data({d.name: d.get_value() for d in b.data_vars})
    np.testing.assert_allclose(prior_logp(a), prior_logp(b), rtol=1e-12)
    assert not np.allclose(before, prior_logp(b))
