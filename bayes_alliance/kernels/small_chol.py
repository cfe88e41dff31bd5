r"""Batched Cholesky solves of small matrices as one pytensor Op with a numba gradient.

Integrating a Gaussian level (:mod:`bayes_alliance.kernels.levels`) needs, per patient or
therapist, ``V = chol(W)``, ``Y = V^-1 R`` and ``sum log V_ii`` for a W of a few rows. Through
pytensor's batched ``cholesky`` and ``solve_triangular`` each matrix is a separate LAPACK call
in the value and again in the gradient, which cost more than the Kalman filter itself; here one
numba loop does the batch. The reverse pass recomputes V and Y and uses (Murray 2016)

    R_bar = V^-T Y_bar,   V_bar = -tril(R_bar Y') + diag(ld_bar / V_ii),
    W_bar = sym(V^-T Phi(V' V_bar) V^-1),

with ``Phi`` the lower triangle with its diagonal halved and ``sym(S) = (S + S') / 2`` (W is
symmetric, so its gradient is given as a symmetric matrix).

Reference: Murray, I. (2016). Differentiation of the Cholesky decomposition. arXiv:1602.07527.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

CACHE_VERSION = 1


@numba.njit(cache=True)
def _chol(w, v):
    """Lower Cholesky factor of ``w`` (n, n) into ``v``; NaN where ``w`` is not positive
    definite (the sampler then rejects the point)."""
    n = w.shape[0]
    for j in range(n):
        s = w[j, j]
        for q in range(j):
            s -= v[j, q] * v[j, q]
        d = np.sqrt(s) if s > 0.0 else np.nan
        v[j, j] = d
        for i in range(j + 1, n):
            s = w[i, j]
            for q in range(j):
                s -= v[i, q] * v[j, q]
            v[i, j] = s / d
        for i in range(j):
            v[i, j] = 0.0


@numba.njit(cache=True)
def _lower_solve(v, r, y):
    """``y = v^-1 r`` for lower-triangular ``v`` (n, n), ``r`` (n, m)."""
    n, m = r.shape
    for c in range(m):
        for i in range(n):
            s = r[i, c]
            for q in range(i):
                s -= v[i, q] * y[q, c]
            y[i, c] = s / v[i, i]


@numba.njit(cache=True)
def _upper_solve(v, r, y):
    """``y = v^-T r`` for lower-triangular ``v`` (n, n), ``r`` (n, m)."""
    n, m = r.shape
    for c in range(m):
        for i in range(n - 1, -1, -1):
            s = r[i, c]
            for q in range(i + 1, n):
                s -= v[q, i] * y[q, c]
            y[i, c] = s / v[i, i]


@numba.njit(cache=True)
def chol_solve(w, r):
    """For each batch entry: ``Y = chol(W)^-1 R`` and ``sum log diag chol(W)``. Shapes ``w``
    (B, n, n), ``r`` (B, n, m); returns (B, n, m) and (B,)."""
    n_b, n = w.shape[0], w.shape[1]
    y = np.zeros(r.shape)
    ld = np.zeros(n_b)
    v = np.zeros((n, n))
    for b in range(n_b):
        _chol(w[b], v)
        _lower_solve(v, r[b], y[b])
        s = 0.0
        for i in range(n):
            s += np.log(v[i, i])
        ld[b] = s
    return y, ld


@numba.njit(cache=True)
def chol_solve_vjp(w, r, g_y, g_ld):
    """Adjoints of ``w`` (symmetric) and ``r`` given those of ``Y`` and the log determinant."""
    n_b, n, m = r.shape
    gw = np.zeros(w.shape)
    gr = np.zeros(r.shape)
    v = np.zeros((n, n))
    y = np.zeros((n, m))
    gv = np.zeros((n, n))
    p = np.zeros((n, n))
    tmp = np.zeros((n, n))
    s = np.zeros((n, n))
    for b in range(n_b):
        _chol(w[b], v)
        _lower_solve(v, r[b], y)
        _upper_solve(v, g_y[b], gr[b])  # R_bar = V^-T Y_bar
        for i in range(n):
            for j in range(n):
                if j > i:
                    gv[i, j] = 0.0
                    continue
                acc = 0.0
                for c in range(m):
                    acc -= gr[b, i, c] * y[j, c]
                gv[i, j] = acc
            gv[i, i] += g_ld[b] / v[i, i]
        # P = Phi(V' V_bar)
        for i in range(n):
            for j in range(n):
                if j > i:
                    p[i, j] = 0.0
                    continue
                acc = 0.0
                for q in range(n):
                    acc += v[q, i] * gv[q, j]
                p[i, j] = 0.5 * acc if i == j else acc
        # S = V^-T P V^-1: solve V^T X = P, then S = X V^-1 (S^T = V^-T X^T)
        _upper_solve(v, p, tmp)
        for i in range(n):  # transpose into p, then S^T = V^-T tmp^T
            for j in range(n):
                p[i, j] = tmp[j, i]
        _upper_solve(v, p, s)  # s = S^T
        for i in range(n):
            for j in range(n):
                gw[b, i, j] = 0.5 * (s[i, j] + s[j, i])
    return gw, gr


class CholSolveGrad(Op):
    """Vector-Jacobian product of :class:`CholSolve`."""

    __props__ = ()

    def make_node(self, *args: Any) -> Apply:
        ins = [pt.as_tensor_variable(a).astype("float64") for a in args]
        return Apply(self, ins, [ins[0].type(), ins[1].type()])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list[Any]) -> None:
        for store, val in zip(output_storage, chol_solve_vjp(*inputs), strict=True):
            store[0] = val


class CholSolve(Op):
    """``(chol(W)^-1 R, sum log diag chol(W))`` over a batch: ``W`` (B, n, n), ``R`` (B, n, m)."""

    __props__ = ()

    def make_node(self, *args: Any) -> Apply:
        ins = [pt.as_tensor_variable(a).astype("float64") for a in args]
        if ins[0].ndim != 3 or ins[1].ndim != 3:
            raise ValueError("CholSolve takes (B, n, n) and (B, n, m)")
        return Apply(self, ins, [ins[1].type(), pt.dvector()])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list[Any]) -> None:
        for store, val in zip(output_storage, chol_solve(*inputs), strict=True):
            store[0] = val

    def pullback(self, inputs: Any, outputs: Any, output_grads: Any) -> list[Any]:
        g_y, g_ld = (
            pt.zeros_like(out) if isinstance(g.type, DisconnectedType) else g
            for out, g in zip(outputs, output_grads, strict=True)
        )
        return list(chol_solve_grad.make_node(*inputs, g_y, g_ld).outputs)


chol_solve_op = CholSolve()
chol_solve_grad = CholSolveGrad()


@register_funcify_default_op_cache_key(CholSolve)
def _numba_chol_solve(op: Op, node: Apply | None = None, **kwargs: Any) -> Any:
    return chol_solve, CACHE_VERSION


@register_funcify_default_op_cache_key(CholSolveGrad)
def _numba_chol_solve_grad(op: Op, node: Apply | None = None, **kwargs: Any) -> Any:
    return chol_solve_vjp, CACHE_VERSION


__all__ = ["CholSolve", "CholSolveGrad", "chol_solve", "chol_solve_op", "chol_solve_vjp"]
