"""Leave-one-patient-out values: each patient's marginal density of their observed cells,
against the dense Gaussian of the observed cells (latent mean, trend deviations and missing
cells integrated out by marginalising the dense joint covariance)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_alliance.analysis.patient_density import patient_loglik
from bayes_alliance.spec.model_spec import ModelSpec
from tests import dense
from tests.likelihood_cases import (
    POINT,
    ROWS,
    baseline_known,
    session_data,
    therapist_slope_conditional,
)

VARIANTS = {
    "three levels": dict(),
    "therapist slopes": dict(random_slopes=("therapist",)),
    "trend": dict(therapist_level=False, trend=True),
    "session innovations": dict(
        therapist_level=False, session_means=True, innovations="session", first_session="free"
    ),
    "lag-0 x->y, slopes": dict(same_session="predictor_to_outcome", random_slopes=("patient",)),
    "lag-0 y->x": dict(same_session="outcome_to_predictor"),
    "baseline (mediation)": dict(baseline=("moderator",)),
    "baseline, trend": dict(therapist_level=False, trend=True, baseline=("moderator",)),
    "therapist baseline": dict(baseline=("experience",), baseline_level="therapist"),
    "single equation": dict(equations="outcome"),
    "no dynamics, lag-0": dict(dynamics="none", same_session="predictor_to_outcome"),
}


def _posterior(data, spec, rng, n_draws=3):
    """Arrays (1, n_draws, ...) around POINT, with the per-unit values the density reads; as a
    fit's posterior, without the named parameters the spec does not estimate (paths it leaves
    out are 0)."""
    n_p, n_s = data.n_patients, len(data.sessions)
    n_t = len(data.therapists) if data.therapists is not None else 0
    post = {}
    for k, val in POINT.items():
        if k not in spec.prior_names():
            continue
        val = np.asarray(val, dtype=float)
        jitter = 1 + 0.1 * rng.uniform(-1, 1, (1, n_draws, *val.shape))
        post[k] = val * jitter
    for k in ("innovation_corr", "first_corr", "trait_corr_patient", "trait_corr_therapist"):
        if k in post:
            post[k] = np.clip(post[k], -0.9, 0.9)
    # A fit stores each level's regression form beside its covariance (deterministics).
    for level in ("patient", "therapist"):
        if f"trait_corr_{level}" in post:
            sx, sy = post[f"sd_{level}_predictor"], post[f"sd_{level}_outcome_total"]
            r = post[f"trait_corr_{level}"]
            post[f"trait_effect_{level}"] = r * sy / sx
            post[f"sd_{level}_outcome"] = sy * np.sqrt(1 - r**2)
    post["therapist_dev_predictor_raw"] = rng.normal(size=(1, n_draws, n_t))
    post["therapist_dev_outcome_raw"] = rng.normal(size=(1, n_draws, n_t))
    post["state_effect_therapist_raw"] = rng.normal(size=(1, n_draws, n_t))
    post["session_mean_predictor"] = 3.0 + rng.normal(0, 0.2, (1, n_draws, n_s))
    post["session_mean_outcome"] = 1.0 + rng.normal(0, 0.2, (1, n_draws, n_s))
    if spec.innovations == "session":
        for name in ("innovation_sd_predictor", "innovation_sd_outcome"):
            post[name] = rng.uniform(0.3, 0.7, (1, n_draws, n_s - 1))
        post["innovation_corr"] = rng.uniform(-0.5, 0.5, (1, n_draws, n_s - 1))
    if spec.random_slopes:
        post["state_effect_by_patient"] = -0.25 + rng.normal(0, 0.2, (1, n_draws, n_p))
    return post


def _dense(data, spec, post, draw) -> np.ndarray:
    p = {k: val[0, draw] for k, val in post.items()}
    t = (data.sessions - data.sessions[0]).astype(float)
    out = np.empty(data.n_patients)
    var_px = p["sd_patient_predictor"] ** 2
    beta = p["trait_effect_patient"]
    tau = np.array(
        [[var_px, beta * var_px], [beta * var_px, beta**2 * var_px + p["sd_patient_outcome"] ** 2]]
    )
    for i in range(data.n_patients):
        slope = (
            p["state_effect_by_patient"][i] if spec.random_slopes else p.get("state_effect", 0.0)
        )
        phi = np.array(
            [
                [p.get("predictor_autoregression", 0.0), p.get("reverse_state_effect", 0.0)],
                [slope, p.get("outcome_autoregression", 0.0)],
            ]
        )

        def sigma(k):
            sx = np.ravel(p["innovation_sd_predictor"])[k]
            sy = np.ravel(p["innovation_sd_outcome"])[k]
            r = np.ravel(p.get("innovation_corr", 0.0))[k] if spec.same_session == "none" else 0.0
            return np.array([[sx**2, r * sx * sy], [r * sx * sy, sy**2]])

        b0 = p.get("same_session_effect", 0.0)
        cols = np.arange(data.first[i], data.last[i] + 1)
        red = [
            dense.reduced(
                phi, sigma(c - 1 if spec.innovations == "session" else 0), b0, spec.same_session
            )
            for c in cols[1:]
        ]
        ph, sg0 = dense.reduced(phi, sigma(0), b0, spec.same_session)
        if spec.first_session == "stationary":
            first = dense.stationary(ph, sg0)
        else:
            fx, fy, fr = p["first_sd_predictor"], p["first_sd_outcome"], p["first_corr"]
            first = np.array([[fx**2, fr * fx * fy], [fr * fx * fy, fy**2]])
        n = len(cols)
        cov = dense.series_cov(ph, [s for _, s in red], first) + np.kron(np.ones((n, n)), tau)
        if spec.session_means:
            known = np.column_stack(
                [p["session_mean_predictor"][cols], p["session_mean_outcome"][cols]]
            )
        else:
            known = np.tile([p["intercept_predictor"], p["intercept_outcome"]], (n, 1))
        if spec.trend:
            known = known + np.outer(t[cols], [p["trend_predictor"], p["trend_outcome"]])
            d = np.diag([p["sd_trend_predictor"] ** 2, p["sd_trend_outcome"] ** 2])
            cov = cov + np.kron(np.outer(t[cols], t[cols]), d)
        if spec.baseline:
            known = known + baseline_known(data, spec, p, i)
        if spec.therapist_level and "therapist" in spec.random_slopes:
            # The therapist parts given the slope deviation: conditional mean plus the
            # conditional covariance's Cholesky factor times the raw deviations.
            j = data.patient_therapist[i]
            var_tx, b_t = p["sd_therapist_predictor"] ** 2, p["trait_effect_therapist"]
            tau_t = np.array(
                [
                    [var_tx, b_t * var_tx],
                    [b_t * var_tx, b_t**2 * var_tx + p["sd_therapist_outcome"] ** 2],
                ]
            )
            means, cond = therapist_slope_conditional(p, p["state_effect_therapist_raw"], tau_t)
            u = np.array([p["therapist_dev_predictor_raw"][j], p["therapist_dev_outcome_raw"][j]])
            known = known + means[j] + np.linalg.cholesky(cond) @ u
        elif spec.therapist_level:
            j = data.patient_therapist[i]
            ax = p["sd_therapist_predictor"] * p["therapist_dev_predictor_raw"][j]
            ay = p["sd_therapist_outcome"] * p["therapist_dev_outcome_raw"][j]
            known = known + np.array([ax, ay + p["trait_effect_therapist"] * ax])
        z = np.column_stack([data.x[i, cols], data.y[i, cols]]).ravel()
        keep = ~np.isnan(z)
        out[i] = dense.mvn_logpdf(z[keep], known.ravel()[keep], cov[np.ix_(keep, keep)])
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_patient_density_equals_dense_marginal_of_observed_cells(variant):
    opts = VARIANTS[variant]
    data = session_data(
        ROWS, therapist=opts.get("therapist_level", True), experience="experience" in str(opts)
    )
    spec = ModelSpec(**opts)
    post = _posterior(data, spec, np.random.default_rng(2))
    ours = patient_loglik(post, data, spec)
    assert ours.shape == (1, 3, data.n_patients)
    for draw in range(3):
        np.testing.assert_allclose(ours[0, draw], _dense(data, spec, post, draw), rtol=1e-9)


def test_leave_one_patient_out_reads_every_name_the_density_needs():
    """``pointwise_loglik`` (LOO, model comparison, prior sensitivity) passes the posterior's
    arrays by name to the patient density: with therapist slopes it must pass the slope
    deviations, whose shift the therapist parts carry (it crashed on a float before)."""
    import xarray as xr

    from bayes_alliance.analysis.comparison import pointwise_loglik
    from bayes_alliance.core.diagnostics import Convergence
    from bayes_alliance.inference.fit import FitResult

    data = session_data(ROWS)
    spec = ModelSpec(random_slopes=("therapist",), covariates=("moderator",))
    post = _posterior(data, spec, np.random.default_rng(4))
    post["covariate_effect_predictor"] = np.zeros((1, 3, 1))
    post["covariate_effect_outcome"] = np.zeros((1, 3, 1))
    dataset = xr.Dataset(
        {
            k: (("chain", "draw", *[f"{k}_{i}" for i in range(v.ndim - 2)]), v)
            for k, v in post.items()
        }
    )
    idata = xr.DataTree(children={"posterior": xr.DataTree(dataset)})
    result = FitResult(idata, spec, data, {}, Convergence(1.0, 1e3, 1e3, 0, 1.0, 3))
    ours = pointwise_loglik(result, "patient").values
    np.testing.assert_allclose(ours, patient_loglik(post, data, spec), rtol=1e-12)
