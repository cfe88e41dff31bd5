"""Prior predictive draws: stationary dynamics for every patient, latent means with the implied
population variance, and groups that ArviZ reads."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayes_alliance as ba
from bayes_alliance.core import vocab
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.prior_predictive import prior_predictive
from bayes_alliance.model.build import build_model

v = vocab


@pytest.fixture(scope="module")
def slopes_prior():
    df, _ = ba.simulate(seed=3, n_therapists=5, patients_per_therapist=6, sessions=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = ba.SessionData.from_frame(df, **EXAMPLE_ROLES)
    spec = ba.ModelSpec(random_slopes=("patient", "therapist"))
    prior, pp = prior_predictive(build_model(data, spec), data, spec, 400, random_seed=2)
    return data, spec, prior, pp


def test_every_patients_dynamics_are_stationary(slopes_prior):
    data, _, prior, _ = slopes_prior
    p = prior.isel(chain=0)
    slope = (
        p[v.STATE_EFFECT].values[:, None]
        + (p[v.SD_STATE_EFFECT_THERAPIST].values[:, None] * p["state_effect_therapist_raw"].values)[
            :, data.patient_therapist
        ]
        + p[v.SD_STATE_EFFECT_PATIENT].values[:, None] * p["state_effect_patient_raw"].values
    )
    a = p[v.PREDICTOR_AUTOREGRESSION].values[:, None]
    b = p[v.REVERSE_STATE_EFFECT].values[:, None]
    d = p[v.OUTCOME_AUTOREGRESSION].values[:, None]
    lag = np.stack(
        [np.stack([a + 0 * slope, b + 0 * slope], -1), np.stack([slope, d + 0 * slope], -1)], -2
    )
    radius = np.abs(np.linalg.eigvals(lag)).max(-1)
    assert radius.shape == (400, data.n_patients)
    assert radius.max() < 1
    # The truncation must not squeeze the deviations to nothing: they vary across patients.
    assert np.std(p["state_effect_patient_raw"].values) > 0.5


def test_latent_means_have_the_population_variance(slopes_prior):
    _, _, prior, _ = slopes_prior
    p = prior.isel(chain=0)
    m = p["patient_dev_predictor"].values
    want = (p[v.SD_PATIENT_PREDICTOR] ** 2 + p[v.SD_THERAPIST_PREDICTOR] ** 2).values.mean()
    assert abs((m**2).mean() / want - 1) < 0.15


def test_replicates_are_finite_and_centred(slopes_prior):
    data, _, prior, pp = slopes_prior
    for which in (v.PREDICTOR, v.OUTCOME):
        rep = pp[which].values
        assert rep.shape[:2] == (1, 400) and np.isfinite(rep).all()
    intercept = prior[v.INTERCEPT_OUTCOME].values[0]
    centred = pp[v.OUTCOME].values[0] - intercept[:, None]
    assert abs(np.median(centred)) < 0.5 * np.nanstd(data.y) + 0.5 * np.std(intercept)


@pytest.mark.parametrize(
    "options",
    [
        {"random_slopes": ("patient",)},
        {"equations": "outcome"},
        {"same_session": "predictor_to_outcome", "random_slopes": ("therapist",)},
        {"moderators": ("moderator",), "random_slopes": ("therapist", "patient")},
        {"session_means": True, "first_session": "free"},
        {"trend": True},
        {"therapist_level": False},
    ],
    ids=lambda o: ",".join(o),
)
def test_every_option_draws(options):
    df, _ = ba.simulate(seed=4, n_therapists=4, patients_per_therapist=5, sessions=6)
    df["moderator"] = df.groupby("patient")["alliance"].transform("mean")
    roles = {**EXAMPLE_ROLES, "covariates": ["moderator"]}
    if options.get("therapist_level") is False:
        roles["therapist"] = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = ba.SessionData.from_frame(df, **roles)
    spec = ba.ModelSpec(**options)
    prior, pp = prior_predictive(build_model(data, spec), data, spec, 30, random_seed=1)
    assert prior.sizes["draw"] == 30
    for which in (v.PREDICTOR, v.OUTCOME):
        assert np.isfinite(pp[which].values).all()
        assert prior[f"patient_dev_{which}"].shape == (1, 30, data.n_patients)
    if v.PATIENT in spec.random_slopes:
        raw = prior["state_effect_patient_raw"].values
        assert raw.shape == (1, 30, data.n_patients) and np.std(raw[0, 0]) > 0


def test_sampled_traits_fit_uses_the_integrated_prior():
    """A sampled-traits fit with gaps has Flat missing-cell offsets that cannot be drawn; the
    prior predictive comes from the same prior without them."""
    from bayes_alliance.inference.fit import fit

    df, _ = ba.simulate(
        seed=6, n_therapists=4, patients_per_therapist=4, sessions=6, p_missing_value=0.1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = ba.SessionData.from_frame(df, **EXAMPLE_ROLES)
        result = fit(
            data, ba.ModelSpec(traits="sampled"), draws=30, tune=30, random_seed=1,
            progressbar=False, log_likelihood=False,
        )  # fmt: skip
    tree = result.prior_predictive(draws=20)
    assert tree.prior_predictive[v.OUTCOME].shape[1] == 20
    assert not {"trait_predictor", "trait_outcome"} & set(tree.prior.data_vars)
    assert not any(str(n).startswith("missing") for n in tree.prior.data_vars)
