"""The simulator, checked statistically on large draws against its own stated truth."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_alliance import SessionData, datasets, simulate
from bayes_alliance.analysis import classic
from bayes_alliance.kernels import moments

ROLES = dict(
    patient="patient",
    therapist="therapist",
    session="session",
    predictor="alliance",
    outcome="symptoms",
)


def test_same_seed_same_data_and_unknown_settings():
    a, _ = simulate(seed=5, n_therapists=3, p_missing_session=0.1)
    b, _ = simulate(seed=5, n_therapists=3, p_missing_session=0.1)
    c, _ = simulate(seed=6, n_therapists=3, p_missing_session=0.1)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    with pytest.raises(ValueError, match="Did you mean 'state_effect'"):
        simulate(seed=1, state_efect=0.1)
    with pytest.raises(ValueError, match="not stationary"):
        simulate(seed=1, outcome_autoregression=1.2)
    with pytest.raises(ValueError, match="dropout must be in"):
        simulate(seed=1, dropout=1.5)


@pytest.fixture(scope="module")
def big():
    # 150 therapists x 8 patients x 30 sessions, complete: 36,000 sessions.
    return simulate(
        seed=11,
        n_therapists=150,
        patients_per_therapist=8,
        sessions=30,
        state_effect=-0.25,
        reverse_state_effect=0.15,
        innovation_corr=-0.3,
    )


def test_var_parameters_recovered_from_true_states(big):
    _, truth = big
    st = truth.states.sort_values(["patient", "session"])
    z = st[["state_predictor", "state_outcome"]].to_numpy()
    same = st["patient"].to_numpy()[1:] == st["patient"].to_numpy()[:-1]
    prev, cur = z[:-1][same], z[1:][same]
    coef, *_ = np.linalg.lstsq(prev, cur, rcond=None)  # cur = prev @ coef, so Phi = coef.T
    phi_hat = coef.T
    np.testing.assert_allclose(phi_hat, truth.params.phi, atol=0.02)
    resid = cur - prev @ coef
    sd = resid.std(axis=0)
    assert sd == pytest.approx(
        [truth.params.innovation_sd_predictor, truth.params.innovation_sd_outcome], abs=0.01
    )
    assert np.corrcoef(resid.T)[0, 1] == pytest.approx(truth.params.innovation_corr, abs=0.02)
    # Sessions start in the stationary distribution: session-1 states have the stationary covariance.
    first = st[st.session == 1][["state_predictor", "state_outcome"]].to_numpy()
    np.testing.assert_allclose(np.cov(first.T), truth.stationary_within_cov, rtol=0.15)


def test_variance_shares_match_truth_iccs(big):
    df, truth = big
    pat = truth.patients
    n_per = 8
    for var, col in (("predictor", "alliance"), ("outcome", "symptoms")):
        total = df[col].var()
        within = truth.states[f"state_{var}"].var()
        trait = pat[f"trait_{var}"]
        by_ther = trait.groupby(pat["therapist"])
        patient_var = by_ther.var().mean()  # within-therapist spread of the latent patient means
        therapist_var = by_ther.mean().var() - patient_var / n_per  # one-way ANOVA correction
        shares = {
            "session": within / total,
            "patient": patient_var / total,
            "therapist": therapist_var / total,
        }
        for level in ("session", "patient", "therapist"):
            assert shares[level] == pytest.approx(truth.icc[var][level], abs=0.03), (var, level)


def test_random_slopes_and_moderator_enter_state_effects():
    _, truth = simulate(
        seed=2,
        n_therapists=200,
        patients_per_therapist=10,
        sessions=3,
        sd_state_effect_patient=0.1,
        sd_state_effect_therapist=0.05,
        moderator=True,
        moderator_effect=0.08,
    )
    pat = truth.patients
    fit = np.polyfit(pat["moderator"], pat["state_effect"], 1)
    assert fit[0] == pytest.approx(0.08, abs=0.01)
    resid = pat["state_effect"] - np.polyval(fit, pat["moderator"])
    assert resid.var() == pytest.approx(0.1**2 + 0.05**2, rel=0.15)
    ther_means = resid.groupby(pat["therapist"]).mean()
    assert ther_means.var() == pytest.approx(0.05**2 + 0.1**2 / 10, rel=0.3)


def test_missingness_and_dropout_rates():
    df, truth = simulate(
        seed=3,
        n_therapists=100,
        patients_per_therapist=10,
        sessions=(10, 20),
        p_missing_session=0.1,
        p_missing_value=0.05,
        dropout=0.2,
    )
    pat = truth.patients
    assert pat["dropped_out"].mean() == pytest.approx(0.2, abs=0.035)
    st = truth.states
    last_kept = df.groupby("patient")["session"].max()
    st = st.join(last_kept.rename("last_row"), on="patient")
    # Sessions after the first and before the patient's last row are skipped at the asked rate.
    inner = st[(st.session > 1) & (st.session < st.last_row)]
    assert 1 - inner["kept"].mean() == pytest.approx(0.1, abs=0.015)
    assert df["alliance"].isna().mean() == pytest.approx(0.05, abs=0.01)
    assert df["symptoms"].isna().mean() == pytest.approx(0.05, abs=0.01)
    n = df.groupby("patient").size()
    assert n.max() <= 20 and pat["planned_sessions"].between(10, 20).all()


def test_trend_and_informant_columns():
    df, _ = simulate(
        seed=4,
        n_therapists=50,
        patients_per_therapist=8,
        sessions=15,
        trend_outcome=-0.05,
        informant=True,
    )
    slope = np.polyfit(df["session"], df["symptoms"], 1)[0]
    assert slope == pytest.approx(-0.05, abs=0.01)
    assert "alliance_therapist" in df
    r = df[["alliance", "alliance_therapist"]].corr().iloc[0, 1]
    assert 0.2 < r < 0.9


def test_analytic_r2_components_add_up_to_variance(big):
    df, truth = big
    c = truth.r2_components["outcome"]
    # Without random slopes, the components add up to the model-implied variance of y.
    assert sum(c.values()) == pytest.approx(df["symptoms"].var(), rel=0.05)
    assert c["f1"] + c["sigma2"] == pytest.approx(truth.stationary_within_cov[1, 1])


def test_nickell_bias_of_person_mean_centring():
    phi = 0.3
    bias = {}
    for T in (8, 20):
        df, _ = simulate(
            seed=21,
            n_therapists=200,
            patients_per_therapist=10,
            sessions=T,
            state_effect=0.0,
            reverse_state_effect=0.0,
            outcome_autoregression=phi,
            innovation_corr=0.0,
        )
        d = SessionData.from_frame(df, **ROLES)
        bias[T] = classic.within_autoregression(d, "outcome") - phi
    # Nickell (1981): about -(1 + phi) / (T - 1) = -0.186 at T = 8 and -0.068 at T = 20. Over 15
    # seeds this estimator (centred on the mean of all T scores) gave -0.204 (SD 0.008) at T = 8:
    # the approximation is a large-T one, so allow 0.8x to 1.35x of it.
    for T, b in bias.items():
        nickell = -(1 + phi) / (T - 1)
        assert 1.35 * nickell < b < 0.8 * nickell, (T, b, nickell)


def test_example_data_regenerates_from_record():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stored = datasets.load_example()
    fresh, truth = datasets.regenerate_example()
    assert stored.shape == fresh.shape
    pd.testing.assert_frame_equal(
        stored, fresh.astype(stored.dtypes.to_dict()), atol=1e-6, check_dtype=False
    )
    record = datasets.example_record()
    assert record["seed"] == datasets.EXAMPLE_SEED
    assert record["params"]["state_effect"] == truth.params.state_effect
    d = datasets.load_example()
    assert d["therapist"].nunique() == 40
    assert 6 <= d.groupby("therapist")["patient"].nunique().min()
    assert d.groupby("therapist")["patient"].nunique().max() <= 10


def test_truth_json_roundtrip():
    import json

    _, truth = simulate(seed=1, n_therapists=2)
    rec = json.loads(truth.to_json())
    assert set(rec) >= {"params", "design", "seed", "icc", "r2_components", "r2"}
    assert moments.is_stationary(np.array(truth.params.phi))
