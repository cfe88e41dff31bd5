"""Model options, prior overrides and builder errors (no sampling)."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayes_alliance import SessionData, simulate
from bayes_alliance.model.build import build_model
from bayes_alliance.spec.model_spec import ModelSpec


@pytest.fixture(scope="module")
def data() -> SessionData:
    df, _ = simulate(
        seed=5,
        n_therapists=4,
        patients_per_therapist=3,
        sessions=6,
        p_missing_value=0.1,
        moderator=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_frame(
            df,
            patient="patient",
            therapist="therapist",
            session="session",
            predictor="alliance",
            outcome="symptoms",
            covariates=["moderator"],
        )


def free_names(model: pm.Model) -> set[str]:
    return {rv.name for rv in model.free_RVs}


def test_default_three_level_model_names(data):
    m = build_model(data)
    spec = ModelSpec()
    named = set(spec.free_parameters())
    assert named - {"trait_effect_therapist"} <= free_names(m) | set(m.named_vars)
    # Integrated traits: the latent means are not parameters of the sampler.
    # ...and neither are missing cells (a Kalman filter integrates them out).
    assert not [n for n in free_names(m) if n.startswith("missing_")]
    assert "segment_first" in m.named_vars  # short gaps in closed form, the rest filtered
    assert not {"trait_predictor", "trait_outcome"} & set(m.named_vars)
    assert "integrated_series" in m.named_vars
    m = build_model(data, ModelSpec(traits="sampled"))
    assert {"trait_predictor", "trait_outcome", "missing_predictor_offset"} <= free_names(m)
    assert {"state_predictor", "state_outcome"} <= set(m.named_vars)
    assert m.named_vars_to_dims["state_outcome"] == ("patient", "session")


@pytest.mark.parametrize(
    ("spec", "present", "absent"),
    [
        (
            ModelSpec(therapist_level=False),
            {"sd_patient_predictor"},
            {"sd_therapist_predictor", "trait_effect_therapist"},
        ),
        (
            ModelSpec(equations="outcome"),
            {"state_effect"},
            {"predictor_autoregression", "reverse_state_effect", "innovation_corr"},
        ),
        (
            ModelSpec(random_slopes=("patient", "therapist")),
            {"sd_state_effect_patient", "sd_state_effect_therapist", "state_effect_by_patient"},
            set(),
        ),
        (
            ModelSpec(moderators=("moderator",)),
            {"moderator_effect", "state_effect_by_patient"},
            set(),
        ),
        (
            ModelSpec(same_session="predictor_to_outcome"),
            {"same_session_effect"},
            {"innovation_corr"},
        ),
        (
            ModelSpec(session_means=True, first_session="free"),
            {"session_mean_predictor", "first_corr"},
            {"intercept_predictor"},
        ),
        (ModelSpec(trend=True), {"trend_outcome", "sd_trend_predictor"}, set()),
        (ModelSpec(store_states=False), set(), {"state_predictor"}),
        (
            ModelSpec(dynamics="none", same_session="predictor_to_outcome"),
            {"same_session_effect"},
            {"state_effect", "outcome_autoregression"},
        ),
    ],
)
@pytest.mark.parametrize("traits", ["integrated", "sampled"])
def test_options_switch_parts_on_and_off(data, spec, present, absent, traits):
    m = build_model(data, ModelSpec(**{**spec.to_dict(), "traits": traits}))
    names = set(m.named_vars)
    if traits == "integrated":  # per-patient quantities are computed after sampling
        present = present - {"state_effect_by_patient"}
    assert present <= names, present - names
    assert not (absent & names), absent & names
    for p in spec.free_parameters():
        assert p in names


def test_prior_override_is_applied(data):
    spec = ModelSpec(priors={"state_effect": {"dist": "Normal", "mu": 0.1, "sigma": 0.123}})
    m = build_model(data, spec)
    lp = pm.logp(m["state_effect"], 0.3).eval()
    assert lp == pytest.approx(stats.norm(0.1, 0.123).logpdf(0.3))
    spec = ModelSpec(priors={"innovation_sd_outcome": {"dist": "Exponential", "lam": 2.0}})
    m = build_model(data, spec)
    assert pm.logp(m["innovation_sd_outcome"], 0.5).eval() == pytest.approx(
        stats.expon(scale=0.5).logpdf(0.5)
    )


def test_default_priors_scale_with_the_data(data):
    m = build_model(data)
    sd_y = float(np.nanstd(data.y))
    # sd_patient_outcome_total ~ HalfNormal(sd of y): log density at 0 log(sqrt(2 / pi) / sd_y).
    assert pm.logp(m["sd_patient_outcome_total"], 0.0).eval() == pytest.approx(
        np.log(np.sqrt(2 / np.pi) / sd_y)
    )


def test_trait_correlation_prior_is_lkj2_and_the_regression_form_is_derived(data):
    """Each trait level is a covariance: the correlation has the LKJ(eta) density of a 2 x 2
    correlation matrix, (1 - r^2)^(eta - 1) normalised: 1/2 at the default eta = 1, and
    3/4 (1 - r^2) at eta = 2 (by hand: the integral of 1 - r^2 over (-1, 1) is 4/3); the trait
    effect and residual SD are deterministics of it."""
    m = build_model(data)
    lkj2 = build_model(
        data, ModelSpec(priors={"trait_corr_patient": {"dist": "LKJCorr", "eta": 2.0}})
    )
    for r in (-0.6, 0.0, 0.3):
        assert pm.logp(m["trait_corr_patient"], r).eval() == pytest.approx(np.log(0.5), abs=1e-6)
        lp = pm.logp(lkj2["trait_corr_patient"], r).eval()
        assert lp == pytest.approx(np.log(0.75 * (1 - r**2)), abs=1e-6)
    names = {d.name for d in m.deterministics}
    assert {"trait_effect_patient", "sd_patient_outcome"} <= names
    assert "trait_effect_patient" not in {rv.name for rv in m.free_RVs}
    point = {
        "sd_patient_predictor": 0.5,
        "sd_patient_outcome_total": 0.8,
        "trait_corr_patient": -0.6,
    }
    f = m.compile_fn(
        [m["trait_effect_patient"], m["sd_patient_outcome"]],
        inputs=[m[k] for k in point],
        on_unused_input="ignore",
    )
    beta, resid = f(point)
    # beta = cov / var = (-0.6 * 0.5 * 0.8) / 0.25; residual SD = 0.8 sqrt(1 - 0.36)
    assert float(beta) == pytest.approx(-0.96)
    assert float(resid) == pytest.approx(0.64)


def test_a_prior_on_a_derived_parameter_says_what_to_set(data):
    prior = {"trait_effect_therapist": {"dist": "Normal", "mu": 0, "sigma": 1}}
    with pytest.raises(ValueError, match="trait_corr_<level>"):
        build_model(data, ModelSpec(priors=prior))


def test_lag0_and_moderator_priors_are_on_the_data_scale(data):
    """Slopes are scaled like the lagged effects: x -> y by sd_y / sd_x, y -> x by its inverse,
    a moderator of the state effect by the state effect's scale over the moderator's SD."""
    sd_x, sd_y = float(np.nanstd(data.x)), float(np.nanstd(data.y))
    for direction, sigma in (
        ("predictor_to_outcome", sd_y / sd_x),
        ("outcome_to_predictor", sd_x / sd_y),
    ):
        m = build_model(data, ModelSpec(same_session=direction))
        assert pm.logp(m["same_session_effect"], 0.0).eval() == pytest.approx(
            stats.norm(0, sigma).logpdf(0.0)
        )
    m = build_model(data, ModelSpec(moderators=("moderator",)))
    sd_z = data.covariates["moderator"].std(ddof=0)
    lp = pm.logp(m["moderator_effect"], np.zeros(1)).eval()
    assert lp[0] == pytest.approx(stats.norm(0, 0.5 * sd_y / sd_x / sd_z).logpdf(0.0))


def test_session_specific_innovations_have_a_session_dim(data):
    m = build_model(data, ModelSpec(innovations="session", first_session="free"))
    assert m.named_vars_to_dims["innovation_sd_outcome"] == ("innovation_session",)
    assert list(m.coords["innovation_session"]) == list(data.sessions[1:])


def test_unknown_prior_name_suggests(data):
    with pytest.raises(
        ValueError, match=r"unknown parameter in priors 'state_efect'\. Did you mean 'state_effect'"
    ):
        build_model(
            data, ModelSpec(priors={"state_efect": {"dist": "Normal", "mu": 0, "sigma": 1}})
        )
    # A parameter that this model does not have is also unknown here.
    with pytest.raises(ValueError, match="unknown parameter in priors 'sd_state_effect_patient'"):
        build_model(
            data, ModelSpec(priors={"sd_state_effect_patient": {"dist": "HalfNormal", "sigma": 1}})
        )


def test_bad_prior_specifications():
    with pytest.raises(ValueError, match=r"unknown distribution 'Normall'\. Did you mean 'Normal'"):
        ModelSpec(priors={"state_effect": {"dist": "Normall"}})
    with pytest.raises(ValueError, match="must be a mapping with a 'dist' key"):
        ModelSpec(priors={"state_effect": 0.5})


def test_bad_prior_arguments_are_named():
    with pytest.raises(ValueError, match="prior for 'state_effect': Normal has no argument 'mean'"):
        ModelSpec(priors={"state_effect": {"dist": "Normal", "mean": 0}})
    with pytest.raises(ValueError, match="Did you mean 'sigma'"):
        ModelSpec(priors={"state_effect": {"dist": "Normal", "sigm": 1}})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"equations": "trivariate"}, "equations must be one of"),
        ({"random_slopes": ("clinic",)}, "unknown random-slope level 'clinic'"),
        ({"therapist_level": False, "random_slopes": ("therapist",)}, "need therapist_level=True"),
        ({"equations": "outcome", "same_session": "predictor_to_outcome"}, "no same-session path"),
        ({"dynamics": "none", "random_slopes": ("patient",)}, "need dynamics='var1'"),
        ({"first_session": "fixed"}, "first_session must be one of"),
        ({"session_means": True, "trend": True}, "session_means and trend together are not"),
        ({"innovations": "session"}, "needs dynamics='var1' and first_session='free'"),
        ({"innovations": "wave"}, "innovations must be one of"),
    ],
)
def test_spec_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelSpec(**kwargs)


def test_spec_roundtrip_and_unknown_option():
    spec = ModelSpec(
        random_slopes=("patient",), priors={"state_effect": {"dist": "Normal", "mu": 0, "sigma": 1}}
    )
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="Did you mean 'random_slopes'"):
        ModelSpec.from_dict({"random_slope": ["patient"]})


def test_builder_errors_name_the_problem(data):
    with pytest.raises(
        ValueError, match=r"moderator\(s\) \['severity'\] are not patient covariates"
    ):
        build_model(data, ModelSpec(moderators=("severity",)))
    two_level = SessionData.from_frame(
        data.to_long().drop(columns=["therapist", "therapist_code"]),
        patient="patient",
        session="session",
        predictor="predictor",
        outcome="outcome",
    )
    with pytest.raises(ValueError, match="data have no therapist column"):
        build_model(two_level, ModelSpec(therapist_level=True))
    df = data.frame.copy()
    df.loc[df["patient"] == data.patients[0], "moderator"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d2 = SessionData.from_frame(
            df,
            patient="patient",
            therapist="therapist",
            session="session",
            predictor="alliance",
            outcome="symptoms",
            covariates=["moderator"],
        )
    # The moderator also adjusts the latent means as a covariate: that check comes first.
    with pytest.raises(
        ValueError, match=r"(moderator|covariate column) values are missing for patients"
    ):
        build_model(d2, ModelSpec(moderators=("moderator",)))


def test_convergence_failure_warns_loudly(data):
    from bayes_alliance.core.diagnostics import ConvergenceWarning
    from bayes_alliance.inference.fit import fit

    with pytest.warns(
        ConvergenceWarning, match="CONVERGENCE CHECK FAILED.*What to change: .*run longer"
    ):
        r = fit(
            data,
            ModelSpec(therapist_level=False, store_states=False),
            draws=20,
            tune=20,
            random_seed=1,
            progressbar=False,
        )
    assert not r.convergence.ok
    assert r.convergence.to_dict()["problems"]
