"""The model's likelihood equals the exact Gaussian density of each patient's series.

The reference builds each patient's joint covariance with dense matrices: Var(w_1) = S (stationary)
or the free first-session covariance, Var(w_t) = Phi* Var(w_(t-1)) Phi*' + Sigma*,
Cov(w_t, w_s) = Phi*^(t-s) Var(w_s), in reduced form Phi* = B0^-1 Phi, Sigma* = B0^-1 D B0^-T.
With sampled traits missing cells take the values of the imputation parameters, so the model's
joint density of observed and imputed cells must equal the dense density of the completed
series; with integrated traits the missing cells are integrated out too, so it must equal the
dense density of the observed cells alone.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from scipy import stats

from bayes_alliance import SessionData
from bayes_alliance.kernels import dynamics, moments
from bayes_alliance.model.build import DataScale, GridIndex, build_model
from bayes_alliance.spec.model_spec import ModelSpec
from tests.conftest import ROLES, long_frame

ROLES_2L = {k: val for k, val in ROLES.items() if k != "therapist"}


@pytest.fixture(scope="module")
def tiny() -> SessionData:
    rows = [
        ("T1", "A", 1, 3.0, 1.0),
        ("T1", "A", 2, 3.4, 1.2),
        ("T1", "A", 4, 2.9, 0.7),  # session 3 skipped
        ("T1", "A", 5, 3.3, np.nan),
        ("T2", "B", 1, 4.1, 0.2),
        ("T2", "B", 2, np.nan, 0.5),
        ("T2", "B", 3, 3.8, 0.4),
        ("T2", "C", 2, 2.5, 2.0),
        ("T2", "C", 3, 2.7, 1.6),
        ("T2", "C", 4, 2.2, 1.9),
    ]
    return SessionData.from_frame(long_frame(rows).drop(columns="therapist"), **ROLES_2L)


@pytest.fixture(scope="module")
def tiny_complete() -> SessionData:
    """Complete series: the integrated likelihood then runs on per-patient sums of products."""
    rows = [
        ("T1", "A", 1, 3.0, 1.0),
        ("T1", "A", 2, 3.4, 1.2),
        ("T1", "A", 3, 2.9, 0.7),
        ("T1", "A", 4, 3.3, 0.9),
        ("T2", "B", 1, 4.1, 0.2),
        ("T2", "B", 2, 3.7, 0.5),
        ("T2", "B", 3, 3.8, 0.4),
        ("T2", "C", 2, 2.5, 2.0),
        ("T2", "C", 3, 2.7, 1.6),
        ("T2", "C", 4, 2.2, 1.9),
        ("T2", "C", 5, 2.4, 1.5),
    ]
    return SessionData.from_frame(long_frame(rows).drop(columns="therapist"), **ROLES_2L)


def test_stationary_entries_match_dense_solution():
    rng = np.random.default_rng(0)
    phi = rng.uniform(-0.5, 0.5, size=(50, 2, 2))
    sig = moments.innovation_cov(
        rng.uniform(0.3, 1, 50), rng.uniform(0.3, 1, 50), rng.uniform(-0.8, 0.8, 50)
    )
    s11, s12, s22 = dynamics.stationary_cov(
        (phi[:, 0, 0], phi[:, 0, 1], phi[:, 1, 0], phi[:, 1, 1]),
        (sig[:, 0, 0], sig[:, 0, 1], sig[:, 1, 1]),
    )
    dense = moments.stationary_cov(phi, sig)
    np.testing.assert_allclose(
        np.stack([s11, s12, s22], -1), dense[:, [0, 0, 1], [0, 1, 1]], rtol=1e-10
    )


def _transformed_point(model, natural: dict[str, np.ndarray | float]) -> dict[str, np.ndarray]:
    point = {}
    for rv in model.free_RVs:
        val = np.asarray(natural[rv.name], dtype=float)
        tr = model.rvs_to_transforms.get(rv)
        vv = model.rvs_to_values[rv]
        point[vv.name] = (
            tr.forward(pt.as_tensor(val), *rv.owner.inputs).eval() if tr is not None else val
        )
    return point


def _dense_loglik(data, m_x, m_y, phi_star, sig_star, first_cov, tau=None) -> float:
    """Sum over patients of the dense Gaussian log density of the observed (x, y) minus the
    means (missing entries marginalised by dropping their rows and columns).

    With ``tau`` (2x2) the latent mean is integrated out: every pair of cells gets ``tau`` added
    to its covariance block, and ``m_x`` / ``m_y`` are the prior means of the traits.
    """
    total = 0.0
    for i in range(data.n_patients):
        cols = np.arange(data.first[i], data.last[i] + 1)
        n = len(cols)
        ph = phi_star[i] if phi_star.ndim == 3 else phi_star
        sg = sig_star
        var = [first_cov[i] if first_cov.ndim == 3 else first_cov]
        for _ in range(1, n):
            var.append(ph @ var[-1] @ ph.T + sg)
        cov = np.zeros((2 * n, 2 * n))
        for t in range(n):
            for s in range(t + 1):
                block = np.linalg.matrix_power(ph, t - s) @ var[s]
                cov[2 * t : 2 * t + 2, 2 * s : 2 * s + 2] = block
                cov[2 * s : 2 * s + 2, 2 * t : 2 * t + 2] = block.T
        if tau is not None:
            cov = cov + np.kron(np.ones((n, n)), tau)
        w = np.column_stack([data.x[i, cols] - m_x[i], data.y[i, cols] - m_y[i]]).ravel()
        keep = ~np.isnan(w)
        total += stats.multivariate_normal(np.zeros(keep.sum()), cov[np.ix_(keep, keep)]).logpdf(
            w[keep]
        )
    return total


CASES = {
    "correlated innovations": (ModelSpec(therapist_level=False), {}),
    "lag-0 y->x, no reverse lag": (
        ModelSpec(therapist_level=False, same_session="outcome_to_predictor", reverse_lag=False),
        {},
    ),
    "lag-0 x->y": (ModelSpec(therapist_level=False, same_session="predictor_to_outcome"), {}),
    "random patient slopes": (ModelSpec(therapist_level=False, random_slopes=("patient",)), {}),
    "free first session": (ModelSpec(therapist_level=False, first_session="free"), {}),
}


@pytest.mark.parametrize(
    ("traits", "dataset"),
    [("sampled", "tiny"), ("integrated", "tiny"), ("integrated", "tiny_complete")],
)
@pytest.mark.parametrize("case", list(CASES))
def test_model_loglik_equals_dense_gaussian(request, case, traits, dataset):
    tiny = request.getfixturevalue(dataset)
    spec, _ = CASES[case]
    spec = ModelSpec(**{**spec.to_dict(), "traits": traits})
    model = build_model(tiny, spec)
    rng = np.random.default_rng(3)
    nat: dict[str, object] = {
        "sd_patient_predictor": 1.0,
        "sd_patient_outcome": 1.0,
        # the same covariance as (sd 1, residual sd 1, effect -0.4): Var_y = 1.16, Cov = -0.4
        "sd_patient_outcome_total": np.sqrt(1.16),
        "trait_corr_patient": -0.4 / np.sqrt(1.16),
        "trait_predictor": 3.0 + np.array([0.1, 0.6, -0.4]),
        "trait_outcome": 1.0 + np.array([-0.2, 0.3, 0.5]) - 0.4 * np.array([0.1, 0.6, -0.4]),
        "trait_effect_patient": -0.4,
        "intercept_predictor": 3.0,
        "intercept_outcome": 1.0,
        "predictor_autoregression": 0.3,
        "reverse_state_effect": -0.15,
        "outcome_autoregression": 0.4,
        "state_effect": -0.25,
        "innovation_sd_predictor": 0.5,
        "innovation_sd_outcome": 0.4,
        "innovation_corr": -0.3,
        "same_session_effect": 0.35,
        "sd_state_effect_patient": 0.2,
        "state_effect_patient_raw": np.array([1.0, -0.5, 0.3]),
        "first_sd_predictor": 0.8,
        "first_sd_outcome": 0.6,
        "first_corr": 0.25,
    }
    d = tiny
    idx, sc = GridIndex.of(d), DataScale.of(d)
    x, y = d.x.copy(), d.y.copy()
    if traits == "sampled":
        nat["missing_predictor_offset"] = rng.normal(0, 0.3, len(idx.miss_x[0]))
        nat["missing_outcome_offset"] = rng.normal(0, 0.3, len(idx.miss_y[0]))
        terms = [model["predictor"], model["outcome"], model["missing_cells"]]
        # Reference: the grid completed with the imputed values.
        x[idx.miss_x] = sc.mean_x + nat["missing_predictor_offset"]
        y[idx.miss_y] = sc.mean_y + nat["missing_outcome_offset"]
    else:
        # Missing cells integrated out (the segment path, or the filter for per-patient lags):
        # the reference drops them.
        terms = [model["integrated_series"]]
        paths = {"moment_n"} if dataset == "tiny_complete" else {"segment_first", "gap_first"}
        assert paths & set(model.named_vars)
        assert not [n for n in model.named_vars if n.startswith("missing_")]
        x = np.where(d.in_series, x, np.nan)
        y = np.where(d.in_series, y, np.nan)
    point = _transformed_point(model, nat)
    ours = float(
        model.compile_fn(model.logp(vars=terms), inputs=model.value_vars, on_unused_input="ignore")(
            point
        )
    )

    completed = type(d)(**{**d.__dict__, "x": x, "y": y})
    m_x = np.asarray(nat["trait_predictor"])
    m_y = np.asarray(nat["trait_outcome"])
    reverse = -0.15 if spec.reverse_lag else 0.0
    slopes = -0.25 + (
        0.2 * np.asarray(nat["state_effect_patient_raw"]) if spec.random_slopes else 0.0
    )
    phi = moments.lag_matrix(0.3, reverse, slopes, 0.4)
    b0 = np.eye(2)
    if spec.same_session == "none":
        sigma = moments.innovation_cov(0.5, 0.4, -0.3)
    else:
        sigma = np.diag([0.25, 0.16])
        b0[(1, 0) if spec.same_session == "predictor_to_outcome" else (0, 1)] = -0.35
    b0_inv = np.linalg.inv(b0)
    phi_star = b0_inv @ phi
    sig_star = b0_inv @ sigma @ b0_inv.T
    first = (
        moments.innovation_cov(0.8, 0.6, 0.25)
        if spec.first_session == "free"
        else moments.stationary_cov(phi_star, sig_star)
    )
    if traits == "sampled":
        ref = _dense_loglik(completed, m_x, m_y, phi_star, sig_star, first)
    else:
        # Traits integrated out: prior means are the intercepts (two-level data), covariance
        # from sd_patient_* = 1 and trait_effect_patient = -0.4.
        tau = np.array([[1.0, -0.4], [-0.4, 0.16 + 1.0]])
        ref = _dense_loglik(
            completed, np.full(3, 3.0), np.full(3, 1.0), phi_star, sig_star, first, tau
        )
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_nonstationary_dynamics_get_zero_density(tiny):
    model = build_model(tiny, ModelSpec(therapist_level=False))
    logp = model.compile_fn(
        model.logp(vars=[model["stationarity"]]), inputs=model.value_vars, on_unused_input="ignore"
    )
    ip = model.initial_point()
    ip["outcome_autoregression"] = np.array(1.2)
    assert logp(ip) == -np.inf
    ip["outcome_autoregression"] = np.array(0.5)
    assert logp(ip) == 0.0
