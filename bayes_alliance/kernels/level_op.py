r"""The Gaussian levels of a patient's factor integrated out in one numba Op.

:class:`bayes_alliance.kernels.levels.Quadratic` integrates a level as a composition of batched
pytensor nodes (products, slices, a Cholesky solve). Here the whole chain

    patient factor  ->  integrate b_i under N(0, U U')  ->  sum over the therapist's caseload
                    ->  integrate tau_j under N(0, U_T U_T')  ->  log density per unit

is one loop over patients and therapists with a hand-written reverse pass (measured on the
shipped mediation_within.csv and informants.csv, best of five on a quiet 2-core machine: logp + gradient of the two-series
mechanism model 565 -> 378 us and of two informants 928 -> 630 us; within mediation with a trend,
whose cost lies elsewhere, unchanged at about 1,020 us). The factor of patient
i is ``log_c - 1/2 [kappa - 2 eta' x + x' Lambda x]`` in ``x = (b, tau)`` (``nb`` and ``nt``
coefficients; ``nt = 0``: two levels, the value is per patient). One level, with ``S = [eta_b |
Lambda_bt]`` and the prior's factor ``U`` (matrix-determinant lemma and Woodbury's identity, as
in :mod:`~bayes_alliance.kernels.levels`)::

    W = I + U' Lambda_bb U,   V = chol(W),   Y = V^-1 U' S = [y_0 | Y_t],   l = sum log V_aa
    Lambda' = Lambda_tt - Y_t' Y_t,   eta' = eta_t - Y_t' y_0,
    kappa' = kappa - y_0' y_0,   log_c' = log_c - l.

The therapist's factor is ``sum_i load_ji (Lambda'_i, eta'_i, kappa'_i, log_c'_i)`` and the
same step with nothing left gives its value ``log_c - l - 1/2 (kappa - y_0' y_0)``.

Reverse pass of one step (adjoints written with a bar; ``Lambda'``'s adjoint taken as given,
both orders of an off-diagonal pair counting)::

    Y_t_bar = -Y_t (Lambda'_bar + Lambda'_bar') - y_0 eta'_bar',
    y_0_bar = -Y_t eta'_bar - 2 kappa'_bar y_0,   l_bar = -log_c'_bar,
    R_bar = V^-T Y_bar,   V_bar = -tril(R_bar Y') + diag(l_bar / V_aa),
    W_bar = sym(V^-T Phi(V' V_bar) V^-1)                               (Murray 2016)
    S_bar = U R_bar,   Lambda_bb_bar = U W_bar U',
    U_bar = S R_bar' + (Lambda_bb + Lambda_bb') U W_bar,
    Lambda_tt_bar = Lambda'_bar,   eta_t_bar = eta'_bar,   kappa_bar = kappa'_bar,
    log_c_bar = log_c'_bar

(``Phi``: the lower triangle with its diagonal halved; ``sym(S) = (S + S') / 2``); a patient's
adjoints are its therapist's, weighted by ``load_ji``. ``Lambda`` is symmetric: its gradient is
exact along symmetric directions (the convention of
:mod:`~bayes_alliance.kernels.small_chol`), and the ``Lambda_tb`` block, never read, gets none.
The kernels are compiled per ``(nb, nt)`` with the sizes as constants (unrolled loops, as
:mod:`~bayes_alliance.kernels.kalman_k`); the reverse pass reruns the forward one and keeps
each patient's ``V`` and ``Y``.

References: Murray, I. (2016). Differentiation of the Cholesky decomposition. arXiv:1602.07527.
Giles, M. (2008). An extended collection of matrix derivative results for forward and reverse
mode automatic differentiation. Oxford report 08/01.
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

CACHE_VERSION = 1
# inputs: lam, eta, kappa, log_c, U, load, U_T; gradients for all but load
DIFFERENTIABLE = (0, 1, 2, 3, 4, 6)
N_INPUTS = 7


@functools.cache
def _step_for(nb: int, nr: int) -> tuple[Any, Any]:
    """One level's forward step and its reverse for ``nb`` integrated and ``nr`` remaining
    coefficients (constants of the compiled code: the loops unroll). Entry ``i`` of the batched
    arrays is indexed in place and the scratch ``ws`` (at least (10, q, q), ``q = max(nb, 1 +
    nr)``) by slot: views and allocations per patient cost more than the algebra."""
    m = 1 + nr
    LU, W, R, BY, BR, BV, PH, TMP, BW, UW = range(10)

    @numba.njit(inline="always")
    def _upper_solve(v, i, ws, src, dst, n_col, transpose_src):
        """``ws[dst] = V^-T ws[src]`` (or ``V^-T ws[src]'``) for ``V = v[i]``."""
        for c in range(n_col):
            for a in range(nb - 1, -1, -1):
                acc = ws[src, c, a] if transpose_src else ws[src, a, c]
                for q in range(a + 1, nb):
                    acc -= v[i, q, a] * ws[dst, q, c]
                ws[dst, a, c] = acc / v[i, a, a]

    @numba.njit
    def step(lam, eta, i, u, vs, ys, lam_out, eta_out, ws, with_log):
        """Fill ``vs[i]`` (= V), ``ys[i]`` (= Y) and the remaining factor's ``lam_out``,
        ``eta_out`` from ``lam[i]``, ``eta[i]``; return ``y_0' y_0`` and ``l`` (0 unless
        ``with_log``: the reverse pass needs no value)."""
        for a in range(nb):  # Lambda_bb U
            for b in range(nb):
                acc = 0.0
                for q in range(nb):
                    acc += lam[i, a, q] * u[q, b]
                ws[LU, a, b] = acc
        for a in range(nb):  # W = I + U' (Lambda_bb U)
            for b in range(a + 1):
                acc = 1.0 if a == b else 0.0
                for p in range(nb):
                    acc += u[p, a] * ws[LU, p, b]
                ws[W, a, b] = acc
        for a in range(nb):  # R = U' [eta_b | Lambda_bt]
            acc = 0.0
            for p in range(nb):
                acc += u[p, a] * eta[i, p]
            ws[R, a, 0] = acc
            for c in range(nr):
                acc = 0.0
                for p in range(nb):
                    acc += u[p, a] * lam[i, p, nb + c]
                ws[R, a, 1 + c] = acc
        for j in range(nb):  # V = chol(W) (its lower triangle; NaN if not positive definite)
            acc = ws[W, j, j]
            for q in range(j):
                acc -= vs[i, j, q] * vs[i, j, q]
            d = np.sqrt(acc) if acc > 0.0 else np.nan
            vs[i, j, j] = d
            for a in range(j + 1, nb):
                acc = ws[W, a, j]
                for q in range(j):
                    acc -= vs[i, a, q] * vs[i, j, q]
                vs[i, a, j] = acc / d
                vs[i, j, a] = 0.0
        for c in range(m):  # Y = V^-1 R
            for a in range(nb):
                acc = ws[R, a, c]
                for q in range(a):
                    acc -= vs[i, a, q] * ys[i, q, c]
                ys[i, a, c] = acc / vs[i, a, a]
        det = 1.0  # one log per step: l = log prod V_aa (W = I + ... keeps it in range)
        yy = 0.0
        for a in range(nb):
            det *= vs[i, a, a]
            yy += ys[i, a, 0] * ys[i, a, 0]
        ld = np.log(det) if with_log else 0.0
        for c in range(nr):
            acc = eta[i, nb + c]
            for a in range(nb):
                acc -= ys[i, a, 1 + c] * ys[i, a, 0]
            eta_out[c] = acc
            for d in range(nr):
                acc = lam[i, nb + c, nb + d]
                for a in range(nb):
                    acc -= ys[i, a, 1 + c] * ys[i, a, 1 + d]
                lam_out[c, d] = acc
        return yy, ld

    @numba.njit
    def step_vjp(lam, eta, i, u, vs, ys, b_lam, b_eta, b_kappa, b_logc, g_lam, g_eta, g_u, ws):
        """Add the step's adjoints, given those of its outputs (``b_*``), to ``g_lam[i]``,
        ``g_eta[i]`` and ``g_u`` (``kappa``'s and ``log_c``'s pass through unchanged)."""
        for a in range(nb):  # Y_bar
            acc0 = -2.0 * b_kappa * ys[i, a, 0]
            for c in range(nr):
                acc0 -= ys[i, a, 1 + c] * b_eta[c]
                acc = -ys[i, a, 0] * b_eta[c]
                for d in range(nr):
                    acc -= ys[i, a, 1 + d] * (b_lam[c, d] + b_lam[d, c])
                ws[BY, a, 1 + c] = acc
            ws[BY, a, 0] = acc0
        for c in range(nr):
            g_eta[i, nb + c] += b_eta[c]
            for d in range(nr):
                g_lam[i, nb + c, nb + d] += b_lam[c, d]
        _upper_solve(vs, i, ws, BY, BR, m, False)  # R_bar = V^-T Y_bar
        for a in range(nb):  # V_bar (lower), l_bar = -log_c'_bar
            for b in range(a + 1):
                acc = 0.0
                for c in range(m):
                    acc -= ws[BR, a, c] * ys[i, b, c]
                ws[BV, a, b] = acc
            ws[BV, a, a] -= b_logc / vs[i, a, a]
        for a in range(nb):  # Phi(V' V_bar), upper triangle 0
            for b in range(nb):
                acc = 0.0
                if b <= a:
                    for q in range(a, nb):
                        acc += vs[i, q, a] * ws[BV, q, b]
                ws[PH, a, b] = 0.5 * acc if a == b else acc
        _upper_solve(vs, i, ws, PH, TMP, nb, False)  # V^-T P
        _upper_solve(vs, i, ws, TMP, PH, nb, True)  # (V^-T P V^-1)' = V^-T (V^-T P)'
        for a in range(nb):
            for b in range(nb):
                ws[BW, a, b] = 0.5 * (ws[PH, a, b] + ws[PH, b, a])
        for p in range(nb):
            for a in range(nb):  # U_bar += S R_bar'
                acc = eta[i, p] * ws[BR, a, 0]
                for c in range(nr):
                    acc += lam[i, p, nb + c] * ws[BR, a, 1 + c]
                g_u[p, a] += acc
            acc = 0.0  # S_bar = U R_bar
            for a in range(nb):
                acc += u[p, a] * ws[BR, a, 0]
            g_eta[i, p] += acc
            for c in range(nr):
                acc = 0.0
                for a in range(nb):
                    acc += u[p, a] * ws[BR, a, 1 + c]
                g_lam[i, p, nb + c] += acc
            for b in range(nb):  # U W_bar
                acc = 0.0
                for a in range(nb):
                    acc += u[p, a] * ws[BW, a, b]
                ws[UW, p, b] = acc
        for p in range(nb):
            for q in range(nb):
                acc = 0.0  # Lambda_bb_bar = (U W_bar) U'
                for b in range(nb):
                    acc += ws[UW, p, b] * u[q, b]
                g_lam[i, p, q] += acc
                acc = 0.0  # U_bar += (Lambda_bb + Lambda_bb') U W_bar
                for r in range(nb):
                    acc += (lam[i, p, r] + lam[i, r, p]) * ws[UW, r, q]
                g_u[p, q] += acc

    return step, step_vjp


@functools.cache
def kernels_for(nb: int, nt: int) -> tuple[Any, Any]:
    """The forward and reverse kernels for ``nb`` patient and ``nt`` therapist coefficients
    (``nt = 0``: two levels), compiled once per process and sizes."""
    p_step, p_vjp = _step_for(nb, nt)
    t_step, t_vjp = _step_for(max(nt, 1), 0)
    n1 = max(nt, 1)
    q = max(nb, 1 + nt, n1)

    @numba.njit
    def out_size(n_p, load):
        return load.shape[0] if nt else n_p

    @numba.njit
    def _buffers(n_p, n_u):
        return (
            np.empty((n_p, nb, nb)),
            np.empty((n_p, nb, 1 + nt)),
            np.zeros((n_u, n1, n1)),
            np.zeros((n_u, n1)),
            np.empty((n_u, n1, n1)),
            np.empty((n_u, n1, 1)),
            np.zeros((10, q, q)),
        )

    @numba.njit
    def _sweep(lam, eta, kappa, log_c, u, load, ut, vs, ys, t_lam, t_eta, tv, ty, ws, with_log):
        """The forward pass, keeping each patient's ``V`` and ``Y`` (``vs``, ``ys``), each
        therapist's summed factor (``t_lam``, ``t_eta``) and its ``V`` and ``Y``."""
        n_p = lam.shape[0]
        n_u = out_size(n_p, load)
        out = np.zeros(n_u)
        lam_o = np.zeros((n1, n1))
        eta_o = np.zeros(n1)
        t_kap = np.zeros(n_u)
        t_log = np.zeros(n_u)
        for i in range(n_p):
            yy, ld = p_step(lam, eta, i, u, vs, ys, lam_o, eta_o, ws, with_log)
            kap = kappa[i] - yy
            lc = log_c[i] - ld
            if nt == 0:
                out[i] = lc - 0.5 * kap
                continue
            for j in range(n_u):
                g = load[j, i]
                if g == 0.0:
                    continue
                t_kap[j] += g * kap
                t_log[j] += g * lc
                for c in range(nt):
                    t_eta[j, c] += g * eta_o[c]
                    for d in range(nt):
                        t_lam[j, c, d] += g * lam_o[c, d]
        if nt:
            for j in range(n_u):
                yy, ld = t_step(t_lam, t_eta, j, ut, tv, ty, lam_o, eta_o, ws, with_log)
                out[j] = t_log[j] - ld - 0.5 * (t_kap[j] - yy)
        return out

    @numba.njit
    def forward(lam, eta, kappa, log_c, u, load, ut):
        """Log density per unit: per therapist (``nt > 0``) or per patient. Shapes ``lam``
        (P, n, n), ``eta`` (P, n), ``kappa``, ``log_c`` (P,), ``u`` (nb, nb), ``load`` (T, P),
        ``ut`` (nt, nt)."""
        n_p = lam.shape[0]
        vs, ys, t_lam, t_eta, tv, ty, ws = _buffers(n_p, out_size(n_p, load))
        return _sweep(lam, eta, kappa, log_c, u, load, ut, vs, ys, t_lam, t_eta, tv, ty, ws, True)

    @numba.njit
    def vjp(lam, eta, kappa, log_c, u, load, ut, g_out):
        """Adjoints of ``lam``, ``eta``, ``kappa``, ``log_c``, ``u`` and ``ut`` given that of
        the output (see the module)."""
        n_p, n = lam.shape[0], lam.shape[1]
        n_u = out_size(n_p, load)
        vs, ys, t_lam, t_eta, tv, ty, ws = _buffers(n_p, n_u)
        _sweep(lam, eta, kappa, log_c, u, load, ut, vs, ys, t_lam, t_eta, tv, ty, ws, False)
        g_lam = np.zeros((n_p, n, n))
        g_eta = np.zeros((n_p, n))
        g_kap = np.zeros(n_p)
        g_log = np.zeros(n_p)
        g_u = np.zeros((nb, nb))
        g_ut = np.zeros(ut.shape)
        b_lam = np.zeros((n1, n1))
        b_eta = np.zeros(n1)
        tb_lam = np.zeros((n_u, n1, n1))
        tb_eta = np.zeros((n_u, n1))
        if nt:  # the therapists' value: log_c - l - (kappa - y_0' y_0) / 2
            for j in range(n_u):
                t_vjp(t_lam, t_eta, j, ut, tv, ty, b_lam, b_eta, -0.5 * g_out[j],
                      g_out[j], tb_lam, tb_eta, g_ut, ws)  # fmt: skip
        for i in range(n_p):
            if nt == 0:
                b_kap, b_log = -0.5 * g_out[i], g_out[i]
            else:  # a patient's adjoints are its therapist's, weighted by the caseload
                b_lam[:, :] = 0.0
                b_eta[:] = 0.0
                b_kap, b_log = 0.0, 0.0
                for j in range(n_u):
                    g = load[j, i]
                    if g == 0.0:
                        continue
                    b_kap -= 0.5 * g * g_out[j]
                    b_log += g * g_out[j]
                    for c in range(nt):
                        b_eta[c] += g * tb_eta[j, c]
                        for d in range(nt):
                            b_lam[c, d] += g * tb_lam[j, c, d]
            p_vjp(lam, eta, i, u, vs, ys, b_lam, b_eta, b_kap, b_log,
                  g_lam, g_eta, g_u, ws)  # fmt: skip
            g_kap[i] = b_kap
            g_log[i] = b_log
        return g_lam, g_eta, g_kap, g_log, g_u, g_ut

    return forward, vjp


def integrate_levels(
    lam: Any, eta: Any, kappa: Any, log_c: Any, u: Any, load: Any = None, ut: Any = None
) -> np.ndarray:
    """Numpy entry to the forward kernel: the log density per therapist (``load`` (T, P) and
    ``ut`` given) or per patient. Shapes as :class:`LevelOp`."""
    lam = np.ascontiguousarray(lam, dtype=float)
    nb = int(np.shape(u)[0])
    n_p = lam.shape[0]
    nt = lam.shape[-1] - nb
    if load is None:
        load, ut = np.zeros((0, n_p)), np.zeros((0, 0))
    forward = kernels_for(nb, nt)[0]
    return forward(
        lam,
        np.ascontiguousarray(eta, dtype=float),
        np.ascontiguousarray(kappa, dtype=float),
        np.ascontiguousarray(log_c, dtype=float),
        np.ascontiguousarray(u, dtype=float),
        np.ascontiguousarray(load, dtype=float),
        np.ascontiguousarray(ut, dtype=float),
    )


def integrate_levels_vjp(*args: Any) -> tuple[np.ndarray, ...]:
    """Numpy entry to the reverse kernel: the inputs of :func:`integrate_levels` (all seven)
    and the output's adjoint."""
    arrays = [np.ascontiguousarray(a, dtype=float) for a in args]
    nb = arrays[4].shape[0]
    return kernels_for(nb, arrays[0].shape[-1] - nb)[1](*arrays)


_IN_NDIM = (3, 2, 1, 1, 2, 2, 2)


def _as(x: Any, ndim: int) -> Any:
    out = pt.as_tensor_variable(x).astype("float64")
    if out.ndim != ndim:
        raise ValueError(f"expected {ndim} dimensions, got {out.type}")
    return out


class LevelOpGrad(Op):
    """Vector-Jacobian product of :class:`LevelOp`."""

    __props__ = ("nb", "nt")

    def __init__(self, nb: int, nt: int) -> None:
        self.nb, self.nt = int(nb), int(nt)

    def make_node(self, *args: Any) -> Apply:
        inputs = [_as(a, n) for a, n in zip(args, (*_IN_NDIM, 1), strict=True)]
        return Apply(self, inputs, [inputs[i].type() for i in DIFFERENTIABLE])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list[Any]) -> None:
        vjp = kernels_for(self.nb, self.nt)[1]
        for store, val in zip(output_storage, vjp(*inputs), strict=True):
            store[0] = val


class LevelOp(Op):
    """Log density per unit with the patients' and therapists' coefficients integrated out
    (see the module).

    Inputs: the patients' factors ``lam`` (P, n, n), ``eta`` (P, n), ``kappa``, ``log_c``
    (P,) in ``(b, tau)``; the patient prior's factor ``u`` (nb, nb); the caseloads ``load``
    (T, P) (constant: no gradient) and the therapist prior's factor ``ut`` (nt, nt), both of
    size 0 with two levels (``nt = n - nb = 0``). Output: (T,) or, with two levels, (P,).
    """

    __props__ = ("nb", "nt")

    def __init__(self, nb: int, nt: int) -> None:
        self.nb, self.nt = int(nb), int(nt)

    def make_node(self, *args: Any) -> Apply:
        inputs = [_as(a, n) for a, n in zip(args, _IN_NDIM, strict=True)]
        return Apply(self, inputs, [pt.dvector()])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list[Any]) -> None:
        output_storage[0][0] = kernels_for(self.nb, self.nt)[0](*inputs)

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        return [[i in DIFFERENTIABLE] for i in range(N_INPUTS)]

    def pullback(self, inputs: Any, outputs: Any, output_grads: Any) -> list[Any]:
        g = output_grads[0]
        if isinstance(g.type, DisconnectedType):
            g = pt.zeros_like(outputs[0])
        pulled = iter(LevelOpGrad(self.nb, self.nt).make_node(*inputs, g).outputs)
        return [
            next(pulled) if i in DIFFERENTIABLE else disconnected_type() for i in range(N_INPUTS)
        ]


@register_funcify_default_op_cache_key(LevelOp)
def _numba_level_op(op: Any, node: Apply | None = None, **kwargs: Any) -> Any:
    return kernels_for(op.nb, op.nt)[0], CACHE_VERSION


@register_funcify_default_op_cache_key(LevelOpGrad)
def _numba_level_op_grad(op: Any, node: Apply | None = None, **kwargs: Any) -> Any:
    return kernels_for(op.nb, op.nt)[1], CACHE_VERSION


def level_logp(
    lam: Any,
    eta: Any,
    kappa: Any,
    log_c: Any,
    u: Any,
    load: Any = None,
    ut: Any = None,
    sizes: tuple[int, int] | None = None,
) -> Any:
    """The log density per unit through :class:`LevelOp` (pytensor): per therapist with
    ``load`` (T, P) and ``ut``, else per patient. ``sizes`` = ``(nb, nt)``, the numbers of
    patient and therapist coefficients the kernels are compiled for; by default from the
    static shapes of ``u`` and ``lam``."""
    lam, u = _as(lam, 3), _as(u, 2)
    if sizes is None:
        n, nb = lam.type.shape[-1], u.type.shape[0]
        if n is None or nb is None:
            raise ValueError(f"static sizes needed: give sizes, got {lam.type} and {u.type}")
        sizes = (nb, n - nb)
    if (load is None) != (sizes[1] == 0) or (load is None) != (ut is None):
        raise ValueError(
            f"a caseload and a therapist prior go with therapist coefficients, got {sizes[1]}"
        )
    if load is None:
        load, ut = pt.zeros((0, lam.shape[0])), pt.zeros((0, 0))
    node = LevelOp(*sizes).make_node(lam, eta, kappa, log_c, u, load, ut)
    return node.outputs[0]


__all__ = [
    "LevelOp",
    "LevelOpGrad",
    "integrate_levels",
    "integrate_levels_vjp",
    "kernels_for",
    "level_logp",
]
