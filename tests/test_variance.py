"""Population R-squared components and within moments against Monte Carlo truth.

The truth comes from long simulated series (the simulator's structural equations run forward
session by session, with slopes drawn per therapist and patient): pooled moments of the
generated states and of the outcome equation's parts with every patient's true slope, after a
burn-in. Nothing here uses the formulas under test. Tolerances are a few Monte Carlo SEs
(sessions within a patient are dependent, so the SEs were estimated from repeated draws).
"""

from __future__ import annotations

import numpy as np
import pytest

from bayes_alliance import simulate
from bayes_alliance.effects import variance
from bayes_alliance.spec.model_spec import ModelSpec
from tests import dense

BURN = 50
LONG = dict(n_therapists=6000, patients_per_therapist=1, sessions=170, p_missing_session=0.0)


def monte_carlo(seed: int = 0, **settings) -> tuple[dict[str, float], object]:
    """Pooled within moments of long simulated series (sessions BURN..end) and the truth."""
    _, truth = simulate(seed=seed, **{**LONG, **settings})
    p = truth.params
    st = truth.states.sort_values(["patient", "session"])
    pat = truth.patients.set_index("patient").loc[st["patient"].unique()]
    z = st[["state_predictor", "state_outcome"]].to_numpy().reshape(len(pat), -1, 2)
    fixed = (p.state_effect + p.moderator_effect * pat["moderator"].to_numpy())[:, None]
    ther = fixed + pat["state_effect_therapist_dev"].to_numpy()[:, None]
    full = pat["state_effect"].to_numpy()[:, None]
    prev, now = z[:, BURN - 1 : -1], z[:, BURN:]
    b0 = p.same_session_effect if p.same_session == "predictor_to_outcome" else 0.0

    def q(s: np.ndarray) -> float:  # mean square of the outcome equation's systematic part
        part = s * prev[..., 0] + p.outcome_autoregression * prev[..., 1] + b0 * now[..., 0]
        return float(np.mean(part**2))

    f1, q_ther, q_full = q(fixed), q(ther), q(full)
    return {
        "var_x": float(now[..., 0].var()),
        "var_y": float(now[..., 1].var()),
        "cov_xy": float(np.mean(now[..., 0] * now[..., 1])),
        "f1_y": f1,
        "v13_y": q_ther - f1,
        "v12_y": q_full - q_ther,
    }, truth


def ours(truth, per_patient: bool = False) -> dict[str, float]:
    """Our moments at the true parameters (the simulated moderator values): over the population
    slope distribution by quadrature, or over the drawn patients with their own slopes."""
    p = truth.params
    slopes = tuple(
        lvl
        for lvl, sd in (
            ("patient", p.sd_state_effect_patient),
            ("therapist", p.sd_state_effect_therapist),
        )
        if sd > 0
    )
    has_mod = bool(p.moderator_effect)
    spec = ModelSpec(
        random_slopes=slopes,
        moderators=("moderator",) if has_mod else (),
        same_session=p.same_session,
    )
    names = (
        "predictor_autoregression",
        "reverse_state_effect",
        "state_effect",
        "outcome_autoregression",
        "innovation_sd_predictor",
        "innovation_sd_outcome",
        "innovation_corr",
        "sd_state_effect_patient",
        "sd_state_effect_therapist",
        "same_session_effect",
    )
    post = {k: np.asarray(getattr(p, k), dtype=float) for k in names}
    z = truth.patients["moderator"].to_numpy()
    if has_mod:
        post["moderator_effect"] = np.array([p.moderator_effect])
    ther = truth.patients["therapist"].factorize()[0]
    one = np.ones((1, 1))
    design = variance.Design(
        moderators=(z - z.mean())[:, None] if has_mod else None,
        patient_therapist=ther,
        starts=np.array([0]),
        transitions=one,
        cells=one,
        offsets=np.zeros(1),
    )
    slopes = None
    if per_patient:
        pat = truth.patients
        slopes = {
            "therapist": pat["state_effect_therapist_dev"].to_numpy(),
            "patient": pat["state_effect_patient_dev"].to_numpy(),
        }
    out = variance.within_moments(post, spec, design, slopes)
    return {k: float(val) for k, val in out.items()}


CASES = {
    # The worked example: the slope's feedback through the lagged outcome.
    "worked example": dict(
        predictor_autoregression=0.5,
        outcome_autoregression=0.5,
        state_effect=0.3,
        reverse_state_effect=0.0,
        innovation_corr=0.0,
        innovation_sd_predictor=1.0,
        innovation_sd_outcome=1.0,
        sd_state_effect_patient=0.3,
    ),
    "both levels, reverse path": dict(
        state_effect=-0.25,
        reverse_state_effect=-0.15,
        sd_state_effect_patient=0.2,
        sd_state_effect_therapist=0.15,
        innovation_corr=-0.3,
    ),
    "moderator and therapist slopes": dict(
        moderator=True,
        moderator_effect=0.15,
        sd_state_effect_therapist=0.15,
        reverse_state_effect=-0.2,
    ),
    "lag-0 x->y, both levels": dict(
        same_session="predictor_to_outcome",
        same_session_effect=0.35,
        sd_state_effect_patient=0.2,
        sd_state_effect_therapist=0.15,
    ),
    "lag-0 y->x, patient slopes, moderator": dict(
        same_session="outcome_to_predictor",
        same_session_effect=0.3,
        moderator=True,
        moderator_effect=0.1,
        sd_state_effect_patient=0.25,
    ),
}


@pytest.mark.parametrize("per_patient", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_within_moments_match_monte_carlo(case, per_patient):
    mc, truth = monte_carlo(seed=3, **CASES[case])
    est = ours(truth, per_patient)
    # 6000 patients (one per therapist, so that the therapist slopes are 6000 draws too) x 120
    # sessions after the burn-in. Over seeds 3-6 the Monte Carlo values scattered by up to 0.8%
    # (moments) and 7% (the small slope parts v12, v13) around ours, without a common sign.
    for key in ("var_x", "var_y", "f1_y"):
        assert est[key] == pytest.approx(mc[key], rel=0.02), (key, est[key], mc[key])
    assert est["cov_xy"] == pytest.approx(mc["cov_xy"], abs=0.02 * mc["var_y"])
    for key in ("v13_y", "v12_y"):
        assert est[key] == pytest.approx(mc[key], rel=0.12, abs=1e-4), (key, est[key], mc[key])
    # The parts add up to the model-implied within variance of the outcome.
    parts = est["f1_y"] + est["v13_y"] + est["v12_y"] + est["sigma2_y"]
    assert parts == pytest.approx(est["target_y"], rel=1e-10)


def test_worked_example_slope_share_is_not_the_average_dynamics_value():
    """At the average slope the stationary S_xx gives v = 0.3^2 * S_xx = 0.12; the slope's own
    feedback makes the true v about 0.20 (Monte Carlo), a third more than that."""
    mc, truth = monte_carlo(seed=3, **CASES["worked example"])
    s_avg = dense.stationary(np.array([[0.5, 0.0], [0.3, 0.5]]), np.eye(2))
    at_average = 0.3**2 * s_avg[0, 0]
    assert mc["v12_y"] > 1.4 * at_average
    assert ours(truth)["v12_y"] == pytest.approx(mc["v12_y"], rel=0.05)


def test_free_first_session_moments_average_the_recursion():
    """With a free first session the within moments are those of the dense series covariance,
    averaged over the data's transitions (and cells)."""
    phi = np.array([[0.3, -0.1], [-0.25, 0.4]])
    sig = np.array([[0.25, -0.06], [-0.06, 0.16]])
    first = np.array([[0.5, 0.1], [0.1, 0.3]])
    n = 5
    cov = dense.series_cov(phi, [sig] * (n - 1), first)
    var = [cov[2 * t : 2 * t + 2, 2 * t : 2 * t + 2] for t in range(n)]
    spec = ModelSpec(first_session="free")
    post = {
        "predictor_autoregression": np.array(0.3),
        "reverse_state_effect": np.array(-0.1),
        "state_effect": np.array(-0.25),
        "outcome_autoregression": np.array(0.4),
        "innovation_sd_predictor": np.array(0.5),
        "innovation_sd_outcome": np.array(0.4),
        "innovation_corr": np.array(-0.3),
        "first_sd_predictor": np.array(np.sqrt(0.5)),
        "first_sd_outcome": np.array(np.sqrt(0.3)),
        "first_corr": np.array(0.1 / np.sqrt(0.15)),
    }
    # Three patients: two with 5 sessions, one with 3 (all starting at the first column).
    cells = np.array([[3.0, 3.0, 3.0, 2.0, 2.0]])
    trans = np.array([[0.0, 3.0, 3.0, 2.0, 2.0]])
    design = variance.Design(None, None, np.array([0]), trans, cells, np.arange(5.0))
    est = variance.within_moments(post, spec, design)
    w_tr = trans[0] / trans.sum()
    w_ce = cells[0] / cells.sum()
    target = sum(w_tr[t] * var[t][1, 1] for t in range(1, n))
    assert float(est["target_y"]) == pytest.approx(target, rel=1e-10)
    assert float(est["var_x"]) == pytest.approx(sum(w_ce[t] * var[t][0, 0] for t in range(n)))
    f1 = sum(w_tr[t] * (phi[1] @ var[t - 1] @ phi[1]) for t in range(1, n))
    assert float(est["f1_y"]) == pytest.approx(f1, rel=1e-10)


def test_trend_component_is_the_trend_variance_over_the_data_cells():
    """With per-patient trends the outcome's mean moves over sessions; that variance is the
    ``time`` component. Truth: the variance over the data's cells of each patient's drawn
    trend times the session offset."""
    import warnings

    from bayes_alliance import SessionData
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.effects.derived import r2_components

    df, truth = simulate(
        seed=8,
        n_therapists=500,
        patients_per_therapist=10,
        sessions=(6, 14),
        trend_outcome=-0.05,
        sd_trend_outcome=0.03,
        trend_predictor=0.02,
        sd_trend_predictor=0.01,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
    pat = truth.patients.set_index("patient")
    part = pat.loc[df["patient"], "trend_outcome"].to_numpy() * (df["session"].to_numpy() - 1)
    spec = ModelSpec(trend=True)
    p = truth.params
    post = {
        k: np.asarray(val, dtype=float) for k, val in p.__dict__.items() if isinstance(val, float)
    }
    comps = r2_components(post, spec, variance.Design.of(data, spec))
    assert float(comps["outcome"]["time"]) == pytest.approx(part.var(), rel=0.03)
    # It enters the total only: the level-specific denominators are unchanged by it.
    from bayes_alliance.kernels import r2

    shares = r2.three_level_r2(comps["outcome"])
    assert ("level1", "time") not in shares
    total = sum(float(comps["outcome"][k]) for k in comps["outcome"])
    assert float(shares[("total", "time")]) == pytest.approx(
        float(comps["outcome"]["time"]) / total
    )


def test_truncated_normal_map_far_in_the_tails():
    """The map from a standard normal node to the truncated normal keeps its order and stays
    inside the interval however far out the interval lies (reference: scipy.stats.truncnorm,
    accurate there)."""
    from scipy import stats

    r = np.polynomial.hermite_e.hermegauss(24)[0]
    for lo, hi in ((-1.0, 2.0), (3.0, 5.0), (-6.0, -4.0), (-45.0, -40.0), (38.0, 39.0)):
        q = variance.truncated_quantile(r, np.array([lo]), np.array([hi]))
        assert np.isfinite(q).all() and (np.diff(q) >= 0).all()
        assert (q >= lo - 1e-9).all() and (q <= hi + 1e-9).all()
        ref = stats.truncnorm.ppf(stats.norm.cdf(r[6:18]), lo, hi)
        np.testing.assert_allclose(q[6:18], ref, atol=1e-6)


def test_per_patient_moments_stay_finite_when_the_truncation_binds():
    """A strong reverse path puts the stationarity bound near the slope distribution: the
    population expectation of the stationary variance diverges there, but each patient's own
    dynamics are stationary, so the average over the data's patients is finite and matches the
    Monte Carlo moments of those same patients."""
    settings = dict(
        reverse_state_effect=-0.9,
        state_effect=-0.25,
        sd_state_effect_patient=0.3,
        innovation_corr=0.0,
    )
    mc, truth = monte_carlo(seed=4, **settings)
    lo = -(1 - 0.3 - 0.4 + 0.12) / 0.9  # 1 + det - tr > 0 with det = 0.12 + 0.9 c, tr = 0.7
    slopes = truth.patients["state_effect"].to_numpy()
    assert slopes.min() > lo and (slopes < lo + 0.1).any()  # patients close to the bound
    est = ours(truth, per_patient=True)
    for key in ("var_x", "var_y", "f1_y"):
        assert est[key] == pytest.approx(mc[key], rel=0.05), (key, est[key], mc[key])
    assert np.isfinite(list(est.values())).all()
