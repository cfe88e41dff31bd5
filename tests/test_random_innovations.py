"""Random innovation variances (issue 24, item 3): the patients' average innovation covariance
against Monte Carlo, the simulator's per-patient innovation SDs, and one fit whose SDs of the
log innovation SDs cover the truth and whose post-hoc paths (states, replicates, patient
densities for LOO, predictive check) run with per-patient innovation covariances."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.core import vocab as v
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.unit_group import posterior_of
from bayes_alliance.model.structure import innovation_cov, lookup
from bayes_alliance.model.variability import average_innovations
from bayes_alliance.spec.model_spec import ModelSpec


def test_average_innovation_covariance_matches_monte_carlo():
    spec = ModelSpec(random_innovations=("patient", "therapist"))
    post = {
        v.INNOVATION_SD_PREDICTOR: 0.4,
        v.INNOVATION_SD_OUTCOME: 0.3,
        v.INNOVATION_CORR: -0.25,
        v.SD_LOG_INNOVATION_PREDICTOR_PATIENT: 0.35,
        v.SD_LOG_INNOVATION_OUTCOME_PATIENT: 0.2,
        v.SD_LOG_INNOVATION_PREDICTOR_THERAPIST: 0.15,
        v.SD_LOG_INNOVATION_OUTCOME_THERAPIST: 0.1,
    }
    rng = np.random.default_rng(2)
    n = 400_000
    tj = rng.integers(0, 1000, n)
    draws = {
        **post,
        "log_innovation_predictor_patient_raw": rng.normal(size=n),
        "log_innovation_outcome_patient_raw": rng.normal(size=n),
        "log_innovation_predictor_therapist_raw": rng.normal(size=1000),
        "log_innovation_outcome_therapist_raw": rng.normal(size=1000),
    }
    mc = [np.mean(e) for e in innovation_cov(lookup(draws, spec), spec, tj)]
    avg_post, avg_spec = average_innovations(post, spec)
    assert avg_spec.random_innovations == ()
    ours = innovation_cov(lookup(avg_post, avg_spec), avg_spec)
    # therapist deviations: 1000 draws, so the Monte Carlo error is about 1%
    np.testing.assert_allclose(ours, mc, rtol=0.02)


def test_simulator_draws_per_patient_innovation_sds():
    """The within-patient SD of the one-step residuals of the true states varies over patients
    by the log-SD's SD (long series: 400 sessions)."""
    _, truth = simulate(
        seed=4,
        n_therapists=20,
        patients_per_therapist=10,
        sessions=400,
        p_missing_session=0.0,
        p_missing_value=0.0,
        dropout=0.0,
        sd_log_innovation_predictor_patient=0.4,
        sd_log_innovation_outcome_patient=0.0,
    )
    st = truth.states.sort_values(["patient", "session"])
    p = truth.params
    log_sd = {}
    for which in ("predictor", "outcome"):
        res = []
        for _, g in st.groupby("patient"):
            w = g[["state_predictor", "state_outcome"]].to_numpy()
            k = 0 if which == "predictor" else 1
            pred = w[:-1] @ (p.phi[k])
            res.append(np.log(np.std(w[1:, k] - pred)))
        log_sd[which] = np.std(res)
    # SD of a log sample SD from 399 residuals is about 1 / sqrt(2 x 399) = 0.035
    assert log_sd["predictor"] == pytest.approx(0.4, abs=0.06)
    assert log_sd["outcome"] < 0.07


def test_random_innovations_refused_where_not_supported():
    with pytest.raises(ValueError, match="need the patient level"):
        ModelSpec(random_innovations=("therapist",))
    with pytest.raises(ValueError, match="innovations='constant'"):
        ModelSpec(random_innovations=("patient",), innovations="session", first_session="free")


def test_fit_recovers_the_log_sd_and_runs_posthoc():
    from bayes_alliance.analysis.comparison import loo, pointwise_loglik
    from bayes_alliance.inference.fit import fit

    df, truth = simulate(
        seed=1,
        n_therapists=10,
        patients_per_therapist=6,
        sessions=20,
        sd_log_innovation_predictor_patient=0.4,
        sd_log_innovation_outcome_patient=0.3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        result = fit(
            data,
            ModelSpec(random_innovations=("patient",)),
            draws=400,
            tune=400,
            random_seed=3,
            progressbar=False,
        )
        s = result.summary(ci_prob=0.94)
        for name in (v.SD_LOG_INNOVATION_PREDICTOR_PATIENT, v.SD_LOG_INNOVATION_OUTCOME_PATIENT):
            true = getattr(truth.params, name)
            assert s.loc[name, "ci_low"] <= true <= s.loc[name, "ci_high"], (name, s.loc[name])
        post = posterior_of(result.idata)  # the per-patient draws beside the parameters
        sd_i = post["innovation_sd_predictor_by_patient"]
        assert sd_i.sizes[v.PATIENT] == data.n_patients
        # patients differ: the spread of their posterior means is far from zero
        assert float(np.log(sd_i.mean(("chain", "draw"))).std()) > 0.15
        assert "posterior_predictive" in result.idata
        # leave-one-patient-out: each patient's density with their own innovation SDs
        ll = pointwise_loglik(result, "patient")
        assert np.isfinite(ll.values).all()
        assert loo(result, "patient").max_k < 2.0
        # feedback: the patient's own fluctuation, the same draws as the posterior's
        from bayes_alliance.feedback.patient_feedback import patient_feedback

        pid = data.patients[3]
        fb = patient_feedback(result, pid)
        own = fb.posterior.innovation_sd[..., 0]
        np.testing.assert_allclose(own, sd_i.sel({v.PATIENT: pid}).values, rtol=1e-12)
        typical = result.idata.posterior[v.INNOVATION_SD_PREDICTOR].values
        ratio = fb.summary["instability"]["relative_to_typical"]["mean"]
        assert ratio == pytest.approx(float(np.mean(own / typical)), rel=1e-12)
        # states of chosen patients from the latent means (no error: the stored states exactly)
        from bayes_alliance.inference.states import states_of

        rows = np.array([1, 7])
        wx, _ = states_of(post, data, result.spec, rows)
        stored = result.idata.latent_states["state_predictor"].values[:, :, rows]
        np.testing.assert_allclose(wx, stored, rtol=1e-10, atol=1e-12)
        assert any("fluctuation" in line for line in fb.sentences)
