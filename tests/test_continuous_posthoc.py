"""Continuous time after sampling: the post-hoc draws (pointwise and per-patient log
likelihood against a dense Gaussian of the continuous process), the effects at a stated
interval (against scipy's expm and Lyapunov solver), and a CLI fit on dates end to end
(bayes_alliance.inference.posthoc, analysis.continuous_density, effects.continuous)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sl
import xarray as xr
from scipy.stats import multivariate_normal

from bayes_alliance.analysis.patient_density import patient_loglik
from bayes_alliance.core import vocab as v
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.effects import continuous as ct_effects
from bayes_alliance.inference import posthoc
from bayes_alliance.model.build import build_model
from bayes_alliance.spec.model_spec import ModelSpec

DRIFT = np.array([[-0.15, 0.04], [-0.06, -0.1]])  # per day
DIFFUSION = np.array([[0.25, 0.09], [0.09, 0.36]])
VALUES = {
    v.INTERCEPT_PREDICTOR: 3.1,
    v.INTERCEPT_OUTCOME: 1.8,
    v.SD_PATIENT_PREDICTOR: 0.9,
    v.SD_PATIENT_OUTCOME_TOTAL: 1.2,
    v.TRAIT_CORR_PATIENT: 0.35,
    v.DRIFT_PREDICTOR_AUTOREGRESSION: DRIFT[0, 0],
    v.DRIFT_REVERSE_STATE_EFFECT: DRIFT[0, 1],
    v.DRIFT_STATE_EFFECT: DRIFT[1, 0],
    v.DRIFT_OUTCOME_AUTOREGRESSION: DRIFT[1, 1],
    v.DIFFUSION_SD_PREDICTOR: 0.5,
    v.DIFFUSION_SD_OUTCOME: 0.6,
    v.DIFFUSION_CORR: 0.3,
}


def _frame(seed=0, n_pat=8, n_ses=5, n_ther=None, gaps=0.15):
    """Irregular integer day intervals (1-21), values from a rough process: the tests score
    these data under given parameters, so they need not come from them."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_pat):
        t = 0.0
        for s in range(n_ses):
            t += 0.0 if s == 0 else float(rng.integers(1, 22))
            row = dict(
                patient=f"p{i}", session=s + 1, time=t, x=rng.normal(3, 1), y=rng.normal(2, 1)
            )
            if n_ther:
                row["therapist"] = f"t{i % n_ther}"
            rows.append(row)
    df = pd.DataFrame(rows)
    df.loc[rng.random(len(df)) < gaps, "x"] = np.nan
    df.loc[rng.random(len(df)) < gaps, "y"] = np.nan
    return df


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


def _process_cov(times, drift, diffusion, error=(0.0, 0.0)):
    """Covariance of (x, y) at the given times of the stationary OU process, cell by cell:
    Cov(w(t), w(s)) = expm(A (t - s)) S for t >= s, with S from scipy's Lyapunov solver;
    entries ordered (time 1: x, y; time 2: x, y; ...)."""
    stat = sl.solve_continuous_lyapunov(drift, -diffusion)
    n = len(times)
    cov = np.zeros((2 * n, 2 * n))
    for i, s in enumerate(times):
        for j, t in enumerate(times):
            # E[w(s) w(t)']: S expm(A (t - s))' for t >= s, expm(A (s - t)) S for t < s
            block = (
                (sl.expm(drift * (t - s)) @ stat).T if t >= s else sl.expm(drift * (s - t)) @ stat
            )
            cov[2 * i : 2 * i + 2, 2 * j : 2 * j + 2] = block
    cov += np.kron(np.eye(n), np.diag(error))
    return cov


def _patient_dense(data, p, mean, drift, diffusion, trait=None, error=(0.0, 0.0)):
    """log N(patient p's observed cells | mean, process (+ trait covariance) + error)."""
    times = data.times[p][np.isfinite(data.times[p])]
    cov = _process_cov(times, drift, diffusion, error)
    if trait is not None:
        cov += np.kron(np.ones((len(times), len(times))), trait)
    z = np.column_stack([data.x[p, : len(times)], data.y[p, : len(times)]]).ravel()
    keep = np.isfinite(z)
    m = np.tile(mean, len(times))
    return multivariate_normal(m[keep], cov[np.ix_(keep, keep)]).logpdf(z[keep])


def _posterior(values, n_draws=2):
    return xr.Dataset(
        {
            k: (
                ("chain", "draw", *(("patient",) if np.ndim(x) else ())),
                np.broadcast_to(x, (1, n_draws, *np.shape(x))),
            )
            for k, x in values.items()
        }
    )


def _diffusion(values):
    gx, gy, r = (
        values[k] for k in (v.DIFFUSION_SD_PREDICTOR, v.DIFFUSION_SD_OUTCOME, v.DIFFUSION_CORR)
    )
    return np.array([[gx**2, r * gx * gy], [r * gx * gy, gy**2]])


def _trait(values):
    sx, sy, r = (
        values[k]
        for k in (v.SD_PATIENT_PREDICTOR, v.SD_PATIENT_OUTCOME_TOTAL, v.TRAIT_CORR_PATIENT)
    )
    return np.array([[sx**2, r * sx * sy], [r * sx * sy, sy**2]])


def test_pointwise_loglik_is_the_process_density_given_the_drawn_means():
    """Summed over a patient's cells, the post-hoc pointwise log-likelihood (a dense Gaussian
    check of the per-cell filter) is log p(cells | drawn latent mean) of the process with
    measurement error."""
    data = _data(_frame(seed=3, n_ther=3), therapist="therapist")
    spec = ModelSpec(therapist_level=True, time_model="continuous", measurement_error=True)
    values = {
        **VALUES,
        v.SD_THERAPIST_PREDICTOR: 0.5,
        v.SD_THERAPIST_OUTCOME_TOTAL: 0.7,
        v.TRAIT_CORR_THERAPIST: -0.3,
        v.MEASUREMENT_ERROR_SD_PREDICTOR: 0.3,
        v.MEASUREMENT_ERROR_SD_OUTCOME: 0.4,
    }
    pv, ll = posthoc.complete(_posterior(values), data, spec, 1, log_likelihood=True)
    idx = posthoc.GridIndex.of(data)
    lx, ly = ll["predictor"].values[0, 0], ll["outcome"].values[0, 0]
    for p in range(data.n_patients):
        mean = np.array(
            [pv["trait_predictor"].values[0, 0, p], pv["trait_outcome"].values[0, 0, p]]
        )
        ref = _patient_dense(data, p, mean, DRIFT, _diffusion(values), error=(0.09, 0.16))
        got = lx[idx.obs_x[0] == p].sum() + ly[idx.obs_y[0] == p].sum()
        assert got == pytest.approx(ref, abs=1e-9)
    # the lag effects at the effects interval (default: the data's median interval)
    m = np.median(np.diff(data.times, axis=1)[np.diff(data.times, axis=1) > 0])
    phi = sl.expm(DRIFT * m)
    assert pv[v.STATE_EFFECT].values[0, 0] == pytest.approx(phi[1, 0], rel=1e-12)
    assert pv[v.REVERSE_STATE_EFFECT].values[0, 0] == pytest.approx(phi[0, 1], rel=1e-12)


def test_patient_loglik_matches_dense_gaussian_with_random_cross_effects():
    """Leave-one-patient-out density: the latent mean integrated out, each patient's own
    drift cross effect and the therapist part conditioned on (no therapist correlation, so
    the part is (s_x u_x, s_y u_y) by hand)."""
    data = _data(_frame(seed=4, n_ther=3), therapist="therapist")
    spec = ModelSpec(therapist_level=True, time_model="continuous", random_slopes=("patient",))
    own = np.linspace(-0.09, 0.02, data.n_patients)
    ux, uy = np.array([0.4, -1.1, 0.7]), np.array([-0.2, 0.9, 1.3])
    values = {
        **VALUES,
        v.SD_THERAPIST_PREDICTOR: 0.5,
        v.SD_THERAPIST_OUTCOME_TOTAL: 0.7,
        v.TRAIT_CORR_THERAPIST: 0.0,
        v.SD_STATE_EFFECT_PATIENT: 0.03,
    }
    post = {k: np.full((1, 2), x) for k, x in values.items()}
    post["state_effect_by_patient"] = np.broadcast_to(own, (1, 2, data.n_patients))
    post["therapist_dev_predictor_raw"] = np.broadcast_to(ux, (1, 2, 3))
    post["therapist_dev_outcome_raw"] = np.broadcast_to(uy, (1, 2, 3))
    got = patient_loglik(post, data, spec)
    assert got.shape == (1, 2, data.n_patients)
    for p in range(data.n_patients):
        j = data.patient_therapist[p]
        mean = np.array([3.1 + 0.5 * ux[j], 1.8 + 0.7 * uy[j]])
        drift = DRIFT.copy()
        drift[1, 0] = own[p]
        ref = _patient_dense(data, p, mean, drift, _diffusion(values), trait=_trait(values))
        assert got[0, 0, p] == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("slopes", [(), ("patient",)])
def test_complete_series_take_the_closed_form_and_match_dense_gaussians(slopes):
    """Complete series without measurement error skip the filter (marginal.cell_factor):
    the leave-one-patient-out density integrates the mean (dense Gaussians; this part checks
    the factor), and the pointwise log-likelihood summed per patient is the process density
    given the drawn means, with one drift shared and with each patient's own cross effect."""
    df = _frame(seed=6, n_pat=9, n_ses=6, n_ther=3, gaps=0.0)
    # dropout: series of 6, 4, 2 and 1 cells (complete series may be short)
    keep = df["session"] <= df["patient"].map({"p1": 4, "p4": 2, "p7": 1}).fillna(6)
    data = _data(df[keep], therapist="therapist")
    assert sorted(set(data.in_series.sum(axis=1))) == [1, 2, 4, 6]
    spec = ModelSpec(therapist_level=True, time_model="continuous", random_slopes=slopes)
    assert posthoc.PosthocGrid.of(data, spec).complete_cells
    own = np.linspace(-0.09, 0.02, data.n_patients) if slopes else np.full(9, DRIFT[1, 0])
    ux, uy = np.array([0.4, -1.1, 0.7]), np.array([-0.2, 0.9, 1.3])
    values = {
        **VALUES,
        v.SD_THERAPIST_PREDICTOR: 0.5,
        v.SD_THERAPIST_OUTCOME_TOTAL: 0.7,
        v.TRAIT_CORR_THERAPIST: 0.0,
    }
    post = {k: np.full((1, 2), x) for k, x in values.items()}
    post["therapist_dev_predictor_raw"] = np.broadcast_to(ux, (1, 2, 3))
    post["therapist_dev_outcome_raw"] = np.broadcast_to(uy, (1, 2, 3))
    if slopes:
        post[v.SD_STATE_EFFECT_PATIENT] = np.full((1, 2), 0.03)
        post["state_effect_by_patient"] = np.broadcast_to(own, (1, 2, data.n_patients))
    got = patient_loglik(post, data, spec)
    idx = posthoc.GridIndex.of(data)
    if not slopes:  # the pointwise path reads the drift's pieces, not the completed slopes
        pv, ll = posthoc.complete(_posterior(values), data, spec, 1, log_likelihood=True)
        lx, ly = ll["predictor"].values[0, 0], ll["outcome"].values[0, 0]
    for p in range(data.n_patients):
        drift = DRIFT.copy()
        drift[1, 0] = own[p]
        j = data.patient_therapist[p]
        mean = np.array([3.1 + 0.5 * ux[j], 1.8 + 0.7 * uy[j]])
        ref = _patient_dense(data, p, mean, drift, _diffusion(values), trait=_trait(values))
        assert got[0, 0, p] == pytest.approx(ref, abs=1e-9)
        if not slopes:
            drawn = np.array(
                [pv["trait_predictor"].values[0, 0, p], pv["trait_outcome"].values[0, 0, p]]
            )
            ref = _patient_dense(data, p, drawn, drift, _diffusion(values))
            got_p = lx[idx.obs_x[0] == p].sum() + ly[idx.obs_y[0] == p].sum()
            assert got_p == pytest.approx(ref, abs=1e-9)


def test_model_density_with_random_cross_effects_matches_dense_gaussian():
    """The builder's integrated density with a random cross effect of the drift per patient
    (its raw deviations fixed): each patient's own expm per cell."""
    import pymc as pm

    data = _data(_frame(seed=5, n_pat=6))
    spec = ModelSpec(therapist_level=False, time_model="continuous", random_slopes=("patient",))
    raw = np.linspace(-1.5, 1.2, data.n_patients)
    values = {**VALUES, v.SD_STATE_EFFECT_PATIENT: 0.04, "state_effect_patient_raw": raw}
    model = build_model(data, spec)
    fixed = pm.do(model, {k: np.asarray(x, dtype=float) for k, x in values.items()})
    got = float(fixed.compile_fn(fixed["integrated_series"], inputs=[])({}))
    ref = 0.0
    for p in range(data.n_patients):
        drift = DRIFT.copy()
        drift[1, 0] += 0.04 * raw[p]
        ref += _patient_dense(
            data, p, np.array([3.1, 1.8]), drift, _diffusion(values), trait=_trait(values)
        )
    assert got == pytest.approx(ref, abs=1e-8)


def test_effects_at_the_interval_by_hand():
    """Phi entries at the effects interval against scipy's expm; the within moments: the
    stationary covariance (scipy's Lyapunov solver) is the same at any interval, the part
    predicted by the previous session is Phi S Phi' at that interval."""
    rng = np.random.default_rng(11)
    n = 5
    drifts = [DRIFT + rng.normal(scale=0.01, size=(2, 2)) for _ in range(n)]
    post = {
        name: np.array([[d[i, j] for d in drifts]])
        for name, (i, j) in zip(v.DRIFT_PARAMETERS, ((0, 0), (0, 1), (1, 0), (1, 1)), strict=True)
    }
    post.update(
        {
            v.DIFFUSION_SD_PREDICTOR: np.full((1, n), 0.5),
            v.DIFFUSION_SD_OUTCOME: np.full((1, n), 0.6),
            v.DIFFUSION_CORR: np.full((1, n), 0.3),
        }
    )
    q = _diffusion(VALUES)
    moments = {}
    for dt in (3.0, 14.0):
        spec = ModelSpec(therapist_level=False, time_model="continuous", effects_interval=dt)
        phi = ct_effects.interval_draws(post, spec)
        wm = ct_effects.within_moments(post, spec)
        moments[dt] = wm
        for k, d in enumerate(drifts):
            ref = sl.expm(d * dt)
            assert phi[v.STATE_EFFECT][0, k] == pytest.approx(ref[1, 0], rel=1e-10)
            assert phi[v.PREDICTOR_AUTOREGRESSION][0, k] == pytest.approx(ref[0, 0], rel=1e-10)
            stat = sl.solve_continuous_lyapunov(d, -q)
            pred = ref @ stat @ ref.T
            assert wm["var_y"][0, k] == pytest.approx(stat[1, 1], rel=1e-10)
            assert wm["cov_xy"][0, k] == pytest.approx(stat[0, 1], rel=1e-10)
            assert wm["f1_y"][0, k] == pytest.approx(pred[1, 1], rel=1e-10)
            assert wm["sigma2_x"][0, k] == pytest.approx(stat[0, 0] - pred[0, 0], rel=1e-10)
    # the totals do not depend on the interval; the predicted share does
    np.testing.assert_allclose(moments[3.0]["target_y"], moments[14.0]["target_y"], rtol=1e-12)
    assert np.all(moments[3.0]["f1_y"] > moments[14.0]["f1_y"])
    assert (
        ct_effects.interval_words(ModelSpec(time_model="continuous", effects_interval=7.0))
        == "per 7 days"
    )


def test_within_moments_average_the_patients_own_drifts():
    """With random cross effects: f1 from the fixed cross effect, v12 from the patient's own,
    every term averaged over the patients (scipy per patient)."""
    post = {n: np.array([[DRIFT.ravel()[k]]]) for k, n in enumerate(v.DRIFT_PARAMETERS)}
    post.update(
        {
            v.DIFFUSION_SD_PREDICTOR: np.array([[0.5]]),
            v.DIFFUSION_SD_OUTCOME: np.array([[0.6]]),
            v.DIFFUSION_CORR: np.array([[0.3]]),
        }
    )
    dev = np.array([[[-0.03, 0.0, 0.02, 0.05]]])
    spec = ModelSpec(
        therapist_level=False,
        time_model="continuous",
        effects_interval=7.0,
        random_slopes=("patient",),
    )
    wm = ct_effects.within_moments(post, spec, DRIFT[1, 0] + dev, {v.PATIENT: dev})
    q = _diffusion(VALUES)
    f1 = v12 = var_y = 0.0
    for d in dev.ravel():
        a = DRIFT.copy()
        a[1, 0] += d
        stat = sl.solve_continuous_lyapunov(a, -q)
        fixed, own = sl.expm(DRIFT * 7.0), sl.expm(a * 7.0)
        f1 += (fixed @ stat @ fixed.T)[1, 1] / 4
        v12 += ((own @ stat @ own.T) - (fixed @ stat @ fixed.T))[1, 1] / 4
        var_y += stat[1, 1] / 4
    assert wm["f1_y"][0, 0] == pytest.approx(f1, rel=1e-10)
    assert wm["v12_y"][0, 0] == pytest.approx(v12, rel=1e-10)
    assert wm["var_y"][0, 0] == pytest.approx(var_y, rel=1e-10)
    parts = wm["f1_y"] + wm["v13_y"] + wm["v12_y"] + wm["sigma2_y"]
    np.testing.assert_allclose(parts, wm["target_y"], rtol=1e-12)


def test_cli_fit_on_dates_runs_end_to_end(tmp_path):
    """fit --dates: continuous time, sampled, completed after sampling (it crashed there),
    tables written with the interval in words and recorded in the result's spec."""
    from bayes_alliance.cli import main
    from bayes_alliance.inference.fit import FitResult

    df = _frame(seed=6, n_pat=10, n_ses=5, gaps=0.05)
    df["date"] = (pd.Timestamp("2025-01-06") + pd.to_timedelta(df["time"], unit="D")).dt.strftime(
        "%Y-%m-%d"
    )
    path = tmp_path / "dated.csv"
    df.drop(columns=["session", "time"]).to_csv(path, index=False)
    out = tmp_path / "fit"
    args = ["fit", str(path), "--dates", "--patient", "patient", "--session", "date"]
    args += ["--predictor", "x", "--outcome", "y", "--out", str(out), "--draws", "20"]
    args += ["--tune", "20", "--chains", "2", "--seed", "1", "--quiet"]
    assert main(args) in (0, 3)  # 3: not converged with 20 draws
    result = FitResult.load(out / "fit.nc")
    times = result.data.times
    inner = np.diff(times, axis=1)
    m = float(np.median(inner[np.isfinite(inner) & (inner > 0)]))
    assert result.spec.time_model == "continuous"
    assert result.spec.effects_interval == pytest.approx(m)
    summary = pd.read_csv(out / "summary.csv").set_index("parameter")
    assert f"per {m:g} days" in summary.loc[v.STATE_EFFECT, "label"]
    assert summary.loc[v.DRIFT_STATE_EFFECT, "label"].endswith("per day")
    drift = result.draws(v.DRIFT_STATE_EFFECT)
    assert np.isfinite(result.draws("trait_outcome")).all()
    assert np.isfinite(result.ensure_log_likelihood().log_likelihood["outcome"].values).all()
    assert drift.shape == (2, 20)
