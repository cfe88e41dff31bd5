"""The batched Kalman-filter Op (kernels/kalman_batch.py) against the reference Op of
kernels/kalman_op.py (values and every gradient), the time-varying lags against a dense
Gaussian of the VAR written out directly, its gradient against finite differences, and the
model's log density through either Op."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

from bayes_alliance.kernels import kalman_batch as kb
from bayes_alliance.kernels import kalman_op as ko
from bayes_alliance.kernels.gaps import GapCells

GRAD_NAMES = ("dx", "dy", "a", "b", "c", "d", "f11", "f12", "f22")
GRAD_NAMES += ("s11", "s12", "s22", "rx", "ry")


def _inputs(seed, n_p=150, n_s=9, error="none", sigma="shared", fractional=False):
    """Kernel inputs with more patients than one block (LANES) and a partial last block:
    series starting after column 0 and ending early, an all-missing column, random masks."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 4, n_p)
    last = np.minimum(n_s - 1, first + rng.integers(1, n_s, n_p))
    cols = np.arange(n_s)[None]
    inside = (cols >= first[:, None]) & (cols <= last[:, None])
    ox = (inside & (rng.random((n_p, n_s)) > 0.3)).astype(float)
    oy = (inside & (rng.random((n_p, n_s)) > 0.3)).astype(float)
    ox[:, 4] = oy[:, 4] = 0.0  # a column nobody attended
    ox[np.arange(n_p), first] = 1.0
    if fractional:  # the reference kernel takes entries weighted in (0, 1)
        ox = np.where(ox > 0, np.where(rng.random(ox.shape) < 0.2, 0.5, ox), 0.0)
    fm = np.zeros((n_p, n_s))
    fm[np.arange(n_p), first] = 1.0
    dx = rng.normal(size=(n_p, n_s)) * (ox > 0)
    dy = rng.normal(size=(n_p, n_s)) * (oy > 0)
    lag = [e + 0.05 * rng.normal(size=n_p) for e in (0.5, 0.1, 0.3, 0.4)]
    fc = [e + 0.1 * rng.random(n_p) for e in (1.6, 0.5, 1.3)]
    rows = n_p if sigma == "own" else 1
    sig = [e * (1.0 + 0.2 * rng.random((rows, n_s))) for e in (1.0, 0.3, 0.8)]
    rx, ry = np.zeros((n_p, n_s)), np.zeros((n_p, n_s))
    if error in ("x", "both"):
        rx = np.broadcast_to(0.4 * (0.5 + rng.random((n_p, 1))), (n_p, n_s)).copy()
    if error == "both":
        ry = np.broadcast_to(0.3 * (0.5 + rng.random((n_p, 1))), (n_p, n_s)).copy()
    if error == "cell":  # one variance per cell (several indicators, some missing)
        rx, ry = (e * (0.5 + rng.random((n_p, n_s))) for e in (0.4, 0.3))
    return [dx, dy, ox, oy, fm, *lag, *fc, *sig, rx, ry]


CASES = [
    dict(error="none", sigma="shared"),
    dict(error="none", sigma="own"),
    dict(error="x", sigma="shared"),
    dict(error="both", sigma="own"),
    dict(error="cell", sigma="shared"),
    dict(error="none", sigma="shared", fractional=True),
    dict(error="cell", sigma="own", fractional=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
@pytest.mark.parametrize("layout", ["C", "F"])
def test_batched_kernels_match_reference(case, layout):
    """Outputs and every adjoint of the batched kernels equal the reference kernels' (to
    1e-9 relative; the outputs without measurement error to a few units in the last place: the
    reference reads its lag entries per column since continuous time, which moves a log by one
    ulp in some rows), on grids passed
    as (P, S) arrays or as transposed (S, P) ones."""
    ins = _inputs(3, **case)
    if layout == "F":
        ins = [np.asfortranarray(e) if e.ndim == 2 and e.shape[0] > 1 else e for e in ins]
    ref = ko.kalman_factor(*ins)
    new = kb.batch_factor(*ins)
    for r, n in zip(ref[:7], new[:7], strict=True):
        np.testing.assert_allclose(n, r, rtol=1e-12, atol=1e-14)
    if case["error"] == "none" and not case.get("fractional"):
        for r, n in zip(ref[:7], new[:7], strict=True):
            np.testing.assert_allclose(n, r, rtol=1e-15, atol=1e-15)
    n_p = ins[0].shape[0]
    gw = list(np.random.default_rng(7).normal(size=(7, n_p)))
    g_ref = ko.kalman_factor_vjp(*ins, ref[7], *gw)
    g_new = kb.batch_factor_vjp(*ins, new[7], *gw)
    for name, r, n in zip(GRAD_NAMES, g_ref, g_new, strict=True):
        assert n.shape == r.shape, name
        if name in ("rx", "ry"):
            # the reference leaves an error-free entry's adjoint at 0; compare where r > 0
            keep = ins[15 if name == "rx" else 16] > 0
            r, n = r * keep, n * keep
        np.testing.assert_allclose(n, r, rtol=1e-9, atol=1e-9 * np.abs(r).max(), err_msg=name)


def _dense_logpdf(i, ins, m):
    """log p(observed cells of patient i | latent mean m) from the joint Gaussian of the
    states w_first .. w_last of the time-varying VAR: w_first ~ N(0, F),
    w_t = Phi_t w_(t-1) + u_t, u_t ~ N(0, Sigma_t), written out as one covariance matrix."""
    dx, dy, ox, oy, fm, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry = ins
    t0 = int(np.argmax(fm[i]))
    obs = np.nonzero((ox[i] > 0) | (oy[i] > 0))[0]
    t1 = int(obs.max())
    n = t1 - t0 + 1
    phis = [np.array([[a[i, t], b[i, t]], [c[i, t], d[i, t]]]) for t in range(dx.shape[1])]
    cov = np.zeros((2 * n, 2 * n))
    var = [np.array([[f11[i], f12[i]], [f12[i], f22[i]]])]
    for t in range(t0 + 1, t1 + 1):
        sig = np.array([[s11[0, t], s12[0, t]], [s12[0, t], s22[0, t]]])
        var.append(phis[t] @ var[-1] @ phis[t].T + sig)
    for k in range(n):  # Cov(w_(t0+j), w_(t0+k)) = Phi_(t0+j) ... Phi_(t0+k+1) Var(w_(t0+k))
        cov[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = var[k]
        block = var[k]
        for j in range(k + 1, n):
            block = phis[t0 + j] @ block
            cov[2 * j : 2 * j + 2, 2 * k : 2 * k + 2] = block
            cov[2 * k : 2 * k + 2, 2 * j : 2 * j + 2] = block.T
    cov = cov + np.diag(np.ravel(np.column_stack([rx[i, t0 : t1 + 1], ry[i, t0 : t1 + 1]])))
    seen = np.ravel(np.column_stack([ox[i, t0 : t1 + 1], oy[i, t0 : t1 + 1]])) > 0
    z = np.ravel(np.column_stack([dx[i, t0 : t1 + 1], dy[i, t0 : t1 + 1]]))
    mean = np.tile(m, n)
    return stats.multivariate_normal(mean[seen], cov[np.ix_(seen, seen)]).logpdf(z[seen])


@pytest.mark.parametrize("error", ["none", "cell"])
def test_lags_per_interval_match_dense_gaussian(error):
    """Lags that differ per transition ((P, S): continuous time, Phi(dt)) against the dense
    Gaussian of the same VAR: log C - (q - 2 g'M + M'LM) / 2 is log p(observed | M)."""
    ins = _inputs(5, n_p=70, n_s=8, error=error)
    n_p, n_s = ins[0].shape
    rng = np.random.default_rng(11)
    ins[5:9] = [e[:, None] + 0.2 * rng.normal(size=(n_p, n_s)) for e in ins[5:9]]
    lc, l11, l12, l22, g1, g2, q, _ = kb.batch_factor(*ins)
    for i in range(0, n_p, 7):
        m = rng.normal(size=2)
        quad = q[i] - 2 * (g1[i] * m[0] + g2[i] * m[1])
        quad += l11[i] * m[0] ** 2 + 2 * l12[i] * m[0] * m[1] + l22[i] * m[1] ** 2
        assert lc[i] - 0.5 * quad == pytest.approx(_dense_logpdf(i, ins, m), rel=1e-10)


def test_lags_per_interval_gradient_matches_finite_differences():
    """The Op's gradient with (P, S) lags (default and numba linkers) against central
    differences of its own forward kernel."""
    ins = _inputs(9, n_p=5, n_s=6, error="cell", sigma="own")
    n_p, n_s = ins[0].shape
    rng = np.random.default_rng(2)
    ins[5:9] = [e[:, None] + 0.2 * rng.normal(size=(n_p, n_s)) for e in ins[5:9]]
    weights = rng.normal(size=(7, n_p))
    diff = [0, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    sym = [pt.dmatrix() if ins[k].ndim == 2 else pt.dvector() for k in diff]
    full: list = list(ins)
    for k, s in zip(diff, sym, strict=True):
        full[k] = s
    out = kb.batch_factor_op.make_node(*full).outputs
    obj = (pt.stack(out[:7]) * weights).sum()

    def objective(vals):
        return float((np.stack(kb.batch_factor(*vals)[:7]) * weights).sum())

    for linker in ("py", "numba"):
        mode = pytensor.compile.mode.Mode(linker=linker, optimizer="fast_run")
        fn = pytensor.function(sym, pytensor.grad(obj, sym), mode=mode)
        grads = fn(*(ins[k] for k in diff))
        h = 1e-6
        for k, g in zip(diff, grads, strict=True):
            fd = np.zeros_like(ins[k])
            for idx in np.ndindex(ins[k].shape):
                up, dn = [e.copy() for e in ins], [e.copy() for e in ins]
                up[k][idx] += h
                dn[k][idx] -= h
                fd[idx] = (objective(up) - objective(dn)) / (2 * h)
            if k in (0, 1):  # unobserved cells do not enter the filter
                fd = fd * (ins[2 + k] > 0)
            assert np.abs(g - fd).max() <= 1e-6 * max(np.abs(fd).max(), 1.0), (linker, k)


def test_filter_factor_ops_agree_in_a_graph():
    """``batch_filter_factor_op`` and ``filter_factor_op`` on the same graph inputs (scalar
    and per-patient lags, by-session innovations): the same outputs and gradients."""
    ins = _inputs(4, n_p=90, n_s=7)
    n_p, n_s = ins[0].shape
    a = pt.dvector("a")
    s11 = pt.dvector("s11")
    by = np.linspace(1.0, 1.2, n_s - 1)
    cells = GapCells(*(pt.as_tensor(e) for e in ins[:5]))
    outs = []
    for op in (ko.filter_factor_op, kb.batch_filter_factor_op):
        lc, f = op(
            cells, (a, 0.1, 0.3, 0.4), (s11, 0.3 * by, 0.8 * by), (1.6, 0.5, 1.3), by_session=True
        )
        obj = (lc - 0.5 * f.q + f.g1 - f.l12).sum()
        outs.append([obj, *pytensor.grad(obj, [a, s11])])
    mode = pytensor.compile.mode.Mode(linker="py", optimizer="fast_run")
    fn = pytensor.function([a, s11], outs[0] + outs[1], mode=mode)
    vals = fn(0.5 + 0.05 * np.arange(n_p) / n_p, 1.0 + 0.1 * np.arange(n_s - 1))
    for r, n in zip(vals[:3], vals[3:], strict=True):
        np.testing.assert_allclose(n, r, rtol=1e-10)


@pytest.mark.parametrize("value", [0.0, 0.35])
def test_one_error_variance_for_all_cells_needs_no_grid(value):
    """A (1, 1) error variance (none, or one shared by every cell) gives the values of the
    same variance written out per cell, and its adjoint is the sum of the per-cell adjoints
    (the chain rule of broadcasting). The per-cell path is checked against the reference Op
    above."""
    ins = _inputs(13, n_p=90, n_s=7)
    n_p, n_s = ins[0].shape
    grid = [np.full((n_p, n_s), value), np.full((n_p, n_s), 0.5 * value)]
    one = [np.full((1, 1), value), np.full((1, 1), 0.5 * value)]
    got = kb.batch_factor(*ins[:15], *one)
    want = kb.batch_factor(*ins[:15], *grid)
    for g, w in zip(got[:7], want[:7], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    rng = np.random.default_rng(3)
    gw = [rng.normal(size=n_p) for _ in range(7)]
    g_one = kb.batch_factor_vjp(*ins[:15], *one, got[7], *gw)
    g_grid = kb.batch_factor_vjp(*ins[:15], *grid, want[7], *gw)
    for g, w in zip(g_one[:-2], g_grid[:-2], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    for g, w in zip(g_one[-2:], g_grid[-2:], strict=True):
        assert g.shape == (1, 1)
        assert g[0, 0] == pytest.approx(w.sum(), rel=1e-10, abs=1e-10)
