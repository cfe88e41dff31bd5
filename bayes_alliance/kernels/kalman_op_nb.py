r"""The numba kernels of the Kalman filter of :func:`bayes_alliance.kernels.gaps.filter_factor`,
one patient per loop iteration, without PyTensor.

Written as a pytensor graph the filter is unrolled or scanned over the sessions, and compiling
the model's logp and gradient takes minutes. Here the filter is one Op whose forward pass and
vector-Jacobian product are numba kernels (compiled once per machine: ``cache=True``; no
fastmath, so results do not depend on the cache state). The numba linker (nutpie) calls the
kernels natively; the default linker calls the same kernels from ``perform``.

For each patient (one row) the filter runs over the columns t = 0..S-1 with the state means
of the runs on the data and on unit means in x and y, ``mx[j]``, ``my[j]`` (j = 0, 1, 2), and
the state covariance ``C`` (entries c11, c12, c22):

* transition (t > 0; restart where ``first``, ``keep = 1 - first``)::

      mx' = keep (a mx + b my),   my' = keep (c mx + d my),
      C'  = first F + keep (Phi C Phi' + Sigma_t);

* x entry (``o = ox``): ``e = (dx - mx0, 1 - mx1, -mx2)``, ``s = c11``, ``k = c12 / c11``,
  ``mx += o e``, ``my += o k e``, ``c11 *= 1 - o``, ``c12 *= 1 - o``, ``c22 -= o c12 k``;
* y entry (``o = oy``): ``e = (dy - my0, -my1, 1 - my2)``, ``s = c22``, ``k = c12 / c22``,
  ``mx += o k e``, ``my += o e``, ``c11 -= o c12 k``, ``c12 *= 1 - o``, ``c22 *= 1 - o``;

with measurement error (variances ``rx``, ``ry`` > 0) an entry no longer fixes its state: the
x entry has ``s = c11 + rx`` and gains ``(kx, ky) = (c11, c12) / s``, ``mx += o kx e``,
``my += o ky e``, ``C -= o (kx, ky)' (c11, c12)``, and the y entry likewise with
``s = c22 + ry``, ``(kx, ky) = (c12, c22) / s``. At ``rx = 0`` these are the formulas above,
which the kernels keep for that case (so fits without measurement error are unchanged to
the last bit);

and every entry adds ``w = o / s`` times ``e0^2, e1 e0, e2 e0, e1^2, e1 e2, e2^2`` to
``q, g1, g2, l11, l12, l22`` and ``-o/2 (log 2 pi + log s)`` to ``log_c``.

The gradient kernel reruns the forward sweep of a row storing the state before each step,
then runs the steps backwards (reverse-mode differentiation by hand); the masks are constants.

The kernels import neither PyTensor nor PyMC: post-hoc code (the per-patient densities of
:mod:`bayes_alliance.analysis.patient_density`, post-hoc draws) calls them directly, and
:mod:`bayes_alliance.kernels.kalman_op` wraps them as the PyTensor Op
(:class:`~bayes_alliance.kernels.kalman_op.KalmanFactor`).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

LOG_2PI = float(np.log(2 * np.pi))
# log_c takes one log of a running product of the prediction variances (flushed before it
# leaves [1/BIG, BIG]); a variance outside [1/HUGE, HUGE] gets its own log.
BIG, HUGE = 1e100, 1e50


@numba.njit(cache=True)
def _terms(o, s, e0, e1, e2, acc):
    """``acc`` (l11, l12, l22, g1, g2, q) plus one entry's terms ``o / s * e_i e_j``."""
    w = o / s
    l11, l12, l22, g1, g2, q = acc
    q = q + w * e0 * e0
    g1 = g1 + w * e1 * e0
    g2 = g2 + w * e2 * e0
    l11 = l11 + w * e1 * e1
    l12 = l12 + w * e1 * e2
    l22 = l22 + w * e2 * e2
    return l11, l12, l22, g1, g2, q


@numba.njit(cache=True)
def _row(dx, dy, ox, oy, first, ar, br, cr, dr, f11, f12, f22, s11, s12, s22, rx, ry, st):
    """Filter one row (1-D views of the (P, S) inputs, the row's scalars; ``ar`` .. ``dr`` the
    row of the lag entries, one value or one per column (the transition into it); ``rx``,
    ``ry`` the measurement-error variances of its cells). Stores the state
    (mx0..2, my0..2, c11, c12, c22) before the transition, the x entry and the y entry of
    column t in ``st[t, 0..2]``; returns (log_c, l11, l12, l22, g1, g2, q)."""
    m0 = m1 = m2 = m3 = m4 = m5 = 0.0  # mx0, mx1, mx2, my0, my1, my2
    c11, c12, c22 = f11, f12, f22
    acc = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    lc, prod, n_unit = 0.0, 1.0, 0.0
    for t in range(dx.shape[0]):
        if t > 0:
            st[t, 0, 0], st[t, 0, 1], st[t, 0, 2] = m0, m1, m2
            st[t, 0, 3], st[t, 0, 4], st[t, 0, 5] = m3, m4, m5
            st[t, 0, 6], st[t, 0, 7], st[t, 0, 8] = c11, c12, c22
            new = first[t]
            keep = 1.0 - new
            col = t if ar.shape[0] > 1 else 0
            ap, bp, cp, dp = ar[col], br[col], cr[col], dr[col]
            m0, m3 = keep * (ap * m0 + bp * m3), keep * (cp * m0 + dp * m3)
            m1, m4 = keep * (ap * m1 + bp * m4), keep * (cp * m1 + dp * m4)
            m2, m5 = keep * (ap * m2 + bp * m5), keep * (cp * m2 + dp * m5)
            p11 = ap * ap * c11 + 2 * ap * bp * c12 + bp * bp * c22 + s11[t]
            p12 = ap * cp * c11 + (ap * dp + bp * cp) * c12 + bp * dp * c22 + s12[t]
            p22 = cp * cp * c11 + 2 * cp * dp * c12 + dp * dp * c22 + s22[t]
            c11 = new * f11 + keep * p11
            c12 = new * f12 + keep * p12
            c22 = new * f22 + keep * p22
        for k in range(1, 3):
            st[t, k, 0], st[t, k, 1], st[t, k, 2] = m0, m1, m2
            st[t, k, 3], st[t, k, 4], st[t, k, 5] = m3, m4, m5
            st[t, k, 6], st[t, k, 7], st[t, k, 8] = c11, c12, c22
            # x entry (k = 1): e = (dx - mx0, 1 - mx1, -mx2), s = c11, gain (1, c12 / c11);
            # y entry (k = 2): e = (dy - my0, -my1, 1 - my2), s = c22, gain (c12 / c22, 1).
            o = ox[t] if k == 1 else oy[t]
            if o == 0.0:  # an unobserved entry changes nothing
                continue
            if k == 1:
                s, e0, e1, e2 = c11 + rx[t], dx[t] - m0, 1.0 - m1, -m2
            else:
                s, e0, e1, e2 = c22 + ry[t], dy[t] - m3, -m4, 1.0 - m5
            acc = _terms(o, s, e0, e1, e2, acc)
            if o == 1.0 and 1.0 / HUGE < s < HUGE:
                prod, n_unit = prod * s, n_unit + 1.0
                if not (1.0 / BIG < prod < BIG):
                    lc, prod = lc - 0.5 * np.log(prod), 1.0
            else:
                lc = lc - 0.5 * o * (LOG_2PI + np.log(s))
            if k == 1 and rx[t] > 0.0:
                kx, ky = c11 / s, c12 / s
                m0, m1, m2 = m0 + o * kx * e0, m1 + o * kx * e1, m2 + o * kx * e2
                m3, m4, m5 = m3 + o * ky * e0, m4 + o * ky * e1, m5 + o * ky * e2
                c11, c12, c22 = c11 - o * kx * c11, c12 - o * kx * c12, c22 - o * ky * c12
            elif k == 2 and ry[t] > 0.0:
                kx, ky = c12 / s, c22 / s
                m0, m1, m2 = m0 + o * kx * e0, m1 + o * kx * e1, m2 + o * kx * e2
                m3, m4, m5 = m3 + o * ky * e0, m4 + o * ky * e1, m5 + o * ky * e2
                c11, c12, c22 = c11 - o * kx * c12, c12 - o * ky * c12, c22 - o * ky * c22
            elif k == 1:
                k2 = c12 / c11
                m0, m1, m2 = m0 + o * e0, m1 + o * e1, m2 + o * e2
                m3, m4, m5 = m3 + o * k2 * e0, m4 + o * k2 * e1, m5 + o * k2 * e2
                c11, c12, c22 = (1.0 - o) * c11, (1.0 - o) * c12, c22 - o * c12 * k2
            else:
                k1 = c12 / c22
                m0, m1, m2 = m0 + o * k1 * e0, m1 + o * k1 * e1, m2 + o * k1 * e2
                m3, m4, m5 = m3 + o * e0, m4 + o * e1, m5 + o * e2
                c11, c12, c22 = c11 - o * c12 * k1, (1.0 - o) * c12, (1.0 - o) * c22
    lc = lc - 0.5 * (n_unit * LOG_2PI + np.log(prod))
    return (lc, *acc)


@numba.njit(cache=True)
def _srow(s, p):
    """Row of an innovation input for patient p: its own, or the one row all share."""
    return p if s.shape[0] > 1 else 0


@numba.njit(cache=True)
def kalman_factor_cells(dx, dy, ox, oy, first, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry):
    """Forward kernel: the seven per-patient outputs (log_c, l11, l12, l22, g1, g2, q) and the
    tape of states (P, S, 3, 9) that the gradient kernel reads. ``a, b, c, d`` are (P, 1) (one
    lag matrix per patient) or (P, S) (one per transition into a column: continuous time,
    :mod:`bayes_alliance.kernels.ctime`)."""
    n_p, n_s = dx.shape
    lc, l11, l12, l22 = np.empty(n_p), np.empty(n_p), np.empty(n_p), np.empty(n_p)
    g1, g2, q = np.empty(n_p), np.empty(n_p), np.empty(n_p)
    tape = np.zeros((n_p, n_s, 3, 9))
    for p in range(n_p):
        lc[p], l11[p], l12[p], l22[p], g1[p], g2[p], q[p] = _row(
            dx[p], dy[p], ox[p], oy[p], first[p], a[p], b[p], c[p], d[p],
            f11[p], f12[p], f22[p], s11[_srow(s11, p)], s12[_srow(s12, p)], s22[_srow(s22, p)],
            rx[p], ry[p], tape[p],
        )  # fmt: skip
    return lc, l11, l12, l22, g1, g2, q, tape


@numba.njit(cache=True)
def _forward_cells(
    dx, dy, ox, oy, first, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry, inn
):  # fmt: skip
    """:func:`kalman_factor_cells` without the tape (one row's reused): the seven per-patient
    outputs as rows of a (7, P) array, for callers that need no gradient (post-hoc draws).

    ``inn`` (8, P, S), unless empty, receives each entry's innovation: rows ``e0, gx, gy, s``
    of the x entries, then of the y entries, read from the state before the entry (as
    :class:`bayes_alliance.kernels.gaps.Innovations` holds them: the prediction error given
    the latent mean M is ``e0 - M_x gx - M_y gy``, its variance ``s``), for every cell,
    observed or not."""
    n_p, n_s = dx.shape
    out = np.empty((7, n_p))
    row_tape = np.empty((n_s, 3, 9))
    for p in range(n_p):
        res = _row(
            dx[p], dy[p], ox[p], oy[p], first[p], a[p], b[p], c[p], d[p],
            f11[p], f12[p], f22[p], s11[_srow(s11, p)], s12[_srow(s12, p)], s22[_srow(s22, p)],
            rx[p], ry[p], row_tape,
        )  # fmt: skip
        for k in range(7):
            out[k, p] = res[k]
        if inn.shape[0] == 0:
            continue
        for t in range(n_s):
            vx, vy = row_tape[t, 1], row_tape[t, 2]
            inn[0, p, t] = dx[p, t] - vx[0]
            inn[1, p, t] = 1.0 - vx[1]
            inn[2, p, t] = -vx[2]
            inn[3, p, t] = vx[6] + rx[p, t]
            inn[4, p, t] = dy[p, t] - vy[3]
            inn[5, p, t] = -vy[4]
            inn[6, p, t] = 1.0 - vy[5]
            inn[7, p, t] = vy[8] + ry[p, t]
    return out


@numba.njit(cache=True)
def _entry_grad(o, s, e0, e1, e2, gw):
    """Adjoints of one entry's terms: d/de0, d/de1, d/de2 and d/ds, given the output adjoints
    ``gw`` (log_c, l11, l12, l22, g1, g2, q)."""
    w = o / s
    glc, g11, g12, g22, gg1, gg2, gq = gw
    be0 = w * (2 * gq * e0 + gg1 * e1 + gg2 * e2)
    be1 = w * (gg1 * e0 + 2 * g11 * e1 + g12 * e2)
    be2 = w * (gg2 * e0 + g12 * e1 + 2 * g22 * e2)
    quad = gq * e0 * e0 + gg1 * e1 * e0 + gg2 * e2 * e0
    quad = quad + g11 * e1 * e1 + g12 * e1 * e2 + g22 * e2 * e2
    bs = -quad * o / (s * s) - 0.5 * glc * o / s
    return be0, be1, be2, bs


@numba.njit(cache=True)
def kalman_factor_vjp_cells(
    dx, dy, ox, oy, first, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry, tape,
    glc, gl11, gl12, gl22, gg1, gg2, gq,
):  # fmt: skip
    """Gradient kernel: the output adjoints pulled back to dx, dy (P, S), a, b, c, d ((P, 1)
    or (P, S), as given), f11, f12, f22 (P,), s11, s12, s22 (P, S) or (1, S) and rx, ry (P, S), from the forward kernel's
    ``tape``."""
    n_p, n_s = dx.shape
    gdx, gdy = np.zeros((n_p, n_s)), np.zeros((n_p, n_s))
    ga, gb, gc, gd = np.zeros(a.shape), np.zeros(b.shape), np.zeros(c.shape), np.zeros(d.shape)
    gf11, gf12, gf22 = np.zeros(n_p), np.zeros(n_p), np.zeros(n_p)
    gs11, gs12, gs22 = np.zeros(s11.shape), np.zeros(s12.shape), np.zeros(s22.shape)
    grx, gry = np.zeros((n_p, n_s)), np.zeros((n_p, n_s))
    bm = np.zeros(6)  # adjoints of mx0..2, my0..2
    for p in range(n_p):
        gw = (glc[p], gl11[p], gl12[p], gl22[p], gg1[p], gg2[p], gq[p])
        by_cell = a.shape[1] > 1
        bm[:] = 0.0
        b11 = b12 = b22 = 0.0  # adjoints of c11, c12, c22
        for t in range(n_s - 1, -1, -1):
            o = oy[p, t]
            if o != 0.0 and ry[p, t] > 0.0:  # y entry with measurement error
                v = tape[p, t, 2]
                c11, c12, c22 = v[6], v[7], v[8]
                e0, e1, e2 = dy[p, t] - v[3], -v[4], 1.0 - v[5]
                s = c22 + ry[p, t]
                kx, ky = c12 / s, c22 / s
                be0, be1, be2, bs = _entry_grad(o, s, e0, e1, e2, gw)
                be0 += o * (kx * bm[0] + ky * bm[3])
                be1 += o * (kx * bm[1] + ky * bm[4])
                be2 += o * (kx * bm[2] + ky * bm[5])
                bkx = o * (e0 * bm[0] + e1 * bm[1] + e2 * bm[2]) - o * c12 * b11
                bky = o * (e0 * bm[3] + e1 * bm[4] + e2 * bm[5]) - o * (c12 * b12 + c22 * b22)
                bs = bs - (bkx * kx + bky * ky) / s
                b12, b22 = (
                    -o * kx * b11 + (1.0 - o * ky) * b12 + bkx / s,
                    (1.0 - o * ky) * b22 + bky / s + bs,
                )
                gry[p, t] += bs
                bm[3], bm[4], bm[5] = bm[3] - be0, bm[4] - be1, bm[5] - be2
                gdy[p, t] = be0
            elif o != 0.0:  # y entry: e = (dy - my0, -my1, 1 - my2), s = c22, k = c12 / c22
                v = tape[p, t, 2]
                c12, c22 = v[7], v[8]
                e0, e1, e2 = dy[p, t] - v[3], -v[4], 1.0 - v[5]
                k = c12 / c22
                be0, be1, be2, bs = _entry_grad(o, c22, e0, e1, e2, gw)
                be0 += o * (k * bm[0] + bm[3])
                be1 += o * (k * bm[1] + bm[4])
                be2 += o * (k * bm[2] + bm[5])
                bk = o * (e0 * bm[0] + e1 * bm[1] + e2 * bm[2]) - o * c12 * b11
                b12, b22 = (
                    -o * k * b11 + (1.0 - o) * b12 + bk / c22,
                    (1.0 - o) * b22 + bs - bk * k / c22,
                )
                bm[3], bm[4], bm[5] = bm[3] - be0, bm[4] - be1, bm[5] - be2
                gdy[p, t] = be0
            o = ox[p, t]
            if o != 0.0 and rx[p, t] > 0.0:  # x entry with measurement error
                v = tape[p, t, 1]
                c11, c12 = v[6], v[7]
                e0, e1, e2 = dx[p, t] - v[0], 1.0 - v[1], -v[2]
                s = c11 + rx[p, t]
                kx, ky = c11 / s, c12 / s
                be0, be1, be2, bs = _entry_grad(o, s, e0, e1, e2, gw)
                be0 += o * (kx * bm[0] + ky * bm[3])
                be1 += o * (kx * bm[1] + ky * bm[4])
                be2 += o * (kx * bm[2] + ky * bm[5])
                bkx = o * (e0 * bm[0] + e1 * bm[1] + e2 * bm[2]) - o * (c11 * b11 + c12 * b12)
                bky = o * (e0 * bm[3] + e1 * bm[4] + e2 * bm[5]) - o * c12 * b22
                bs = bs - (bkx * kx + bky * ky) / s
                b11, b12 = (
                    (1.0 - o * kx) * b11 + bkx / s + bs,
                    (1.0 - o * kx) * b12 - o * ky * b22 + bky / s,
                )
                grx[p, t] += bs
                bm[0], bm[1], bm[2] = bm[0] - be0, bm[1] - be1, bm[2] - be2
                gdx[p, t] = be0
            elif o != 0.0:  # x entry: e = (dx - mx0, 1 - mx1, -mx2), s = c11, k = c12 / c11
                v = tape[p, t, 1]
                c11, c12 = v[6], v[7]
                e0, e1, e2 = dx[p, t] - v[0], 1.0 - v[1], -v[2]
                k = c12 / c11
                be0, be1, be2, bs = _entry_grad(o, c11, e0, e1, e2, gw)
                be0 += o * (bm[0] + k * bm[3])
                be1 += o * (bm[1] + k * bm[4])
                be2 += o * (bm[2] + k * bm[5])
                bk = o * (e0 * bm[3] + e1 * bm[4] + e2 * bm[5]) - o * c12 * b22
                b11, b12 = (
                    (1.0 - o) * b11 + bs - bk * k / c11,
                    (1.0 - o) * b12 - o * k * b22 + bk / c11,
                )
                bm[0], bm[1], bm[2] = bm[0] - be0, bm[1] - be1, bm[2] - be2
                gdx[p, t] = be0
            if t == 0:
                break
            # transition into column t
            col = t if by_cell else 0
            ap, bp, cp, dp = a[p, col], b[p, col], c[p, col], d[p, col]
            v = tape[p, t, 0]
            c11, c12, c22 = v[6], v[7], v[8]
            new = first[p, t]
            keep = 1.0 - new
            for j in range(3):
                mxj, myj, bx, by = v[j], v[3 + j], bm[j], bm[3 + j]
                ga[p, col] += keep * mxj * bx
                gb[p, col] += keep * myj * bx
                gc[p, col] += keep * mxj * by
                gd[p, col] += keep * myj * by
                bm[j], bm[3 + j] = keep * (ap * bx + cp * by), keep * (bp * bx + dp * by)
            gf11[p] += new * b11
            gf12[p] += new * b12
            gf22[p] += new * b22
            q11, q12, q22 = keep * b11, keep * b12, keep * b22  # adjoints of Phi C Phi' + Sigma
            # one shared row accumulates over the patients in their order (as before patients
            # could have their own innovations: fits without them keep their draws)
            gs11[_srow(s11, p), t] += q11
            gs12[_srow(s12, p), t] += q12
            gs22[_srow(s22, p), t] += q22
            ga[p, col] += (2 * ap * c11 + 2 * bp * c12) * q11 + (cp * c11 + dp * c12) * q12
            gb[p, col] += (2 * ap * c12 + 2 * bp * c22) * q11 + (cp * c12 + dp * c22) * q12
            gc[p, col] += (ap * c11 + bp * c12) * q12 + (2 * cp * c11 + 2 * dp * c12) * q22
            gd[p, col] += (ap * c12 + bp * c22) * q12 + (2 * cp * c12 + 2 * dp * c22) * q22
            b11 = ap * ap * q11 + ap * cp * q12 + cp * cp * q22
            b12 = 2 * ap * bp * q11 + (ap * dp + bp * cp) * q12 + 2 * cp * dp * q22
            b22 = bp * bp * q11 + bp * dp * q12 + dp * dp * q22
        # column 0 starts at the first-cell covariance
        gf11[p] += b11
        gf12[p] += b12
        gf22[p] += b22
    return gdx, gdy, ga, gb, gc, gd, gf11, gf12, gf22, gs11, gs12, gs22, grx, gry


def _lag_cells(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The kernels' arguments with (P,) lag entries (positions 5..8) as (P, 1) columns."""
    return tuple(
        np.asarray(x)[:, None] if 5 <= i <= 8 and np.ndim(x) == 1 else x for i, x in enumerate(args)
    )


def kalman_factor(*args: Any) -> tuple[Any, ...]:
    """:func:`kalman_factor_cells` taking the lag entries ``a, b, c, d`` as (P,) vectors, as
    (P, 1) columns or as (P, S) grids (one lag matrix per transition into a column)."""
    return kalman_factor_cells(*_lag_cells(args))


def kalman_factor_forward(*args: Any) -> np.ndarray:
    """The seven per-patient outputs of :func:`kalman_factor` as rows of a (7, P) array, without
    the tape (post-hoc draws); lag entries (P,), (P, 1) or (P, S)."""
    return _forward_cells(*_lag_cells((*args, np.empty((0, 0, 0)))))


def kalman_factor_innovations(*args: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`kalman_factor_forward` and every cell's innovations (8, P, S) (pointwise
    log-likelihood after sampling); lag entries (P,), (P, 1) or (P, S)."""
    n_p, n_s = np.shape(args[0])
    inn = np.empty((8, n_p, n_s))
    return _forward_cells(*_lag_cells((*args, inn))), inn


def kalman_factor_vjp(*args: Any) -> tuple[Any, ...]:
    """:func:`kalman_factor_vjp_cells` taking (P,) lag entries too; their adjoints come back in
    the shape given."""
    out = list(kalman_factor_vjp_cells(*_lag_cells(args)))
    for k in range(2, 6):  # ga, gb, gc, gd
        if np.ndim(args[5 + k - 2]) == 1:
            out[k] = out[k][:, 0]
    return tuple(out)


__all__ = [
    "BIG",
    "HUGE",
    "LOG_2PI",
    "kalman_factor",
    "kalman_factor_cells",
    "kalman_factor_forward",
    "kalman_factor_innovations",
    "kalman_factor_vjp",
    "kalman_factor_vjp_cells",
]
