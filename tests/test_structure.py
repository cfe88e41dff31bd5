"""The shared path from named parameters to the dynamics and the known means, in both of its
shapes (one draw; draws on a trailing axis), against dense matrices built by hand
(``B0^-1 Phi``, ``B0^-1 Sigma B0^-T``, scipy's discrete Lyapunov solver) and means computed
cell by cell."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from bayes_alliance.model import structure
from bayes_alliance.spec.model_spec import ModelSpec

SPEC = ModelSpec(
    random_slopes=("patient", "therapist"),
    moderators=("m",),
    baseline=("b",),
    baseline_level="patient",
    same_session="predictor_to_outcome",
    trend=True,
)
TJ = np.array([0, 0, 1, 1, 1])
Z = np.array([[-1.0], [0.5], [0.0], [1.5], [-1.0]])
ZB = np.array([[0.3], [-0.2], [0.4], [-0.1], [-0.4]])
T = np.arange(4.0)
N_DRAWS = 3


def _posterior(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draws first: (D,) per scalar, (D, unit) per vector. ``innovation_corr`` is there although
    a same-session path leaves it out of the model: the lookup must read it as 0."""

    def u(lo: float, hi: float, *shape: int) -> np.ndarray:
        return rng.uniform(lo, hi, (N_DRAWS, *shape))

    return {
        "predictor_autoregression": u(0.1, 0.4),
        "reverse_state_effect": u(-0.2, 0.1),
        "outcome_autoregression": u(0.1, 0.4),
        "state_effect": u(-0.3, 0.0),
        "moderator_effect": u(-0.1, 0.1, 1),
        "sd_state_effect_therapist": u(0.05, 0.1),
        "state_effect_therapist_raw": rng.normal(size=(N_DRAWS, 2)),
        "sd_state_effect_patient": u(0.05, 0.1),
        "state_effect_patient_raw": rng.normal(size=(N_DRAWS, 5)),
        "same_session_effect": u(-0.3, 0.3),
        "innovation_sd_predictor": u(0.3, 0.6),
        "innovation_sd_outcome": u(0.3, 0.6),
        "innovation_corr": u(0.3, 0.6),
        "intercept_predictor": u(3.0, 4.0),
        "intercept_outcome": u(1.0, 2.0),
        "trend_predictor": u(-0.1, 0.1),
        "trend_outcome": u(-0.1, 0.1),
        "sd_trend_predictor": u(0.01, 0.05),
        "sd_trend_outcome": u(0.01, 0.05),
        "trend_predictor_raw": rng.normal(size=(N_DRAWS, 5)),
        "trend_outcome_raw": rng.normal(size=(N_DRAWS, 5)),
        "trait_effect_patient": u(-0.5, 0.0),
        "baseline_effect_predictor": u(0.2, 0.5, 1),
        "baseline_effect_outcome": u(-0.3, 0.0, 1),
    }


def _dense(p: dict[str, np.ndarray], d: int, i: int) -> tuple[np.ndarray, ...]:
    """Patient i's reduced-form Phi*, Sigma* and stationary S in draw d, by matrices."""
    slope = (
        p["state_effect"][d]
        + Z[i] @ p["moderator_effect"][d]
        + p["sd_state_effect_therapist"][d] * p["state_effect_therapist_raw"][d, TJ[i]]
        + p["sd_state_effect_patient"][d] * p["state_effect_patient_raw"][d, i]
    )
    phi = np.array(
        [
            [p["predictor_autoregression"][d], p["reverse_state_effect"][d]],
            [slope, p["outcome_autoregression"][d]],
        ]
    )
    sigma = np.diag([p["innovation_sd_predictor"][d] ** 2, p["innovation_sd_outcome"][d] ** 2])
    inv_b0 = np.linalg.inv(np.array([[1.0, 0.0], [-p["same_session_effect"][d], 1.0]]))
    phi_r, sigma_r = inv_b0 @ phi, inv_b0 @ sigma @ inv_b0.T
    return phi_r, sigma_r, linalg.solve_discrete_lyapunov(phi_r, sigma_r)


def _known(p: dict[str, np.ndarray], d: int, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Patient i's known means over the sessions in draw d, cell by cell."""
    a, c = p["baseline_effect_predictor"][d], p["baseline_effect_outcome"][d]
    out = []
    for w, shift in (
        ("predictor", ZB[i] @ a),
        ("outcome", ZB[i] @ (c + p["trait_effect_patient"][d] * a)),
    ):
        slope = p[f"trend_{w}"][d] + p[f"sd_trend_{w}"][d] * p[f"trend_{w}_raw"][d, i]
        out.append(np.array([p[f"intercept_{w}"][d] + slope * t + shift for t in T]))
    return out[0], out[1]


@pytest.mark.parametrize("draws_last", [False, True])
def test_dynamics_and_known_means_match_dense_matrices(draws_last: bool) -> None:
    p = _posterior(np.random.default_rng(4))
    if draws_last:  # every draw at once: entries (P, D) or (D,), known means (P, S, D)
        get = structure.lookup(p, SPEC, draws_first=True)
        dyn = structure.dynamics_from(get, SPEC, z=Z, tj=TJ)
        known = structure.known_means(get, SPEC, ZB, "patient").cells(T[:, None])
        pick = [lambda e, d=d: np.broadcast_to(e, (5, N_DRAWS))[:, d] for d in range(N_DRAWS)]
        cells = [tuple(k[..., d] for k in known) for d in range(N_DRAWS)]
        dyns = [dyn] * N_DRAWS
    else:
        dyns, cells, pick = [], [], []
        for d in range(N_DRAWS):
            get = structure.lookup({k: val[d] for k, val in p.items()}, SPEC)
            dyns.append(structure.dynamics_from(get, SPEC, z=Z, tj=TJ))
            cells.append(structure.known_means(get, SPEC, ZB, "patient").cells(T))
            pick.append(lambda e: np.broadcast_to(e, (5,)))
    for d in range(N_DRAWS):
        for i in range(5):
            phi_r, sigma_r, s = _dense(p, d, i)
            got = [pick[d](e)[i] for e in dyns[d].phi]
            np.testing.assert_allclose(got, phi_r.ravel(), rtol=1e-12)
            got = [pick[d](e)[i] for e in dyns[d].sigma]
            np.testing.assert_allclose(got, sigma_r[[0, 0, 1], [0, 1, 1]], rtol=1e-12)
            got = [pick[d](e)[i] for e in dyns[d].first]
            np.testing.assert_allclose(got, s[[0, 0, 1], [0, 1, 1]], rtol=1e-9)
            kx, ky = _known(p, d, i)
            np.testing.assert_allclose(cells[d][0][i], kx, rtol=1e-12)
            np.testing.assert_allclose(cells[d][1][i], ky, rtol=1e-12)


def test_lookup_gives_defaults_for_what_the_spec_leaves_out() -> None:
    post = {"innovation_corr": np.array(0.5), "state_effect": np.array(-0.2)}
    get = structure.lookup(post, ModelSpec(same_session="predictor_to_outcome"))
    assert get("innovation_corr") == 0.0  # no correlation with a lag-0 path
    assert get("state_effect") == -0.2
    assert get("same_session_effect", 0.3) == 0.3  # estimated, absent: the default
    get = structure.lookup(post, ModelSpec(same_session="none"))
    assert get("innovation_corr") == 0.5
