"""Stationarity is imposed where the likelihood needs it, with a normalised truncated prior.

The reference finds each patient's stationary slope interval by scanning the eigenvalues of the
reduced-form lag matrix on a fine grid (numpy.linalg.eigvals), and the normalising constants
with scipy's normal CDF.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from bayes_alliance.model.build import build_model
from bayes_alliance.spec.model_spec import ModelSpec
from tests.likelihood_cases import POINT, ROWS, session_data, transformed_point

GRID = np.linspace(-6, 6, 24_001)


def _interval(a, b, d, b0, same_session):
    """Ends of the stationary set of the state effect: a grid scan of the reduced-form
    eigenvalues, refined by bisection."""
    bmat = np.eye(2)
    if same_session == "predictor_to_outcome":
        bmat[1, 0] = -b0
    elif same_session == "outcome_to_predictor":
        bmat[0, 1] = -b0
    inv = np.linalg.inv(bmat)

    def stationary(c):
        phis = np.zeros((np.size(c), 2, 2))
        phis[:, 0, 0], phis[:, 0, 1], phis[:, 1, 0], phis[:, 1, 1] = a, b, c, d
        return np.abs(np.linalg.eigvals(inv @ phis)).max(axis=1) < 1

    ok = stationary(GRID)
    inside = GRID[ok]

    def refine(inner, outer):
        for _ in range(60):
            mid = 0.5 * (inner + outer)
            inner, outer = (mid, outer) if stationary(np.array([mid]))[0] else (inner, mid)
        return inner

    step = GRID[1] - GRID[0]
    return refine(inside.min(), inside.min() - step), refine(inside.max(), inside.max() + step)


def _potential(model, nat):
    nat = dict(nat)
    if "covariate" in model.coords:  # the data's declared covariate adjusts the traits
        for name in ("covariate_effect_predictor", "covariate_effect_outcome"):
            nat.setdefault(name, np.zeros(len(model.coords["covariate"])))
    for role in ("predictor", "outcome"):
        if f"missing_{role}_cell" in model.coords:
            nat.setdefault(
                f"missing_{role}_offset", np.zeros(len(model.coords[f"missing_{role}_cell"]))
            )
    fn = model.compile_fn(
        model.logp(vars=[model["stationarity"]]), inputs=model.value_vars, on_unused_input="ignore"
    )
    return float(fn(transformed_point(model, nat)))


# A strong reverse path narrows the stationary interval of the state effect to (-0.47, 0.98)
# (without a same-session path), within reach of slopes with SD 0.4 around -0.25.
NARROW = dict(POINT, reverse_state_effect=-0.9, sd_state_effect_patient=0.4)


@pytest.mark.parametrize("same_session", ["none", "outcome_to_predictor"])
def test_patient_slope_prior_is_a_normalised_truncated_normal(same_session):
    data = session_data(ROWS, therapist=True)
    spec = ModelSpec(random_slopes=("patient", "therapist"), same_session=same_session)
    model = build_model(data, spec)
    rng = np.random.default_rng(1)
    nat = dict(NARROW)
    nat["therapist_dev_predictor_raw"] = rng.normal(size=2)
    nat["therapist_dev_outcome_raw"] = rng.normal(size=2)
    nat["state_effect_therapist_raw"] = np.array([0.5, -1.0])
    nat["state_effect_patient_raw"] = np.array([0.3, 0.5, 0.6, -0.2])
    b0 = 0.35 if same_session != "none" else 0.0
    lo, hi = _interval(0.3, -0.9, 0.4, b0, same_session)
    centre = -0.25 + 0.15 * nat["state_effect_therapist_raw"][data.patient_therapist]
    mass = stats.norm.cdf((hi - centre) / 0.4) - stats.norm.cdf((lo - centre) / 0.4)
    assert mass.min() < 0.99  # the truncation matters here
    # Each therapist's deviation is truncated to keep its patients' centres stationary.
    mass_t = stats.norm.cdf((hi + 0.25) / 0.15) - stats.norm.cdf((lo + 0.25) / 0.15)
    expected = -np.log(mass).sum() - 2 * np.log(mass_t)
    assert _potential(model, nat) == pytest.approx(expected, abs=1e-4)
    # A patient whose slope leaves the stationary interval has zero prior density.
    nat["state_effect_patient_raw"] = np.array([0.3, 0.5, 0.6, -3.0])
    assert _potential(model, nat) == -np.inf


def test_therapist_slope_prior_keeps_every_patient_of_the_therapist_stationary():
    data = session_data(ROWS, therapist=True)
    spec = ModelSpec(random_slopes=("therapist",), moderators=("moderator",))
    model = build_model(data, spec)
    nat = dict(NARROW, sd_state_effect_therapist=0.4, moderator_effect=np.array([0.1]))
    nat["therapist_dev_predictor_raw"] = np.zeros(2)
    nat["therapist_dev_outcome_raw"] = np.zeros(2)
    nat["state_effect_therapist_raw"] = np.array([0.4, -0.3])
    lo, hi = _interval(0.3, -0.9, 0.4, 0.0, "none")
    z = data.covariates["moderator"].to_numpy()
    fixed = -0.25 + 0.1 * (z - z.mean())
    expected = 0.0
    for j in range(2):
        mine = fixed[data.patient_therapist == j]
        lo_j, hi_j = lo - mine.min(), hi - mine.max()
        expected -= np.log(stats.norm.cdf(hi_j / 0.4) - stats.norm.cdf(lo_j / 0.4))
    assert _potential(model, nat) == pytest.approx(expected, abs=1e-4)


def test_fixed_dynamics_outside_the_stationary_region_have_zero_prior_density():
    data = session_data(ROWS, therapist=False)
    model = build_model(data, ModelSpec(therapist_level=False))
    nat = dict(POINT, outcome_autoregression=1.2)
    assert _potential(model, nat) == -np.inf
    nat["outcome_autoregression"] = 0.5
    assert _potential(model, nat) == 0.0


def test_free_first_session_imposes_nothing_and_reports_the_probability():
    """With a free first session the likelihood exists for any dynamics: no truncation, and
    the posterior probability of stationarity is a real summary."""
    from bayes_alliance.effects.derived import derived_effects
    from bayes_alliance.effects.variance import Design

    data = session_data(ROWS, therapist=False)
    spec = ModelSpec(therapist_level=False, first_session="free")
    model = build_model(data, spec)
    assert "stationarity" not in model.named_vars
    post = {k: np.asarray(v, dtype=float)[None, None].repeat(2, axis=1) for k, v in POINT.items()}
    post["outcome_autoregression"] = np.array([[0.4, 1.3]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eff = derived_effects(post, spec, Design.of(data, spec))
    assert eff["stationary"].tolist() == [[1.0, 0.0]]
    assert np.isfinite(eff["icc_outcome_session"]).all()  # moments from the recursion


def test_truncation_constant_is_accurate_far_in_both_tails():
    """log(Phi(hi) - Phi(lo)) and its gradient stay finite and accurate beyond 38 SD, where
    differences of CDF values underflow (reference: scipy's log-CDF)."""
    import pytensor
    import pytensor.tensor as pt
    from scipy import special

    from bayes_alliance.kernels.truncation import log_normal_mass

    lo, hi = pt.dvector("lo"), pt.dvector("hi")
    out = log_normal_mass(lo, hi)
    fn = pytensor.function([lo, hi], [out, *pt.grad(out.sum(), [lo, hi])])
    lows = np.array([38.0, -45.0, -2.0, 3.0, -1e7, 40.0])
    highs = np.array([39.0, -40.0, 1.0, 1e7, 1e7, 1e14])
    value, g_lo, g_hi = fn(lows, highs)

    def reference(a, b):
        if a >= 0:
            return special.log_ndtr(-a) + np.log1p(
                -np.exp(special.log_ndtr(-b) - special.log_ndtr(-a))
            )
        if b <= 0:
            return special.log_ndtr(b) + np.log1p(
                -np.exp(special.log_ndtr(a) - special.log_ndtr(b))
            )
        return np.log(special.ndtr(b) - special.ndtr(a))

    np.testing.assert_allclose(
        value, [reference(a, b) for a, b in zip(lows, highs, strict=True)], rtol=1e-12
    )
    assert np.isfinite(g_lo).all() and np.isfinite(g_hi).all()
    # d/dlo log(Phi(hi) - Phi(lo)) = -phi(lo) / mass: at (38, 39) about -38.03.
    assert g_lo[0] == pytest.approx(-38.026, abs=1e-3)
