"""R-squared per component, derived effects, LOO and comparison (issue: effect sizes)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.analysis import comparison
from bayes_alliance.analysis.conflation import conflation_table
from bayes_alliance.analysis.lmm import fit_reml
from bayes_alliance.effects.derived import derived_effects, posterior_arrays, r2_components
from bayes_alliance.kernels import moments, r2

# r2mlm README (mkshaw/r2mlm, data commit d7040ba), table A of r2mlm-teachsat/README.md.
TEACHSAT_PUBLISHED = {
    ("total", "f1"): 0.0817367298644048,
    ("total", "f2"): 0.0650803204186671,
    ("total", "v"): 0.0376662281262814,
    ("total", "m"): 0.363055654986177,
    ("total", "sigma2"): 0.452461066604469,
    ("total", "f"): 0.146817050283072,
    ("total", "fv"): 0.184483278409353,
    ("total", "fvm"): 0.547538933395531,
    ("within", "f1"): 0.142930358177837,
    ("within", "v"): 0.0658657067175134,
    ("within", "f1v"): 0.20879606489535,
    ("within", "sigma2"): 0.79120393510465,
    ("between", "f2"): 0.152008530367315,
    ("between", "m"): 0.847991469632685,
}
# lme4 1.1-31 REML estimates stated in the same README (the inputs behind table A).
TEACHSAT_REML = {
    "g10": 1.539200369619038,
    "g01": -0.445409013666494,
    "t00": 40.462533565377043,
    "t11": 1.091755005987829,
    "t01": -0.333743351327528,
    "sigma2": 50.426761966306955,
}


def _teachsat_r2(d: pd.DataFrame, g10, g01, tau, sigma2):
    return r2.two_level_r2(
        r2.two_level_components(
            gamma_w=np.array([g10]),
            phi_w=np.array([[d["salary_c"].var(ddof=1)]]),
            gamma_b=np.array([g01]),
            phi_b=np.array([[d["s_t_ratio"].var(ddof=1)]]),
            tau=tau,
            sigma_re=np.array([[0.0, 0.0], [0.0, d["salary_c"].var(ddof=1)]]),
            sigma2=sigma2,
        )
    )


def test_teachsat_published_r2mlm_values_at_reml_estimates(reference_dir):
    d = pd.read_csv(reference_dir / "r2mlm-teachsat" / "teachsat_2020_d7040ba.csv")
    e = TEACHSAT_REML
    tau = np.array([[e["t00"], e["t01"]], [e["t01"], e["t11"]]])
    ours = _teachsat_r2(d, e["g10"], e["g01"], tau, e["sigma2"])
    for key, published in TEACHSAT_PUBLISHED.items():
        assert round(float(ours[key]), 4) == round(published, 4), key
        assert float(ours[key]) == pytest.approx(published, abs=1e-10), key


def test_teachsat_with_our_own_reml_fit(reference_dir):
    d = pd.read_csv(reference_dir / "r2mlm-teachsat" / "teachsat_2020_d7040ba.csv")
    one = np.ones(len(d))
    fit = fit_reml(
        d["satisfaction"],
        np.column_stack([one, d["salary_c"], d["s_t_ratio"]]),
        np.column_stack([one, d["salary_c"]]),
        d["schoolID"],
    )
    assert fit.beta[1] == pytest.approx(TEACHSAT_REML["g10"], rel=1e-5)
    assert fit.sigma2 == pytest.approx(TEACHSAT_REML["sigma2"], rel=1e-5)
    ours = _teachsat_r2(d, fit.beta[1], fit.beta[2], fit.random_cov, fit.sigma2)
    for key, published in TEACHSAT_PUBLISHED.items():
        assert float(ours[key]) == pytest.approx(published, abs=5e-5), key


def _post(result):
    import bayes_alliance.core.vocab as v

    return posterior_arrays(result.idata.posterior, list(v.NAMED_PARAMETERS))


def _dense_moments(p):
    """Lag matrix and stationary covariance per draw, by the dense route (not the model's)."""
    phi = moments.lag_matrix(
        p["predictor_autoregression"],
        p["reverse_state_effect"],
        p["state_effect"],
        p["outcome_autoregression"],
    )
    sig = moments.innovation_cov(
        p["innovation_sd_predictor"], p["innovation_sd_outcome"], p["innovation_corr"]
    )
    return phi, moments.stationary_cov(phi, sig)


def test_components_add_up_to_model_implied_variance(recovery):
    *_, result = recovery
    p = _post(result)
    comp = r2_components(p, result.spec, result.design)["outcome"]
    _, s = _dense_moments(p)
    var_y = (
        s[..., 1, 1]
        + p["sd_patient_outcome"] ** 2
        + p["trait_effect_patient"] ** 2 * p["sd_patient_predictor"] ** 2
        + p["sd_therapist_outcome"] ** 2
        + p["trait_effect_therapist"] ** 2 * p["sd_therapist_predictor"] ** 2
    )
    np.testing.assert_allclose(r2.total_variance(comp), var_y, rtol=1e-10)


def test_posterior_r2_covers_monte_carlo_truth(recovery):
    """The truth's within part comes from long simulated series of the recovery population
    (pooled moments of the generated states); the between parts and the innovation variance
    are parameters by definition."""
    from tests.conftest import RECOVERY_SETTINGS
    from tests.test_variance import monte_carlo

    _, truth, _, result = recovery
    keep = {k: v for k, v in RECOVERY_SETTINGS.items() if k in truth.params.__dataclass_fields__}
    mc, _ = monte_carlo(seed=9, **keep)
    p = truth.params
    components = {
        "f1": mc["f1_y"],
        "f2": p.trait_effect_patient**2 * p.sd_patient_predictor**2,
        "f3": p.trait_effect_therapist**2 * p.sd_therapist_predictor**2,
        "v12": 0.0,
        "v13": 0.0,
        "v23": 0.0,
        "m2": p.sd_patient_outcome**2,
        "m3": p.sd_therapist_outcome**2,
        "sigma2": p.innovation_sd_outcome**2,
    }
    true = r2.three_level_r2(components)
    ds = result.r2_draws()
    report = []
    for comp in ("f1", "f2", "m2", "sigma2", "fvm"):
        x = ds["outcome_total"].sel(component_outcome_total=comp).values.ravel()
        lo, hi = np.quantile(x, [0.03, 0.97])
        report.append((comp, float(true[("total", comp)]), round(lo, 4), round(hi, 4)))
        assert lo <= true[("total", comp)] <= hi, report
    x = ds["outcome_level1"].sel(component_outcome_level1="f1").values.ravel()
    assert np.quantile(x, 0.03) <= true[("level1", "f1")] <= np.quantile(x, 0.97)


def test_r2_tables_have_the_documented_shape(recovery):
    *_, result = recovery
    t = result.r2()
    assert list(t.columns) == [
        "equation",
        "denominator",
        "component",
        "label",
        "mean",
        "ci_low",
        "ci_high",
    ]
    assert (
        t.set_index(["equation", "denominator", "component"])
        .loc[("outcome", "total", "f1"), "label"]
        .startswith("state effects and autoregression")
    )
    assert set(t.denominator) == {"total", "level1", "level2", "level3", "model"}
    assert set(t.equation) == {"outcome", "predictor"}
    tot = t[(t.equation == "outcome") & (t.denominator == "total")].set_index("component")["mean"]
    parts = tot[["f1", "f2", "f3", "v12", "v13", "v23", "m2", "m3", "sigma2"]].sum()
    assert parts == pytest.approx(1.0, abs=1e-9)  # mean of shares that add to 1 in every draw
    ds = result.r2_draws()
    assert ds["outcome_total"].dims[:2] == ("chain", "draw")


def test_derived_effects_against_independent_formulas(recovery):
    *_, result = recovery
    p = _post(result)
    d = derived_effects(p, result.spec, result.design)
    phi, s = _dense_moments(p)
    np.testing.assert_allclose(
        d["standardised_state_effect"], p["state_effect"] * np.sqrt(s[..., 0, 0] / s[..., 1, 1])
    )
    np.testing.assert_allclose(
        d["long_run_state_effect_single_equation"],
        p["state_effect"] / (1 - p["outcome_autoregression"]),
    )
    lr = np.linalg.inv(np.eye(2) - phi)
    np.testing.assert_allclose(d["long_run_state_effect"], lr[..., 1, 0])
    for var in ("predictor", "outcome"):
        total = sum(d[f"icc_{var}_{lvl}"] for lvl in ("therapist", "patient", "session"))
        np.testing.assert_allclose(total, 1.0)
    eff = result.effects()
    # A stationary first session imposes stationarity: no probability is reported for it.
    assert "stationary" not in eff.index
    assert "standardised_trait_effect_therapist" in eff.index


def test_loo_units(recovery):
    """Sessions: the stored one-step-ahead conditional scores, summed per session. Patients:
    the marginal density of each patient's observed cells (checked against the dense Gaussian
    in test_patient_density), which is below the conditional scores' sum on average: given
    the latent mean and states, the cells are predicted better than marginally."""
    *_, data, result = recovery
    ll = result.idata.log_likelihood
    total = ll["predictor"].values.sum(-1) + ll["outcome"].values.sum(-1)
    by_session = comparison.pointwise_loglik(result, "session")
    by_patient = comparison.pointwise_loglik(result, "patient")
    np.testing.assert_allclose(by_session.values.sum(-1), total)
    assert by_session.sizes["session_cell"] == int((data.observed_x | data.observed_y).sum())
    assert by_patient.sizes["patient"] == data.n_patients
    assert np.isfinite(by_patient.values).all()
    assert by_patient.values.sum(-1).mean() < total.mean()
    lo = comparison.loo(result, "patient")
    assert lo.n_high_k == 0 or "K-fold" in lo.advice
    # Latent means and missing cells integrated out: stable weights for nearly every patient
    # (which single patient, if any, crosses k = 0.7 varies with the draws: 2 of 14 seeds).
    assert lo.n_high_k <= max(1, data.n_patients // 50)


def test_compare_two_models(recovery):
    from bayes_alliance.inference.fit import fit
    from bayes_alliance.spec.model_spec import ModelSpec

    *_, data, result = recovery
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        single = fit(
            data,
            ModelSpec(equations="outcome", store_states=False),
            draws=300,
            tune=300,
            random_seed=3,
            progressbar=False,
        )
    table = comparison.compare({"bivariate": result, "single": single})
    assert {
        "elpd",
        "se",
        "elpd_diff",
        "dse",
        "weight",
        "n_high_k",
        "r2_fvm",
        "delta_r2_fvm",
    } <= set(table.columns)
    assert table["weight"].sum() == pytest.approx(1.0)
    assert table.loc["bivariate", "delta_r2_fvm"] == 0.0
    # The reverse path and AR of the predictor carry real information here: the VAR wins.
    assert table.index[0] == "bivariate"
    with pytest.raises(ValueError, match="at least two"):
        comparison.compare({"one": result})


def test_conflated_slope_mixes_within_and_between():
    df, _ = simulate(
        seed=4,
        n_therapists=40,
        patients_per_therapist=8,
        sessions=12,
        state_effect=0.25,
        trait_effect_patient=-0.5,
        trait_effect_therapist=-0.5,
    )
    d = SessionData.from_frame(
        df,
        patient="patient",
        therapist="therapist",
        session="session",
        predictor="alliance",
        outcome="symptoms",
    )
    t = conflation_table(d)
    raw, within, between = (
        t.loc["conflated", "slope"],
        t.loc["decomposed", "within"],
        t.loc["decomposed", "between"],
    )
    assert within > 0 > between
    assert between < raw < within  # one slope: a blend of the two, describing neither
    assert t.loc["conflated", "r2_f"] < t.loc["decomposed", "r2_f"]
    assert t.loc["decomposed", "r2_f"] == pytest.approx(
        t.loc["decomposed", "r2_f1"] + t.loc["decomposed", "r2_f2"]
    )
