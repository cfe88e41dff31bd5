"""Measurement error in the effects: R-squared with an error component, within-person
reliabilities, ICCs and Bayesian R-squared of observed scores, and the identification check of
the error SDs.

Truth for the model-implied quantities comes from long simulated series written here in numpy
(a bivariate VAR(1) of the states plus white-noise errors plus latent means), never from the
formulas under test: pooled sample variances of the simulated parts. Tolerances are a few Monte
Carlo SEs (between-patient variances rest on the number of patients, within ones on the cells).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayes_alliance.core import vocab as v
from bayes_alliance.effects import derived, identification, measurement, variance
from bayes_alliance.kernels import r2
from bayes_alliance.spec.model_spec import ModelSpec

PHI = np.array([[0.5, -0.1], [0.3, 0.5]])  # rows: (x, y) at t; columns: (x, y) at t - 1
SD_INN = (0.6, 0.8)
CORR = 0.3
OMEGA = (0.5, 0.7)  # measurement-error SDs
BETA, SD_PX, SD_PY = 0.8, 1.0, 0.6  # trait effect, trait SDs (patients)


# ---------------------------------------------------------------------- exact kernel values


def test_two_level_shares_with_an_error_component_by_hand():
    c = {"f1": 1.0, "f2": 2.0, "v": 0.5, "m": 1.5, "sigma2": 3.0, "omega2": 2.0}
    out = r2.two_level_r2(c)  # within 6.5, between 3.5, total 10
    assert out[("within", "omega2")] == pytest.approx(2.0 / 6.5)
    assert out[("within", "sigma2")] == pytest.approx(3.0 / 6.5)
    assert out[("within", "f1v")] == pytest.approx(1.5 / 6.5)
    assert out[("total", "omega2")] == pytest.approx(0.2)
    assert out[("total", "sigma2")] == pytest.approx(0.3)
    assert out[("total", "fvm")] == pytest.approx(0.5)
    assert out[("between", "m")] == pytest.approx(1.5 / 3.5)
    # Within shares add to 1 with the error: f1 + v + sigma2 + omega2 is the within variance.
    within = sum(out[("within", k)] for k in ("f1", "v", "sigma2", "omega2"))
    assert within == pytest.approx(1.0)
    without = r2.two_level_r2({k: val for k, val in c.items() if k != "omega2"})
    assert not any(m == "omega2" for _, m in without)
    assert without[("within", "sigma2")] == pytest.approx(3.0 / 4.5)
    assert without[("total", "sigma2")] == pytest.approx(3.0 / 8.0)


def test_three_level_shares_with_an_error_component_by_hand():
    c = {
        "f1": 1.0,
        "f2": 2.0,
        "f3": 0.5,
        "v12": 0.25,
        "v13": 0.25,
        "v23": 0.0,
        "m2": 1.0,
        "m3": 0.5,
        "sigma2": 2.0,
        "omega2": 1.5,
        "time": 1.0,
    }
    out = r2.three_level_r2(c)  # L1 5, L2 3, L3 1, total 10 with time
    assert out[("level1", "omega2")] == pytest.approx(0.3)
    assert out[("level1", "sigma2")] == pytest.approx(0.4)
    assert out[("total", "omega2")] == pytest.approx(0.15)
    assert out[("total", "time")] == pytest.approx(0.1)
    assert out[("level2", "m2")] == pytest.approx(1.0 / 3.0)
    assert ("level2", "omega2") not in out and ("level3", "omega2") not in out
    level1 = sum(out[("level1", k)] for k in ("f1", "v12", "v13", "sigma2", "omega2"))
    assert level1 == pytest.approx(1.0)
    assert r2.total_variance(c) == pytest.approx(10.0)


def test_component_builders_add_the_error_only_when_given():
    kw = dict(gamma_w=None, phi_w=None, gamma_b=None, phi_b=None, tau=None, sigma_re=None)
    assert "omega2" not in r2.two_level_components(**kw, sigma2=1.0)
    assert float(r2.two_level_components(**kw, sigma2=1.0, omega2=0.25)["omega2"]) == 0.25
    kw3 = {
        k: None
        for k in (
            "gamma1 phi1 gamma2 phi2 gamma3 phi3 tau2_slopes sigma1_slopes tau3_slopes1 "
            "tau3_slopes2 sigma2_slopes"
        ).split()
    }
    assert "omega2" not in r2.three_level_components(**kw3, m2=1.0, m3=1.0, sigma2=1.0)
    c = r2.three_level_components(**kw3, m2=1.0, m3=1.0, sigma2=1.0, omega2=0.5)
    assert float(c["omega2"]) == 0.5


def test_reliability_by_hand():
    assert float(measurement.reliability(3.0, 1.0)) == 0.75
    assert measurement.reliability(np.array([1.0, 0.0]), np.array([1.0, 2.0])).tolist() == [0.5, 0]


# --------------------------------------------------------------------- Monte Carlo truth


def simulate_series(slope_sd: float, seed: int = 3, n_pat: int = 20_000, n_ses: int = 60):
    """Latent means + bivariate VAR(1) states + white-noise errors, patients x sessions (after
    a burn-in), with each patient's own state effect when ``slope_sd`` > 0."""
    rng = np.random.default_rng(seed)
    cov = np.array(
        [
            [SD_INN[0] ** 2, CORR * SD_INN[0] * SD_INN[1]],
            [CORR * SD_INN[0] * SD_INN[1], SD_INN[1] ** 2],
        ]
    )
    chol = np.linalg.cholesky(cov)
    slope = PHI[1, 0] + slope_sd * rng.standard_normal(n_pat)
    burn = 40
    w = np.zeros((n_pat, 2))
    keep = {k: np.empty((n_pat, n_ses)) for k in ("wx", "wy", "fit_y", "u_y")}
    for t in range(burn + n_ses):
        u = rng.standard_normal((n_pat, 2)) @ chol.T
        fit_y = slope * w[:, 0] + PHI[1, 1] * w[:, 1]
        x_new = PHI[0, 0] * w[:, 0] + PHI[0, 1] * w[:, 1] + u[:, 0]
        w = np.stack([x_new, fit_y + u[:, 1]], axis=1)
        if t >= burn:
            s = t - burn
            keep["wx"][:, s], keep["wy"][:, s] = w[:, 0], w[:, 1]
            keep["fit_y"][:, s], keep["u_y"][:, s] = fit_y, u[:, 1]
    bx = SD_PX * rng.standard_normal(n_pat)
    my = BETA * bx + SD_PY * rng.standard_normal(n_pat)
    ex = OMEGA[0] * rng.standard_normal((n_pat, n_ses))
    ey = OMEGA[1] * rng.standard_normal((n_pat, n_ses))
    return {
        **keep,
        "mx": bx[:, None] + 0 * ex,
        "my": my[:, None] + 0 * ey,
        "ex": ex,
        "ey": ey,
        "x": bx[:, None] + keep["wx"] + ex,
        "y": my[:, None] + keep["wy"] + ey,
    }


def posterior(slope_sd: float) -> dict[str, np.ndarray]:
    """The simulation's parameters as one 'draw' (0-d arrays)."""
    p = {
        v.PREDICTOR_AUTOREGRESSION: PHI[0, 0],
        v.REVERSE_STATE_EFFECT: PHI[0, 1],
        v.STATE_EFFECT: PHI[1, 0],
        v.OUTCOME_AUTOREGRESSION: PHI[1, 1],
        v.INNOVATION_SD_PREDICTOR: SD_INN[0],
        v.INNOVATION_SD_OUTCOME: SD_INN[1],
        v.INNOVATION_CORR: CORR,
        v.TRAIT_EFFECT_PATIENT: BETA,
        v.SD_PATIENT_PREDICTOR: SD_PX,
        v.SD_PATIENT_OUTCOME: SD_PY,
        v.MEASUREMENT_ERROR_SD_PREDICTOR: OMEGA[0],
        v.MEASUREMENT_ERROR_SD_OUTCOME: OMEGA[1],
    }
    if slope_sd:
        p[v.SD_STATE_EFFECT_PATIENT] = slope_sd
    return {k: np.asarray(val, dtype=float) for k, val in p.items()}


def spec_of(slope_sd: float, error: bool = True) -> ModelSpec:
    slopes = ("patient",) if slope_sd else ()
    return ModelSpec(therapist_level=False, random_slopes=slopes, measurement_error=error)


DESIGN = variance.Design(
    None, None, np.array([0]), np.ones((1, 60)), np.ones((1, 60)), np.arange(60.0)
)


@pytest.fixture(scope="module", params=[0.0, 0.15], ids=["fixed_slope", "random_slopes"])
def case(request):
    return request.param, simulate_series(request.param)


def test_r2_shares_with_measurement_error_match_monte_carlo(case):
    slope_sd, sim = case
    comps = derived.r2_components(posterior(slope_sd), spec_of(slope_sd), DESIGN)
    y = comps[v.OUTCOME]
    assert float(y["omega2"]) == pytest.approx(OMEGA[1] ** 2)
    shares = r2.two_level_r2(y)
    within_obs = (sim["y"] - sim["my"]).var()  # observed within variance: state + error
    total_obs = sim["y"].var()
    mc = {
        ("within", "omega2"): sim["ey"].var() / within_obs,
        ("within", "sigma2"): sim["u_y"].var() / within_obs,
        ("within", "f1v"): sim["fit_y"].var() / within_obs,
        ("total", "omega2"): sim["ey"].var() / total_obs,
        ("total", "sigma2"): sim["u_y"].var() / total_obs,
    }
    for key, truth in mc.items():
        assert float(shares[key]) == pytest.approx(truth, rel=0.01), key
    # Between shares rest on 20,000 patients' draws: a wider tolerance.
    assert float(shares[("total", "fvm")]) == pytest.approx(
        1 - (sim["u_y"].var() + sim["ey"].var()) / total_obs, rel=0.03
    )
    x = r2.two_level_r2(comps[v.PREDICTOR])
    assert float(x[("within", "omega2")]) == pytest.approx(
        sim["ex"].var() / (sim["x"] - sim["mx"]).var(), rel=0.01
    )


def test_reliability_and_observed_iccs_match_monte_carlo(case):
    slope_sd, sim = case
    eff = derived.derived_effects(posterior(slope_sd), spec_of(slope_sd), DESIGN)
    for var, w, z, m in (("predictor", "wx", "x", "mx"), ("outcome", "wy", "y", "my")):
        # The pooled within variance of the states over the observed scores' (ratio of
        # averages over patients with their own slopes).
        truth = sim[w].var() / (sim[z] - sim[m]).var()
        assert float(eff[f"reliability_{var}"]) == pytest.approx(truth, rel=0.02), var
        # ICCs of the observed scores: the error is in the session-level share.
        assert float(eff[f"icc_{var}_session"]) == pytest.approx(
            (sim[z] - sim[m]).var() / sim[z].var(), rel=0.03
        ), var
        assert float(eff[f"icc_{var}_patient"]) == pytest.approx(
            sim[m].var() / sim[z].var(), rel=0.04
        ), var
    # Standardised state effects stay in units of the error-free states.
    no_error = derived.derived_effects(posterior(slope_sd), spec_of(slope_sd, False), DESIGN)
    assert float(eff["standardised_state_effect"]) == float(no_error["standardised_state_effect"])


def test_without_measurement_error_nothing_is_added():
    post = posterior(0.0)
    spec = spec_of(0.0, error=False)
    comps = derived.r2_components(post, spec, DESIGN)
    assert all("omega2" not in c for c in comps.values())
    eff = derived.derived_effects(post, spec, DESIGN)
    assert not any(k.startswith("reliability") for k in eff)
    wm = variance.within_moments(post, spec, DESIGN)
    # ICCs of the states alone, computed exactly as before.
    var_bx = SD_PX**2
    assert float(eff["icc_predictor_patient"]) == float(var_bx / (wm["var_x"] + var_bx))
    ds = derived.r2_dataset(
        {eq: {k: np.full((1, 1), float(val)) for k, val in c.items()} for eq, c in comps.items()},
        three_level=False,
    )
    assert "omega2" not in ds["outcome_within"]["component_outcome_within"].values


def test_three_level_components_carry_the_error_at_level_one():
    post = {**posterior(0.0), v.SD_THERAPIST_PREDICTOR: np.asarray(0.3)}
    spec = ModelSpec(measurement_error=True)
    comps = derived.r2_components(post, spec, DESIGN)[v.OUTCOME]
    assert list(comps)[-1] == "omega2"
    shares = r2.three_level_r2(comps)
    wm = variance.within_moments(post, spec, DESIGN)
    assert float(shares[("level1", "omega2")]) == pytest.approx(
        OMEGA[1] ** 2 / (float(wm["target_y"]) + OMEGA[1] ** 2)
    )


def test_bayesian_r2_of_observed_scores_counts_the_error():
    """With the true latent means and states as every draw, the whole-model R-squared is the
    share of the observed outcome's variance (over cells with a previous session) that the
    fit explains: the rest is innovation plus measurement error."""
    n = 2000  # patients: the fit's variance has a Monte Carlo error below 1%
    sim = simulate_series(0.0, seed=9, n_pat=n)
    dims = ("chain", "draw", "patient", "session")
    one = {k: sim[k][:n][None, None] for k in ("wx", "wy")}
    post = xr.Dataset(
        {
            "state_predictor": (dims, one["wx"]),
            "state_outcome": (dims, one["wy"]),
            "trait_outcome": (("chain", "draw", "patient"), sim["my"][:n, 0][None, None]),
            **{
                k: (("chain", "draw"), np.full((1, 1), float(val)))
                for k, val in posterior(0.0).items()
            },
        }
    )
    y = sim["y"][:n]
    spec = spec_of(0.0)
    got = float(derived.bayesian_r2(post, y, spec)[0, 0])
    fit = sim["my"][:n, 1:] + sim["fit_y"][:n, 1:]
    truth = fit.var() / y[:, 1:].var()
    assert got == pytest.approx(truth, rel=0.02)
    # The error-free formula would call the error part of the fit (observed minus state).
    naive = float(derived.bayesian_r2(post, y, spec_of(0.0, error=False))[0, 0])
    assert naive > got + 0.02


# ------------------------------------------------------------------------ identification


def test_prior_draws_are_flagged_and_narrow_posteriors_are_not():
    rng = np.random.default_rng(5)
    s = 0.8
    prior = np.abs(rng.normal(0.0, s, (2, 2000)))
    narrow = rng.normal(0.4, 0.05, (2, 2000))
    ratio, cover = identification.prior_closeness(prior, s)
    assert ratio == pytest.approx(1.0, abs=0.05) and cover > 0.95
    msgs = identification.error_identification(
        {"measurement_error_sd_predictor": prior, "measurement_error_sd_outcome": narrow},
        {"measurement_error_sd_predictor": s, "measurement_error_sd_outcome": s},
    )
    assert len(msgs) == 1
    assert msgs[0].startswith("measurement_error_sd_predictor: its posterior is close to its prior")
    assert "two modes" not in msgs[0]


def test_two_mode_mixture_is_flagged():
    rng = np.random.default_rng(6)
    mix = np.concatenate([rng.normal(0.1, 0.03, 1500), rng.normal(0.5, 0.05, 2500)])
    assert identification.is_bimodal(mix)
    msgs = identification.error_identification({"omega": mix}, {"omega": 0.8})
    assert len(msgs) == 1 and "two modes" in msgs[0] and "close to its prior" not in msgs[0]


@pytest.mark.parametrize("seed", range(5))
def test_unimodal_posteriors_are_not_bimodal(seed):
    rng = np.random.default_rng(seed)
    for draws in (
        np.abs(rng.normal(0.0, 0.8, 4000)),  # a half-normal: its mode at the boundary
        rng.normal(0.4, 0.05, 4000),
        rng.gamma(3.0, 0.1, 4000),  # skewed
        np.concatenate([rng.normal(0.3, 0.05, 3600), rng.normal(0.6, 0.05, 400)]),  # 10% bump
    ):
        assert not identification.is_bimodal(draws)


def test_identification_skips_what_it_cannot_check():
    assert identification.error_identification({"a": np.ones(10)}, {"a": 1.0}) == []
    assert identification.error_identification({}, {"a": 1.0}) == []
    assert identification.error_identification({"a": np.full(100, np.nan)}, {"a": 1.0}) == []


@pytest.mark.parametrize("option", ["trend", "session_means"])
def test_bayesian_r2_mean_surface_with_session_means_or_trends(option):
    """The latent-mean surface built from the drawn latent means equals observed minus state
    when the error is 0: both paths of the Bayesian R-squared then agree."""
    rng = np.random.default_rng(4)
    n_p, n_s = 40, 9
    offsets = np.arange(n_s, dtype=float)
    wx, wy = rng.normal(size=(2, 1, 3, n_p, n_s))
    my = rng.normal(size=(1, 3, n_p))
    base = {k: np.full((1, 3), float(val)) for k, val in posterior(0.0).items()}
    base[v.MEASUREMENT_ERROR_SD_OUTCOME] = np.zeros((1, 3))
    if option == "trend":
        raw = rng.normal(size=(1, 3, n_p))
        base |= {v.TREND_OUTCOME: np.full((1, 3), 0.1), v.SD_TREND_OUTCOME: np.full((1, 3), 0.05)}
        known = 2.0 + (0.1 + 0.05 * raw[..., None]) * offsets
        extra = {"trend_outcome_raw": (("chain", "draw", "patient"), raw)}
        trait = 2.0 + my
    else:
        mu = rng.normal(size=(1, 3, n_s))
        known = np.broadcast_to(mu[:, :, None, :], wy.shape)
        extra = {"session_mean_outcome": (("chain", "draw", "session"), mu)}
        trait = mu.mean(axis=-1)[..., None] + my
    # One set of observed scores that every draw explains exactly (draws differ in states).
    y = (known + my[..., None] + wy)[0, 0]
    wy = y[None, None] - known - my[..., None]
    dims = ("chain", "draw", "patient", "session")
    post = xr.Dataset(
        {
            "state_predictor": (dims, wx),
            "state_outcome": (dims, wy),
            "trait_outcome": (("chain", "draw", "patient"), trait),
            **{k: (("chain", "draw"), val) for k, val in base.items()},
            **extra,
        }
    )
    with_error = ModelSpec(therapist_level=False, measurement_error=True, **{option: True})
    plain = ModelSpec(therapist_level=False, **{option: True})
    got = derived.bayesian_r2(post, y, with_error, offsets)
    assert np.allclose(got, derived.bayesian_r2(post, y, plain), rtol=1e-10)
    if option == "trend":
        with pytest.warns(RuntimeWarning, match="offsets"):
            assert np.isnan(derived.bayesian_r2(post, y, with_error)).all()
