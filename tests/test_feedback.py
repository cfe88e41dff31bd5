"""Feedback from a fitted result: new sessions conditioned on without refitting, checked
against a dense Gaussian conditional built from the full data; the summary, files and CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from dense import series_cov, stationary

from bayes_alliance import SessionData, simulate
from bayes_alliance.cli.app import main
from bayes_alliance.core import vocab
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.feedback import output as feedback_output
from bayes_alliance.feedback import patient_feedback as feedback
from bayes_alliance.feedback import patient_update, profiles
from bayes_alliance.inference.fit import fit

HELD_PATIENT, NEW_PATIENT = "P0002", "P0005"


@pytest.fixture(scope="module")
def small():
    """A tiny three-level fit with missing values; the last three sessions of one patient and
    all sessions of another are held back as new sessions."""
    df, _ = simulate(seed=3, n_therapists=6, patients_per_therapist=4, sessions=7)
    rng = np.random.default_rng(0)
    df.loc[rng.choice(len(df), 6, replace=False), "alliance"] = np.nan
    held = ((df.patient == HELD_PATIENT) & (df.session > 4)) | (df.patient == NEW_PATIENT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df[~held], **EXAMPLE_ROLES)
        result = fit(data, draws=30, tune=60, chains=1, random_seed=1, progressbar=False)
    return df, df[held], result


def _dense(full: pd.DataFrame, result, draw: int, patient: str, m0: np.ndarray):
    """Dense route for one draw from the full table: the therapist part's conditional given
    the caseload and the patient's latent-mean deviation given ``m0``."""
    p = {k: float(result.idata.posterior[k].values[0, draw]) for k in result.parameters}
    phi = np.array(
        [
            [p[vocab.PREDICTOR_AUTOREGRESSION], p[vocab.REVERSE_STATE_EFFECT]],
            [p[vocab.STATE_EFFECT], p[vocab.OUTCOME_AUTOREGRESSION]],
        ]
    )
    sx, sy, rho = (
        p[vocab.INNOVATION_SD_PREDICTOR],
        p[vocab.INNOVATION_SD_OUTCOME],
        p[vocab.INNOVATION_CORR],
    )
    sigma = np.array([[sx * sx, rho * sx * sy], [rho * sx * sy, sy * sy]])
    first = stationary(phi, sigma)
    bp, bt = p[vocab.TRAIT_EFFECT_PATIENT], p[vocab.TRAIT_EFFECT_THERAPIST]
    lp = np.array(
        [
            [p[vocab.SD_PATIENT_PREDICTOR], 0],
            [bp * p[vocab.SD_PATIENT_PREDICTOR], p[vocab.SD_PATIENT_OUTCOME]],
        ]
    )
    lt = np.array(
        [
            [p[vocab.SD_THERAPIST_PREDICTOR], 0],
            [bt * p[vocab.SD_THERAPIST_PREDICTOR], p[vocab.SD_THERAPIST_OUTCOME]],
        ]
    )
    tau, tau_t = lp @ lp.T, lt @ lt.T
    mu = np.array([p[vocab.INTERCEPT_PREDICTOR], p[vocab.INTERCEPT_OUTCOME]])
    ther = full.loc[full.patient == patient, "therapist"].iloc[0]
    prec_t, lin_t = np.linalg.inv(tau_t), np.zeros(2)
    own = None
    for pid, rows in full[full.therapist == ther].groupby("patient"):
        sessions = np.arange(rows.session.min(), rows.session.max() + 1)
        vals = np.full((len(sessions), 2), np.nan)
        vals[rows.session - sessions[0]] = rows[["alliance", "symptoms"]].to_numpy()
        z = vals.ravel()
        ok = np.isfinite(z)
        s = series_cov(phi, [sigma] * (len(sessions) - 1), first)[np.ix_(ok, ok)]
        j = np.tile(np.eye(2), (len(sessions), 1))[ok]
        r = z[ok] - j @ mu
        v = np.linalg.inv(s + j @ tau @ j.T)
        prec_t += j.T @ v @ j
        lin_t += j.T @ v @ r
        if pid == patient:
            si = np.linalg.inv(s)
            cov = np.linalg.inv(np.linalg.inv(tau) + j.T @ si @ j)
            own = cov @ (np.linalg.solve(tau, m0) + j.T @ si @ r), cov
    cov_t = np.linalg.inv(prec_t)
    return (cov_t @ lin_t, cov_t), own


def _entries(mean, cov):
    return np.array([mean[0], mean[1], cov[0, 0], cov[0, 1], cov[1, 1]])


@pytest.mark.parametrize("patient", [HELD_PATIENT, NEW_PATIENT, "P0003"])
def test_conditional_equals_dense_gaussian_of_the_full_data(small, patient):
    full, new, result = small
    m0 = np.array([0.3, -0.2])
    n_d = result.idata.posterior.sizes["draw"]
    part = (np.full((1, n_d), m0[0]), np.full((1, n_d), m0[1]))
    if patient == "P0003":  # a fitted patient without new sessions: the fitted data
        full, new = full.drop(new.index), None
    ours = patient_update.conditional_moments(result, patient, new, therapist_part=part)
    for draw in (0, 17):
        (tm, tc), (pm_, pc) = _dense(full, result, draw, patient, m0)
        np.testing.assert_allclose(
            ours["therapist"][0, draw], _entries(tm, tc), rtol=1e-8, atol=1e-10
        )
        np.testing.assert_allclose(
            ours["patient"][0, draw], _entries(pm_, pc), rtol=1e-8, atol=1e-10
        )


def test_update_draws_follow_the_conditional(small):
    _, new, result = small
    pp = patient_update.update_patient(result, HELD_PATIENT, new)
    assert pp.seconds < 1.0 and not pp.new_patient and pp.n_new_sessions == 3
    assert list(pp.sessions) == list(range(1, 8))
    # states are the cells minus the known mean (the intercept) minus the drawn latent mean
    observed = np.broadcast_to(pp.observed_predictor, pp.state_predictor.shape)
    np.testing.assert_allclose(
        pp.state_predictor + pp.trait_predictor[..., None], observed, atol=1e-10
    )
    intercept = result.draws(vocab.INTERCEPT_PREDICTOR)
    z = (pp.trait_predictor - intercept - pp.moments[..., 0]) / np.sqrt(pp.moments[..., 2])
    assert abs(z.mean()) < 0.6 and 0.5 < z.std() < 1.6


def test_errors_name_the_problem(small):
    _, new, result = small
    with pytest.raises(ValueError, match=r"unknown patient id 'P9999'; e.g. \['P0001'"):
        patient_update.update_patient(result, "P9999")
    dup = new[new.patient == HELD_PATIENT].assign(session=1)
    with pytest.raises(ValueError, match="already has session"):
        patient_update.update_patient(result, HELD_PATIENT, dup)
    alien = new[new.patient == NEW_PATIENT].assign(therapist="T999")
    with pytest.raises(ValueError, match="unknown therapist id 'T999'"):
        patient_update.update_patient(result, NEW_PATIENT, alien)


def test_feedback_summary_and_profiles(small, tmp_path):
    _, new, result = small
    opt = feedback.FeedbackOptions(low_trait=50, high_trait=50)
    fb = feedback.patient_feedback(result, NEW_PATIENT, new, opt)
    s = fb.summary
    assert 0 <= s["trait_percentile"]["all_patients"]["mean"] <= 100
    assert s["latest_session"] == 7 and s["new_patient"]
    # with one threshold at the median, exactly one pattern is possible in each draw
    probs = [f["probability"] for f in s["flags"].values()]
    assert sum(probs) <= 1 + 1e-12
    prof = profiles.therapist_profiles(result)
    assert len(prof) == 6 and prof["state_effect_dev_mean"].isna().all()
    assert "no therapist random slopes" in prof.attrs["note"]
    assert not result.convergence.ok  # one chain of 30 draws: the check fails
    with pytest.raises(ValueError, match=r"convergence check failed.*--allow-unconverged"):
        feedback_output.write_feedback(result, tmp_path / "fb", NEW_PATIENT, new, opt)
    assert not (tmp_path / "fb").exists()
    path = feedback_output.write_feedback(
        result, tmp_path / "fb", NEW_PATIENT, new, opt, profiles=True, allow_unconverged=True
    )
    doc = json.loads((tmp_path / "fb" / "feedback.json").read_text())
    assert doc["converged"] is False and "CONVERGENCE CHECK FAILED" in doc["convergence"]
    assert doc["sentences"][0].startswith("NOT CONVERGED")
    assert "class='banner'" in path.read_text()
    for key in (
        "patient",
        "trait_percentile",
        "state_deviation",
        "state_trend",
        "flags",
        "patterns",
    ):
        assert key in doc
    assert "therapist_profiles" in doc
    pats = doc["patterns"]
    assert set(pats["patterns"]) == {
        "strengthening",
        "weakening",
        "u_shape",
        "rupture_repair",
        "sudden_gain",
    }
    assert all(0.0 <= p <= 1.0 for p in pats["patterns"].values())
    assert (
        pats["n_draws"]
        == result.idata.posterior.sizes["chain"] * result.idata.posterior.sizes["draw"]
    )
    assert "data:image/png;base64" in path.read_text()


def test_cli_feedback(small, tmp_path, capsys):
    _, new, result = small
    result.save(tmp_path / "fit" / "fit.nc")
    new.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "out"
    argv = ["feedback", str(tmp_path / "fit"), "--patient", HELD_PATIENT]
    argv += ["--new-sessions", str(tmp_path / "new.csv")]
    # The tiny fit's convergence check fails: refused unless asked for, then said on the page.
    assert main([*argv, "--out", str(out)]) == 2
    assert "--allow-unconverged" in capsys.readouterr().err and not out.exists()
    argv += ["--allow-unconverged"]
    assert main([*argv, "--out", str(out)]) == 0
    assert (out / "feedback.html").is_file() and (out / "feedback.json").is_file()
    page = (out / "feedback.html").read_text()
    assert "class='banner'" in page and "NOT CONVERGED" in page
    assert main([*argv, "--out", str(out)]) == 2  # exists without --force
    nobody = ["feedback", str(tmp_path / "fit"), "--patient", "nobody", "--allow-unconverged"]
    assert main([*nobody, "--out", str(tmp_path / "x")]) == 2
    assert "unknown patient id 'nobody'" in capsys.readouterr().err


def test_therapist_profiles_with_therapist_slopes_track_the_true_slopes() -> None:
    """With therapist random slopes the profile's state-effect deviation per therapist follows
    the simulated therapists' slope deviations (truth from the simulator)."""
    import warnings

    from bayes_alliance import ModelSpec, SessionData, simulate
    from bayes_alliance.inference.fit import fit

    df, truth = simulate(
        seed=31,
        n_therapists=12,
        patients_per_therapist=6,
        sessions=12,
        sd_state_effect_therapist=0.3,
    )
    data = SessionData.from_frame(
        df,
        patient="patient",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        therapist="therapist",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(
            data,
            ModelSpec(random_slopes=("therapist",)),
            draws=200,
            tune=300,
            random_seed=4,
            progressbar=False,
            log_likelihood=False,
        )
    prof = profiles.therapist_profiles(res)
    assert prof["state_effect_dev_mean"].notna().all()
    assert (prof["state_effect_dev_ci_low"] <= prof["state_effect_dev_ci_high"]).all()
    assert prof.attrs["correlation"] is not None
    true_dev = truth.patients.groupby("therapist")["state_effect_therapist_dev"].first()
    est = prof.set_index("therapist")["state_effect_dev_mean"]
    r = np.corrcoef(est.loc[true_dev.index], true_dev)[0, 1]
    assert r > 0.4, r


def test_feedback_seed_is_used_and_recorded_and_no_alliance_is_an_error(small):
    _, new, result = small
    a = feedback.patient_feedback(result, NEW_PATIENT, new, random_seed=5)
    b = feedback.patient_feedback(result, NEW_PATIENT, new, random_seed=5)
    c = feedback.patient_feedback(result, NEW_PATIENT, new, random_seed=6)
    assert a.summary["random_seed"] == 5
    assert a.summary["trait"] == b.summary["trait"]
    assert a.summary["trait"] != c.summary["trait"]
    # The strengthening rule is judged against the innovation SD of each draw.
    assert a.summary["options"]["min_trend"] == 1.0
    only_y = new[new.patient == NEW_PATIENT].assign(alliance=np.nan)
    with pytest.raises(ValueError, match="no observed 'alliance' rating"):
        feedback.patient_feedback(result, NEW_PATIENT, only_y)
