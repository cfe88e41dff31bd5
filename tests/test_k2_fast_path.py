"""The k = 2 fast path of the integrated mechanism model's filter (kernels.kalman_k2: the main
model's entry-wise Op) against the general k-series Op it replaces (kernels.kalman_k, itself
checked against dense Gaussians in test_mechanism_integrated.py), value and gradient of the
whole integrated density, and against the dense joint Gaussian of every observed cell."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.kernels.kalman_k import KalmanK
from bayes_alliance.kernels.kalman_k2 import filter_k2, unit_mean_columns
from bayes_alliance.kernels.kalman_op import KalmanFactor, KalmanFactorGrad
from bayes_alliance.mechanisms import integrated
from bayes_alliance.mechanisms.integrated import (
    EndParams,
    IntegratedParams,
    filter_inputs,
    marginal_logp,
)
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim.mechanisms import simulate_mechanisms
from tests.dense_k import EndOutcome, dense_logp


def _data(therapists: int, end: bool, design: str = "two_series") -> SeriesData:
    """Small data with gaps, one patient with a single session, one whose series starts late
    and one without an end outcome."""
    df, _ = simulate_mechanisms(
        seed=21, design=design, n_therapists=therapists, patients_per_therapist=3,
        n_sessions=5, missing=0.2, end_effects=(0.5, 1.0) if end else None,
        end_therapist_sd=0.3 if end and therapists else 0.0,
    )  # fmt: skip
    df = df[~((df.patient == "p0001") & (df.session >= 2))]  # one session only
    df = df[~((df.patient == "p0002") & (df.session == 3))]
    df = df[~((df.patient == "p0004") & (df.session <= 2))].reset_index(drop=True)  # starts late
    if end:
        df.loc[df.patient == "p0003", "post_symptoms"] = np.nan
    third = {"mediator": "mediator"} if design == "mediation" else {}
    return SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        therapist="therapist" if therapists else None,
        end_outcome="post_symptoms" if end else None, **third,
    )  # fmt: skip


def _graph_ops(model) -> set[type]:
    """The Ops in the model's log-density graph (as built: nothing compiled)."""
    nodes = pytensor.graph.traversal.applys_between(model.value_vars, [model.logp()])
    return {type(node.op) for node in nodes}


def _logp_and_grad(model, seed: int) -> tuple[float, np.ndarray]:
    """The model's log density and its gradient at its initial point plus noise (seeded)."""
    logp = model.logp()
    fn = pytensor.function(
        model.value_vars,
        [logp, *pytensor.grad(logp, model.value_vars)],
        on_unused_input="ignore",
        mode="FAST_COMPILE",  # a few evaluations: compiling the C code would cost far more
    )
    point = model.initial_point()
    rng = np.random.default_rng(seed)
    x = [point[v.name] + rng.normal(scale=0.3, size=point[v.name].shape) for v in model.value_vars]
    val, *grads = fn(*x)
    return float(val), np.concatenate([np.ravel(g) for g in grads])


def _build(data, spec, fast: bool, monkeypatch):
    monkeypatch.setattr(integrated, "K2_FAST_PATH", fast)
    return build_mechanism_model(data, spec)


# (therapists, end outcome, spec): gaps and a one-session patient throughout
SPECS = [
    # two levels; random cross-lag (a path) and measurement error on the predictor
    (0, False, MechanismSpec(random_paths=(("outcome", "predictor"),),
                             measurement_error=("predictor",))),
    # three levels; random autoregression, random innovations, error on both series
    (3, False, MechanismSpec(therapist_level=True, random_paths=(("outcome", "outcome"),),
                             random_innovations=True, measurement_error=("predictor", "outcome"))),
    # three levels with an end outcome and no change column; random lags covarying with the
    # means (their known means shift the data)
    (3, True, MechanismSpec(therapist_level=True, trend=False,
                            random_paths=(("predictor", "outcome"),), lag_trait_covariance=True)),
]  # fmt: skip


@pytest.mark.parametrize(("therapists", "end", "spec"), SPECS)
def test_fast_path_gives_the_general_filters_density_and_gradient(
    therapists, end, spec, monkeypatch
):
    data = _data(therapists, end)
    fast = _build(data, spec, True, monkeypatch)
    general = _build(data, spec, False, monkeypatch)
    assert KalmanFactor in _graph_ops(fast) and KalmanK not in _graph_ops(fast)
    assert KalmanK in _graph_ops(general) and KalmanFactor not in _graph_ops(general)
    for seed in (0, 1):
        v_fast, g_fast = _logp_and_grad(fast, seed)
        v_gen, g_gen = _logp_and_grad(general, seed)
        assert v_fast == pytest.approx(v_gen, rel=1e-12, abs=1e-9)
        np.testing.assert_allclose(g_fast, g_gen, rtol=1e-9, atol=1e-9)


def test_fast_path_only_for_two_series_without_a_change_column():
    assert unit_mean_columns(np.broadcast_to(np.eye(2), (3, 4, 2, 2)).copy(), 2)
    with_change = np.zeros((3, 4, 2, 3))
    with_change[:, :, 0, 0] = with_change[:, :, 1, 1] = 1.0
    assert not unit_mean_columns(with_change, 2)
    assert not unit_mean_columns(np.broadcast_to(np.eye(3), (3, 4, 3, 3)).copy(), 3)
    wrong = np.broadcast_to(np.eye(2), (3, 4, 2, 2)).copy()
    wrong[0, 0, 0, 1] = 0.5  # not the unit mean columns
    assert not unit_mean_columns(wrong, 2)


@pytest.mark.parametrize(
    ("design", "end", "trend"), [("two_series", True, True), ("mediation", False, False)]
)
def test_models_with_a_change_or_three_series_keep_the_general_filter(design, end, trend):
    data = _data(0, end, design)
    model = build_mechanism_model(data, MechanismSpec(trend=trend, random_paths=()))
    ops = _graph_ops(model)
    assert KalmanK in ops and KalmanFactor not in ops


def _spd(rng: np.random.Generator, n: int, lead: tuple[int, ...] = ()) -> np.ndarray:
    a = rng.normal(size=(*lead, n, n))
    return a @ np.swapaxes(a, -1, -2) / n + np.eye(n)


@pytest.mark.parametrize(("therapists", "error_at"), [(0, (0,)), (2, (0, 1)), (2, ())])
def test_fast_path_density_is_the_dense_joint_gaussian(therapists, error_at):
    """The whole integrated density through the fast path (pytensor) against the dense joint
    Gaussian of every observed cell and end outcome (tests/dense_k.py), with an end outcome
    and no change column, per-patient lags and innovations."""
    data = _data(therapists, True)
    grid = MechanismGrid.of(data)
    k, n = data.k, data.n_patients
    rng = np.random.default_rng(9)
    omega = np.zeros(k)
    omega[list(error_at)] = 0.4
    sigma_p = _spd(rng, k) * 0.5
    sigma_t = _spd(rng, k) * 0.3 if therapists else None
    endp = EndParams(0.3, 0.8, None, 0.5 if therapists else None, 0.7,
                     0.4 if therapists else None)  # fmt: skip
    params = IntegratedParams(
        rng.normal(size=k), rng.normal(scale=0.25, size=(n, k, k)), _spd(rng, k, (n,)),
        _spd(rng, k), np.linalg.cholesky(sigma_p), None, omega**2,
        None if sigma_t is None else np.linalg.cholesky(sigma_t), endp,
    )  # fmt: skip
    inputs = filter_inputs(data, grid, trend=False)
    logp, _ = marginal_logp(data, inputs, grid.filled, grid.time, params, pt)
    assert any(isinstance(v.owner.op, KalmanFactor) for v in pytensor.graph.ancestors([logp])
               if v.owner is not None)  # fmt: skip
    observed = np.isfinite(data.z)
    dense_end = EndOutcome(
        O=data.end_outcome, g0=0.3, gP=0.8, sdO=0.7, gT=endp.trait_therapist or 0.0, gS=0.0,
        tauO=endp.sd_therapist or 0.0,
    )  # fmt: skip
    want = dense_logp(
        np.where(observed, data.z, 0.0), observed, data.first, data.last, grid.time,
        params.intercept, params.phi, params.sigma, params.first_cov, sigma_p, omega,
        therapist=data.patient_therapist if therapists else None, sigma_t=sigma_t, trend=0.0,
        end=dense_end,
    )  # fmt: skip
    got = pytensor.function([], pt.sum(logp), mode="FAST_COMPILE")()
    assert float(got) == pytest.approx(want, abs=1e-8)


def test_fast_filter_gradient_reaches_every_parameter():
    """filter_k2's gradient against central differences of its own value (the hand gradient
    of kalman_op read through the adapter's slicing of Phi, Sigma, F and R)."""
    rng = np.random.default_rng(3)
    n_p, n_s = 3, 5
    o = (rng.random((n_p, n_s, 2)) > 0.25).astype(float)
    d = rng.normal(size=(n_p, n_s, 2)) * o
    first = np.zeros((n_p, n_s))
    first[:, 0] = 1.0
    first[2, 0], first[2, 2] = 0.0, 1.0
    o[2, :2] = d[2, :2] = 0.0
    theta = pt.dvector("theta")
    phi = theta[:12].reshape((n_p, 2, 2))
    a = theta[12:16].reshape((2, 2))
    sigma = a @ a.T + pt.eye(2)
    b = theta[16:20].reshape((2, 2))
    f = b @ b.T + pt.eye(2)
    err = pt.stack([theta[20] ** 2, pt.as_tensor(0.0)])
    log_c, acc = filter_k2(d, o, first, phi, sigma, f, err)
    w = rng.normal(size=(n_p, 3, 3))
    out = pt.sum(log_c) + pt.sum(acc * w)
    fn = pytensor.function([theta], [out, pytensor.grad(out, theta)], mode="FAST_COMPILE")
    x0 = rng.normal(scale=0.4, size=21)
    x0[20] = 0.6
    _, grad = fn(x0)
    num = np.array([(fn(x0 + 1e-6 * e)[0] - fn(x0 - 1e-6 * e)[0]) / 2e-6 for e in np.eye(21)])
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-6)
    assert KalmanFactorGrad in {type(n.op) for n in fn.maker.fgraph.apply_nodes}


@pytest.mark.slow  # two nutpie compilations and three short runs: about a minute
def test_a_compiled_two_series_model_refits_new_data_through_the_fast_path():
    """The fast path leaves the regressors' container out of the graph: a compiled model still
    takes another data set of its layout and gives the fresh fit's draws."""
    import warnings

    from bayes_alliance.mechanisms.compiled import compile_mechanisms
    from bayes_alliance.mechanisms.fit import fit_mechanisms

    def data(seed: int) -> SeriesData:
        df, _ = simulate_mechanisms(
            seed=seed, design="two_series", n_therapists=2, patients_per_therapist=3,
            n_sessions=5, missing=0.15,
        )  # fmt: skip
        return SeriesData.from_frame(
            df, patient="patient", session="session", predictor="alliance",
            outcome="symptoms", therapist="therapist",
        )  # fmt: skip

    spec = MechanismSpec(therapist_level=True)
    kw = dict(random_seed=5, draws=40, tune=40, chains=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first, new = data(1), data(2)
        cm = compile_mechanisms(first, spec)
        assert KalmanFactor in _graph_ops(cm.model)
        refit = cm.fit(new, **kw)
        fresh = fit_mechanisms(new, spec, progressbar=False, **kw)
    for name in ("intercept", "lag"):
        np.testing.assert_array_equal(
            refit.idata.posterior[name].values, fresh.idata.posterior[name].values
        )
    assert not np.allclose(
        refit.idata.posterior["intercept"], cm.fit(first, **kw).idata.posterior["intercept"]
    )
