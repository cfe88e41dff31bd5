"""A free first session on data where every patient starts at the same value (a scale's
ceiling at intake): the density must stay bounded and the fit converge, instead of the first
covariance and the patient SDs collapsing to 0 together (issue 25, item 9)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.model.build import build_model
from bayes_alliance.model.priors import FIRST_COV_PSEUDO, first_cov_regulariser
from bayes_alliance.spec.model_spec import ModelSpec

ROLES = dict(patient="patient", session="session", predictor="alliance", outcome="symptoms")
SPEC = ModelSpec(therapist_level=False, first_session="free")


def _same_start(seed: int = 3, n_patients: int = 30, sessions: int = 6) -> SessionData:
    """Simulated series whose first session is 5.0 (predictor) and 0.0 (outcome) for all."""
    df, _ = simulate(
        seed=seed, n_therapists=n_patients // 5, patients_per_therapist=5, sessions=sessions
    )
    first = df.groupby("patient")["session"].transform("min") == df["session"]
    df.loc[first, "alliance"] = 5.0
    df.loc[first, "symptoms"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_frame(df.drop(columns="therapist"), **ROLES)


@pytest.mark.parametrize("seed", range(3))
def test_regulariser_is_the_inverse_wishart_exponential_factor(seed: int) -> None:
    """-kappa/2 tr(Psi F^-1), with F^-1 from a dense inverse of the 2 x 2 covariance."""
    rng = np.random.default_rng(seed)
    fx, fy, sx, sy = rng.uniform(0.05, 3.0, 4)
    rho = rng.uniform(-0.99, 0.99)
    cov = np.array([[fx**2, rho * fx * fy], [rho * fx * fy, fy**2]])
    want = -0.5 * FIRST_COV_PSEUDO * np.trace(np.diag([sx**2, sy**2]) @ np.linalg.inv(cov))
    assert first_cov_regulariser(fx, fy, rho, sx, sy) == pytest.approx(want, rel=1e-12)


def test_identical_first_sessions_no_longer_give_an_unbounded_density() -> None:
    """Along the path where the outcome's patient SD and first-session SD shrink together
    (intercept at the common first value), the unregularised log density grows like
    n log(1/eps) without bound; with the regulariser it falls."""
    data = _same_start()
    model = build_model(data, SPEC)
    logp = model.compile_logp()
    point = model.initial_point()
    point["intercept_outcome"] = np.asarray(0.0)
    point["trait_corr_patient_interval__"] = np.asarray(0.0)  # no trait correlation
    values = []
    for eps in (1e-1, 1e-3, 1e-5):
        point["sd_patient_outcome_total_log__"] = np.asarray(np.log(eps))
        point["first_sd_outcome_log__"] = np.asarray(np.log(eps))
        values.append(float(logp(point)))
    assert values[0] > values[1] > values[2], values


@pytest.mark.slow
def test_identical_first_sessions_fit_converges() -> None:
    """The regularised fit of the degenerate data converges (before: R-hat in the thousands,
    every draw divergent, the outcome's patient SD at 1e-5)."""
    from bayes_alliance.inference.fit import fit

    data = _same_start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(data, SPEC, draws=300, tune=300, chains=2, random_seed=1, progressbar=False)
    conv = res.convergence
    assert conv.max_r_hat < 1.05, conv.message()
    assert conv.divergences <= 6, conv.message()
    post = res.idata.posterior
    for name in ("first_sd_predictor", "first_sd_outcome"):
        assert float(post[name].median()) > 0.01, name


def test_only_a_free_first_session_gets_the_regulariser() -> None:
    """The default (stationary first session) model is unchanged: no new term."""
    data = _same_start()
    assert "first_cov_regulariser" in build_model(data, SPEC).named_vars
    default = build_model(data, ModelSpec(therapist_level=False))
    assert "first_cov_regulariser" not in default.named_vars
