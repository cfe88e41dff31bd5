"""Null calibration of the pattern rules (bayes_alliance.analysis.pattern_null): the states'
covariance against closed forms and a brute-force recursion, the Monte Carlo null quantile
against the analytic one where the statistic is Gaussian, the order-statistic threshold's exact
exceedance rate, the calibrated statistics on hand-made series, and (on a fit) the share of
patients without any pattern that get a probability >= 0.75 or a flag."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from bayes_alliance.analysis import pattern_null as pn
from bayes_alliance.analysis import patterns as pat
from bayes_alliance.kernels.dynamics import stationary_cov
from bayes_alliance.sim import patterns as sim


def _ar1(phi: float, n: int) -> np.ndarray:
    h = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    return phi**h / (1 - phi**2)


def test_state_covariance_of_white_noise_and_ar1() -> None:
    one, zero = np.ones(3), np.zeros(3)
    white = pn.state_covariance((zero,) * 4, (one, zero, one), (one, zero, one), 6)
    assert white.shape == (3, 6, 6)
    np.testing.assert_allclose(white, np.broadcast_to(np.eye(6), (3, 6, 6)), atol=1e-15)
    # x follows an AR(1) with autoregression 0.5 when nothing feeds into it from y
    phi = (np.full(3, 0.5), zero, np.full(3, -0.2), np.full(3, 0.3))
    sig = (one, np.full(3, 0.3), np.full(3, 2.0))
    first = stationary_cov(phi, sig)
    cov = pn.state_covariance(phi, sig, first, 9)
    np.testing.assert_allclose(cov[1], _ar1(0.5, 9), rtol=1e-12)


def test_state_covariance_against_the_dense_recursion() -> None:
    """A bivariate VAR with feedback and a free (non-stationary) first-session covariance:
    every entry against the stacked-state recursion, for both variables."""
    a, b, c, d = 0.4, 0.25, -0.3, 0.2
    big = np.array([[a, b], [c, d]])
    sig = np.array([[1.0, 0.3], [0.3, 0.5]])
    f = np.array([[2.0, -0.4], [-0.4, 1.5]])
    n = 7
    full = np.zeros((2 * n, 2 * n))  # Cov of (w_1, ..., w_n), each w_t = (x_t, y_t)
    trans = np.zeros((2 * n, 2 * n))  # w = A w + e: lower block shift by Phi
    for t in range(1, n):
        trans[2 * t : 2 * t + 2, 2 * t - 2 : 2 * t] = big
    noise = np.zeros((2 * n, 2 * n))
    noise[:2, :2] = f
    for t in range(1, n):
        noise[2 * t : 2 * t + 2, 2 * t : 2 * t + 2] = sig
    inv = np.linalg.inv(np.eye(2 * n) - trans)
    full = inv @ noise @ inv.T
    for var in (0, 1):
        got = pn.state_covariance(
            (a, b, c, d), (sig[0, 0], sig[0, 1], sig[1, 1]), (f[0, 0], f[0, 1], f[1, 1]), n, var
        )
        np.testing.assert_allclose(got[0], full[var::2, var::2], rtol=1e-12)


def test_linear_change_null_sd_is_exact() -> None:
    """For white-noise states the fitted change c'w has SD sqrt(sum c^2); for an AR(1) it
    matches the variance of c'w over many simulated series."""
    t = np.arange(1, 13, dtype=float)
    m = np.ones(12, dtype=bool)
    m[[3, 8]] = False  # two missing sessions
    c = pn.linear_weights(m, t)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 12))
    w[:, ~m] = np.nan
    np.testing.assert_allclose(c[m] @ w[:, m].T, pat.linear_change(w, t), rtol=1e-12)
    eye = np.eye(12)[None]
    assert pn.linear_null_sd(eye, m, t)[0] == pytest.approx(np.sqrt(np.sum(c**2)), rel=1e-12)
    cov = _ar1(0.4, 12)[None]
    series = pn.simulate_null(cov, m, 200_000, rng)[0]
    sd_mc = np.std(pat.linear_change(series, t))
    assert sd_mc == pytest.approx(pn.linear_null_sd(cov, m, t)[0], rel=0.01)


def test_monte_carlo_quantile_matches_the_analytic_one() -> None:
    """White-noise states (no lags): the fitted change is N(0, sum c^2), so its 95 % quantile
    is 1.645 sqrt(sum c^2); the order statistic of many null series finds it."""
    t = np.arange(1, 11, dtype=float)
    m = np.ones(10, dtype=bool)
    rng = np.random.default_rng(1)
    null = pn.simulate_null(np.eye(10)[None], m, 100_000, rng)[0]
    q_mc = pn.order_quantile(pat.linear_change(null, t), 0.05)
    q_exact = stats.norm.ppf(0.95) * np.sqrt(np.sum(pn.linear_weights(m, t) ** 2))
    # the quantile's Monte Carlo SE: sqrt(0.05 * 0.95 / K) / density(q) ~ 0.4 % here
    assert q_mc == pytest.approx(q_exact, rel=0.02)
    q = pn.null_thresholds(np.eye(10)[None], m, t, alpha=0.05)
    assert q["strengthening"][0] == pytest.approx(q_exact, rel=1e-12)
    assert q["weakening"][0] == q["strengthening"][0]


def test_order_quantile_exceedance_is_at_most_alpha() -> None:
    """A value exchangeable with the K null values exceeds the k-th smallest with probability
    (K + 1 - k) / (K + 1): 5 / 100 for K = 99, alpha = 0.05 (Monte Carlo over 40,000 sets)."""
    rng = np.random.default_rng(2)
    null = rng.standard_normal((40_000, 99))
    fresh = rng.standard_normal(40_000)
    q = pn.order_quantile(null, 0.05)
    rate = np.mean(fresh > q)
    assert rate == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / 40_000))
    assert np.isinf(pn.order_quantile(null[:, :10], 0.05)).all()  # too few: never exceeded


def test_calibrated_statistics_on_hand_made_series() -> None:
    w = np.zeros(10)
    w[4] = -3.0  # one-session dip at session index 4, neighbours at 0
    w[7:9] = [-2.0, -2.5]  # two-session dip, recovery to 0 at index 9
    depth = pn.rupture_depths(w[None])[0]
    assert depth[4] == pytest.approx(3.0)
    assert depth[7] == pytest.approx(2.0) and depth[8] == pytest.approx(2.0)
    assert depth[[0, 1, 2, 3, 5, 6, 9]].tolist() == [0.0] * 7
    gap = w.copy()
    gap[5] = np.nan  # the recovery of the first dip is missing
    assert pn.rupture_depths(gap[None])[0, 4] == 0.0
    step = np.tile([0.1, -0.1], 5)
    step[5:] += 3.0  # from 0.1 at index 4 to 2.9 at index 5
    sizes = pn.gain_sizes(step[None])[0]
    assert sizes[5] == pytest.approx(2.8) and np.delete(sizes, 5).max() == 0.0
    null = {"strengthening": 1.0, "weakening": 1.0, "u_shape": 9.0, "rupture_repair": 2.5}
    ind = pn.calibrated_indicators(
        np.stack([w, step]), None, {**null, "sudden_gain": np.array([9.0, 2.5])}
    )
    assert ind["rupture_repair"].tolist() == [True, False]
    assert ind["rupture_sessions"][0].tolist() == [i == 4 for i in range(10)]
    assert ind["sudden_gain"].tolist() == [False, True]
    assert ind["strengthening"].tolist() == [False, True]


def test_null_thresholds_hold_alpha_on_null_series() -> None:
    """Series drawn from the null of an AR(1) with a missing session: each rule fires in about
    alpha of them (exactly alpha in expectation for the simulated rules with K = 99)."""
    n, t = 12, np.arange(1, 13, dtype=float)
    m = np.ones(n, dtype=bool)
    m[5] = False
    cov = np.broadcast_to(_ar1(0.3, n), (4000, n, n))
    q = pn.null_thresholds(cov, m, t, rng=np.random.default_rng(3))
    w = pn.simulate_null(cov, m, 1, np.random.default_rng(4))[:, 0]  # one per "draw"
    ind = pn.calibrated_indicators(w, t, q)
    se = np.sqrt(0.05 * 0.95 / 4000)
    for name in pat.PATTERNS:
        assert ind[name].mean() == pytest.approx(0.05, abs=4 * se), name


@pytest.fixture(scope="module")
def null_fit():
    from bayes_alliance import ModelSpec, SessionData, simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.inference.fit import fit

    df, _ = simulate(seed=5, n_therapists=8, patients_per_therapist=5, sessions=12, reliability=0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        return fit(
            data,
            ModelSpec(measurement_error=True),
            draws=250,
            tune=400,
            chains=2,
            random_seed=5,
            progressbar=False,
            log_likelihood=False,
        )


def test_no_pattern_data_rarely_flagged(null_fit) -> None:
    """40 patients x 12 sessions without patterns, fitted with measurement error. Each
    pattern's probability averages alpha = 0.05 over null data sets, so at most alpha / 0.75
    = 6.7 % of patients reach 0.75 (Markov), in practice 0-2 % (docs/patterns.md). With 40
    patients the share has a binomial SE of about 0.03 at a true 5 %, so 0.10 leaves room for
    Monte Carlo noise while a return to the fixed rules' 27 % would fail."""
    from bayes_alliance.analysis import pattern_table as ptab
    from bayes_alliance.feedback import patient_feedback as feedback

    tab = ptab.patterns_table(null_fit)
    assert tab.attrs["calibration"]["calibration"] == "null"
    for name in pat.PATTERNS:
        p = tab[f"p_{name}"]
        assert p.ge(0.75).mean() <= 0.10, name
        assert p.mean() <= 0.12, name  # alpha in expectation
    raised = trend = 0
    for pid in null_fit.data.patients:
        s = feedback.patient_feedback(null_fit, pid).summary
        raised += any(f["raised"] for f in s["flags"].values())
        tr = s["state_trend"]
        trend += max(tr["probability_strengthening"], tr["probability_weakening"]) >= 0.75
    n = null_fit.data.n_patients
    assert raised / n <= 0.10
    assert trend / n <= 0.15  # two one-sided rules, each at most 6.7 % in expectation


def test_planted_in_frame() -> None:
    import pandas as pd

    df = pd.DataFrame(
        {
            "patient": np.repeat(["a", "b"], 8),
            "session": np.tile(np.arange(1, 9), 2),
            "alliance": 0.0,
        }
    ).iloc[::-1]
    rng = np.random.default_rng(0)
    out, at = sim.plant_patterns(df, {"a": "sudden_gain", "b": "none"}, 0.5, rng, size=4.0)
    a = out.loc[out.patient == "a", "alliance"].to_numpy()
    assert set(np.round(a, 12)) == {0.0, 2.0} and a[-1] == 2.0  # a step of 4 x 0.5
    assert len(at["a"]) == 1 and a[at["a"][0] - 1] == 2.0 and a[at["a"][0] - 2] == 0.0
    assert (out.loc[out.patient == "b", "alliance"] == 0).all() and len(at["b"]) == 0


def _fit(df, me: bool, seed: int):
    from bayes_alliance import ModelSpec, SessionData
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.inference.fit import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        return fit(
            data,
            ModelSpec(measurement_error=me),
            draws=500,
            tune=500,
            chains=2,
            random_seed=seed,
            progressbar=False,
            log_likelihood=False,
        )


@pytest.mark.slow
@pytest.mark.parametrize("me", [True, False])
def test_null_calibration_on_several_fits(me: bool) -> None:
    """benchmarks/pattern_calibration.py's null study in small (docs/patterns.md): three data
    sets of 120 patients x 12 sessions without patterns (reliability 0.8). Pooled over the 360
    patients every pattern reaches probability 0.75 in at most 5 % (with measurement error
    0-3 % measured, without it about alpha, 2-7 % per data set), its mean probability is about
    alpha, and the feedback flags fire for at most 5 % (measured 0-2.5 %)."""
    from bayes_alliance import simulate
    from bayes_alliance.analysis import pattern_table as ptab
    from bayes_alliance.feedback import patient_feedback as feedback

    tabs, raised = [], []
    for seed in (1, 2, 3):
        df, _ = simulate(
            seed=seed, n_therapists=12, patients_per_therapist=10, sessions=12, reliability=0.8
        )
        res = _fit(df, me, seed)
        tabs.append(ptab.patterns_table(res))
        for pid in res.data.patients:
            s = feedback.patient_feedback(res, pid).summary
            raised.append(any(f["raised"] for f in s["flags"].values()))
    import pandas as pd

    tab = pd.concat(tabs)
    for name in pat.PATTERNS:
        p = tab[f"p_{name}"]
        assert p.ge(0.75).mean() <= 0.05 + (0.0 if me else 0.02), name
        assert p.mean() <= 0.08, name  # alpha = 0.05 in expectation; SE about 0.01
    assert np.mean(raised) <= 0.05


@pytest.mark.slow
def test_detection_on_fits_with_measurement_error() -> None:
    """Every fifth of 120 patients with a planted pattern of 5 innovation SDs, two data sets
    with measurement error (seeds 11 and 12 of benchmarks/pattern_calibration.py detect):
    the calibrated rules stay quiet in the unplanted patients and find most U's and about half
    the linear changes (measured: 0 % of 192 unplanted at 0.75; U 7 of 10, strengthening or
    weakening 9 of 20). A regression check of the rates in docs/patterns.md, with room for
    a different BLAS; the fitted autoregression absorbs part of the planted changes, which is
    why linear changes are found less often than by the fixed rules (docs/patterns.md)."""
    from bayes_alliance import simulate
    from bayes_alliance.analysis import pattern_table as ptab

    hits: dict[str, list[bool]] = {name: [] for name in pat.PATTERNS}
    quiet = []
    for seed in (11, 12):
        df, truth = simulate(
            seed=seed, n_therapists=12, patients_per_therapist=10, sessions=12, reliability=0.8
        )
        ids = sorted(df["patient"].unique())
        plan = {
            pid: pat.PATTERNS[(i // 5) % 5] if i % 5 == 0 else "none" for i, pid in enumerate(ids)
        }
        rng = np.random.default_rng([seed, 24])
        unit = truth.params.innovation_sd_predictor
        df, _ = sim.plant_patterns(df, plan, unit, rng, size=5.0)
        tab = ptab.patterns_table(_fit(df, True, seed))
        for pid, row in tab.set_index("patient").iterrows():
            if plan[pid] == "none":
                quiet.append(all(row[f"p_{n}"] < 0.75 for n in pat.PATTERNS))
            else:
                hits[plan[pid]].append(row[f"p_{plan[pid]}"] >= 0.75)
    assert np.mean(quiet) >= 0.95
    assert np.mean(hits["u_shape"]) >= 0.5
    assert np.mean(hits["strengthening"] + hits["weakening"]) >= 0.3
