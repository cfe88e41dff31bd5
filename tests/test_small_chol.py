"""The batched Cholesky solve Op against numpy and its gradient against central differences
(symmetric perturbations of W: the Op gives W's gradient as a symmetric matrix)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from bayes_alliance.kernels.small_chol import chol_solve, chol_solve_op, chol_solve_vjp


def _case(seed: int = 0, n: int = 4, m: int = 3):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3, n, n))
    return a @ a.transpose(0, 2, 1) + np.eye(n), rng.normal(size=(3, n, m)), rng


def test_values_are_numpys():
    w, r, _ = _case()
    y, ld = chol_solve(w, r)
    np.testing.assert_allclose(y, np.linalg.solve(np.linalg.cholesky(w), r), atol=1e-12)
    np.testing.assert_allclose(ld, 0.5 * np.linalg.slogdet(w)[1], atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_gradient_matches_central_differences(n):
    w, r, rng = _case(1, n)
    g_y, g_ld = rng.normal(size=r.shape), rng.normal(size=3)
    gw, gr = chol_solve_vjp(w, r, g_y, g_ld)

    def value(w, r):
        y, ld = chol_solve(w, r)
        return float(np.sum(g_y * y) + g_ld @ ld)

    h = 1e-6
    for b in range(3):
        for i in range(n):
            for j in range(i + 1):
                dw = np.zeros_like(w)
                dw[b, i, j] = dw[b, j, i] = h
                num = (value(w + dw, r) - value(w - dw, r)) / (2 * h)
                mine = gw[b, i, j] + (gw[b, j, i] if i != j else 0.0)
                assert mine == pytest.approx(num, abs=1e-6)
    for ix in np.ndindex(r.shape):
        dr = np.zeros_like(r)
        dr[ix] = h
        assert gr[ix] == pytest.approx((value(w, r + dr) - value(w, r - dr)) / (2 * h), abs=1e-6)


def test_op_in_a_graph_with_a_symmetric_input():
    w0, r, _ = _case(2)
    a = pt.tensor3("a")
    w = a @ a.mT + pt.eye(4)
    y, ld = chol_solve_op.make_node(w, r).outputs
    out = pt.sum(y**2) + pt.sum(ld)
    fn = pytensor.function([a], [out, pytensor.grad(out, a)])
    a0 = np.linalg.cholesky(w0 - np.eye(4))
    val, grad = fn(a0)

    def plain(a):
        ww = a @ a.transpose(0, 2, 1) + np.eye(4)
        low = np.linalg.cholesky(ww)
        return float(
            np.sum(np.linalg.solve(low, r) ** 2) + np.sum(np.log(np.diagonal(low, 0, 1, 2)))
        )

    assert val == pytest.approx(plain(a0), abs=1e-10)
    ix = (1, 2, 1)
    da = np.zeros_like(a0)
    da[ix] = 1e-6
    assert grad[ix] == pytest.approx((plain(a0 + da) - plain(a0 - da)) / 2e-6, abs=1e-5)
