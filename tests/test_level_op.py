"""The Gaussian levels as one numba Op (``kernels/level_op.py``): its value against the dense
Gaussian of a linear model with nested random coefficients, its gradient against finite
differences for every input, and the mechanism model's density and gradient through it against
the numpy composition of :class:`~bayes_alliance.kernels.levels.Quadratic` steps."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from pytensor.graph.traversal import applys_between
from scipy import stats

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.kernels.level_op import (
    LevelOp,
    LevelOpGrad,
    integrate_levels,
    integrate_levels_vjp,
    level_logp,
)
from bayes_alliance.kernels.levels import Quadratic
from bayes_alliance.kernels.small_chol import CholSolve
from bayes_alliance.mechanisms.integrated import (
    EndParams,
    IntegratedParams,
    caseloads,
    filter_inputs,
    marginal_logp,
)
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim.mechanisms import simulate_mechanisms


def _lower(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.tril(rng.normal(scale=0.4, size=(n, n))) + np.diag(0.5 + rng.random(n))


class Linear:
    """Patient i of therapist j(i) has ``n_i`` observations ``y_i = X_i b_i + Z_i tau_j + e``,
    ``e ~ N(0, s_i^2 I)``, ``b_i ~ N(0, U U')``, ``tau_j ~ N(0, U_T U_T')``; some patients have
    fewer observations than coefficients (a singular ``Lambda_bb``)."""

    def __init__(self, seed: int, nb: int, nt: int, n_t: int, n_p: int) -> None:
        rng = np.random.default_rng(seed)
        self.nb, self.nt = nb, nt
        self.group = np.sort(rng.integers(0, max(n_t, 1), n_p))
        self.group[: max(n_t, 1)] = np.arange(max(n_t, 1))  # nobody's caseload empty
        self.n_obs = rng.integers(1, nb + 3, n_p)
        self.x = [rng.normal(size=(m, nb)) for m in self.n_obs]
        self.z = [rng.normal(size=(m, nt)) for m in self.n_obs]
        self.s2 = 0.3 + rng.random(n_p)
        self.y = [rng.normal(size=m) * 1.5 for m in self.n_obs]
        self.u, self.ut = _lower(rng, nb), _lower(rng, nt)
        self.load = np.zeros((n_t, n_p))
        if nt:
            self.load[self.group, np.arange(n_p)] = 1.0

    def factor(self) -> tuple[np.ndarray, ...]:
        """Each patient's ``log N(y_i; H x, s_i^2 I)`` as ``(lam, eta, kappa, log_c)`` in
        ``x = (b_i, tau_j)``, ``H = [X_i | Z_i]``."""
        h = [np.hstack([a, b]) for a, b in zip(self.x, self.z, strict=True)]
        lam = np.stack([m.T @ m / s for m, s in zip(h, self.s2, strict=True)])
        eta = np.stack([m.T @ y / s for m, y, s in zip(h, self.y, self.s2, strict=True)])
        kappa = np.array([y @ y / s for y, s in zip(self.y, self.s2, strict=True)])
        log_c = -0.5 * self.n_obs * np.log(2 * np.pi * self.s2)
        return lam, eta, kappa, log_c

    def dense(self) -> np.ndarray:
        """The log density per unit from the joint Gaussian of its observations."""
        cov_b, cov_t = self.u @ self.u.T, self.ut @ self.ut.T

        def block(i: int) -> np.ndarray:
            return self.x[i] @ cov_b @ self.x[i].T + self.s2[i] * np.eye(self.n_obs[i])

        if not self.nt:
            return np.array(
                [
                    stats.multivariate_normal(np.zeros(m), block(i)).logpdf(self.y[i])
                    for i, m in enumerate(self.n_obs)
                ]
            )
        out = []
        for j in range(self.load.shape[0]):
            who = np.flatnonzero(self.group == j)
            z = np.vstack([self.z[i] for i in who])
            cov = z @ cov_t @ z.T
            at = np.cumsum([0, *[self.n_obs[i] for i in who]])
            for a, i in enumerate(who):
                cov[at[a] : at[a + 1], at[a] : at[a + 1]] += block(i)
            y = np.concatenate([self.y[i] for i in who])
            out.append(stats.multivariate_normal(np.zeros(len(y)), cov).logpdf(y))
        return np.array(out)

    def args(self) -> list[np.ndarray]:
        three = (self.load, self.ut) if self.nt else (np.zeros((0, len(self.y))), np.zeros((0, 0)))
        return [*self.factor(), self.u, *three]


SIZES = [(2, 0, 0, 6), (3, 0, 0, 5), (2, 2, 3, 8), (4, 4, 2, 7), (5, 3, 3, 9), (1, 1, 2, 4)]


@pytest.mark.parametrize(("nb", "nt", "n_t", "n_p"), SIZES)
def test_the_op_is_the_dense_gaussian_and_the_composition(nb, nt, n_t, n_p):
    case = Linear(seed=nb * 10 + nt, nb=nb, nt=nt, n_t=n_t, n_p=n_p)
    assert np.min(case.n_obs) < nb or nb == 1  # a singular Lambda_bb is among them
    want = case.dense()
    lam, eta, kappa, log_c = case.factor()
    three = (case.load, case.ut) if nt else (None, None)
    got = level_logp(lam, eta, kappa, log_c, case.u, *three).eval()
    np.testing.assert_allclose(got, want, atol=1e-9)
    np.testing.assert_allclose(integrate_levels(*case.args()), want, atol=1e-9)
    after = Quadratic(lam, eta, kappa, log_c).integrate(nb, case.u)
    if nt:
        after = after.map(lambda v: np.tensordot(case.load, v, axes=1)).integrate(nt, case.ut)
    np.testing.assert_allclose(got, after.value(), atol=1e-10)


@pytest.mark.parametrize(("nb", "nt", "n_t", "n_p"), [SIZES[0], SIZES[2], SIZES[4]])
def test_the_gradient_of_every_input_is_the_finite_difference(nb, nt, n_t, n_p):
    case = Linear(seed=3 + nb, nb=nb, nt=nt, n_t=n_t, n_p=n_p)
    lam, eta, kappa, log_c, u, load, ut = case.args()
    three = (load,) if nt else ()

    def fn(lam, eta, kappa, log_c, u, *ut_):
        # Lambda is symmetric: its perturbations are taken symmetric too
        sym = (lam + lam.mT) / 2
        return level_logp(sym, eta, kappa, log_c, u, *three, *ut_)

    values = [lam, eta, kappa, log_c, u, *((ut,) if nt else ())]
    verify_grad(fn, values, rng=np.random.default_rng(0), abs_tol=1e-6, rel_tol=1e-6)


def test_the_numba_backend_gives_the_kernels_values():
    case = Linear(seed=5, nb=3, nt=2, n_t=3, n_p=8)
    args = case.args()
    ins = [pt.tensor(shape=(None,) * a.ndim) for a in args[:5]] + [pt.dmatrix()]
    out = level_logp(*ins[:5], pt.as_tensor(case.load), ins[5], sizes=(3, 2))
    g_out = np.random.default_rng(1).normal(size=3)
    cost = pt.dot(out, g_out)
    fn = pytensor.function(ins, [out, *pytensor.grad(cost, ins)], mode="NUMBA")
    value, *grads = fn(*args[:5], args[6])
    np.testing.assert_allclose(value, integrate_levels(*args), rtol=1e-12)
    want = integrate_levels_vjp(*args, g_out)
    for got, ref in zip(grads, want, strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_level_logp_names_what_is_missing():
    lam = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match="therapist prior"):
        level_logp(lam, np.zeros((2, 3)), np.zeros(2), np.zeros(2), np.eye(2), np.ones((1, 2)))
    with pytest.raises(ValueError, match="caseload"):
        level_logp(lam, np.zeros((2, 3)), np.zeros(2), np.zeros(2), np.eye(2))


def _mechanism_data(therapists: int, end: bool) -> SeriesData:
    df, _ = simulate_mechanisms(
        seed=4, design="mediation", n_therapists=therapists, patients_per_therapist=3,
        n_sessions=5, missing=0.2, change_sd=0.1 if end else 0.0,
        end_effects=(0.5, 1.0) if end else None,
        end_therapist_sd=0.3 if end and therapists else 0.0,
    )  # fmt: skip
    df = df[~((df.patient == "p0001") & (df.session <= 3))].reset_index(drop=True)
    return SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        mediator="mediator", therapist="therapist" if therapists else None,
        end_outcome="post_symptoms" if end else None,
    )  # fmt: skip


@pytest.mark.parametrize(("therapists", "end"), [(0, True), (3, True), (3, False)])
def test_the_model_density_and_gradient_through_the_op_are_the_compositions(therapists, end):
    """Random lags, gaps, a patient with one session, measurement error, an end outcome: the
    pytensor density (the Op) and its gradient in the patients' and therapists' covariance
    factors and the end outcome's parameters against the numpy composition and its central
    differences."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _mechanism_data(therapists, end)
    grid = MechanismGrid.of(data)
    rng = np.random.default_rng(8)
    k, n, n_coef = data.k, data.n_patients, data.k + int(end)
    inputs = filter_inputs(data, grid, trend=end)
    if therapists:
        inputs["caseload"] = caseloads(data)
    fixed = dict(
        intercept=rng.normal(size=k), phi=rng.normal(scale=0.25, size=(n, k, k)),
        sigma=np.eye(k) * 0.8, first_cov=np.eye(k), trend=0.05 if end else None,
        error=np.array([0.1, 0.0, 0.2]),
    )  # fmt: skip
    free = {"chol_patient": _lower(rng, n_coef)}
    if therapists:
        free["chol_therapist"] = _lower(rng, k)
    if end:
        free["end"] = np.array([0.2, 0.7, -0.5, 0.4, 0.8, 0.5][: 6 if therapists else 5])

    def params(values, xp):
        end_p = None
        if end:
            e = values["end"]
            end_p = EndParams(e[0], e[1], e[2], e[3] if therapists else None,
                              e[-2] if therapists else e[3], e[-1] if therapists else None)  # fmt: skip
        rest = {key: v for key, v in values.items() if key != "end"}
        return IntegratedParams(**fixed, **rest, end=end_p)

    def numpy_logp(values):
        return float(
            np.sum(marginal_logp(data, inputs, grid.filled, grid.time, params(values, np))[0])
        )

    tensors = {key: pt.tensor(key, shape=v.shape) for key, v in free.items()}
    logp_t, _ = marginal_logp(data, inputs, grid.filled, grid.time, params(tensors, pt), pt)
    total = pt.sum(logp_t)
    names = list(free)
    fn = pytensor.function(
        [tensors[key] for key in names],
        [total, *pytensor.grad(total, [tensors[key] for key in names])],
        mode="NUMBA",
    )
    value, *grads = fn(*[free[key] for key in names])
    assert value == pytest.approx(numpy_logp(free), abs=1e-9)
    for key, grad in zip(names, grads, strict=True):
        num = np.zeros_like(free[key])
        for ix in np.ndindex(num.shape):
            if key.startswith("chol") and ix[1] > ix[0]:
                continue  # the factors are lower triangular
            up = {a: b.copy() for a, b in free.items()}
            down = {a: b.copy() for a, b in free.items()}
            up[key][ix] += 1e-6
            down[key][ix] -= 1e-6
            num[ix] = (numpy_logp(up) - numpy_logp(down)) / 2e-6
        if key.startswith("chol"):
            grad = np.tril(grad)
        np.testing.assert_allclose(grad, num, atol=2e-5 * (1 + np.abs(num).max()))


def test_the_mechanism_model_integrates_its_levels_in_one_op():
    """The levels' pytensor composition (batched Cholesky solves and the products around them,
    forward and reverse) cost more than the Kalman filter; the model's gradient graph holds
    the one Op and its reverse instead."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _mechanism_data(3, False)
        model = build_mechanism_model(data, MechanismSpec(therapist_level=True))
    logp = model.logp()
    outs = [logp, *pytensor.grad(logp, model.value_vars)]
    ops = [node.op for node in applys_between(model.value_vars, outs)]
    assert sum(isinstance(op, LevelOp) for op in ops) == 1
    assert sum(isinstance(op, LevelOpGrad) for op in ops) == 1
    assert not any(isinstance(op, CholSolve) for op in ops)
