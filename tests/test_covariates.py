"""Covariates that adjust the latent means (issue 25, item 2): the likelihood is the joint
Gaussian with the means shifted by g' z, the post-hoc paths count the shift once, the variance
tables give the covariates' share, a covariate varying within a patient is refused by name, and
``compare`` names how two data sets differ."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_alliance import SessionData
from bayes_alliance.core import vocab as v
from bayes_alliance.model.covariates import covariate_levels, resolve
from bayes_alliance.spec.model_spec import ModelSpec
from tests.likelihood_cases import (
    COMPLETE,
    EXPERIENCE,
    POINT,
    ROWS,
    dense_reference,
    natural_point,
    session_data,
    transformed_point,
)

GX, GY = np.array([0.6, -0.25]), np.array([-0.35, 0.4])  # moderator, experience


@pytest.mark.parametrize("dataset", ["gaps", "complete"])
@pytest.mark.parametrize(
    "opts",
    [
        dict(therapist_level=False),
        dict(),
        dict(trend=True),
        dict(traits="sampled"),
    ],
    ids=["two levels", "three levels", "trend", "sampled traits"],
)
def test_covariate_loglik_equals_dense_gaussian(opts, dataset):
    """Every likelihood path (sums of products, grid, Kalman filter, sampled traits) equals the
    dense joint Gaussian whose cell means move by g_x' z_i and g_y' z_i (z: ``moderator``
    centred over patients and, in three levels, ``experience`` centred over therapists)."""
    from bayes_alliance.model.build import build_model

    three = opts.get("therapist_level", True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = session_data(ROWS if dataset == "gaps" else COMPLETE, three, experience=three)
    spec = ModelSpec(**opts)
    model = build_model(data, spec)
    assert list(model.coords["covariate"]) == (
        ["moderator", "experience"] if three else ["moderator"]
    )
    nat = natural_point(model, data, spec, np.random.default_rng(21))
    k = len(model.coords["covariate"])
    nat |= {"covariate_effect_predictor": GX[:k], "covariate_effect_outcome": GY[:k]}
    terms = ["integrated_series"]
    if spec.traits == "sampled":
        terms = ["predictor", "outcome", "missing_cells", "trait_predictor", "trait_outcome"]
    fn = model.compile_fn(
        model.logp(vars=[model[n] for n in terms]),
        inputs=model.value_vars,
        on_unused_input="ignore",
    )
    ours = float(fn(transformed_point(model, nat)))
    ref = dense_reference(data, spec, nat, spec.traits)
    if spec.traits == "sampled":  # the latent means' own prior, written out by hand
        ref += _sampled_trait_prior(data, nat, three)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)
    off = {**nat, "covariate_effect_predictor": 0 * GX[:k], "covariate_effect_outcome": 0 * GY[:k]}
    assert float(fn(transformed_point(model, off))) != pytest.approx(ours, rel=1e-6)


def _sampled_trait_prior(data, nat: dict, three: bool) -> float:
    """log N(M_x; mu_x + top_x + g_x' z, s_x^2) + log N(M_y; mu_y + top_y + g_y' z + b (M_x -
    mu_x - top_x - g_x' z), s_y^2), with top the therapist parts."""
    from scipy import stats

    p = {k: np.asarray(val, dtype=float) for k, val in nat.items()}
    zm = data.covariates["moderator"].to_numpy(dtype=float)
    zs = [zm - zm.mean()]
    top_x = top_y = np.zeros(data.n_patients)
    if three:
        tj = data.patient_therapist
        zt = np.array([EXPERIENCE[t] for t in data.therapists])
        zs.append((zt - zt.mean())[tj])
        top_x = p["sd_therapist_predictor"] * p["therapist_dev_predictor_raw"][tj]
        top_y = p["sd_therapist_outcome"] * p["therapist_dev_outcome_raw"][tj]
        top_y = top_y + p["trait_effect_therapist"] * top_x
    z = np.column_stack(zs)
    mean_x = 3.0 + top_x + z @ p["covariate_effect_predictor"]
    mx, my = p["trait_predictor"], p["trait_outcome"]
    mean_y = 1.0 + top_y + z @ p["covariate_effect_outcome"] - 0.4 * (mx - mean_x)
    return float(
        stats.norm.logpdf(mx, mean_x, 0.8).sum() + stats.norm.logpdf(my, mean_y, 0.6).sum()
    )


def test_covariate_levels_and_resolution():
    """A column constant within every therapist is a therapist covariate; every declared
    covariate but a baseline column adjusts; the level can be forced, and a forced therapist
    level names the column that varies within a therapist."""
    from bayes_alliance.core.problems import DataValidationError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = session_data(COMPLETE, experience=True)
    spec = resolve(data, ModelSpec())
    assert spec.covariates == ("moderator", "experience")
    assert covariate_levels(data, spec) == ("patient", "therapist")
    assert v.COVARIATE_EFFECT_OUTCOME in spec.free_parameters()
    assert resolve(data, ModelSpec(baseline=("experience",))).covariates == ("moderator",)
    forced = resolve(data, ModelSpec(covariate_level="patient"))
    assert covariate_levels(data, forced) == ("patient", "patient")
    with pytest.raises(DataValidationError, match="moderator"):
        resolve(data, ModelSpec(covariate_level="therapist"))
    with pytest.raises(ValueError, match="baseline columns"):
        ModelSpec(baseline=("experience",), covariates=("experience",))


def _posterior(spec: ModelSpec, n: int, **over: object) -> xr.Dataset:
    """One chain of ``n`` identical draws at POINT (covariate effects GX, GY): the estimated
    parameters and the derived ones a fit stores beside them."""
    point = {**POINT, v.COVARIATE_EFFECT_PREDICTOR: GX[:1], v.COVARIATE_EFFECT_OUTCOME: GY[:1]}
    out = {}
    for name in dict.fromkeys([*spec.free_parameters(), *spec.prior_names()]):
        val = np.asarray(over.get(name, point[name]), dtype=float)
        dims = ("chain", "draw", *(("covariate",) if val.ndim else ()))
        out[name] = xr.DataArray(np.broadcast_to(val, (1, n, *val.shape)).copy(), dims=dims)
    return xr.Dataset(out)


def test_traits_states_and_replicates_count_the_covariate_shift_once():
    """The drawn latent means sit at mu + g' z when their SDs are tiny; states (drawn and
    recomputed from the traits) are the data minus the whole latent mean; replicates centre on
    it."""
    from bayes_alliance.inference import posthoc, predictive
    from bayes_alliance.inference.states import states_of

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = session_data(COMPLETE, therapist=False)
    spec = resolve(data, ModelSpec(therapist_level=False))
    z = data.covariates["moderator"].to_numpy(dtype=float)
    z = z - z.mean()
    tiny = 1e-5
    post = _posterior(
        spec,
        4,
        sd_patient_predictor=tiny,
        sd_patient_outcome=tiny,
        sd_patient_outcome_total=tiny,
    )
    got, _ = posthoc.complete(post, data, spec, random_seed=3)
    np.testing.assert_allclose(
        got["trait_predictor"].values[0], np.tile(3.0 + GX[0] * z, (4, 1)), atol=1e-3
    )
    np.testing.assert_allclose(
        got["trait_outcome"].values[0], np.tile(1.0 + GY[0] * z, (4, 1)), atol=1e-3
    )

    post = _posterior(spec, 3)
    got, _ = posthoc.complete(post, data, spec, random_seed=3)
    full = post.assign(got)
    obs = data.observed_x & data.in_series
    want = np.where(obs, data.x[None, None] - got["trait_predictor"].values[..., None], np.nan)
    np.testing.assert_allclose(got["state_predictor"].values, want, atol=1e-12)
    rows = np.array([2, 0])
    wx, wy = states_of(full, data, spec, rows)
    np.testing.assert_allclose(wx, got["state_predictor"].values[:, :, rows], atol=1e-12)
    np.testing.assert_allclose(wy, got["state_outcome"].values[:, :, rows], atol=1e-12)

    n = 3000
    post = _posterior(spec, n)
    got, _ = posthoc.complete(post, data, spec, random_seed=5, states=False)
    pp = predictive.posterior_predictive(post.assign(got), data, spec, random_seed=9)
    r, _ = np.nonzero(data.observed_x)
    dev = pp[v.PREDICTOR].values[0] - got["trait_predictor"].values[0][:, r]
    # A stationary state's mean over n draws is within a few SE (about 0.01) of 0; counting the
    # shift twice or not at all moves it by |g_x z_i| (up to 0.6 here).
    assert np.abs(dev.mean(axis=0)).max() < 0.05


def test_covariate_share_of_the_variance():
    """The covariates' share at each level is the variance over its units of the shift g' z
    (computed here from the shifts themselves); R-squared reports it as c2 / c3 inside f2 /
    f3, whose level denominators grow by it."""
    from bayes_alliance.effects.derived import covariate_variances
    from bayes_alliance.effects.variance import Design
    from bayes_alliance.kernels import r2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = session_data(ROWS, experience=True)
    spec = resolve(data, ModelSpec())
    design = Design.of(data, spec)
    post = {
        v.COVARIATE_EFFECT_PREDICTOR: GX[None, None],
        v.COVARIATE_EFFECT_OUTCOME: GY[None, None],
    }
    got = covariate_variances(post, design, np.zeros((1, 1)))
    zm = data.covariates["moderator"].to_numpy(dtype=float)
    per_therapist = np.array([EXPERIENCE[t] for t in data.therapists])
    assert got["patient"][0][0, 0] == pytest.approx(np.var(GX[0] * zm))
    assert got["patient"][1][0, 0] == pytest.approx(np.var(GY[0] * zm))
    assert got["therapist"][1][0, 0] == pytest.approx(np.var(GY[1] * per_therapist))
    comps = {k: np.asarray(1.0) for k in r2.THREE_LEVEL_COMPONENTS}
    comps |= {"c2": np.asarray(0.5), "c3": np.asarray(0.25)}
    shares = r2.three_level_r2(comps)
    assert shares[("total", "c2")] == pytest.approx(0.5 / 9)  # nine components of 1
    assert shares[("level2", "c2")] == pytest.approx(0.5 / 3)
    assert shares[("level3", "c3")] == pytest.approx(0.25 / 2)
    assert float(r2.total_variance(comps)) == pytest.approx(9.0)


def test_covariate_varying_within_a_patient_is_refused_by_name():
    from bayes_alliance import fit_frame
    from bayes_alliance.core.problems import DataValidationError

    rows = []
    for p in range(4):
        for s in range(1, 5):
            age = 30.0 + p + (s if p == 2 else 0)  # patient P2's value changes
            rows.append(dict(pid=f"P{p}", sess=s, x=0.1 * s + p, y=0.2 * p - s, age=age))
    with pytest.raises(DataValidationError, match=r"'age'.*varies within patient.*P2"):
        fit_frame(
            pd.DataFrame(rows),
            patient="pid",
            session="sess",
            predictor="x",
            outcome="y",
            covariates=["age"],
            draws=10,
            tune=10,
        )


def test_compare_names_how_the_data_differ():
    from bayes_alliance.analysis.comparison import compare
    from bayes_alliance.data.differences import data_differences

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = session_data(ROWS, experience=True)
        changed = [list(r) for r in ROWS]
        changed[1][3] = 9.9  # patient A session 2: x
        for r in changed:
            if r[1] == "B":
                r[5] = 2.5  # patient B's moderator
        b = session_data([tuple(r) for r in changed], experience=False)
    words = data_differences(a, b, ("m1", "m2"))
    text = " | ".join(words)
    assert "['experience'] only in m1" in text
    assert "patient A session 2: 3.4 vs 9.9" in text
    assert "covariate 'moderator'" in text and "patient B: 1.5 vs 2.5" in text
    assert data_differences(a, a) == []
    fits = {"m1": SimpleNamespace(data=a), "m2": SimpleNamespace(data=b)}
    with pytest.raises(ValueError, match=r"'m1' and 'm2' were fitted to different data: .*9\.9"):
        compare(fits)  # type: ignore[arg-type]


def _covariate_sessions(seed: int, n_therapists: int = 10) -> tuple[SessionData, float, float]:
    """Simulated sessions whose patient covariate ``z`` (standard normal) moves both latent
    means: by 0.5 z (predictor) and -0.4 z (outcome), added to every session of the patient."""
    from bayes_alliance import simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES

    df, _ = simulate(seed=seed, n_therapists=n_therapists, patients_per_therapist=5, sessions=8)
    rng = np.random.default_rng([seed, 25])
    z = pd.Series(rng.standard_normal(df["patient"].nunique()), index=df["patient"].unique())
    df["z"] = df["patient"].map(z)
    df["alliance"] += 0.5 * df["z"]
    df["symptoms"] += -0.4 * df["z"]
    roles = {**EXAMPLE_ROLES, "covariates": ["z"]}
    roles.pop("therapist")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df.drop(columns="therapist"), **roles)
    return data, 0.5, -0.4


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_covariate_effects_are_recovered(seed):
    """The 99% intervals of covariate_effect_predictor / _outcome cover 0.5 and -0.4 (two
    levels, 50 patients of 8 sessions). 99%, not 95%: the patients' traits correlate with z by
    chance (seed 3: the regression of the patients' observed means on z gives 0.69, about two
    standard errors above 0.5), so three 95% intervals all cover only 86% of the time; three
    99% intervals 97%."""
    from bayes_alliance.inference.fit import fit

    data, gx, gy = _covariate_sessions(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(
            data,
            ModelSpec(therapist_level=False),
            draws=400,
            tune=400,
            chains=2,
            random_seed=seed,
            progressbar=False,
            log_likelihood=False,
            states=False,
        )
    s = res.summary(ci_prob=0.99)
    for name, truth in (("covariate_effect_predictor[z]", gx), ("covariate_effect_outcome[z]", gy)):
        lo, hi = s.loc[name, ["ci_low", "ci_high"]]
        assert lo < truth < hi, (name, lo, hi)
