"""The brms-style methods of a fitted joint model (inference/methods.py): impulse responses
against matrix powers, hypotheses against counted draws, LOO through the result and through
ArviZ on ``result.idata``, predictive checks, the summary block, the priors used."""

from __future__ import annotations

import importlib
import logging
import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bayes_alliance import SessionData, simulate
from bayes_alliance.core import vocab
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.effects.hypothesis import HypothesisError, hypothesis
from bayes_alliance.effects.impulse import impulse_response, predictor_shock_response
from bayes_alliance.inference.fit import FitResult, fit
from bayes_alliance.inference.methods import LATE

# -- impulse responses (no sampling) -----------------------------------------------------------


def test_impulse_response_is_matrix_powers_times_the_impact():
    phi = np.array([[0.5, 0.1], [-0.2, 0.3]])
    r0 = np.array([2.0, 0.0])
    got = impulse_response(phi, r0, 4)
    for h in range(5):
        np.testing.assert_allclose(got[h], np.linalg.matrix_power(phi, h) @ r0, rtol=1e-14)
    # by hand: r1 = (1.0, -0.4), r2 = (0.5*1.0 + 0.1*-0.4, -0.2*1.0 + 0.3*-0.4) = (0.46, -0.32)
    np.testing.assert_allclose(got[1], [1.0, -0.4])
    np.testing.assert_allclose(got[2], [0.46, -0.32])


def test_a_predictor_shock_moves_the_outcome_by_the_state_effect_one_session_later():
    post = {
        vocab.PREDICTOR_AUTOREGRESSION: np.array([[0.5, 0.2]]),
        vocab.REVERSE_STATE_EFFECT: np.array([[0.1, 0.0]]),
        vocab.STATE_EFFECT: np.array([[-0.2, -0.3]]),
        vocab.OUTCOME_AUTOREGRESSION: np.array([[0.3, 0.4]]),
    }
    size = np.array([[0.5, 2.0]])
    r = predictor_shock_response(post, "none", 3, size)
    assert r.shape == (1, 2, 4, 2)
    np.testing.assert_allclose(r[0, :, 0, :], [[0.5, 0.0], [2.0, 0.0]])
    np.testing.assert_allclose(r[0, :, 1, 1], [-0.2 * 0.5, -0.3 * 2.0])


def test_a_same_session_path_enters_through_the_inverse_of_b0():
    a, b, c, d, b0, s = 0.5, 0.1, -0.2, 0.3, 0.4, 1.5
    post = {
        vocab.PREDICTOR_AUTOREGRESSION: np.array(a),
        vocab.REVERSE_STATE_EFFECT: np.array(b),
        vocab.STATE_EFFECT: np.array(c),
        vocab.OUTCOME_AUTOREGRESSION: np.array(d),
        vocab.SAME_SESSION_EFFECT: np.array(b0),
    }
    # structural B0 w_t = Phi w_(t-1) + e_t with B0 = [[1, 0], [-b0, 1]] (y_t = b0 x_t + ...)
    b0_mat = np.array([[1.0, 0.0], [-b0, 1.0]])
    inv = np.linalg.inv(b0_mat)
    reduced = inv @ np.array([[a, b], [c, d]])
    got = predictor_shock_response(post, "predictor_to_outcome", 5, s)
    for h in range(6):
        want = np.linalg.matrix_power(reduced, h) @ inv @ np.array([s, 0.0])
        np.testing.assert_allclose(got[h], want, rtol=1e-12)


# -- hypotheses (no sampling) ------------------------------------------------------------------

DRAWS = {
    "a": np.array([[-1.0, -2.0, 3.0, -4.0], [-0.5, -0.1, 0.2, -3.0]]),
    "b": np.array([[0.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]),
}


def test_hypothesis_counts_the_draws_on_its_side():
    t = hypothesis(["a < 0", "a - b > 0", "2 * a < b - 1"], DRAWS, DRAWS)
    assert t.loc["a < 0", "post_prob"] == 6 / 8
    assert t.loc["a < 0", "evidence_ratio"] == pytest.approx(3.0)
    d = DRAWS["a"] - DRAWS["b"]
    assert t.loc["a - b > 0", "post_prob"] == 2 / 8
    assert t.loc["a - b > 0", "estimate"] == pytest.approx(d.mean())
    assert t.loc["a - b > 0", "sd"] == pytest.approx(d.std(ddof=1))
    lhs = 2 * DRAWS["a"] - (DRAWS["b"] - 1)
    assert t.loc["2 * a < b - 1", "post_prob"] == np.mean(lhs < 0)
    assert list(t.columns) == ["estimate", "sd", "ci_low", "ci_high", "post_prob", "evidence_ratio"]


def test_hypothesis_errors_name_the_term():
    with pytest.raises(HypothesisError, match=r"unknown term 'stat_effect'.*'state_effect'"):
        hypothesis("stat_effect < 0", {"state_effect": DRAWS["a"]}, ["state_effect"])
    with pytest.raises(HypothesisError, match="Valid names: a, b"):
        hypothesis("c > 0", DRAWS, DRAWS)
    with pytest.raises(HypothesisError, match="posterior probability 0 under a continuous"):
        hypothesis("a = 0", DRAWS, DRAWS)
    with pytest.raises(HypothesisError, match="posterior probability 0"):
        hypothesis("a == b", DRAWS, DRAWS)
    with pytest.raises(HypothesisError, match="exactly one comparison"):
        hypothesis("a < b < 0", DRAWS, DRAWS)
    with pytest.raises(HypothesisError, match=r"the term 'abs\(a\)'"):
        hypothesis("abs(a) < 1", DRAWS, DRAWS)
    with pytest.raises(HypothesisError, match="must be <, >, <= or >="):
        hypothesis("a != 0", DRAWS, DRAWS)
    with pytest.raises(HypothesisError, match="cannot read"):
        hypothesis("a < ", DRAWS, DRAWS)


def test_every_late_bound_method_resolves():
    for target in LATE.values():
        module, attr = target.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), target


# -- on a small fit ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> FitResult:
    df, _ = simulate(seed=3, n_therapists=3, patients_per_therapist=3, sessions=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        return fit(data, draws=40, tune=40, random_seed=1, progressbar=False)


def test_loo_by_patient_matches_arviz_on_the_idata(small):
    # a fresh fit holds the per-patient array already (no ensure_log_likelihood call)
    assert vocab.BY_PATIENT in small.idata.log_likelihood.data_vars
    ours = small.loo()
    assert ours.unit == "patient" and ours.elpd.n_data_points == small.data.n_patients
    # ours takes the relative efficiency from the named parameters alone: the mean-ESS of
    # their elements over the draws, computed here from ArviZ's per-variable ESS
    post = small.idata.posterior
    ess = [np.ravel(azs.ess(post[n].values, method="mean")) for n in small.parameters]
    reff = np.hstack(ess).mean() / (post.sizes["chain"] * post.sizes["draw"])
    assert small.relative_ess() == pytest.approx(reff, rel=1e-12)
    theirs_fresh = azs.loo(small.idata, var_name=vocab.BY_PATIENT, reff=small.relative_ess())
    assert theirs_fresh.elpd == pytest.approx(ours.elpd_loo, rel=1e-12)
    # ArviZ's default reff (every posterior variable, per-patient draws included) differs; at 2 x 40
    # draws the Pareto tail is S / 5 = 16 draws for any reff <= 1, so the ELPD agrees
    default = azs.loo(small.idata, var_name=vocab.BY_PATIENT)
    assert default.elpd == pytest.approx(ours.elpd_loo, rel=1e-12)
    tree = small.ensure_log_likelihood()
    ll = tree.log_likelihood[vocab.BY_PATIENT]
    assert ll.dims == ("chain", "draw", vocab.PATIENT)
    # ArviZ's own loo on the result's DataTree, with the documented var_name
    theirs = azs.loo(tree, var_name=vocab.BY_PATIENT)
    np.testing.assert_allclose(np.asarray(theirs.elpd_i), np.asarray(ours.elpd.elpd_i), rtol=1e-10)
    session = small.loo(unit="session")
    n_cells = int((small.data.observed_x | small.data.observed_y).sum())
    assert session.elpd.n_data_points == n_cells
    with pytest.raises(ValueError, match="unit must be one of"):
        small.loo(unit="therapist")


def test_a_loaded_result_saved_with_log_likelihood_holds_it(small, tmp_path, caplog):
    small.save(tmp_path / "fit.nc")
    with caplog.at_level(logging.INFO, logger="bayes_alliance"):
        loaded = FitResult.load(tmp_path / "fit.nc")
    # integrated traits: the file leaves the log-likelihood out, and loading says how to get it
    assert "log_likelihood" not in loaded.idata.children
    hints = [r for r in caplog.records if "ensure_log_likelihood()" in r.getMessage()]
    assert len(hints) == 1 and hints[0].levelno == logging.INFO
    loaded.save(tmp_path / "st.nc", store=("states", "log_likelihood"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bayes_alliance"):
        back = FitResult.load(tmp_path / "st.nc")
    assert not [r for r in caplog.records if "ensure_log_likelihood()" in r.getMessage()]
    # recomputed exactly from the draws and the seed: ArviZ's loo as on the fresh fit
    theirs = azs.loo(back.idata, var_name=vocab.BY_PATIENT)
    ours = azs.loo(small.idata, var_name=vocab.BY_PATIENT)
    np.testing.assert_allclose(np.asarray(theirs.elpd_i), np.asarray(ours.elpd_i), rtol=1e-10)


def test_compare_gives_arviz_columns(small):
    table = small.compare(small, names=["first", "again"])
    assert set(table.index) == {"first", "again"}
    assert {"elpd", "se", "elpd_diff", "dse", "weight", "n_high_k"} <= set(table)
    np.testing.assert_allclose(table["elpd_diff"], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="distinct labels"):
        small.compare(small, names=["x", "x"])


def test_hypothesis_on_a_fit_reads_its_draws(small):
    t = small.hypothesis(["state_effect < 0", "long_run_state_effect < 0"])
    draws = small.draws("state_effect")
    assert t.loc["state_effect < 0", "post_prob"] == np.mean(draws < 0)
    assert t.loc["state_effect < 0", "estimate"] == pytest.approx(draws.mean())
    assert 0 <= t.loc["long_run_state_effect < 0", "post_prob"] <= 1
    with pytest.raises(HypothesisError, match=r"unknown term 'stat_effect'.*Valid names: .*state"):
        small.hypothesis("stat_effect < 0")


def _stationary_var_x(small) -> np.ndarray:
    """Var(w_x) per draw from vec(S) = (I - Phi kron Phi)^-1 vec(Sigma), written out here
    (the fit has no same-session path, random slopes or random innovations)."""
    d = small.draws
    phi = np.stack(
        [
            np.stack([d(vocab.PREDICTOR_AUTOREGRESSION), d(vocab.REVERSE_STATE_EFFECT)], -1),
            np.stack([d(vocab.STATE_EFFECT), d(vocab.OUTCOME_AUTOREGRESSION)], -1),
        ],
        -2,
    )
    sx, sy = d(vocab.INNOVATION_SD_PREDICTOR), d(vocab.INNOVATION_SD_OUTCOME)
    cov = d(vocab.INNOVATION_CORR) * sx * sy
    sigma = np.stack([np.stack([sx**2, cov], -1), np.stack([cov, sy**2], -1)], -2)
    out = np.empty(sx.shape)
    for idx in np.ndindex(sx.shape):
        big = np.eye(4) - np.kron(phi[idx], phi[idx])
        out[idx] = np.linalg.solve(big, sigma[idx].reshape(4))[0]
    return out


def test_conditional_effects_are_the_response_to_a_one_sd_state(small):
    """issue 28: the default shock is one within-person SD of the alliance state; one
    innovation SD and one scale unit remain as options."""
    spec = small.spec
    assert spec.same_session == "none" and not spec.random_slopes
    c = small.draws(vocab.STATE_EFFECT)
    a = small.draws(vocab.PREDICTOR_AUTOREGRESSION)
    s = small.draws(vocab.INNOVATION_SD_PREDICTOR)
    sd_w = np.sqrt(_stationary_var_x(small))
    assert (sd_w > s).all()  # stationary SD exceeds the innovation SD (autoregression != 0)
    for t, size in (
        (small.conditional_effects(horizon=3), sd_w),
        (small.conditional_effects(horizon=3, scale="innovation"), s),
    ):
        assert list(t.columns) == ["variable", "session", "mean", "ci_low", "ci_high"]
        out = t[t["variable"] == "outcome"].set_index("session")
        pred = t[t["variable"] == "predictor"].set_index("session")
        assert out.loc[0, "mean"] == 0.0
        assert pred.loc[0, "mean"] == pytest.approx(size.mean(), rel=1e-9)
        assert out.loc[1, "mean"] == pytest.approx((c * size).mean(), rel=1e-9)
        assert pred.loc[1, "mean"] == pytest.approx((a * size).mean(), rel=1e-9)
        lo, hi = t["ci_low"], t["ci_high"]
        assert (lo <= t["mean"] + 1e-12).all() and (t["mean"] <= hi + 1e-12).all()
    assert small.conditional_effects(horizon=1).attrs["scale"] == "state"
    unit = small.conditional_effects(horizon=1, scale="unit")
    assert unit.iloc[1]["mean"] == pytest.approx(a.mean())
    assert isinstance(small.conditional_effects(plot=True), Figure)
    with pytest.raises(ValueError, match="scale must be one of"):
        small.conditional_effects(scale="sd")


@pytest.mark.parametrize("kind", ["density", "series", "stat"])
def test_pp_check_draws_a_figure(small, kind):
    fig = small.pp_check(kind)
    assert isinstance(fig, Figure) and fig.axes


def test_pp_check_refuses_bad_options(small):
    with pytest.raises(ValueError, match="kind must be one of"):
        small.pp_check("hist")
    with pytest.raises(ValueError, match="unknown patient"):
        small.pp_check("series", patients=["nobody"])
    with pytest.raises(ValueError, match="stat must be one of"):
        small.pp_check("stat", stat="median")


def test_bayes_r2_prior_summary_and_summary_block(small):
    r2 = small.bayes_r2()
    assert r2.index.names == ["equation", "denominator", "component"]
    np.testing.assert_allclose(r2["mean"].to_numpy(), small.r2()["mean"].to_numpy())
    from bayes_alliance.report.priors_text import priors_table

    priors = small.prior_summary()  # raised AttributeError when LATE named report.model_text
    assert {"symbol", "prior"} <= set(priors.columns) and vocab.STATE_EFFECT in priors.index
    pd.testing.assert_frame_equal(priors, priors_table(small.spec, small.data))
    text = small.summary_text()
    assert str(small) == text
    for name in small.summary().index:
        assert name in text
    assert "94% HDI" in text and "Rhat" in text and "convergence check" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    md = small.summary_markdown()
    assert md.count("\n") >= len(small.summary()) and "|" in md


# -- a mechanism fit (the stored file of tests/data, no sampling) ------------------------------


@pytest.fixture(scope="module")
def mechanism():
    from pathlib import Path

    from bayes_alliance import load_result

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_result(Path(__file__).parent / "data" / "old_mechanism_fit.nc")


def test_a_mechanism_fit_has_the_methods_that_mean_something_there(mechanism):
    t = mechanism.hypothesis("indirect_effect_within > 0")
    draws = mechanism.effect_draws()["indirect_effect_within"]
    assert t.iloc[0]["post_prob"] == np.mean(draws > 0)
    with pytest.raises(HypothesisError, match="unknown term 'indirect'"):
        mechanism.hypothesis("indirect > 0")
    from bayes_alliance.report.mechanism_priors import priors_table

    pd.testing.assert_frame_equal(mechanism.prior_summary(), priors_table(mechanism))
    for method, words in (
        ("pp_check", "posterior_predictive"),
        ("bayes_r2", "effects"),
        ("conditional_effects", "effects"),
    ):
        with pytest.raises(ValueError, match=words):
            getattr(mechanism, method)()
    # this file's fit sampled its traits: no per-patient densities, said so by loo
    with pytest.raises(ValueError, match="need the integrated form"):
        mechanism.loo()
