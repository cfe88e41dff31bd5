"""The Kalman filter Op (numba kernels) against the numpy filter: outputs to rounding, and its
hand-written gradient against central finite differences of the numpy filter, under the
default (python) linker and the numba linker, with and without measurement error."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from bayes_alliance.kernels.gaps import GapCells, filter_factor
from bayes_alliance.kernels.kalman_op import KalmanFactor, filter_factor_op, kalman_factor

NAMES = ("dx", "dy", "a", "b", "c", "d", "f11", "f12", "f22", "s11", "s12", "s22", "rx", "ry")


def _problem(seed=0, n_p=6, n_s=8, error=False):
    """Patients starting at different columns, per-patient lags and first-cell covariances,
    per-session innovations; rows with x only, y only and both missing."""
    rng = np.random.default_rng(seed)
    first = np.array([0, 2, 0, 1, 0, 3])[:n_p]
    last = np.array([7, 7, 3, 5, 7, 6])[:n_p]
    cols = np.arange(n_s)[None]
    inside = (cols >= first[:, None]) & (cols <= last[:, None])
    ox = (inside & (rng.random((n_p, n_s)) > 0.3)).astype(float)
    oy = (inside & (rng.random((n_p, n_s)) > 0.3)).astype(float)
    ox[0, 3] = oy[0, 3] = 0.0  # both missing
    ox[1, 4], oy[1, 4] = 1.0, 0.0  # y missing
    ox[2, 1], oy[2, 1] = 0.0, 1.0  # x missing
    for i in range(n_p):
        ox[i, first[i]] = oy[i, last[i]] = 1.0
    fm = np.zeros((n_p, n_s))
    fm[np.arange(n_p), first] = 1.0
    dx = rng.normal(size=(n_p, n_s)) * ox
    dy = rng.normal(size=(n_p, n_s)) * oy
    phi = [e + 0.05 * rng.normal(size=n_p) for e in (0.5, 0.1, 0.3, 0.4)]
    fc = [e + 0.1 * rng.random(n_p) for e in (1.6, 0.5, 1.3)]
    sc = 1.0 + 0.1 * np.arange(n_s - 1)
    sig = [1.0 * sc, 0.3 * sc * rng.random(n_s - 1), 0.8 * sc]
    # measurement-error variances per patient (zero: the error-free filter)
    if error == "cell":  # one variance per cell (several indicators, some missing)
        err = [e * (0.5 + rng.random((n_p, n_s))) for e in (0.4, 0.3)]
    else:
        err = [e * (0.5 + rng.random(n_p)) if error else np.zeros(n_p) for e in (0.4, 0.3)]
    return dict(ox=ox, oy=oy, fm=fm, vals=[dx, dy, *phi, *fc, *sig, *err])


def _numpy(pr, vals):
    dx, dy, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry = vals
    cells = GapCells(dx, dy, pr["ox"], pr["oy"], pr["fm"])
    error = (0.0, 0.0) if not (rx.any() or ry.any()) else (rx, ry)
    lc, f, _ = filter_factor(
        cells,
        (a, b, c, d),
        (s11, s12, s22),
        (f11, f12, f22),
        dx.shape[1],
        by_session=True,
        error=error,
    )
    return np.stack([lc, f.l11, f.l12, f.l22, f.g1, f.g2, f.q])


def _graph(pr):
    cell = pr["vals"][12].ndim == 2
    ins = [
        pt.dmatrix(n) if n in ("dx", "dy") or (cell and n in ("rx", "ry")) else pt.dvector(n)
        for n in NAMES
    ]
    cells = GapCells(ins[0], ins[1], pt.as_tensor(pr["ox"]), pt.as_tensor(pr["oy"]), pr["fm"])
    log_c, f = filter_factor_op(
        cells, ins[2:6], ins[9:12], ins[6:9], by_session=True, error=(ins[12], ins[13])
    )
    return ins, pt.stack([log_c, f.l11, f.l12, f.l22, f.g1, f.g2, f.q])


def test_kernel_matches_numpy_filter_with_error():
    """With measurement error the kernel and the numpy filter run the same formulas."""
    pr = _problem(error=True)
    vals = pr["vals"]
    n_p = vals[0].shape[0]
    sig = [np.tile(np.concatenate([s[:1], s]), (n_p, 1)) for s in vals[9:12]]
    ours = np.stack(
        kalman_factor(
            *vals[:2],
            pr["ox"],
            pr["oy"],
            pr["fm"],
            *vals[2:9],
            *sig,
            *(np.tile(e[:, None], (1, vals[0].shape[1])) for e in vals[12:]),
        )[:7]
    )
    np.testing.assert_allclose(ours, _numpy(pr, vals), rtol=1e-12, atol=1e-13)
    assert not np.allclose(ours, _numpy(_problem(), _problem()["vals"]))


@pytest.mark.parametrize("scale", [1.0, 1e-10, 1e10, 1e-30, 1e30])
def test_kernel_matches_numpy_filter(scale):
    """The factor bit for bit; log C (one log of a product of variances) to rounding, also for
    variances whose product leaves the floating-point range."""
    pr = _problem()
    dx, dy, *rest = pr["vals"]
    vals = [dx * scale, dy * scale, *rest[:4], *(e * scale**2 for e in rest[4:])]
    n_p = vals[0].shape[0]
    sig = [np.tile(np.concatenate([s[:1], s]), (n_p, 1)) for s in vals[9:12]]
    ours = np.stack(
        kalman_factor(
            *vals[:2],
            pr["ox"],
            pr["oy"],
            pr["fm"],
            *vals[2:9],
            *sig,
            *(np.tile(e[:, None], (1, vals[0].shape[1])) for e in vals[12:]),
        )[:7]
    )
    ref = _numpy(pr, vals)
    np.testing.assert_array_equal(ours[1:], ref[1:])
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-13)


@pytest.mark.parametrize("error", [False, True, "cell"])
@pytest.mark.parametrize("linker", ["py", "numba"])
def test_op_and_gradient_match_numpy_filter(linker, error):
    mode = pytensor.compile.mode.Mode(linker=linker, optimizer="fast_run")
    pr = _problem(error=error)
    vals = pr["vals"]
    weights = np.random.default_rng(1).normal(size=(7, vals[0].shape[0]))
    ins, out = _graph(pr)
    obj = (out * weights).sum()
    fn = pytensor.function(ins, [out, *pytensor.grad(obj, ins)], mode=mode)
    got, *grads = fn(*vals)
    assert any(isinstance(n.op, KalmanFactor) for n in fn.maker.fgraph.apply_nodes)
    np.testing.assert_allclose(got, _numpy(pr, vals), rtol=1e-12, atol=1e-12)

    def objective(v):
        return float((_numpy(pr, v) * weights).sum())

    h, worst = 1e-6, 0.0
    for k, name in enumerate(NAMES):
        if name in ("rx", "ry") and not error:  # at 0 the kernels use the error-free formulas
            continue
        fd = np.zeros_like(vals[k])
        for idx in np.ndindex(vals[k].shape):
            up, dn = [v.copy() for v in vals], [v.copy() for v in vals]
            up[k][idx] += h
            dn[k][idx] -= h
            fd[idx] = (objective(up) - objective(dn)) / (2 * h)
        if name in ("dx", "dy"):  # unobserved cells do not enter the filter
            fd = fd * pr["ox" if name == "dx" else "oy"]
        err = np.abs(grads[k] - fd).max() / np.abs(fd).max()
        worst = max(worst, err)
        assert err < 1e-6, name
    print(f"max relative error of the gradient ({linker}): {worst:.2e}")


def test_scalar_parameters_broadcast_and_masks_disconnected():
    pr = _problem()
    vals = pr["vals"]
    a = pt.dscalar("a")
    s11 = pt.dscalar("s11")
    cells = GapCells(*(pt.as_tensor(v) for v in (vals[0], vals[1], pr["ox"], pr["oy"], pr["fm"])))
    log_c, f = filter_factor_op(cells, (a, 0.1, 0.3, 0.4), (s11, 0.3, 0.8), (1.6, 0.5, 1.3))
    obj = (log_c - 0.5 * f.q).sum()
    fn = pytensor.function([a, s11], [obj, *pytensor.grad(obj, [a, s11])])
    val, ga, gs = fn(0.5, 1.0)
    cells_np = GapCells(vals[0], vals[1], pr["ox"], pr["oy"], pr["fm"])

    def ref(a_, s_):
        lc, fac, _ = filter_factor(
            cells_np, (a_, 0.1, 0.3, 0.4), (s_, 0.3, 0.8), (1.6, 0.5, 1.3), vals[0].shape[1]
        )
        return (lc - 0.5 * fac.q).sum()

    h = 1e-6
    assert val == pytest.approx(ref(0.5, 1.0), rel=1e-12)
    assert ga == pytest.approx((ref(0.5 + h, 1.0) - ref(0.5 - h, 1.0)) / (2 * h), rel=1e-6)
    assert gs == pytest.approx((ref(0.5, 1.0 + h) - ref(0.5, 1.0 - h)) / (2 * h), rel=1e-6)
    masks = pt.dmatrix("ox")
    cells = GapCells(cells.x, cells.y, masks, cells.obs_y, cells.first)
    lc, _ = filter_factor_op(cells, (0.5, 0.1, 0.3, 0.4), (1.0, 0.3, 0.8), (1.6, 0.5, 1.3))
    with pytest.raises(pytensor.gradient.DisconnectedInputError):
        pytensor.grad(lc.sum(), masks)
