r"""The numba kernels of :mod:`bayes_alliance.kernels.kalman_op`'s Kalman filter, vectorised across patients.

The reference Op (:class:`~bayes_alliance.kernels.kalman_op.KalmanFactor`) filters one patient
per loop iteration with a branch per entry; its tape of states (P, S, 3, 9) goes through main
memory between the forward and the reverse pass. Here the same filter runs with the sessions in
the outer loop and the patients in the inner loop (structure of arrays: one short contiguous
array per state entry, a block of ``LANES`` patients at a time), with no branch in the inner
loop, so the compiler turns it into SIMD arithmetic over patients. The arithmetic per entry is
the reference's measurement-error update for every entry, observed or not, measurement error
or not:

    s = c11 + rx,   (kx, ky) = (c11, c12) / s,   m += o (kx, ky)' e,   C -= o (kx, ky)' (c11, c12)

(the x entry; the y entry likewise with ``s = c22 + ry``). With ``rx = 0`` it is the
reference's error-free update to the last bit: ``kx = c11 / c11`` is exactly 1.0 and
``o ky c12 = o c12 (c12 / c11)`` for ``o`` in {0, 1}; with ``o = 0`` it changes nothing. The
log of the prediction variances is one log of a running product per patient, as in the
reference; a variance outside [1/HUGE, HUGE] or a fractional entry gets its own log in a scalar
pass that runs only for the columns of a block that have one.

The reverse pass does not read a stored tape: for each block it reruns the forward sweep into a
tape of the block alone (``(S, 3, 9, LANES)``, laid out so that the backward sweep reads it
contiguously and small enough to stay in the cache), then runs the steps backwards (the
reference's hand-written adjoints). Writing and reading a tape of every patient costs more
memory traffic than the second forward sweep costs arithmetic (``benchmarks/gap_cost.py``).
The forward Op's fourth-order "tape" output is therefore empty.

The error variances ``rx, ry`` may be (P, S) (one per cell) or (1, 1): one for every cell,
which :func:`batch_filter_factor_op` passes for a scalar (0 without measurement error), so the
graph builds no (P, S) grid of zeros per evaluation and the kernels copy no row per column; the
adjoint of a (1, 1) entry is the sum of the per-cell adjoints.

The lag entries ``a, b, c, d`` may be (P,) or (P, S); (P, S) is the transition into column t
(column 0 unused), for continuous time, where Phi differs per interval. The kernels are
compiled once per machine (``cache=True``; no fastmath, so results do not depend on the cache
state or on the SIMD width).

No PyTensor here: :mod:`bayes_alliance.kernels.kalman_batch` wraps these kernels as the
model's Op (:class:`~bayes_alliance.kernels.kalman_batch.BatchFactor`), and post-hoc code
(:mod:`bayes_alliance.analysis.patient_density`) calls the forward kernel directly.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import overload

from bayes_alliance.kernels.kalman_op_nb import BIG, HUGE, LOG_2PI

# patients per block: the block's tape (S x 3 x 9 x LANES doubles) stays in the L2 cache
LANES = 64


def _columns(a):  # numba: the overload below
    raise NotImplementedError


@overload(_columns)
def _columns_impl(a):
    """A lag entry as (K, P) with K = 1 (one per patient) or S (one per transition)."""
    if a.ndim == 1:
        return lambda a: np.ascontiguousarray(a).reshape((1, a.shape[0]))
    return lambda a: a.T


def _shaped(g, a):  # numba: the overload below
    raise NotImplementedError


@overload(_shaped)
def _shaped_impl(g, a):
    """The (K, P) adjoint of a lag entry in the entry's own shape."""
    if a.ndim == 1:
        return lambda g, a: g[0].copy()
    return lambda g, a: g.T


# Rows of a block's work buffer ``w`` (1-D, row r of lane i at ``r * LANES + i``): one flat
# array with constant row offsets lets the compiler prove that the rows do not overlap, so the
# lane loops vectorise without run-time alias checks (separate arrays per row do not).
M0, M1, M2, M3, M4, M5, C11, C12, C22 = range(9)  # state: means on data, unit x, unit y; C
L11, L12, L22, G1, G2, Q, LOGS, PROD, NUNIT = range(9, 18)  # sums; logs; running product
DX, DY, OX, OY, FIRST, RX, RY, A, B, C, D, V11, V12, V22, SX, SY, F11, F12, F22 = range(18, 37)
GLC, GL11, GL12, GL22, GG1, GG2, GQ = range(37, 44)  # output adjoints
BM0, BC11, BF11 = 44, 50, 53  # adjoints of the means (6), the covariance (3), F (3)
GDX, GDY, GRX, GRY, GA, GB, GC, GD, Q11, Q12, Q22 = range(56, 67)  # adjoints out, per column
N_ROWS = 67
TAPE = 27 * LANES  # one column of a block's tape: 3 states x 9 entries x LANES


@numba.njit(cache=True, error_model="numpy", inline="always")
def _load(w, row, src, t, p0, nb):
    """Row ``row`` of ``w`` from ``src[t, p0:p0 + nb]``. Unsigned indices: a signed one that
    the compiler cannot prove nonnegative gets a wraparound select that stops the loop from
    vectorising."""
    tu, pu = np.uint64(t), np.uint64(p0)
    for i in range(nb):
        w[row * LANES + i] = src[tu, pu + np.uint64(i)]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _store(w, row, dst, t, p0, nb):
    tu, pu = np.uint64(t), np.uint64(p0)
    for i in range(nb):
        dst[tu, pu + np.uint64(i)] = w[row * LANES + i]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _fill(w, row, value, nb):
    for i in range(nb):
        w[row * LANES + i] = value


@numba.njit(cache=True, error_model="numpy", inline="always")
def _load_column(w, t, p0, nb, dx, dy, ox, oy, first, a, b, c, d, s11, s12, s22, rx, ry):
    """The block's inputs of column t into ``w`` (grids (S, P), lags (K, P), innovations
    (S, R))."""
    # one inlined loop per row: a call per row (and a loop over a tuple of arrays) costs
    # reference counting that outweighs the copy
    _load(w, DX, dx, t, p0, nb)
    _load(w, DY, dy, t, p0, nb)
    _load(w, OX, ox, t, p0, nb)
    _load(w, OY, oy, t, p0, nb)
    _load(w, FIRST, first, t, p0, nb)
    if rx.size > 1:  # one error variance per cell; else one for all (rows set per block)
        _load(w, RX, rx, t, p0, nb)
    if ry.size > 1:
        _load(w, RY, ry, t, p0, nb)
    ta = t if a.shape[0] > 1 else 0
    _load(w, A, a, ta, p0, nb)
    _load(w, B, b, ta, p0, nb)
    _load(w, C, c, ta, p0, nb)
    _load(w, D, d, ta, p0, nb)
    if s11.shape[1] > 1:
        _load(w, V11, s11, t, p0, nb)
        _load(w, V12, s12, t, p0, nb)
        _load(w, V22, s22, t, p0, nb)
    else:
        _fill(w, V11, s11[t, 0], nb)
        _fill(w, V12, s12[t, 0], nb)
        _fill(w, V22, s22[t, 0], nb)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _put(tape, k, m0, m1, m2, m3, m4, m5, c11, c12, c22):
    """One state (nine entries, LANES apart) into the tape at ``k``."""
    tape[k], tape[k + LANES], tape[k + 2 * LANES] = m0, m1, m2
    tape[k + 3 * LANES], tape[k + 4 * LANES], tape[k + 5 * LANES] = m3, m4, m5
    tape[k + 6 * LANES], tape[k + 7 * LANES], tape[k + 8 * LANES] = c11, c12, c22


@numba.njit(cache=True, error_model="numpy")
def _transition(w, tape, nb):
    """The transition into the column for the block's lanes; the state before it to the
    column's ``tape`` (a view: offsets from 0 let the compiler see them nonnegative)."""
    for i in range(nb):
        ap, bp, cp, dp = w[A * LANES + i], w[B * LANES + i], w[C * LANES + i], w[D * LANES + i]
        m0, m1, m2 = w[M0 * LANES + i], w[M1 * LANES + i], w[M2 * LANES + i]
        m3, m4, m5 = w[M3 * LANES + i], w[M4 * LANES + i], w[M5 * LANES + i]
        c11, c12, c22 = w[C11 * LANES + i], w[C12 * LANES + i], w[C22 * LANES + i]
        _put(tape, i, m0, m1, m2, m3, m4, m5, c11, c12, c22)
        new = w[FIRST * LANES + i]
        keep = 1.0 - new
        w[M0 * LANES + i], w[M3 * LANES + i] = (
            keep * (ap * m0 + bp * m3),
            keep * (cp * m0 + dp * m3),
        )
        w[M1 * LANES + i], w[M4 * LANES + i] = (
            keep * (ap * m1 + bp * m4),
            keep * (cp * m1 + dp * m4),
        )
        w[M2 * LANES + i], w[M5 * LANES + i] = (
            keep * (ap * m2 + bp * m5),
            keep * (cp * m2 + dp * m5),
        )
        p11 = ap * ap * c11 + 2 * ap * bp * c12 + bp * bp * c22 + w[V11 * LANES + i]
        p12 = ap * cp * c11 + (ap * dp + bp * cp) * c12 + bp * dp * c22 + w[V12 * LANES + i]
        p22 = cp * cp * c11 + 2 * cp * dp * c12 + dp * dp * c22 + w[V22 * LANES + i]
        w[C11 * LANES + i] = new * w[F11 * LANES + i] + keep * p11
        w[C12 * LANES + i] = new * w[F12 * LANES + i] + keep * p12
        w[C22 * LANES + i] = new * w[F22 * LANES + i] + keep * p22


@numba.njit(cache=True, error_model="numpy")
def _entries(w, tape, nb):
    """The x and the y entry of the column for the block's lanes (the state before each to
    the column's ``tape`` at 9 LANES and 18 LANES); returns whether a lane needs the scalar
    pass (a fractional entry, a variance outside [1/HUGE, HUGE], a product to flush)."""
    odd = False
    for i in range(nb):
        m0, m1, m2 = w[M0 * LANES + i], w[M1 * LANES + i], w[M2 * LANES + i]
        m3, m4, m5 = w[M3 * LANES + i], w[M4 * LANES + i], w[M5 * LANES + i]
        c11, c12, c22 = w[C11 * LANES + i], w[C12 * LANES + i], w[C22 * LANES + i]
        l11, l12, l22 = w[L11 * LANES + i], w[L12 * LANES + i], w[L22 * LANES + i]
        g1, g2, q = w[G1 * LANES + i], w[G2 * LANES + i], w[Q * LANES + i]
        prod, n_unit = w[PROD * LANES + i], w[NUNIT * LANES + i]
        _put(tape, 9 * LANES + i, m0, m1, m2, m3, m4, m5, c11, c12, c22)
        # x entry: e = (dx - mx0, 1 - mx1, -mx2), s = c11 + rx, gains (c11, c12) / s
        o = w[OX * LANES + i]
        s = c11 + w[RX * LANES + i]
        e0, e1, e2 = w[DX * LANES + i] - m0, 1.0 - m1, -m2
        wt = o / s
        q = q + wt * e0 * e0
        g1 = g1 + wt * e1 * e0
        g2 = g2 + wt * e2 * e0
        l11 = l11 + wt * e1 * e1
        l12 = l12 + wt * e1 * e2
        l22 = l22 + wt * e2 * e2
        unit = (o == 1.0) & (s > 1.0 / HUGE) & (s < HUGE)
        prod = prod * (s if unit else 1.0)
        n_unit = n_unit + (1.0 if unit else 0.0)
        w[SX * LANES + i] = s
        odd |= (o != 0.0) & (not unit)
        kx, ky = c11 / s, c12 / s
        m0, m1, m2 = m0 + o * kx * e0, m1 + o * kx * e1, m2 + o * kx * e2
        m3, m4, m5 = m3 + o * ky * e0, m4 + o * ky * e1, m5 + o * ky * e2
        c11, c12, c22 = c11 - o * kx * c11, c12 - o * kx * c12, c22 - o * ky * c12
        _put(tape, 18 * LANES + i, m0, m1, m2, m3, m4, m5, c11, c12, c22)
        # y entry: e = (dy - my0, -my1, 1 - my2), s = c22 + ry, gains (c12, c22) / s
        o = w[OY * LANES + i]
        s = c22 + w[RY * LANES + i]
        e0, e1, e2 = w[DY * LANES + i] - m3, -m4, 1.0 - m5
        wt = o / s
        q = q + wt * e0 * e0
        g1 = g1 + wt * e1 * e0
        g2 = g2 + wt * e2 * e0
        l11 = l11 + wt * e1 * e1
        l12 = l12 + wt * e1 * e2
        l22 = l22 + wt * e2 * e2
        unit = (o == 1.0) & (s > 1.0 / HUGE) & (s < HUGE)
        prod = prod * (s if unit else 1.0)
        n_unit = n_unit + (1.0 if unit else 0.0)
        w[SY * LANES + i] = s
        odd |= ((o != 0.0) & (not unit)) | (prod <= 1.0 / BIG) | (prod >= BIG)
        kx, ky = c12 / s, c22 / s
        m0, m1, m2 = m0 + o * kx * e0, m1 + o * kx * e1, m2 + o * kx * e2
        m3, m4, m5 = m3 + o * ky * e0, m4 + o * ky * e1, m5 + o * ky * e2
        c11, c12, c22 = c11 - o * kx * c12, c12 - o * ky * c12, c22 - o * ky * c22
        w[M0 * LANES + i], w[M1 * LANES + i], w[M2 * LANES + i] = m0, m1, m2
        w[M3 * LANES + i], w[M4 * LANES + i], w[M5 * LANES + i] = m3, m4, m5
        w[C11 * LANES + i], w[C12 * LANES + i], w[C22 * LANES + i] = c11, c12, c22
        w[L11 * LANES + i], w[L12 * LANES + i], w[L22 * LANES + i] = l11, l12, l22
        w[G1 * LANES + i], w[G2 * LANES + i], w[Q * LANES + i] = g1, g2, q
        w[PROD * LANES + i], w[NUNIT * LANES + i] = prod, n_unit
    return odd


@numba.njit(cache=True, error_model="numpy")
def _odd_lanes(w, nb):
    """The scalar pass: own logs of fractional entries and of variances outside
    [1/HUGE, HUGE] (``-o/2 (log 2 pi + log s)``), and a running product outside [1/BIG, BIG]
    flushed into the logs."""
    for i in range(nb):
        for o, s in (
            (w[OX * LANES + i], w[SX * LANES + i]),
            (w[OY * LANES + i], w[SY * LANES + i]),
        ):
            if o != 0.0 and not (o == 1.0 and 1.0 / HUGE < s < HUGE):
                w[LOGS * LANES + i] -= 0.5 * o * (LOG_2PI + np.log(s))
        prod = w[PROD * LANES + i]
        if not (1.0 / BIG < prod < BIG):
            w[LOGS * LANES + i] -= 0.5 * np.log(prod)
            w[PROD * LANES + i] = 1.0


@numba.njit(cache=True, error_model="numpy")
def _rows(ox, oy, p0, nb):
    """The block's rows up to its last observed entry (at least one): the cells after it
    change no output (every term is weighted by its entry's ``o``), so the sweeps stop there;
    rows sorted by series length make this the block's longest series."""
    for t in range(ox.shape[0] - 1, 0, -1):
        for i in range(nb):
            if ox[t, p0 + i] != 0.0 or oy[t, p0 + i] != 0.0:
                return t + 1
    return min(1, ox.shape[0])  # a grid with no rows: no sweep (numba checks no bounds)


@numba.njit(cache=True, error_model="numpy")
def _sweep(
    p0, nb, dx, dy, ox, oy, first, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry, w, tape
):
    """Forward sweep of patients p0 .. p0 + nb - 1 (inputs transposed: grids (S, P), lags
    (K, P), innovations (S, R) with R = 1 or P) in the work buffer ``w``, up to the block's
    last observed row (:func:`_rows`, returned); the states before the transition, the x
    entry and the y entry of column t go to ``tape[t TAPE:]``."""
    for i in range(nb):
        for j in range(M0, C11):
            w[j * LANES + i] = 0.0
        for j in range(L11, PROD):
            w[j * LANES + i] = 0.0
        w[PROD * LANES + i], w[NUNIT * LANES + i] = 1.0, 0.0
    for row, src in ((F11, f11), (F12, f12), (F22, f22)):
        for i in range(nb):
            w[row * LANES + i] = src[p0 + i]
    for row, dst in ((C11, F11), (C12, F12), (C22, F22)):
        for i in range(nb):
            w[row * LANES + i] = w[dst * LANES + i]
    # one error variance for every cell ((1, 1): none, or a shared one): set once, not copied
    # per column
    if rx.size == 1:
        _fill(w, RX, rx[0, 0], nb)
    if ry.size == 1:
        _fill(w, RY, ry[0, 0], nb)
    n_t = _rows(ox, oy, p0, nb)
    for t in range(n_t):
        _load_column(w, t, p0, nb, dx, dy, ox, oy, first, a, b, c, d, s11, s12, s22, rx, ry)
        column = tape[t * TAPE : (t + 1) * TAPE]
        if t > 0:
            _transition(w, column, nb)
        if _entries(w, column, nb):
            _odd_lanes(w, nb)
    return n_t


@numba.njit(cache=True, error_model="numpy")
def batch_factor(dx, dy, ox, oy, first, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry):
    """Forward kernel: the seven per-patient outputs (log_c, l11, l12, l22, g1, g2, q) of
    :func:`~bayes_alliance.kernels.kalman_op.kalman_factor` and an empty tape."""
    n_p, n_s = dx.shape
    lc, l11, l12, l22 = np.empty(n_p), np.empty(n_p), np.empty(n_p), np.empty(n_p)
    g1, g2, q = np.empty(n_p), np.empty(n_p), np.empty(n_p)
    w = np.empty(N_ROWS * LANES)
    tape = np.empty(max(n_s, 1) * TAPE)
    at, bt, ct, dt = _columns(a), _columns(b), _columns(c), _columns(d)
    for p0 in range(0, n_p, LANES):
        nb = min(LANES, n_p - p0)
        _sweep(
            p0, nb, dx.T, dy.T, ox.T, oy.T, first.T, at, bt, ct, dt, f11, f12, f22,
            s11.T, s12.T, s22.T, rx.T, ry.T, w, tape,
        )  # fmt: skip
        for i in range(nb):
            p = p0 + i
            lc[p] = w[LOGS * LANES + i] - 0.5 * (
                w[NUNIT * LANES + i] * LOG_2PI + np.log(w[PROD * LANES + i])
            )
        for row, dst in ((L11, l11), (L12, l12), (L22, l22), (G1, g1), (G2, g2), (Q, q)):
            for i in range(nb):
                dst[p0 + i] = w[row * LANES + i]
    return lc, l11, l12, l22, g1, g2, q, np.empty((0, 0, 0, 0))


@numba.njit(cache=True, error_model="numpy")
def batch_factor_draws(
    x, y, ox, oy, first, kx, ky, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry
):
    """:func:`batch_factor` for B parameter draws on one grid, forward only (post-hoc
    densities): the grid minus each draw's known means, filtered draw by draw in one compiled
    loop (no Python call per draw).

    ``x, y, ox, oy, first`` (S, P): the grid as the model's Op reads it, transposed (values 0
    where not observed); ``kx, ky`` (B, K, P): each draw's known means, K = 1 (one per patient)
    or S (one per cell); ``a, b, c, d, f11, f12, f22`` (B, P); ``s11, s12, s22`` (B, R, S),
    R = 1 (shared) or P; ``rx, ry`` (B, 1, 1) or (B, P, S). Returns the seven outputs as
    (7, B, P)."""
    n_s, n_p = x.shape
    n_b = kx.shape[0]
    out = np.empty((7, n_b, n_p))
    dx, dy = np.empty((n_s, n_p)), np.empty((n_s, n_p))
    for i in range(n_b):
        for t in range(n_s):
            tk = t if kx.shape[1] > 1 else 0
            for p in range(n_p):
                dx[t, p] = (x[t, p] - kx[i, tk, p]) * ox[t, p]
                dy[t, p] = (y[t, p] - ky[i, tk, p]) * oy[t, p]
        lc, l11, l12, l22, g1, g2, q, _ = batch_factor(
            dx.T, dy.T, ox.T, oy.T, first.T, a[i], b[i], c[i], d[i], f11[i], f12[i], f22[i],
            s11[i], s12[i], s22[i], rx[i], ry[i],
        )  # fmt: skip
        out[0, i], out[1, i], out[2, i], out[3, i] = lc, l11, l12, l22
        out[4, i], out[5, i], out[6, i] = g1, g2, q
    return out


@numba.njit(cache=True, error_model="numpy")
def _entry_adjoint(o, r, e0, e1, e2, glc, g11, g12, g22, gg1, gg2, gq):
    """Adjoints of one entry's terms ``o / s e_i e_j`` and ``-o/2 log s`` (``r = 1 / s``):
    d/de0, d/de1, d/de2 and d/ds."""
    wt = o * r
    be0 = wt * (2 * gq * e0 + gg1 * e1 + gg2 * e2)
    be1 = wt * (gg1 * e0 + 2 * g11 * e1 + g12 * e2)
    be2 = wt * (gg2 * e0 + g12 * e1 + 2 * g22 * e2)
    quad = gq * e0 * e0 + gg1 * e1 * e0 + gg2 * e2 * e0
    quad = quad + g11 * e1 * e1 + g12 * e1 * e2 + g22 * e2 * e2
    bs = -quad * o * r * r - 0.5 * glc * o * r
    return be0, be1, be2, bs


@numba.njit(cache=True, error_model="numpy")
def _back_column(w, tape, nb, transition):
    """Adjoints of column t's y entry, x entry and (``transition``) the transition into it,
    for the block's lanes, from the states in the column's ``tape``; the column's adjoints of the
    inputs go to rows GDX .. Q22 of ``w``."""
    for i in range(nb):
        glc, g11, g12, g22 = (
            w[GLC * LANES + i],
            w[GL11 * LANES + i],
            w[GL12 * LANES + i],
            w[GL22 * LANES + i],
        )
        gg1, gg2, gq = w[GG1 * LANES + i], w[GG2 * LANES + i], w[GQ * LANES + i]
        n0, n1, n2 = w[BM0 * LANES + i], w[(BM0 + 1) * LANES + i], w[(BM0 + 2) * LANES + i]
        n3, n4, n5 = w[(BM0 + 3) * LANES + i], w[(BM0 + 4) * LANES + i], w[(BM0 + 5) * LANES + i]
        b11, b12, b22 = w[BC11 * LANES + i], w[(BC11 + 1) * LANES + i], w[(BC11 + 2) * LANES + i]
        # y entry (state before it: the third of the column's states)
        y = 18 * LANES + i
        o = w[OY * LANES + i]
        c12, c22 = tape[y + 7 * LANES], tape[y + 8 * LANES]
        e0 = w[DY * LANES + i] - tape[y + 3 * LANES]
        e1, e2 = -tape[y + 4 * LANES], 1.0 - tape[y + 5 * LANES]
        s = c22 + w[RY * LANES + i]
        r = 1.0 / s  # one division; the adjoints need not match the forward's bits
        kx, ky = c12 * r, c22 * r
        be0, be1, be2, bs = _entry_adjoint(o, r, e0, e1, e2, glc, g11, g12, g22, gg1, gg2, gq)
        be0 += o * (kx * n0 + ky * n3)
        be1 += o * (kx * n1 + ky * n4)
        be2 += o * (kx * n2 + ky * n5)
        bkx = o * (e0 * n0 + e1 * n1 + e2 * n2) - o * c12 * b11
        bky = o * (e0 * n3 + e1 * n4 + e2 * n5) - o * (c12 * b12 + c22 * b22)
        bs = bs - (bkx * kx + bky * ky) * r
        b12, b22 = (
            -o * kx * b11 + (1.0 - o * ky) * b12 + bkx * r,
            (1.0 - o * ky) * b22 + bky * r + bs,
        )
        w[GRY * LANES + i] = bs
        n3, n4, n5 = n3 - be0, n4 - be1, n5 - be2
        w[GDY * LANES + i] = be0
        # x entry (state before it: the second)
        x = 9 * LANES + i
        o = w[OX * LANES + i]
        c11, c12 = tape[x + 6 * LANES], tape[x + 7 * LANES]
        e0 = w[DX * LANES + i] - tape[x]
        e1, e2 = 1.0 - tape[x + LANES], -tape[x + 2 * LANES]
        s = c11 + w[RX * LANES + i]
        r = 1.0 / s  # one division; the adjoints need not match the forward's bits
        kx, ky = c11 * r, c12 * r
        be0, be1, be2, bs = _entry_adjoint(o, r, e0, e1, e2, glc, g11, g12, g22, gg1, gg2, gq)
        be0 += o * (kx * n0 + ky * n3)
        be1 += o * (kx * n1 + ky * n4)
        be2 += o * (kx * n2 + ky * n5)
        bkx = o * (e0 * n0 + e1 * n1 + e2 * n2) - o * (c11 * b11 + c12 * b12)
        bky = o * (e0 * n3 + e1 * n4 + e2 * n5) - o * c12 * b22
        bs = bs - (bkx * kx + bky * ky) * r
        b11, b12 = (
            (1.0 - o * kx) * b11 + bkx * r + bs,
            (1.0 - o * kx) * b12 - o * ky * b22 + bky * r,
        )
        w[GRX * LANES + i] = bs
        n0, n1, n2 = n0 - be0, n1 - be1, n2 - be2
        w[GDX * LANES + i] = be0
        if transition:  # the transition into column t (state before it: the first)
            z = i
            ap, bp, cp, dp = w[A * LANES + i], w[B * LANES + i], w[C * LANES + i], w[D * LANES + i]
            new = w[FIRST * LANES + i]
            keep = 1.0 - new
            x0, x1, x2 = tape[z], tape[z + LANES], tape[z + 2 * LANES]
            y0, y1, y2 = tape[z + 3 * LANES], tape[z + 4 * LANES], tape[z + 5 * LANES]
            c11, c12, c22 = tape[z + 6 * LANES], tape[z + 7 * LANES], tape[z + 8 * LANES]
            sxx = x0 * n0 + x1 * n1 + x2 * n2
            syx = y0 * n0 + y1 * n1 + y2 * n2
            sxy = x0 * n3 + x1 * n4 + x2 * n5
            syy = y0 * n3 + y1 * n4 + y2 * n5
            n0, n3 = keep * (ap * n0 + cp * n3), keep * (bp * n0 + dp * n3)
            n1, n4 = keep * (ap * n1 + cp * n4), keep * (bp * n1 + dp * n4)
            n2, n5 = keep * (ap * n2 + cp * n5), keep * (bp * n2 + dp * n5)
            w[BF11 * LANES + i] += new * b11
            w[(BF11 + 1) * LANES + i] += new * b12
            w[(BF11 + 2) * LANES + i] += new * b22
            q11, q12, q22 = keep * b11, keep * b12, keep * b22
            w[Q11 * LANES + i], w[Q12 * LANES + i], w[Q22 * LANES + i] = q11, q12, q22
            w[GA * LANES + i] = (
                keep * sxx + (2 * ap * c11 + 2 * bp * c12) * q11 + (cp * c11 + dp * c12) * q12
            )
            w[GB * LANES + i] = (
                keep * syx + (2 * ap * c12 + 2 * bp * c22) * q11 + (cp * c12 + dp * c22) * q12
            )
            w[GC * LANES + i] = (
                keep * sxy + (ap * c11 + bp * c12) * q12 + (2 * cp * c11 + 2 * dp * c12) * q22
            )
            w[GD * LANES + i] = (
                keep * syy + (ap * c12 + bp * c22) * q12 + (2 * cp * c12 + 2 * dp * c22) * q22
            )
            b11 = ap * ap * q11 + ap * cp * q12 + cp * cp * q22
            b12 = 2 * ap * bp * q11 + (ap * dp + bp * cp) * q12 + 2 * cp * dp * q22
            b22 = bp * bp * q11 + bp * dp * q12 + dp * dp * q22
        else:  # column 0 starts at the first-cell covariance
            w[BF11 * LANES + i] += b11
            w[(BF11 + 1) * LANES + i] += b12
            w[(BF11 + 2) * LANES + i] += b22
        w[BM0 * LANES + i], w[(BM0 + 1) * LANES + i], w[(BM0 + 2) * LANES + i] = n0, n1, n2
        w[(BM0 + 3) * LANES + i], w[(BM0 + 4) * LANES + i], w[(BM0 + 5) * LANES + i] = n3, n4, n5
        w[BC11 * LANES + i], w[(BC11 + 1) * LANES + i], w[(BC11 + 2) * LANES + i] = b11, b12, b22


@numba.njit(cache=True, error_model="numpy", inline="always")
def _add(w, row, dst, t, p0, nb):
    tu, pu = np.uint64(t), np.uint64(p0)
    for i in range(nb):
        dst[tu, pu + np.uint64(i)] += w[row * LANES + i]


@numba.njit(cache=True, error_model="numpy")
def batch_factor_vjp(
    dx, dy, ox, oy, first, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry, tape,
    glc, gl11, gl12, gl22, gg1, gg2, gq,
):  # fmt: skip
    """Gradient kernel: the output adjoints pulled back to the differentiable inputs, in their
    shapes (as :func:`~bayes_alliance.kernels.kalman_op.kalman_factor_vjp`; ``tape`` unused:
    each block's forward sweep is rerun into a tape of the block)."""
    n_p, n_s = dx.shape
    at, bt, ct, dt = _columns(a), _columns(b), _columns(c), _columns(d)
    n_k = at.shape[0]
    # adjoint grids allocated transposed, (S, P), and returned as (P, S) views
    gdx, gdy = np.empty((n_s, n_p)), np.empty((n_s, n_p))
    # per-cell error variances: (S, P); one shared ((1, 1)): each lane's sum, (1, LANES)
    own_x, own_y = rx.size > 1, ry.size > 1
    grx = np.empty((n_s, n_p)) if own_x else np.zeros((1, LANES))
    gry = np.empty((n_s, n_p)) if own_y else np.zeros((1, LANES))
    ga, gb = np.zeros((n_k, n_p)), np.zeros((n_k, n_p))
    gc, gd = np.zeros((n_k, n_p)), np.zeros((n_k, n_p))
    gf11, gf12, gf22 = np.empty(n_p), np.empty(n_p), np.empty(n_p)
    own = s11.shape[0] > 1
    # own rows: (S, P); one shared row: (S, LANES), each lane's sum over its blocks
    gs11 = np.zeros((n_s, n_p if own else LANES))
    gs12, gs22 = np.zeros(gs11.shape), np.zeros(gs11.shape)
    w = np.empty(N_ROWS * LANES)
    block = np.empty(max(n_s, 1) * TAPE)
    xt, yt, oxt, oyt, ft = dx.T, dy.T, ox.T, oy.T, first.T
    s11t, s12t, s22t, rxt, ryt = s11.T, s12.T, s22.T, rx.T, ry.T
    for p0 in range(0, n_p, LANES):
        nb = min(LANES, n_p - p0)
        n_t = _sweep(
            p0, nb, xt, yt, oxt, oyt, ft, at, bt, ct, dt, f11, f12, f22,
            s11t, s12t, s22t, rxt, ryt, w, block,
        )  # fmt: skip
        # rows after the block's last observed one: no adjoint (the sweeps stop before them)
        _fill(w, GDX, 0.0, nb)
        for t in range(n_t, n_s):
            _store(w, GDX, gdx, t, p0, nb)
            _store(w, GDX, gdy, t, p0, nb)
            if own_x:
                _store(w, GDX, grx, t, p0, nb)
            if own_y:
                _store(w, GDX, gry, t, p0, nb)
        for row, src in (
            (GLC, glc),
            (GL11, gl11),
            (GL12, gl12),
            (GL22, gl22),
            (GG1, gg1),
            (GG2, gg2),
            (GQ, gq),
        ):
            for i in range(nb):
                w[row * LANES + i] = src[p0 + i]
        for i in range(nb):
            for j in range(BM0, BF11 + 3):
                w[j * LANES + i] = 0.0
        for t in range(n_t - 1, -1, -1):
            _load_column(
                w, t, p0, nb, xt, yt, oxt, oyt, ft, at, bt, ct, dt, s11t, s12t, s22t, rxt, ryt
            )
            _back_column(w, block[t * TAPE : (t + 1) * TAPE], nb, t > 0)
            _store(w, GDX, gdx, t, p0, nb)
            _store(w, GDY, gdy, t, p0, nb)
            if own_x:
                _store(w, GRX, grx, t, p0, nb)
            else:
                _add(w, GRX, grx, 0, 0, nb)
            if own_y:
                _store(w, GRY, gry, t, p0, nb)
            else:
                _add(w, GRY, gry, 0, 0, nb)
            if t == 0:
                continue
            ta = t if n_k > 1 else 0
            _add(w, GA, ga, ta, p0, nb)
            _add(w, GB, gb, ta, p0, nb)
            _add(w, GC, gc, ta, p0, nb)
            _add(w, GD, gd, ta, p0, nb)
            if own:
                _store(w, Q11, gs11, t, p0, nb)
                _store(w, Q12, gs12, t, p0, nb)
                _store(w, Q22, gs22, t, p0, nb)
            else:
                _add(w, Q11, gs11, t, 0, nb)
                _add(w, Q12, gs12, t, 0, nb)
                _add(w, Q22, gs22, t, 0, nb)
        for row, dst in ((BF11, gf11), (BF11 + 1, gf12), (BF11 + 2, gf22)):
            for i in range(nb):
                dst[p0 + i] = w[row * LANES + i]
    if own:
        o11, o12, o22 = gs11.T, gs12.T, gs22.T
    else:  # one shared row: the sum over the lanes
        o11, o12, o22 = np.zeros((1, n_s)), np.zeros((1, n_s)), np.zeros((1, n_s))
        for t in range(1, n_s):
            for i in range(LANES):
                o11[0, t] += gs11[t, i]
                o12[0, t] += gs12[t, i]
                o22[0, t] += gs22[t, i]
    return (
        gdx.T, gdy.T, _shaped(ga, a), _shaped(gb, b), _shaped(gc, c), _shaped(gd, d),
        gf11, gf12, gf22, o11, o12, o22, _error_adjoint(grx, own_x), _error_adjoint(gry, own_y),
    )  # fmt: skip


@numba.njit(cache=True, error_model="numpy")
def _error_adjoint(g, own):
    """An error variance's adjoint in its shape: (P, S) from per-cell (S, P) sums, or (1, 1)
    the sum over the lanes of a shared one."""
    if own:
        return g.T
    total = np.zeros((1, 1))
    total[0, 0] = g.sum()
    return total.T  # the layout of the other branch's


__all__ = ["LANES", "batch_factor", "batch_factor_draws", "batch_factor_vjp"]
