"""REML mixed model: a closed-form balanced case and lme4's published output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.analysis.lmm import fit_reml


def test_balanced_random_intercept_matches_anova_estimators():
    # Balanced one-way design: REML equals the ANOVA (method-of-moments) estimators when the
    # between estimate is positive: sigma2 = MSW, tau2 = (MSB - MSW) / n.
    rng = np.random.default_rng(0)
    k, n = 30, 6
    g = np.repeat(np.arange(k), n)
    y = 2.0 + rng.normal(0, 1.0, k)[g] + rng.normal(0, 2.0, k * n)
    means = np.array([y[g == j].mean() for j in range(k)])
    msw = sum(((y[g == j] - means[j]) ** 2).sum() for j in range(k)) / (k * (n - 1))
    msb = n * ((means - y.mean()) ** 2).sum() / (k - 1)
    r = fit_reml(y, np.ones((k * n, 1)), np.ones((k * n, 1)), g)
    assert r.sigma2 == pytest.approx(msw, rel=1e-6)
    assert r.random_cov[0, 0] == pytest.approx((msb - msw) / n, rel=1e-5)
    assert r.beta[0] == pytest.approx(y.mean(), rel=1e-10)
    assert r.se[0] == pytest.approx(np.sqrt(msb / (k * n)), rel=1e-5)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same number of rows"):
        fit_reml(np.ones(3), np.ones((2, 1)), np.ones((3, 1)), np.arange(3))
    with pytest.raises(ValueError, match="must be finite"):
        fit_reml(np.array([1.0, np.nan]), np.ones((2, 1)), np.ones((2, 1)), np.arange(2))


def test_sleepstudy_matches_lme4(reference_dir):
    # lme4 lmer(Reaction ~ Days + (Days | Subject)), REML; sleepstudy-lme4/README.md.
    s = pd.read_csv(reference_dir / "sleepstudy-lme4" / "sleepstudy.csv")
    design = np.column_stack([np.ones(len(s)), s["Days"]])
    r = fit_reml(s["Reaction"], design, design, s["Subject"])
    np.testing.assert_allclose(r.beta, [251.4051048485, 10.4672859596], rtol=1e-6)
    np.testing.assert_allclose(r.se, [6.82459669495, 1.54578964391], rtol=1e-4)
    assert r.random_cov[0, 0] == pytest.approx(612.10015802477, rel=1e-3)
    assert r.random_cov[1, 1] == pytest.approx(35.07171445094, rel=1e-3)
    assert r.sigma2 == pytest.approx(654.94, rel=1e-4)
    assert r.reml_criterion == pytest.approx(1743.6, abs=0.05)


def test_bdf_within_and_contextual_effects_match_lme4(reference_dir):
    # lme4 tests/bdf.Rout.save and lme4 1.1-31 (bdf-snijders-bosker-lme4/README.md):
    # gamma10 (within) 2.459828355 (SE 0.08363843544), gamma01 (contextual) 1.408919999 (SE 0.32374225971).
    d = pd.read_csv(reference_dir / "bdf-snijders-bosker-lme4" / "bdf.csv")
    x = np.column_stack([np.ones(len(d)), d["IQ.ver.cen"], d["avg.IQ.ver.cen"]])
    z = np.column_stack([np.ones(len(d)), d["IQ.ver.cen"]])
    r = fit_reml(d["langPOST"], x, z, d["schoolNR"])
    assert round(r.beta[1], 2) == round(2.459828355, 2)
    assert round(r.beta[2], 2) == round(1.408919999, 2)
    np.testing.assert_allclose(r.beta, [40.749579727, 2.459828355, 1.408919999], rtol=1e-5)
    np.testing.assert_allclose(r.se, [0.28808112724, 0.08363843544, 0.32374225971], rtol=1e-4)
    assert r.reml_criterion == pytest.approx(15217.87305, abs=1e-3)


def test_registry_size_fit_matches_anova_estimators():
    # 20,000 clusters (a registry's patients): each criterion evaluation works on per-cluster
    # cross-products in batch (a Python loop over clusters took ~3 s per evaluation, ~5 min per
    # fit; timings belong in benchmarks, not here). Truth: the balanced design's ANOVA
    # estimators, as in the first test.
    rng = np.random.default_rng(1)
    k, n = 20_000, 16  # 320,000 rows: an absolute tolerance of 1e-10 was never met
    g = np.repeat(np.arange(k), n)
    y = 1.0 + rng.normal(0, 1.0, k)[g] + rng.normal(0, 1.5, k * n)
    means = y.reshape(k, n).mean(1)
    msw = ((y.reshape(k, n) - means[:, None]) ** 2).sum() / (k * (n - 1))
    msb = n * ((means - y.mean()) ** 2).sum() / (k - 1)
    r = fit_reml(y, np.ones((k * n, 1)), np.ones((k * n, 1)), g)
    assert r.sigma2 == pytest.approx(msw, rel=1e-6)
    assert r.random_cov[0, 0] == pytest.approx((msb - msw) / n, rel=1e-5)
