"""The mechanism model's series density against the dense joint Gaussian of each patient's
completed series, and its data checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from scipy import stats

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.data.validate import DataValidationError
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.priors import mechanism_priors
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim.mechanisms import simulate_mechanisms


def _tiny(design: str, end: bool = False) -> pd.DataFrame:
    df, _ = simulate_mechanisms(
        seed=5,
        design=design,
        n_therapists=2,
        patients_per_therapist=3,
        n_sessions=6,
        missing=0.1,
        change_sd=0.1 if end else 0.0,
        end_effects=(0.5, 1.0) if end else None,
    )
    # Patient p0001 starts late and p0002 stops early: their rows are absent.
    df = df[~((df.patient == "p0001") & (df.session <= 2))]
    return df[~((df.patient == "p0002") & (df.session >= 5))].reset_index(drop=True)


def _series(df: pd.DataFrame, design: str, end: bool = False) -> SeriesData:
    third = {"mediator": "mediator"} if design == "mediation" else {}
    if design == "informants":
        third = {"second_predictor": "alliance_therapist"}
    return SeriesData.from_frame(
        df,
        patient="patient",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        therapist="therapist",
        end_outcome="post_symptoms" if end else None,
        **third,
    )


def _dense_cov(phi: np.ndarray, cov_e: np.ndarray, cov_1: np.ndarray, t_len: int) -> np.ndarray:
    """Joint covariance of the stacked states (T k) of a VAR(1) with w_1 ~ N(0, cov_1):
    Cov(w_t, w_s) = Phi^(t-s) Var(w_s)."""
    k = phi.shape[0]
    var = [cov_1]
    for _ in range(1, t_len):
        var.append(phi @ var[-1] @ phi.T + cov_e)
    big = np.zeros((t_len * k, t_len * k))
    for t in range(t_len):
        for s in range(t + 1):
            block = np.linalg.matrix_power(phi, t - s) @ var[s]
            big[t * k : (t + 1) * k, s * k : (s + 1) * k] = block
            big[s * k : (s + 1) * k, t * k : (t + 1) * k] = block.T
    return big


def _dense_logp(w: np.ndarray, phi: np.ndarray, cov_e: np.ndarray, cov_1: np.ndarray) -> float:
    """Log density of states w (T, k) by the dense joint covariance of the stacked vector."""
    big = _dense_cov(phi, cov_e, cov_1, w.shape[0])
    return float(stats.multivariate_normal(np.zeros(big.shape[0]), big).logpdf(w.reshape(-1)))


@pytest.mark.parametrize("design", ["mediation", "informants"])
def test_series_density_equals_dense_gaussian(design: str) -> None:
    end = design == "mediation"
    data = _series(_tiny(design, end=end), design, end=end)
    model = build_mechanism_model(data, MechanismSpec(therapist_level=True, traits="sampled"))
    rng = np.random.default_rng(0)
    point = {
        k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in model.initial_point().items()
    }
    series_logp = pt.add(*[p for p in model.potentials if p.name.startswith("series_")])
    names = ["trait", "lag", "sd_innovation", "corr_innovation", "sd_first", "corr_first"]
    if design == "mediation":
        names += ["path_deviation", "change_deviation", "trend"]
    outs = model.replace_rvs_by_values([series_logp] + [model[n] for n in names])
    fn = model.compile_fn(outs, inputs=model.value_vars, point_fn=True, on_unused_input="ignore")
    got, *values = fn(point)
    v = dict(zip(names, values, strict=True))
    cov_e = v["sd_innovation"][:, None] * v["corr_innovation"] * v["sd_innovation"][None, :]
    cov_1 = v["sd_first"][:, None] * v["corr_first"] * v["sd_first"][None, :]
    grid = data.z.copy()
    inside = np.isnan(grid)
    t = np.arange(data.n_sessions)
    filled = grid.reshape(-1)
    miss = np.flatnonzero(
        (inside & ((t >= data.first[:, None]) & (t <= data.last[:, None]))[:, :, None]).reshape(-1)
    )
    filled[miss] = point["missing_values"]
    grid = filled.reshape(grid.shape)
    sessions = data.base.sessions.astype(float)
    want = 0.0
    for i in range(data.n_patients):
        f, last = data.first[i], data.last[i]
        w = grid[i, f : last + 1] - v["trait"][i]
        phi = v["lag"].copy()
        if design == "mediation":
            phi[1, 0] += v["path_deviation"][i, 0]
            phi[2, 1] += v["path_deviation"][i, 1]
            mid = 0.5 * (sessions[f] + sessions[last])
            slope = v["trend"] + v["change_deviation"][i]
            w[:, 0] -= slope * (sessions[f : last + 1] - mid)
        want += _dense_logp(w, phi, cov_e, cov_1)
    assert got == pytest.approx(want, rel=1e-9)


def _end_model(binary: bool = False):
    df = _tiny("mediation", end=True)
    if binary:
        df["post_symptoms"] = (df["post_symptoms"] > df["post_symptoms"].median()).astype(float)
    data = _series(df, "mediation", end=True)
    spec = MechanismSpec(
        therapist_level=True, end_family="binary" if binary else "gaussian", traits="sampled"
    )
    model = build_mechanism_model(data, spec)
    rng = np.random.default_rng(1)
    point = {
        k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in model.initial_point().items()
    }
    return data, model, point


def test_patient_means_and_change_have_the_joint_gaussian_density() -> None:
    """With a trend the means' density and the change's prior term must make the joint MVN of
    (means, slope) with the patient covariance (the change is sampled through its conditional
    moments; its Jacobian is a separate term, tested below)."""
    data, model, point = _end_model()
    terms = model.logp(vars=[model["patient_mean"], model["change_prior"]], sum=False)
    names = ["intercept", "sd_therapist", "corr_therapist", "therapist_offset"]
    names += ["sd_patient", "corr_patient", "trend", "trait", "change_deviation"]
    outs = model.replace_rvs_by_values(
        [pt.add(*[pt.sum(t) for t in terms])] + [model[n] for n in names]
    )
    fn = model.compile_fn(outs, inputs=model.value_vars, point_fn=True, on_unused_input="ignore")
    got, *values = fn(point)
    v = dict(zip(names, values, strict=True))
    k = data.k
    cov_t = v["sd_therapist"][:, None] * v["corr_therapist"] * v["sd_therapist"][None, :]
    ther = v["therapist_offset"] @ np.linalg.cholesky(cov_t).T
    cov_p = v["sd_patient"][:, None] * v["corr_patient"] * v["sd_patient"][None, :]
    assert cov_p.shape == (k + 1, k + 1)
    assert data.patient_therapist is not None
    mean = np.column_stack(
        [v["intercept"] + ther[data.patient_therapist], np.full(data.n_patients, v["trend"])]
    )
    joint = np.column_stack([v["trait"], v["trend"] + v["change_deviation"]])
    dens = stats.multivariate_normal(np.zeros(k + 1), cov_p)
    want = sum(dens.logpdf(joint[i] - mean[i]) for i in range(data.n_patients))
    assert got == pytest.approx(want, rel=1e-9)


def test_change_reliability_is_the_gls_precision_of_the_slopes() -> None:
    """change_reliability = mean_i tau^2 / (tau^2 + Var(delta_i | series)), where the series
    alone give Var = 1 / (x' Omega_i^-1 x), x the stacked derivative of the series in the
    slope (c_t on the predictor) and Omega_i the dense covariance of patient i's states."""
    data, model, point = _end_model()
    names = ["change_reliability", "sd_trend", "lag", "path_deviation"]
    names += ["sd_innovation", "corr_innovation", "sd_first", "corr_first"]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(outs, inputs=model.value_vars, point_fn=True, on_unused_input="ignore")
    v = dict(zip(names, fn(point), strict=True))
    cov_e = v["sd_innovation"][:, None] * v["corr_innovation"] * v["sd_innovation"][None, :]
    cov_1 = v["sd_first"][:, None] * v["corr_first"] * v["sd_first"][None, :]
    sessions = data.base.sessions.astype(float)
    err = []
    for i in range(data.n_patients):
        f, last = data.first[i], data.last[i]
        phi = v["lag"].copy()
        phi[1, 0] += v["path_deviation"][i, 0]
        phi[2, 1] += v["path_deviation"][i, 1]
        t_len = last - f + 1
        x = np.zeros((t_len, data.k))
        x[:, 0] = sessions[f : last + 1] - 0.5 * (sessions[f] + sessions[last])
        omega = _dense_cov(phi, cov_e, cov_1, t_len)
        err.append(1.0 / (x.reshape(-1) @ np.linalg.solve(omega, x.reshape(-1))))
    tau2 = float(v["sd_trend"]) ** 2
    want = np.mean(tau2 / (tau2 + np.asarray(err)))
    assert float(v["change_reliability"]) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("binary", [False, True])
def test_change_offset_is_standard_normal_given_the_rest(binary: bool) -> None:
    """The change is sampled as mean + SD x offset from its exact conditional given everything
    else (series, prior, Gaussian end outcome): the whole model's log density must then be
    -offset^2 / 2 + const in each offset. A binary outcome is left out of the moments, so its
    Bernoulli term is what remains."""
    _, model, point = _end_model(binary)
    fn = model.compile_fn(model.logp(), point_fn=True)
    bern = model.compile_fn(model.logp(vars=[model["end_outcome"]]), point_fn=True)
    for patient in (0, 3):
        got = []
        for z in (-1.5, 0.0, 0.7, 2.0):
            pt_ = {**point, "change_offset": point["change_offset"].copy()}
            pt_["change_offset"][patient] = z
            rest = bern(pt_) if binary else 0.0
            got.append(float(fn(pt_)) - rest + 0.5 * z**2)
        assert np.ptp(got) == pytest.approx(0.0, abs=1e-8), got
    if binary:
        # The Bernoulli term does depend on the offset: the check above is not vacuous.
        moved = {**point, "change_offset": point["change_offset"] + 1.0}
        assert abs(float(bern(moved)) - float(bern(point))) > 1e-3


def test_series_data_checks_name_the_column() -> None:
    df = _tiny("mediation")
    df["mediator"] = df["mediator"].astype(object)
    df.loc[3, "mediator"] = "high"
    with pytest.raises(DataValidationError, match="mediator"):
        _series(df, "mediation")
    with pytest.raises(DataValidationError, match="another role"):
        SeriesData.from_frame(
            _tiny("mediation"),
            patient="patient",
            session="session",
            predictor="alliance",
            outcome="symptoms",
            mediator="alliance",
        )


def test_spec_defaults_and_errors() -> None:
    data = _series(_tiny("mediation"), "mediation")
    spec = MechanismSpec().resolved(data)
    assert spec.random_paths == (("mediator", "predictor"), ("outcome", "mediator"))
    assert spec.trend is False
    with pytest.raises(ValueError, match="no 'second_predictor' series"):
        MechanismSpec(random_paths=(("outcome", "second_predictor"),)).resolved(data)
    informants = _series(_tiny("informants"), "informants")
    assert MechanismSpec().resolved(informants).random_paths == ()
    assert MechanismSpec().design(informants) == "informants"


def _sigma(model, name: str) -> np.ndarray:
    """The scale argument of a normal or half-normal random variable of the model."""
    return np.asarray(model[name].owner.inputs[-1].eval())


def test_priors_follow_the_joint_models_rules() -> None:
    """Each prior scale by hand from the table's SDs: autoregressions 0.5, a lagged path from s
    to t SD_t / SD_s, a random path's SD 0.25 SD_t / SD_s, the trend 0.1 SD_x and its SD
    0.05 SD_x, therapist SDs 0.5 SD (as the joint model's default_priors)."""
    df = _tiny("mediation", end=True)
    data = _series(df, "mediation", end=True)
    spec = MechanismSpec(therapist_level=True)
    sd = np.array([np.nanstd(df[c].to_numpy(dtype=float)) for c in data.columns])
    p = mechanism_priors(data, spec)
    x, m, y = 0, 1, 2
    expected_lag = np.array(
        [
            [0.5, sd[x] / sd[m], sd[x] / sd[y]],
            [sd[m] / sd[x], 0.5, sd[m] / sd[y]],
            [sd[y] / sd[x], sd[y] / sd[m], 0.5],
        ]
    )
    np.testing.assert_allclose(p.lag, expected_lag, rtol=1e-12)
    np.testing.assert_allclose(p.sd_paths, [0.25 * sd[m] / sd[x], 0.25 * sd[y] / sd[m]])
    np.testing.assert_allclose(p.sd_patient, [*sd, 0.05 * sd[x]], rtol=1e-12)
    np.testing.assert_allclose(p.sd_therapist, 0.5 * sd, rtol=1e-12)
    np.testing.assert_allclose(p.intercept_sigma, 2.5 * sd, rtol=1e-12)
    assert p.trend == pytest.approx(0.1 * sd[x], rel=1e-12)
    # The model is built with these numbers.
    model = build_mechanism_model(data, spec)
    np.testing.assert_array_equal(_sigma(model, "lag"), p.lag)
    assert float(_sigma(model, "trend")) == p.trend


def test_the_legacy_rules_restate_the_priors_of_a_file_fitted_by_0_1():
    # The rules of 0.1's mechanism_model.py: every lag N(0, 0.5 SD_to / SD_from), path SDs
    # 0.2 SD_to / SD_from, trend and change SD both SD_x / (sessions of the grid).
    from bayes_alliance.mechanisms.fit import series_provenance
    from bayes_alliance.mechanisms.priors import LEGACY_RULES, PRIOR_RULES

    df = _tiny("mediation", end=True)
    data = _series(df, "mediation", end=True)
    spec = MechanismSpec(therapist_level=True)
    sd = np.array([np.nanstd(df[c].to_numpy(dtype=float)) for c in data.columns])
    old = mechanism_priors(data, spec, rules=LEGACY_RULES)
    np.testing.assert_allclose(old.lag, 0.5 * sd[:, None] / sd[None, :], rtol=1e-12)
    np.testing.assert_allclose(old.sd_paths, [0.2 * sd[1] / sd[0], 0.2 * sd[2] / sd[1]])
    n_sessions = df["session"].max() - df["session"].min() + 1
    assert old.trend == pytest.approx(sd[0] / n_sessions, rel=1e-12)
    assert old.sd_patient[-1] == pytest.approx(sd[0] / n_sessions, rel=1e-12)
    # What is not a rule of its own is the same under both.
    new = mechanism_priors(data, spec)
    np.testing.assert_array_equal(old.sd_innovation, new.sd_innovation)
    # A fit records the rules it used, so its report can restate them.
    assert series_provenance(data)["prior_rules"] == PRIOR_RULES
    with pytest.raises(ValueError, match="unknown prior rules"):
        mechanism_priors(data, spec, rules="0.0")


@pytest.mark.parametrize("traits", ["integrated", "sampled"])
def test_the_therapist_level_has_the_joint_models_priors(traits):
    # Rules 0.3: the therapists' SDs (and the end outcome's therapist SD) Gamma(2) with mean
    # 0.5 SD, the trait correlations LKJ(1); checked on draws from the built model against
    # scipy's Gamma and the LKJ marginal of one correlation of a d x d matrix,
    # (r + 1) / 2 ~ Beta(eta - 1 + d / 2) (Lewandowski, Kurowicka & Joe 2009).
    import pymc as pm

    from bayes_alliance.mechanisms.priors import HALF_NORMAL_RULES

    df = _tiny("mediation", end=True)
    data = _series(df, "mediation", end=True)
    spec = MechanismSpec(therapist_level=True, traits=traits)
    p = mechanism_priors(data, spec)
    assert p.therapist_gamma and p.trait_eta == 1.0
    model = build_mechanism_model(data, spec)
    names = ["sd_therapist", "corr_therapist", "corr_patient", "sd_end_therapist"]
    draws = pm.draw([model[n] for n in names], draws=6000, random_seed=3)
    sd_t, corr_t, corr_p, sd_o = (np.asarray(d) for d in draws)
    for j in range(data.k):
        ref = stats.gamma(a=2.0, scale=p.sd_therapist[j] / 2.0)
        assert stats.kstest(sd_t[:, j], ref.cdf).pvalue > 1e-3, j
    e = p.end
    assert e is not None and e.sd_therapist_sigma is not None
    ref_o = stats.gamma(a=2.0, scale=e.sd_therapist_sigma / 2.0)
    assert stats.kstest(sd_o, ref_o.cdf).pvalue > 1e-3
    for corr in (corr_t, corr_p):  # 3 x 3, and 4 x 4 with the change
        a = 1.0 - 1.0 + corr.shape[-1] / 2.0
        lkj1 = stats.beta(a, a)
        assert stats.kstest((corr[:, 0, 1] + 1) / 2, lkj1.cdf).pvalue > 1e-3, corr.shape
    # The 0.2 rules (half-normal, LKJ(2)) stay available to restate older fits.
    old = mechanism_priors(data, spec, rules=HALF_NORMAL_RULES)
    assert not old.therapist_gamma and old.trait_eta == 2.0
