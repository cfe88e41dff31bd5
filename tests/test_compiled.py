"""Integrated traits: the same posterior as sampled traits; compile once, refit without recompiling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.compiled import LayoutError, compile_model
from bayes_alliance.inference.fit import fit
from bayes_alliance.spec.model_spec import ModelSpec

SMALL = dict(n_therapists=8, patients_per_therapist=5, sessions=8)


def _data(seed: int, **settings) -> SessionData:
    df, _ = simulate(seed=seed, **{**SMALL, **settings})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_frame(df, **EXAMPLE_ROLES)


@pytest.fixture(scope="module")
def compiled():
    return compile_model(_data(1))


def test_refit_equals_a_fresh_compile_of_the_new_data(compiled):
    new = _data(2)
    kw = dict(random_seed=3, draws=200, tune=200, complete=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = compiled.fit(new, **kw)
        fresh = compile_model(new).fit(new, **kw)
    for name in ("state_effect", "intercept_outcome", "sd_patient_predictor"):
        np.testing.assert_array_equal(refit.draws(name), fresh.draws(name))
    # The data really were swapped in: the intercept follows the new data, not the first.
    old = compiled.fit(_data(1), **kw)
    assert not np.allclose(refit.draws("intercept_outcome"), old.draws("intercept_outcome"))
    assert refit.provenance["data_hash"] == new.data_hash


def test_refit_completes_the_posterior(compiled):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = compiled.fit(_data(4), random_seed=1, draws=100, tune=200, log_likelihood=True)
    assert r.draws("trait_predictor").shape == (2, 100, 40)
    assert r.draws("state_outcome").shape == (2, 100, 40, 8)
    assert "predictor" in r.idata.log_likelihood


def test_another_number_of_therapists_refits_without_recompiling(compiled):
    """Therapist deviations are integrated out, so the number of therapists is data, not a
    parameter layout: the refit equals a fresh compile of the new data."""
    new = _data(5, n_therapists=11)
    kw = dict(random_seed=2, draws=150, tune=150, complete=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = compiled.fit(new, **kw)
        fresh = compile_model(new).fit(new, **kw)
    np.testing.assert_array_equal(
        refit.draws("sd_therapist_outcome"), fresh.draws("sd_therapist_outcome")
    )


def test_a_different_layout_is_refused_with_the_reason(compiled):
    # Complete series compile to per-patient sums; series with missing cells to the segment
    # path's pieces and filtered stretches.
    with pytest.raises(LayoutError, match=r"segment_first: compiled None"):
        compiled.fit(_data(5, p_missing_value=0.1), random_seed=1)


def test_other_missing_cells_refit_without_recompiling():
    """Missing cells are integrated out, so their number and places are data: a model compiled
    for data with gaps refits to other gaps and equals a fresh compile."""
    first, new = _data(6, p_missing_value=0.1), _data(7, p_missing_value=0.05)
    assert np.isnan(new.x).sum() != np.isnan(first.x).sum()
    cm = compile_model(first)
    kw = dict(random_seed=4, draws=100, tune=150, complete=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = cm.fit(new, **kw)
        fresh = compile_model(new).fit(new, **kw)
    np.testing.assert_array_equal(refit.draws("state_effect"), fresh.draws("state_effect"))


def test_integrated_and_sampled_traits_give_the_same_posterior(recovery):
    _, _, data, integrated = recovery
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampled = fit(
            data,
            ModelSpec(traits="sampled"),
            draws=600,
            tune=600,
            random_seed=7,
            progressbar=False,
        )
    a, b = integrated.summary(), sampled.summary()
    # Posterior means agree within Monte Carlo error: 4 combined MCSEs (about 0.2 posterior SD).
    for name in ("state_effect", "outcome_autoregression", "sd_patient_outcome", "innovation_corr"):
        se = a.loc[name, "sd"] * np.sqrt(1 / a.loc[name, "ess_bulk"] + 1 / b.loc[name, "ess_bulk"])
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) < 4 * se, name
        assert a.loc[name, "sd"] == pytest.approx(b.loc[name, "sd"], rel=0.15), name
    # Therapist deviations drawn after sampling match those sampled with the rest.
    for name in ("sd_therapist_predictor", "trait_effect_therapist"):
        se = a.loc[name, "sd"] * np.sqrt(1 / a.loc[name, "ess_bulk"] + 1 / b.loc[name, "ess_bulk"])
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) < 4 * se, name
    ai = integrated.draws("therapist_dev_predictor").mean(axis=(0, 1))
    sd_a = (
        sampled.draws("therapist_dev_predictor_raw")
        * sampled.draws("sd_therapist_predictor")[..., None]
    )
    assert np.corrcoef(ai, sd_a.mean(axis=(0, 1)))[0, 1] > 0.98
    # Latent means drawn after sampling match those sampled with the rest.
    ti = integrated.draws("trait_outcome").mean(axis=(0, 1))
    ts = sampled.draws("trait_outcome").mean(axis=(0, 1))
    sd = sampled.draws("trait_outcome").std(axis=(0, 1))
    assert np.max(np.abs(ti - ts) / sd) < 0.35
    assert np.corrcoef(ti, ts)[0, 1] > 0.995


def test_short_views(compiled):
    text = repr(compiled)
    assert text.startswith("CompiledModel: three-level") and "compiled in" in text
    assert len(text) < 300 and compiled._repr_html_().startswith("<div")
