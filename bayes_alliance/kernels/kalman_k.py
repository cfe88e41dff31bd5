r"""The Kalman filter for k series with their latent means as a Gaussian factor, as a pytensor Op.

The general form of :mod:`bayes_alliance.kernels.gaps` (two series, entry-wise) for any number
k of session-level series, any set of linear coefficients of the mean and any measurement error.
For one patient, given the parameters, the observed cells are Gaussian::

    d_t = X_t beta + w_t + eps_t   (observed entries only),   eps_t ~ N(0, diag(R_t))
    w_t = Phi w_(t-1) + u_t,   u_t ~ N(0, Sigma),   w_(first) ~ N(0, F)

with ``d`` the data minus every mean that is known given the parameters, ``beta`` (J) the
patient's coefficients that are integrated out later (its latent means, a change over
sessions) and ``X_t`` (k x J) their regressors (the unit vectors for the means, the centred
session number for a change). A filter that takes the observed entries one at a time (the
univariate treatment of vector observations, Durbin & Koopman 2012, section 6.4) and skips the
missing ones has gains and prediction variances ``s`` that do not depend on the data, so it is
run once on the J + 1 columns ``D = (d, X_1, ..., X_J)``; entry r of cell t has the innovations
``E = D_tr - M[r]`` (M: the J + 1 predicted state means, k x (J + 1)) and, exactly,

    log p(d | beta) = log C - 1/2 [A_00 - 2 beta' A_(1:,0) + beta' A_(1:,1:) beta],
    A = sum E E' / s,   log C = -1/2 sum (log 2 pi + log s).

Steps for one patient (state means M, covariance C; ``first`` restarts a series)::

    transition:  M <- Phi M,   C <- Phi C Phi' + Sigma      (M <- 0, C <- F at a first cell)
    entry r:     c = C[:, r], s = c_r + R_tr, E = D_tr - M[r], K = c / s,
                 M <- M + K E',   C <- C - c c' / s,   A <- A + E E' / s

The gradient is a hand-written reverse pass (the adjoint of each step in reverse order; the data
columns X and the masks are constants): per patient the forward sweep is rerun into a small tape
of the states that stays in cache (storing every patient's states in the forward pass cost
half its time in memory traffic), so the model's logp and
gradient compile in seconds whatever the number of sessions. Without measurement error an
observed entry fixes its state (``s = C_rr``; the next transition adds the innovations back).

References
----------
Durbin, J., & Koopman, S. J. (2012). *Time Series Analysis by State Space Methods* (2nd ed.).
Oxford University Press, sections 4.3, 4.10 and 6.4.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

LOG_2PI = float(np.log(2 * np.pi))
CACHE_VERSION = 3
# inputs: d, X, o, first, phi, sigma, F, R; gradients for d, phi, sigma, F, R
DIFFERENTIABLE = (0, 4, 5, 6, 7)
N_INPUTS = 8


@numba.njit(cache=True)
def _save(tape, t, m, c):
    k, j1 = m.shape
    n = 0
    for a in range(k):
        for b in range(j1):
            tape[t, n] = m[a, b]
            n += 1
    for a in range(k):
        for b in range(k):
            tape[t, n] = c[a, b]
            n += 1


@numba.njit(cache=True)
def _load(tape, t, m, c):
    k, j1 = m.shape
    n = 0
    for a in range(k):
        for b in range(j1):
            m[a, b] = tape[t, n]
            n += 1
    for a in range(k):
        for b in range(k):
            c[a, b] = tape[t, n]
            n += 1


@functools.cache
def kernels_for(n_k: int, n_j1: int) -> tuple[Any, Any]:
    """The forward and reverse kernels for ``k = n_k`` series and ``J + 1 = n_j1`` columns,
    compiled with both as constants: their loops are then unrolled (the forward ran 2-3 times
    faster than with the sizes read from the arrays). Compiled once per process and sizes."""

    @numba.njit
    def _patient(d, x, o, first, phi, sigma, f, r_err, p, row, log_c, acc, store, tape, tape_e):
        """Filter patient ``p``, adding to ``log_c[row]`` and ``acc[q]``; with ``store`` the state
        before each transition (slot 0) and each observed entry (slot r + 1) goes to ``tape``."""
        n_s = d.shape[1]
        k, j1 = n_k, n_j1
        m = np.zeros((k, j1))
        c = np.zeros((k, k))
        tmp = np.zeros((k, max(k, j1)))
        e = np.zeros(j1)
        cr = np.zeros(k)
        for t in range(n_s):
            if t == 0 or first[p, t] > 0.0:
                for a in range(k):
                    for b in range(j1):
                        m[a, b] = 0.0
                    for b in range(k):
                        c[a, b] = f[p, a, b]
            else:
                if store:
                    _save(tape, t, m, c)
                for a in range(k):  # M = Phi M
                    for b in range(j1):
                        v = 0.0
                        for u in range(k):
                            v += phi[p, a, u] * m[u, b]
                        tmp[a, b] = v
                for a in range(k):
                    for b in range(j1):
                        m[a, b] = tmp[a, b]
                for a in range(k):  # tmp = Phi C
                    for b in range(k):
                        v = 0.0
                        for u in range(k):
                            v += phi[p, a, u] * c[u, b]
                        tmp[a, b] = v
                for a in range(k):  # C = (Phi C) Phi' + Sigma
                    for b in range(k):
                        v = sigma[p, a, b]
                        for u in range(k):
                            v += tmp[a, u] * phi[p, b, u]
                        c[a, b] = v
            for r in range(k):
                if o[p, t, r] == 0.0:
                    continue
                s = c[r, r] + r_err[p, t, r]
                e[0] = d[p, t, r] - m[r, 0]
                for b in range(1, j1):
                    e[b] = x[p, t, r, b - 1] - m[r, b]
                for a in range(j1):
                    ea = e[a] / s
                    for b in range(a, j1):
                        acc[row, a, b] += ea * e[b]
                log_c[row] -= 0.5 * (LOG_2PI + np.log(s))
                for a in range(k):
                    cr[a] = c[a, r]
                if store:
                    for b in range(j1):
                        tape_e[t, r, b] = e[b]
                    for a in range(k):
                        tape_e[t, r, j1 + a] = cr[a]
                    tape_e[t, r, j1 + k] = s
                for a in range(k):
                    ka = cr[a] / s
                    for b in range(j1):
                        m[a, b] += ka * e[b]
                    for b in range(k):
                        c[a, b] -= ka * cr[b]

    @numba.njit
    def forward(d, x, o, first, phi, sigma, f, r_err):
        """Forward pass over every patient (see the module). Shapes: ``d`` (P, S, k), ``x``
        (P, S, k, J), ``o`` (P, S, k) (1.0 where observed), ``first`` (P, S), ``phi``, ``sigma``,
        ``f`` (P, k, k), ``r_err`` (P, S, k). Returns ``log_c`` (P,) and ``A`` (P, J+1, J+1)."""
        n_p = d.shape[0]
        j1 = n_j1
        log_c = np.zeros(n_p)
        acc = np.zeros((n_p, j1, j1))
        tape = np.zeros((1, 1))
        tape_e = np.zeros((1, 1, 1))
        for p in range(n_p):
            _patient(d, x, o, first, phi, sigma, f, r_err, p, p, log_c, acc, False, tape, tape_e)
            for a in range(j1):  # the upper triangle was accumulated
                for b in range(a):
                    acc[p, a, b] = acc[p, b, a]
        return log_c, acc

    @numba.njit
    def vjp(d, x, o, first, phi, sigma, f, r_err, g_log_c, g_acc):
        """Vector-Jacobian product of the forward pass for ``d``, ``phi``, ``sigma``, ``f`` and
        ``r_err`` given the adjoints of ``log_c`` and ``A``: per patient the forward sweep is rerun
        into a small tape (which stays in cache), then reversed."""
        n_p, n_s = d.shape[0], d.shape[1]
        k, j1 = n_k, n_j1
        gd = np.zeros_like(d)
        gphi = np.zeros_like(phi)
        gsig = np.zeros_like(sigma)
        gf = np.zeros_like(f)
        gr = np.zeros_like(r_err)
        m = np.zeros((k, j1))
        c = np.zeros((k, k))
        bm = np.zeros((k, j1))  # adjoint of the state means
        bc = np.zeros((k, k))  # adjoint of the state covariance
        ba = np.zeros((j1, j1))
        e = np.zeros(j1)
        be = np.zeros(j1)
        cr = np.zeros(k)
        bcr = np.zeros(k)
        bk = np.zeros(k)
        tmp = np.zeros((k, k))
        tmp2 = np.zeros((k, k))
        nm = np.zeros((k, j1))
        tp = np.zeros((n_s, k * j1 + k * k))
        tp_e = np.zeros((n_s, k, j1 + k + 1))
        scratch_c = np.zeros(1)
        scratch_a = np.zeros((1, j1, j1))
        for p in range(n_p):
            _patient(
                d, x, o, first, phi, sigma, f, r_err, p, 0, scratch_c, scratch_a, True, tp, tp_e
            )
            bm[:, :] = 0.0
            bc[:, :] = 0.0
            for a in range(j1):
                for b in range(j1):
                    ba[a, b] = g_acc[p, a, b] + g_acc[p, b, a]  # A's adjoint, symmetrised
            bl = g_log_c[p]
            for t in range(n_s - 1, -1, -1):
                for r in range(k - 1, -1, -1):
                    if o[p, t, r] == 0.0:
                        continue
                    for b in range(j1):
                        e[b] = tp_e[t, r, b]
                    for a in range(k):
                        cr[a] = tp_e[t, r, j1 + a]
                    s = tp_e[t, r, j1 + k]
                    # A += E E' / s  and  log_c -= log(s) / 2
                    bs = -0.5 * bl / s
                    for a in range(j1):
                        v = 0.0
                        for b in range(j1):
                            v += ba[a, b] * e[b]
                        be[a] = v / s
                        bs -= 0.5 * e[a] * v / (s * s)
                    # M += K E' (K = c / s)
                    for b in range(j1):
                        v = 0.0
                        for a in range(k):
                            v += bm[a, b] * cr[a]
                        be[b] += v / s
                    for a in range(k):
                        v = 0.0
                        for b in range(j1):
                            v += bm[a, b] * e[b]
                        bk[a] = v
                    # C -= c c' / s
                    ccc = 0.0
                    for a in range(k):
                        v = 0.0
                        for b in range(k):
                            v += (bc[a, b] + bc[b, a]) * cr[b]
                            ccc += cr[a] * bc[a, b] * cr[b]
                        bcr[a] = -v / s + bk[a] / s
                    bs += ccc / (s * s)
                    kc = 0.0
                    for a in range(k):
                        kc += bk[a] * cr[a]
                    bs -= kc / (s * s)
                    # E = D - M[r]; s = C_rr + R; c = C[:, r]
                    for b in range(j1):
                        bm[r, b] -= be[b]
                    gd[p, t, r] += be[0]
                    bc[r, r] += bs
                    gr[p, t, r] += bs
                    for a in range(k):
                        bc[a, r] += bcr[a]
                if t == 0 or first[p, t] > 0.0:
                    for a in range(k):
                        for b in range(k):
                            gf[p, a, b] += bc[a, b]
                    bm[:, :] = 0.0
                    bc[:, :] = 0.0
                    continue
                _load(tp, t, m, c)
                # M' = Phi M:  gPhi += bM' M^T,  bM = Phi^T bM'
                for a in range(k):
                    for q in range(k):
                        v = 0.0
                        for b in range(j1):
                            v += bm[a, b] * m[q, b]
                        gphi[p, a, q] += v
                for q in range(k):
                    for b in range(j1):
                        v = 0.0
                        for a in range(k):
                            v += phi[p, a, q] * bm[a, b]
                        nm[q, b] = v
                for q in range(k):
                    for b in range(j1):
                        bm[q, b] = nm[q, b]
                # C' = Phi C Phi' + Sigma:  gPhi += (bC + bC') Phi C,  bC = Phi' bC' Phi
                for a in range(k):
                    for b in range(k):
                        gsig[p, a, b] += bc[a, b]
                for a in range(k):  # tmp = Phi C
                    for b in range(k):
                        v = 0.0
                        for q in range(k):
                            v += phi[p, a, q] * c[q, b]
                        tmp[a, b] = v
                for a in range(k):
                    for b in range(k):
                        v = 0.0
                        for q in range(k):
                            v += (bc[a, q] + bc[q, a]) * tmp[q, b]
                        gphi[p, a, b] += v
                for a in range(k):  # tmp2 = bC' Phi
                    for b in range(k):
                        v = 0.0
                        for q in range(k):
                            v += bc[a, q] * phi[p, q, b]
                        tmp2[a, b] = v
                for a in range(k):  # bC = Phi' tmp2
                    for b in range(k):
                        v = 0.0
                        for q in range(k):
                            v += phi[p, q, a] * tmp2[q, b]
                        bc[a, b] = v
        return gd, gphi, gsig, gf, gr

    return forward, vjp


def kalman_k(d: Any, x: Any, o: Any, first: Any, phi: Any, sigma: Any, f: Any, r_err: Any) -> Any:
    """Forward pass over every patient (see the module). Shapes: ``d`` (P, S, k), ``x``
    (P, S, k, J), ``o`` (P, S, k) (1.0 where observed), ``first`` (P, S), ``phi``, ``sigma``,
    ``f`` (P, k, k), ``r_err`` (P, S, k). Returns ``log_c`` (P,) and ``A`` (P, J+1, J+1)."""
    return kernels_for(d.shape[2], x.shape[3] + 1)[0](d, x, o, first, phi, sigma, f, r_err)


def kalman_k_vjp(
    d: Any, x: Any, o: Any, first: Any, phi: Any, sigma: Any, f: Any, r_err: Any,
    g_log_c: Any, g_acc: Any,
) -> Any:  # fmt: skip
    """Vector-Jacobian product of :func:`kalman_k` for ``d``, ``phi``, ``sigma``, ``f`` and
    ``r_err`` given the adjoints of ``log_c`` and ``A``."""
    fn = kernels_for(d.shape[2], x.shape[3] + 1)[1]
    return fn(d, x, o, first, phi, sigma, f, r_err, g_log_c, g_acc)


def _as(x: Any, ndim: int) -> Any:
    out = pt.as_tensor_variable(x).astype("float64")
    if out.ndim != ndim:
        raise ValueError(f"expected {ndim} dimensions, got {out.type}")
    return out


_IN_NDIM = (3, 4, 3, 2, 3, 3, 3, 3)


class KalmanKGrad(Op):
    """Vector-Jacobian product of :class:`KalmanK` (kernel :func:`kalman_k_vjp`)."""

    __props__ = ("n_k", "n_j1")

    def __init__(self, n_k: int, n_j1: int) -> None:
        self.n_k, self.n_j1 = int(n_k), int(n_j1)

    def make_node(self, *args: Any) -> Apply:
        inputs = [_as(a, n) for a, n in zip(args, (*_IN_NDIM, 1, 3), strict=True)]
        return Apply(self, inputs, [inputs[i].type() for i in DIFFERENTIABLE])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list[Any]) -> None:
        vjp = kernels_for(self.n_k, self.n_j1)[1]
        for store, val in zip(output_storage, vjp(*inputs), strict=True):
            store[0] = val


class KalmanK(Op):
    """Per-patient ``log C`` and ``A`` of the k-series filter (see the module).

    Inputs: ``d`` (P, S, k) data minus the known mean (0 where not observed), ``x`` (P, S, k,
    J) the coefficients' regressors (constant), ``o`` (P, S, k) observed mask, ``first``
    (P, S) first-cell mask, ``phi``, ``sigma``, ``f`` (P, k, k) lag, innovation and first-cell
    covariance matrices, ``r_err`` (P, S, k) measurement-error variances. Outputs ``log_c``
    (P,) and ``A`` (P, J+1, J+1). ``n_k`` = k and ``n_j1`` = J + 1 are the sizes the kernels
    are compiled for.
    """

    __props__ = ("n_k", "n_j1")

    def __init__(self, n_k: int, n_j1: int) -> None:
        self.n_k, self.n_j1 = int(n_k), int(n_j1)

    def make_node(self, *args: Any) -> Apply:
        inputs = [_as(a, n) for a, n in zip(args, _IN_NDIM, strict=True)]
        acc = pt.tensor(dtype="float64", shape=(None,) * 3)
        return Apply(self, inputs, [pt.dvector(), acc])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list[Any]) -> None:
        forward = kernels_for(self.n_k, self.n_j1)[0]
        for store, val in zip(output_storage, forward(*inputs), strict=True):
            store[0] = val

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        return [[i in DIFFERENTIABLE] * 2 for i in range(len(node.inputs))]

    def pullback(self, inputs: Any, outputs: Any, output_grads: Any) -> list[Any]:
        grads = [
            pt.zeros_like(out) if isinstance(g.type, DisconnectedType) else g
            for out, g in zip(outputs[:2], output_grads[:2], strict=True)
        ]
        pulled = iter(KalmanKGrad(self.n_k, self.n_j1).make_node(*inputs, *grads).outputs)
        return [
            next(pulled) if i in DIFFERENTIABLE else disconnected_type() for i in range(N_INPUTS)
        ]


@register_funcify_default_op_cache_key(KalmanK)
def _numba_kalman_k(op: Any, node: Apply | None = None, **kwargs: Any) -> Any:
    return kernels_for(op.n_k, op.n_j1)[0], CACHE_VERSION


@register_funcify_default_op_cache_key(KalmanKGrad)
def _numba_kalman_k_grad(op: Any, node: Apply | None = None, **kwargs: Any) -> Any:
    return kernels_for(op.n_k, op.n_j1)[1], CACHE_VERSION


def filter_k(
    d: Any, x: Any, o: Any, first: Any, phi: Any, sigma: Any, f: Any, r_err: Any
) -> tuple[Any, Any]:
    """``log_c`` (P,) and ``A`` (P, J+1, J+1) through :class:`KalmanK` (pytensor), with
    ``phi``, ``sigma``, ``f`` broadcast to (P, k, k) and ``r_err`` to (P, S, k)."""
    d = pt.as_tensor_variable(d).astype("float64")
    n_p, n_s, k = d.shape[0], d.shape[1], d.shape[2]

    def mat(a: Any) -> Any:
        return pt.broadcast_to(pt.as_tensor_variable(a).astype("float64"), (n_p, k, k))

    r = pt.broadcast_to(pt.as_tensor_variable(r_err).astype("float64"), (n_p, n_s, k))
    # The regressors may be a data container (a compiled model refitted to new data): the
    # kernels are compiled for its sizes, so they must be static.
    x = pt.as_tensor_variable(x).astype("float64")
    n_k, n_j = x.type.shape[2], x.type.shape[3]
    if n_k is None or n_j is None:
        raise ValueError(f"the regressors' last two sizes must be static, got {x.type}")
    node = KalmanK(n_k, n_j + 1).make_node(d, x, o, first, mat(phi), mat(sigma), mat(f), r)
    return node.outputs[0], node.outputs[1]


__all__ = ["KalmanK", "KalmanKGrad", "filter_k", "kalman_k", "kalman_k_vjp", "kernels_for"]
