"""Two random paths are sampled through their SDs, their correlation and the eigen square root
of the correlation matrix (:func:`bayes_alliance.mechanisms.parts._two_paths`): the prior and
the deviations' distribution are still those of ``LKJCholeskyCov(n=2, eta=2, HalfNormal)``,
checked on draws from the built model against scipy."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.parts import LKJ_ETA
from bayes_alliance.mechanisms.priors import mechanism_priors
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim.mechanisms import simulate_mechanisms

N_DRAWS = 6000


def _data() -> SeriesData:
    df, _ = simulate_mechanisms(
        seed=3, design="mediation", n_therapists=2, patients_per_therapist=3, n_sessions=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SeriesData.from_frame(
            df,
            patient="patient",
            session="session",
            predictor="alliance",
            outcome="symptoms",
            mediator="mediator",
            therapist="therapist",
        )


@pytest.fixture(scope="module", params=["integrated", "sampled"])
def prior_draws(request):
    data = _data()
    spec = MechanismSpec(therapist_level=True, traits=request.param)
    priors = mechanism_priors(data, spec)
    model = build_mechanism_model(data, spec)
    names = ["sd_paths", "corr_paths", "path_deviation"]
    draws = pm.draw([model[n] for n in names], draws=N_DRAWS, random_seed=11)
    return model, priors, *(np.asarray(d) for d in draws)


def test_two_paths_have_an_sd_vector_and_a_correlation_of_their_own(prior_draws):
    # The sampler's coordinates: half-normal SDs and an LKJ correlation factor, not the
    # covariance's Cholesky factor (whose shear mixed slowly: parts._two_paths).
    model = prior_draws[0]
    free = {rv.name: type(rv.owner.op).__name__ for rv in model.free_RVs}
    assert free.get("sd_paths") == "HalfNormalRV"
    assert free.get("chol_corr_paths") == "LKJCorrRV"
    assert "chol_paths" not in free


def test_the_sds_and_the_correlation_keep_their_prior(prior_draws):
    # SDs half-normal with the rules' scales; one correlation of a 2 x 2 LKJ(eta) matrix has
    # (r + 1) / 2 ~ Beta(eta, eta) (Lewandowski, Kurowicka & Joe 2009: Beta(eta - 1 + d / 2)).
    _, priors, sd, corr, _ = prior_draws
    for j, scale in enumerate(priors.sd_paths):
        assert stats.kstest(sd[:, j], stats.halfnorm(scale=scale).cdf).pvalue > 1e-3, j
    np.testing.assert_array_equal(corr[:, 0, 0], 1.0)
    np.testing.assert_array_equal(corr[:, 0, 1], corr[:, 1, 0])
    r = corr[:, 1, 0]
    assert stats.kstest((r + 1) / 2, stats.beta(LKJ_ETA, LKJ_ETA).cdf).pvalue > 1e-3


def test_the_deviations_are_gaussian_with_the_sampled_covariance(prior_draws):
    # Given each draw's SDs and correlation, a patient's deviation d ~ N(0, S R S): its
    # Mahalanobis distance is chi-square(2), and the first path's standardised deviation and
    # the second's residual on it are independent standard normals.
    _, _, sd, corr, dev = prior_draws
    d = dev[:, 0, :]  # one patient per draw: independent draws
    r = corr[:, 1, 0]
    z1 = d[:, 0] / sd[:, 0]
    w = (d[:, 1] / sd[:, 1] - r * z1) / np.sqrt(1 - r**2)
    assert stats.kstest(z1**2 + w**2, stats.chi2(2).cdf).pvalue > 1e-3
    assert stats.kstest(z1, stats.norm.cdf).pvalue > 1e-3
    assert stats.kstest(w, stats.norm.cdf).pvalue > 1e-3
    assert abs(np.corrcoef(z1, w)[0, 1]) < 4 / np.sqrt(N_DRAWS)
    # The sign of the correlation is carried: d_1 d_2 / (s_1 s_2) has mean E[r].
    prod = z1 * d[:, 1] / sd[:, 1]
    assert abs(prod.mean() - r.mean()) < 4 * prod.std() / np.sqrt(N_DRAWS)
