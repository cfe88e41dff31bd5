"""Feedback for a new patient on a fit with a therapist-level baseline, random patient slopes
and a trend: the new patient's known mean is centred as the fit centres it (over therapists,
checked by hand from the data), and their slope deviation is drawn from the fit's truncated
prior (support checked by the eigenvalues of each draw's reduced-form lag matrix)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from bayes_alliance import ModelSpec, SessionData, simulate
from bayes_alliance.core import vocab as v
from bayes_alliance.feedback import caseload, patient_update
from bayes_alliance.feedback import patient_feedback as feedback
from bayes_alliance.inference.fit import fit

NEW = "P0003"
SPEC = ModelSpec(
    random_slopes=(v.PATIENT,),
    trend=True,
    baseline=("therapist_baseline",),
    baseline_level=v.THERAPIST,
)


@pytest.fixture(scope="module")
def slopes_trend_baseline():
    """A small fit (unequal caseloads, so that centring over patients and over therapists
    differ) with one patient held back as new."""
    df, _ = simulate(
        seed=5,
        n_therapists=6,
        patients_per_therapist=(2, 6),
        sessions=7,
        therapist_baseline_effect_predictor=0.5,
        therapist_baseline_effect_outcome=-0.3,
        sd_state_effect_patient=0.1,
        trend_predictor=0.05,
    )
    held = df.patient == NEW
    roles = dict(patient="patient", session="session", predictor="alliance")
    roles |= dict(outcome="symptoms", therapist="therapist", covariates=["therapist_baseline"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df[~held], **roles)
        result = fit(data, SPEC, draws=30, tune=60, chains=1, random_seed=2, progressbar=False)
    return df[~held], df[held], result


def test_unequal_caseloads_make_the_two_centrings_differ(slopes_trend_baseline):
    fitted, _, _ = slopes_trend_baseline
    per_therapist = fitted.groupby("therapist")["therapist_baseline"].first()
    per_patient = fitted.groupby("patient")["therapist_baseline"].first()
    assert abs(per_therapist.mean() - per_patient.mean()) > 0.05


def test_new_patient_baseline_shift_is_centred_over_therapists(slopes_trend_baseline):
    """The known part of the new patient's latent means at the first session (trend offset 0)
    is the intercept plus a (z_j - mean over therapists of z) for x, and (c + b_T a) times the
    same for y: the fit's centring, computed here from the data table."""
    fitted, new, result = slopes_trend_baseline
    post = result.idata.posterior
    zt = fitted.groupby("therapist")["therapist_baseline"].first()
    ther = new["therapist"].iloc[0]
    centred = float(zt.loc[ther] - zt.mean())
    a = post[v.BASELINE_EFFECT_PREDICTOR].values[..., 0]
    c = post[v.BASELINE_EFFECT_OUTCOME].values[..., 0]
    b_t = post[v.TRAIT_EFFECT_THERAPIST].values
    mom = patient_update.conditional_moments(result, NEW, new)
    first = int(np.flatnonzero(mom["sessions"] == fitted["session"].min())[0])
    known = mom["known"][..., first]  # (chain, draw, 2) at trend offset 0
    np.testing.assert_allclose(
        known[..., 0], post[v.INTERCEPT_PREDICTOR].values + a * centred, rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        known[..., 1],
        post[v.INTERCEPT_OUTCOME].values + (c + b_t * a) * centred,
        rtol=1e-9,
        atol=1e-9,
    )


def test_new_patient_with_another_therapist_value_is_refused(slopes_trend_baseline):
    _, new, result = slopes_trend_baseline
    other = new.assign(therapist_baseline=new["therapist_baseline"] + 1.0)
    with pytest.raises(ValueError, match=r"therapist_baseline.*therapist-level baseline"):
        patient_update.update_patient(result, NEW, other)


def _spectral_radius(result, slope: np.ndarray) -> np.ndarray:
    """Largest eigenvalue modulus of each draw's lag matrix with the given state effect (no
    lag-0 path in this fit, so structural and reduced form agree)."""
    post = result.idata.posterior
    reps = slope.size // post.sizes["draw"] // post.sizes["chain"]
    a, b, d = (
        np.tile(post[n].values.ravel(), reps)
        for n in (v.PREDICTOR_AUTOREGRESSION, v.REVERSE_STATE_EFFECT, v.OUTCOME_AUTOREGRESSION)
    )
    mats = np.stack([np.stack([a, b], -1), np.stack([slope, d], -1)], -2)
    return np.abs(np.linalg.eigvals(mats)).max(-1)


def _stationary_bounds(result, lo=-20.0, hi=20.0, steps=60) -> tuple[np.ndarray, np.ndarray]:
    """Per draw, the ends of the stationary interval of the state effect, by bisection on the
    spectral radius from the posterior state effect (stationary in every draw)."""
    centre = result.idata.posterior[v.STATE_EFFECT].values.ravel()
    ends = []
    for far in (lo, hi):
        inside, outside = centre.copy(), np.full_like(centre, far)
        for _ in range(steps):
            mid = (inside + outside) / 2
            ok = _spectral_radius(result, mid) < 1
            inside, outside = np.where(ok, mid, inside), np.where(ok, outside, mid)
        ends.append(inside)
    return ends[0], ends[1]


def test_new_patient_slope_deviation_follows_the_truncated_prior(slopes_trend_baseline):
    """With a wide slope distribution (sd 3, the fit's posterior replaced) the untruncated
    prior puts most new patients' slopes outside the stationary region; the drawn slopes must
    all lie inside it, and their probabilities under the truncated normal (bounds found by
    bisection on the eigenvalues) must be uniform."""
    _, new, result = slopes_trend_baseline
    post = result.idata.posterior
    wide = result.idata.copy()
    wide.posterior[v.SD_STATE_EFFECT_PATIENT] = post[v.SD_STATE_EFFECT_PATIENT] * 0 + 3.0
    res = type(result)(wide, result.spec, result.data, result.provenance, result.convergence)
    raws, slopes = [], []
    for seed in range(8):
        prep = caseload.prepare(res, NEW, new, seed)
        raw = prep.arrays["state_effect_patient_raw"][..., prep.target].ravel()
        raws.append(raw)
        slopes.append(post[v.STATE_EFFECT].values.ravel() + 3.0 * raw)
    raw, slope = np.concatenate(raws), np.concatenate(slopes)
    assert (_spectral_radius(res, slope) < 1).all()
    lo, hi = _stationary_bounds(res)
    centre = post[v.STATE_EFFECT].values.ravel()
    lo_z, hi_z = np.tile((lo - centre) / 3.0, 8), np.tile((hi - centre) / 3.0, 8)
    u = (stats.norm.cdf(raw) - stats.norm.cdf(lo_z)) / (stats.norm.cdf(hi_z) - stats.norm.cdf(lo_z))
    assert stats.kstest(u, "uniform").pvalue > 0.001


def test_feedback_for_a_new_patient_on_that_fit(slopes_trend_baseline):
    _, new, result = slopes_trend_baseline
    fb = feedback.patient_feedback(result, NEW, new, random_seed=1)
    s = fb.summary
    assert s["new_patient"] and s["therapist"] == new["therapist"].iloc[0]
    assert np.isfinite(s["trait"]["mean"]) and s["trait"]["ci_low"] <= s["trait"]["ci_high"]
    assert np.isfinite(s["state_deviation"]["mean"])
