"""The therapists' slope deviations correlate with their parts of the latent means (issue 25,
item 6): the C-vine prior is the LKJ(2) distribution of a 3 x 3 correlation matrix (checked
against PyMC's own LKJ sampler), and the correlation is recovered from simulated therapists
whose slopes correlate with their alliance means (slow, over seeds)."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.model.build import build_model
from bayes_alliance.spec.model_spec import ModelSpec

SPEC = ModelSpec(random_slopes=("therapist",))
NAMES = (
    "trait_corr_therapist",
    "slope_trait_corr_therapist_predictor",
    "slope_trait_corr_therapist_outcome",
)


def _data(seed: int, n_therapists: int = 12, **truth) -> SessionData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df, _ = simulate(
            seed=seed,
            n_therapists=n_therapists,
            patients_per_therapist=8,
            sessions=12,
            sd_state_effect_therapist=0.1,
            **truth,
        )
        return SessionData.from_frame(df, **EXAMPLE_ROLES)


def test_the_vine_prior_is_the_lkj2_distribution_of_the_3x3_correlation():
    model = build_model(_data(1), SPEC)
    n = 20_000
    ours = np.column_stack(pm.draw([model[k] for k in NAMES], draws=n, random_seed=3))
    chol = pm.draw(pm.LKJCorr.dist(n=3, eta=2.0), draws=n, random_seed=4)
    ref = chol @ np.swapaxes(chol, 1, 2)  # PyMC 6 draws the Cholesky factor
    np.testing.assert_allclose(ref[:, [0, 1, 2], [0, 1, 2]], 1.0)
    theirs = np.column_stack([ref[:, 0, 1], ref[:, 0, 2], ref[:, 1, 2]])
    for k in range(3):  # each correlation's marginal
        assert stats.ks_2samp(ours[:, k], theirs[:, k]).pvalue > 1e-3, NAMES[k]

    def det(r: np.ndarray) -> np.ndarray:  # the joint law through the matrix's determinant
        a, b, c = r.T
        return 1 - a**2 - b**2 - c**2 + 2 * a * b * c

    assert (det(ours) > 0).all()
    assert stats.ks_2samp(det(ours), det(theirs)).pvalue > 1e-3


def test_without_therapist_slopes_there_is_no_slope_correlation():
    names = {rv.name for rv in build_model(_data(1), ModelSpec()).free_RVs}
    assert not any(n.startswith("slope_trait") for n in names)
    assert "slope_trait_corr_therapist_predictor" in SPEC.free_parameters()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_slope_trait_correlation_is_recovered_from_simulated_therapists(seed):
    """60 therapists whose slope deviations correlate 0.7 with their alliance part and -0.3
    with their symptom part (simulator truth): the 90% intervals hold the truth and the
    therapist profiles report the model's correlation."""
    from bayes_alliance.feedback.profiles import therapist_profiles
    from bayes_alliance.inference.fit import fit

    truth = {
        "sd_therapist_predictor": 0.3,
        "slope_trait_corr_therapist_predictor": 0.7,
        "slope_trait_corr_therapist_outcome": -0.3,
    }
    data = _data(seed, n_therapists=60, **truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(data, SPEC, draws=600, tune=600, random_seed=seed, progressbar=False)
    s = res.summary(ci_prob=0.9, ci_kind="eti")
    for name in ("slope_trait_corr_therapist_predictor", "slope_trait_corr_therapist_outcome"):
        assert s.loc[name, "ci_low"] <= truth[name] <= s.loc[name, "ci_high"], (name, s.loc[name])
    assert s.loc["slope_trait_corr_therapist_predictor", "mean"] > 0.2
    r = therapist_profiles(res).attrs["correlation"]
    assert r["mean"] == pytest.approx(s.loc["slope_trait_corr_therapist_predictor", "mean"])
