"""The therapists' slope deviations correlate with their parts of the latent means (issue 25,
item 6): the C-vine prior is the LKJ(eta) distribution of a 3 x 3 correlation matrix (checked
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
from bayes_alliance.model.priors import TRAIT_CORR_ETA
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


@pytest.mark.parametrize("eta", [None, 2.0])
def test_the_vine_prior_is_the_lkj_distribution_of_the_3x3_correlation(eta):
    """The default (LKJ(1)) and, with the three priors set as a C-vine of LKJ(2) (first tree
    eta + 1/2, partial eta), LKJ(2)."""
    spec = SPEC
    if eta is not None:
        lkj = lambda e: {"dist": "LKJCorr", "eta": e}  # noqa: E731
        spec = ModelSpec(
            random_slopes=("therapist",),
            priors={
                "trait_corr_therapist": lkj(eta + 0.5),
                "slope_trait_corr_therapist_predictor": lkj(eta + 0.5),
                "slope_trait_partial_corr_therapist_outcome": lkj(eta),
            },
        )
    model = build_model(_data(1), spec)
    n = 20_000
    ours = np.column_stack(pm.draw([model[k] for k in NAMES], draws=n, random_seed=3))
    chol = pm.draw(pm.LKJCorr.dist(n=3, eta=eta or TRAIT_CORR_ETA), draws=n, random_seed=4)
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
def test_slope_trait_correlation_is_recovered_from_simulated_therapists():
    """60 therapists whose slope deviations correlate 0.7 with their alliance part and -0.3
    with their symptom part (simulator truth), three seeds: every 99% interval holds its truth
    (all six do with probability .94 when calibrated; 90% intervals would all cover only half
    the time), the estimates of the 0.7 correlation average above 0.3 (the correlation is
    detected), and the therapist profiles report the model's correlation."""
    from bayes_alliance.feedback.profiles import therapist_profiles
    from bayes_alliance.inference.fit import fit

    truth = {
        "sd_therapist_predictor": 0.3,
        "slope_trait_corr_therapist_predictor": 0.7,
        "slope_trait_corr_therapist_outcome": -0.3,
    }
    means = []
    for seed in (11, 12, 13):
        data = _data(seed, n_therapists=60, **truth)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit(data, SPEC, draws=600, tune=600, random_seed=seed, progressbar=False)
        s = res.summary(ci_prob=0.99, ci_kind="eti")
        for name in list(truth)[1:]:
            row = s.loc[name]
            assert row["ci_low"] <= truth[name] <= row["ci_high"], (seed, name, row)
        means.append(s.loc["slope_trait_corr_therapist_predictor", "mean"])
        r = therapist_profiles(res).attrs["correlation"]
        assert r["mean"] == pytest.approx(s.loc["slope_trait_corr_therapist_predictor", "mean"])
    assert np.mean(means) > 0.3, means


def test_states_rebuilt_from_the_traits_count_the_slope_shift_once():
    """With therapist slopes the therapist parts' shift g c*_j is in the known means and in the
    reported (whole) traits: the drawn states of observed cells are the data minus the whole
    trait, and ``states_of`` (which starts from the reported traits) gives the same states."""
    import xarray as xr

    from bayes_alliance.inference import posthoc
    from bayes_alliance.inference.states import states_of
    from tests.likelihood_cases import POINT, ROWS, session_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = session_data(ROWS)
    spec = ModelSpec(random_slopes=("therapist",), covariates=("moderator",))
    # moderator: the data's declared covariate, adjusting the traits
    rng = np.random.default_rng(5)
    n, n_t = 3, len(data.therapists)
    out = {}
    for name in dict.fromkeys([*spec.free_parameters(), *spec.prior_names()]):
        if name in POINT:
            val = np.asarray(POINT[name], dtype=float)
            dims = ("chain", "draw", *(("covariate",) if val.ndim else ()))
            out[name] = xr.DataArray(np.broadcast_to(val, (1, n, *val.shape)).copy(), dims=dims)
    out.pop("slope_trait_corr_therapist_outcome", None)  # derived from the vine's inputs
    covariate = ("chain", "draw", "covariate")
    out["covariate_effect_predictor"] = xr.DataArray(np.full((1, n, 1), 0.2), dims=covariate)
    out["covariate_effect_outcome"] = out["covariate_effect_predictor"].copy()
    out["state_effect_therapist_raw"] = xr.DataArray(
        2.0 * rng.normal(size=(1, n, n_t)), dims=("chain", "draw", "therapist")
    )
    post = xr.Dataset(out)
    got, _ = posthoc.complete(post, data, spec, random_seed=3)
    obs = data.observed_x & data.in_series
    trait_x = got["trait_predictor"].values[..., None]
    want = np.where(obs, data.x[None, None] - trait_x, np.nan)
    np.testing.assert_allclose(got["state_predictor"].values, want, atol=1e-12)
    full = post.assign(got)
    rows = np.array([3, 0])
    wx, wy = states_of(full, data, spec, rows)
    np.testing.assert_allclose(wx, got["state_predictor"].values[:, :, rows], atol=1e-12)
    np.testing.assert_allclose(wy, got["state_outcome"].values[:, :, rows], atol=1e-12)
