"""Measurement error (issue 24): the smoothing draws of the states against the dense Gaussian
conditional, the input checks, and one simulated data set on which the model without the error
term is attenuated while the model with it covers the truth (the slow test repeats this over
seeds and series lengths)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.unit_group import posterior_of
from bayes_alliance.kernels.gaps import GapCells, draw_missing
from bayes_alliance.model.build import build_model
from bayes_alliance.spec.model_spec import ModelSpec
from tests import dense

PHI = np.array([[0.5, 0.1], [-0.3, 0.4]])
SIGMA = np.array([[0.16, -0.03], [-0.03, 0.12]])
OMEGA2 = np.array([0.09, 0.05])


def test_smoothing_draws_match_dense_conditional():
    """One series of six sessions (x missing at the third, y at the fifth) with error: the
    states drawn by forward filtering and backward sampling have the mean and covariance of the
    dense Gaussian conditional of all states given the observed cells."""
    rng = np.random.default_rng(11)
    n_s = 6
    first = dense.stationary(PHI, SIGMA)
    cov_w = dense.series_cov(PHI, [SIGMA] * (n_s - 1), first)  # (x1, y1, x2, y2, ...)
    ox, oy = np.ones(n_s), np.ones(n_s)
    ox[2], oy[4] = 0.0, 0.0
    z = rng.multivariate_normal(np.zeros(2 * n_s), cov_w + np.diag(np.tile(OMEGA2, n_s)))
    obs = np.column_stack([ox, oy]).ravel() > 0
    c_oo = cov_w[np.ix_(obs, obs)] + np.diag(np.tile(OMEGA2, n_s)[obs])
    gain = cov_w[:, obs] @ np.linalg.inv(c_oo)
    mean = gain @ z[obs]
    cov = cov_w - gain @ cov_w[obs, :]

    n = 40000
    zx = np.where(ox > 0, z[0::2], 0.0)
    zy = np.where(oy > 0, z[1::2], 0.0)
    fm = np.zeros(n_s)
    fm[0] = 1.0
    cells = GapCells(
        np.tile(zx, (n, 1)), np.tile(zy, (n, 1)), np.tile(ox, (n, 1)), np.tile(oy, (n, 1)),
        np.tile(fm, (n, 1)),
    )  # fmt: skip
    sig = tuple(SIGMA[i, j] for i, j in ((0, 0), (0, 1), (1, 1)))
    fc = tuple(first[i, j] for i, j in ((0, 0), (0, 1), (1, 1)))
    wx, wy = draw_missing(
        cells, tuple(PHI.ravel()), sig, fc, False, np.ones((n, n_s), bool),
        np.random.default_rng(3), error=tuple(OMEGA2),
    )  # fmt: skip
    draws = np.stack([wx, wy], -1).reshape(n, -1)
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(draws.mean(0) - mean) < 4.5 * se), (draws.mean(0) - mean) / se
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.03 * cov.diagonal().max())
    # observed cells are not returned as their values: the error is smoothed out
    assert np.all(draws.std(0) > 0.05)


def test_too_short_series_named_by_column():
    rows = [(p, s, 3.0 + 0.1 * s + p, 1.0 - 0.1 * s) for p in range(6) for s in (1, 2)]
    df = pd.DataFrame(rows, columns=["patient", "session", "alliance", "symptoms"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(
            df, patient="patient", session="session", predictor="alliance", outcome="symptoms"
        )
    with pytest.raises(ValueError, match=r"column 'alliance' has 2\.0"):
        build_model(data, ModelSpec(therapist_level=False, measurement_error=True))


@pytest.mark.parametrize(
    "opts", [dict(traits="sampled"), dict(equations="outcome"), dict(dynamics="none")]
)
def test_unsupported_combinations_refused(opts):
    with pytest.raises(ValueError, match="measurement_error needs"):
        ModelSpec(measurement_error=True, **opts)


@pytest.fixture(scope="module")
def error_fits():
    """One data set with within-person reliability .75 (12 therapists x 6 patients x 15
    sessions, autoregressions .5), fitted without and with the error term."""
    from bayes_alliance.inference.fit import fit

    df, truth = simulate(
        seed=3,
        n_therapists=12,
        patients_per_therapist=6,
        sessions=15,
        predictor_autoregression=0.5,
        outcome_autoregression=0.5,
        state_effect=-0.3,
        reliability=0.75,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        fits = {
            me: fit(
                data,
                ModelSpec(measurement_error=me),
                draws=500,
                tune=500,
                chains=2,
                random_seed=5,
                progressbar=False,
            )
            for me in (False, True)
        }
    return truth, fits


def test_error_term_removes_the_attenuation(error_fits):
    truth, fits = error_fits
    p = truth.params
    plain, with_error = fits[False].summary(ci_prob=0.94), fits[True].summary(ci_prob=0.94)
    for name in ("predictor_autoregression", "outcome_autoregression"):
        true = getattr(p, name)
        # Without the error term the states carry the noise: carry-over shrinks towards 0 by
        # about the reliability, and the interval excludes the truth.
        assert plain.loc[name, "ci_high"] < true, (name, plain.loc[name].to_dict())
    for name in (
        "predictor_autoregression",
        "outcome_autoregression",
        "state_effect",
        "measurement_error_sd_predictor",
        "measurement_error_sd_outcome",
    ):
        true = getattr(p, name)
        lo, hi = with_error.loc[name, "ci_low"], with_error.loc[name, "ci_high"]
        assert lo <= true <= hi, f"{name}: truth {true:.3f} outside [{lo:.3f}, {hi:.3f}]"


def test_states_carry_the_error_uncertainty(error_fits):
    """With error the states of observed cells are draws (they vary over draws given the latent
    mean), and the replicates and pointwise log-likelihood exist."""
    _, fits = error_fits
    post = fits[True].idata.latent_states
    sd_over_draws = post["state_predictor"].std(("chain", "draw")).values
    assert np.nanmin(sd_over_draws) > 0.02
    plain = fits[False].idata.latent_states
    assert "posterior_predictive" in fits[True].idata
    assert "log_likelihood" in fits[True].idata
    # the state's spread over draws is larger with the error term than without
    assert np.nanmedian(sd_over_draws) > np.nanmedian(
        plain["state_predictor"].std(("chain", "draw")).values
    )


def test_state_collapse_flagged_on_draws():
    from bayes_alliance.effects.identification import state_collapse

    rng = np.random.default_rng(0)
    pairs = {"predictor": ("inn", "err")}
    prior = {"inn": 0.8}
    collapsed = {"inn": np.abs(rng.normal(0, 0.05, 2000)), "err": rng.normal(0.43, 0.02, 2000)}
    healthy = {"inn": rng.normal(0.4, 0.03, 2000), "err": rng.normal(0.25, 0.04, 2000)}
    assert len(state_collapse(collapsed, pairs, prior)) == 1
    assert state_collapse(healthy, pairs, prior) == []


def test_white_noise_states_get_one_identification_warning():
    """Autoregressions .1 and six sessions: states and error cannot be told apart; the fit
    says so once (IdentificationWarning) and records it for the report."""
    from bayes_alliance.core.diagnostics import IDENTIFICATION_KEY, IdentificationWarning
    from bayes_alliance.inference.fit import fit

    df, _ = simulate(
        seed=5,
        n_therapists=10,
        patients_per_therapist=6,
        sessions=6,
        predictor_autoregression=0.1,
        outcome_autoregression=0.1,
        reliability=0.75,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        result = fit(
            data,
            ModelSpec(measurement_error=True),
            draws=300,
            tune=300,
            random_seed=1,
            progressbar=False,
        )
    ident = [w for w in caught if issubclass(w.category, IdentificationWarning)]
    assert len(ident) == 1
    assert result.provenance[IDENTIFICATION_KEY]


def test_states_of_chosen_patients_are_smoothing_draws(error_fits):
    """Without stored states, FitResult.states computes them for chosen patients: with error,
    draws from the smoothing distribution like the stored ones (same mean over draws up to
    Monte Carlo error; they vary over draws), NaN where a value is missing."""
    from bayes_alliance.inference.states import states_of

    _, fits = error_fits
    result = fits[True]
    post = posterior_of(result.idata)
    rows = np.array([0, 9, 30])
    wx, _ = states_of(post, result.data, result.spec, rows, random_seed=1)
    stored = result.idata.latent_states["state_predictor"].values[:, :, rows]
    assert wx.shape == stored.shape
    assert np.array_equal(np.isnan(wx[0, 0]), np.isnan(stored[0, 0]))
    a, b = np.nanmean(wx, axis=(0, 1)), np.nanmean(stored, axis=(0, 1))
    ok = np.isfinite(a)
    assert np.corrcoef(a[ok], b[ok])[0, 1] > 0.95
    assert np.nanmin(wx.std(axis=(0, 1))) > 0.02


def test_report_has_a_patterns_section(error_fits):
    from bayes_alliance.report.patterns import patterns_section

    _, fits = error_fits
    with_error, plain = patterns_section(fits[True]), patterns_section(fits[False])
    assert with_error is not None and plain is not None
    frame = with_error.tables[0].frame
    assert len(frame) == 5
    assert frame["patients with P >= 0.75"].between(0, fits[True].data.n_patients).all()
    # the model without error is told that its probabilities are mostly 0 or 1
    assert any("Without measurement error" in p for p in plain.paragraphs)
    assert not any("Without measurement error" in p for p in with_error.paragraphs)
