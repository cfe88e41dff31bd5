r"""The latent means integrated out in closed form: per-patient 2x2 algebra.

Given the dynamic parameters, a patient's completed series (observed cells plus imputed ones) is
Gaussian and linear in the patient's latent mean M = (M_x, M_y) (docs/methods.md, section 'Likelihood'). With
``z~_t = z_t - known mean_t`` (intercept or session means, trend) and the reduced-form VAR(1)
``w_t = Phi w_(t-1) + u_t``, ``u ~ N(0, Sigma)``, ``w_1 ~ N(0, F)``::

    p(z~ | M) = C exp(-1/2 [Q0 - 2 g'M + M' L M])
    r_t = z~_t - Phi z~_(t-1)                    (t = 2..n)
    L   = A' P A + F^-1,     A = I - Phi,   P = sum_t Sigma_t^-1
    g   = A' sum_t Sigma_t^-1 r_t + F^-1 z~_1
    Q0  = sum_t r_t' Sigma_t^-1 r_t + z~_1' F^-1 z~_1
    log C = -n log(2 pi) - 1/2 sum_t log|Sigma_t| - 1/2 log|F|

where Sigma_t is the innovation covariance of the transition into cell t (the same for every
t unless the innovations are session-specific, as in the RI-CLPM of Hamaker et al. 2015),
with the prior ``M ~ N(m0, T)`` (therapist part m0, patient covariance T)::

    log p(z~) = log C - 1/2 log|I + T L| - 1/2 (Q0 - 2 g'm0 + m0' L m0 - r' K r),
    r = g - L m0,   K = (I + T L)^-1 T = (T^-1 + L)^-1.

This form inverts neither T nor L, so it stays finite when a patient-level SD approaches zero
and when L is singular (a patient with no observed predictor, say). The conditional posterior
``M | z~ ~ N(m0 + K r, K)`` is used to draw the latent means after sampling. Every function is written entry by entry, so it runs on numpy arrays and
pytensor tensors alike (pass ``xp=numpy`` or ``xp=pytensor.tensor``), vectorised over patients.

The same algebra integrates the therapist deviations out: as a function of its therapist part m0,
a patient's integrated series is a Gaussian factor in m0 (:func:`pseudo_observation`); a therapist's patients share m0 (the therapist deviation of both
variables), so their factors add up, and :func:`mean_integral` against the therapist-level
covariance integrates the deviation out exactly. Removing the latent means and therapist
deviations from the sampler leaves NUTS with the dynamic and variance parameters, any random
slopes and any imputed cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LOG_2PI = float(np.log(2 * np.pi))


def sym_inverse(p11: Any, p12: Any, p22: Any) -> tuple[Any, Any, Any, Any]:
    """Determinant and entries (i11, i12, i22) of the inverse of a symmetric 2x2 matrix."""
    det = p11 * p22 - p12 * p12
    return det, p22 / det, -p12 / det, p11 / det


@dataclass(frozen=True)
class SeriesSums:
    """Per-patient sufficient statistics of a completed series, given Phi and the innovation
    covariances Sigma_t of its transitions (one Sigma for all, or one per session).

    Attributes
    ----------
    first_x, first_y
        z~ at the patient's first cell.
    hx, hy
        Sum over the transitions of ``Sigma_t^-1 r_t``, with r_t = z~_t - Phi z~_(t-1).
    p11, p12, p22
        Entries of the sum over the transitions of ``Sigma_t^-1``.
    q
        Sum over the transitions of ``r_t' Sigma_t^-1 r_t``.
    logdet
        Sum over the transitions of ``log |Sigma_t|``.
    n_trans
        Number of transitions (cells after the first).
    """

    first_x: Any
    first_y: Any
    hx: Any
    hy: Any
    p11: Any
    p12: Any
    p22: Any
    q: Any
    logdet: Any
    n_trans: Any

    @classmethod
    def constant(
        cls,
        first: tuple[Any, Any],
        r: tuple[Any, Any],
        q: Any,
        n_trans: Any,
        sigma: tuple[Any, Any, Any],
        xp: Any = np,
    ) -> SeriesSums:
        """Statistics when every transition has the same Sigma: from the residual sums
        ``r = (sum r_x, sum r_y)`` and ``q = sum r' Sigma^-1 r``."""
        det, i11, i12, i22 = sym_inverse(*sigma)
        return cls(
            first_x=first[0],
            first_y=first[1],
            hx=i11 * r[0] + i12 * r[1],
            hy=i12 * r[0] + i22 * r[1],
            p11=n_trans * i11,
            p12=n_trans * i12,
            p22=n_trans * i22,
            q=q,
            logdet=n_trans * xp.log(det),
            n_trans=n_trans,
        )


def residual_quadratic(rx: Any, ry: Any, s11: Any, s12: Any, s22: Any) -> Any:
    """r' Sigma^-1 r for residual vectors (rx, ry)."""
    _, i11, i12, i22 = sym_inverse(s11, s12, s22)
    return i11 * rx * rx + 2 * i12 * rx * ry + i22 * ry * ry


def _likelihood_terms(
    sums: SeriesSums, phi: tuple[Any, Any, Any, Any], first: tuple[Any, Any, Any]
) -> tuple[Any, ...]:
    a, b, c, d = phi
    det_f, f11, f12, f22 = sym_inverse(*first)
    # A = I - Phi; B = P A with P = sum_t Sigma_t^-1.
    a11, a12, a21, a22 = 1 - a, -b, -c, 1 - d
    b11, b12 = sums.p11 * a11 + sums.p12 * a21, sums.p11 * a12 + sums.p12 * a22
    b21, b22 = sums.p12 * a11 + sums.p22 * a21, sums.p12 * a12 + sums.p22 * a22
    # L = A' P A + F^-1 (symmetric).
    l11 = a11 * b11 + a21 * b21 + f11
    l12 = a11 * b12 + a21 * b22 + f12
    l22 = a12 * b12 + a22 * b22 + f22
    # g = A' h + F^-1 z~_1, with h = sum_t Sigma_t^-1 r_t.
    z1x, z1y = sums.first_x, sums.first_y
    g1 = a11 * sums.hx + a21 * sums.hy + f11 * z1x + f12 * z1y
    g2 = a12 * sums.hx + a22 * sums.hy + f12 * z1x + f22 * z1y
    q0 = sums.q + f11 * z1x * z1x + 2 * f12 * z1x * z1y + f22 * z1y * z1y
    return det_f, l11, l12, l22, g1, g2, q0


@dataclass(frozen=True)
class MeanFactor:
    """A Gaussian factor in a 2-vector mean M: ``exp(-1/2 [q - 2 g'M + M' L M])``, entries of L
    (l11, l12, l22) and g (g1, g2) and the constant q; the form every patient's series (and,
    summed, every therapist's caseload) takes as a function of its latent mean."""

    l11: Any
    l12: Any
    l22: Any
    g1: Any
    g2: Any
    q: Any


def _shrinkage(f: MeanFactor, tau: tuple[Any, Any, Any]) -> tuple[Any, Any, Any, Any]:
    """``K = (I + T L)^-1 T = (T^-1 + L)^-1`` (entries k11, k12, k22) and ``log|I + T L|``,
    without inverting T or L: either may be singular (a patient-level SD near zero, or a
    patient with no observed predictor, whose factor carries no information on M_x)."""
    t11, t12, t22 = tau
    a11 = 1 + t11 * f.l11 + t12 * f.l12
    a12 = t11 * f.l12 + t12 * f.l22
    a21 = t12 * f.l11 + t22 * f.l12
    a22 = 1 + t12 * f.l12 + t22 * f.l22
    det = a11 * a22 - a12 * a21
    k11 = (a22 * t11 - a12 * t12) / det
    k12 = (a22 * t12 - a12 * t22) / det
    k22 = (a11 * t22 - a21 * t12) / det
    return k11, k12, k22, det


def mean_integral(
    f: MeanFactor, m0: tuple[Any, Any], tau: tuple[Any, Any, Any], xp: Any = np
) -> Any:
    """``log int exp(-1/2 [q - 2 g'M + M' L M]) N(M; m0, T) dM`` with T given by ``tau``::

        -1/2 log|I + T L| - 1/2 (q - 2 g'm0 + m0' L m0 - r' K r),
        r = g - L m0,   K = (I + T L)^-1 T = (T^-1 + L)^-1.

    It inverts neither T nor L, so it stays finite as T approaches zero and when L is singular
    (a patient whose observed cells say nothing about one of the two means)."""
    k11, k12, k22, det = _shrinkage(f, tau)
    r1 = f.g1 - (f.l11 * m0[0] + f.l12 * m0[1])
    r2 = f.g2 - (f.l12 * m0[0] + f.l22 * m0[1])
    quad_m0 = f.l11 * m0[0] * m0[0] + 2 * f.l12 * m0[0] * m0[1] + f.l22 * m0[1] * m0[1]
    return -0.5 * xp.log(det) - 0.5 * (
        f.q
        - 2 * (f.g1 * m0[0] + f.g2 * m0[1])
        + quad_m0
        - (k11 * r1 * r1 + 2 * k12 * r1 * r2 + k22 * r2 * r2)
    )


def mean_given(f: MeanFactor, m0: tuple[Any, Any], tau: tuple[Any, Any, Any]) -> tuple[Any, ...]:
    """Conditional posterior of the mean under :func:`mean_integral`'s factor and prior:
    ``N(m0 + K (g - L m0), K)`` as (mean_x, mean_y, c11, c12, c22)."""
    k11, k12, k22, _ = _shrinkage(f, tau)
    r1 = f.g1 - (f.l11 * m0[0] + f.l12 * m0[1])
    r2 = f.g2 - (f.l12 * m0[0] + f.l22 * m0[1])
    return (m0[0] + k11 * r1 + k12 * r2, m0[1] + k12 * r1 + k22 * r2, k11, k12, k22)


def series_factor(
    sums: SeriesSums, phi: tuple[Any, Any, Any, Any], first: tuple[Any, Any, Any], xp: Any = np
) -> tuple[Any, MeanFactor]:
    """A patient's series as ``log C`` plus a Gaussian factor in the latent mean."""
    det_f, l11, l12, l22, g1, g2, q0 = _likelihood_terms(sums, phi, first)
    log_c = -(sums.n_trans + 1) * LOG_2PI - 0.5 * sums.logdet - 0.5 * xp.log(det_f)
    return log_c, MeanFactor(l11, l12, l22, g1, g2, q0)


def cell_factor(
    ux: np.ndarray,
    uy: np.ndarray,
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
    first_cov: tuple[Any, Any, Any],
    first: np.ndarray,
    observed: np.ndarray,
) -> tuple[np.ndarray, MeanFactor]:
    r""":func:`series_factor` of complete series with one lag matrix and innovation covariance
    per cell (continuous time: ``Phi(dt_t)``, ``Q(dt_t)``), from the cells instead of sums.

    With ``u_t = z_t - known mean_t`` and ``A_t = I - Phi_t`` (``A = I`` and ``Q = F`` at the
    first cell, whose ``Phi`` is taken as 0), the residual of cell t is
    ``u_t - Phi_t u_(t-1) - A_t M = e_t - A_t M``, so with ``P_t = Q_t^-1``::

        L = sum_t A_t' P_t A_t,   g = sum_t A_t' P_t e_t,   q = sum_t e_t' P_t e_t,
        log C = sum_t [-log(2 pi) - 1/2 log|Q_t|].

    Numpy, vectorised over the (P, S) grid (one draw).

    Parameters
    ----------
    ux, uy
        The cells minus their known means (P, S); values at unobserved cells are ignored.
    phi, sigma
        ``Phi`` entries (a, b, c, d) and ``Q`` entries (11, 12, 22) of the transition into each
        cell, (P, S) or broadcastable.
    first_cov
        ``F``, the first cell's covariance: scalars or (P,) entries.
    first, observed
        (P, S) indicators of each patient's first cell and of the cells in the series (every
        such cell has both scores: complete series).
    """
    first = np.asarray(first) > 0
    w = (np.asarray(observed) > 0).astype(float)
    f11, f12, f22 = (np.asarray(e, dtype=float) for e in first_cov)
    f11, f12, f22 = (e[:, None] if e.ndim == 1 else e for e in (f11, f12, f22))
    a, b, c, d = (np.where(first, 0.0, e) for e in phi)
    s11, s12, s22 = (np.where(first, f, s) for f, s in zip((f11, f12, f22), sigma, strict=True))
    # cells outside the series may hold NaN; a first cell reads its (absent) predecessor
    ux, uy = np.where(w > 0, ux, 0.0), np.where(w > 0, uy, 0.0)
    ux_prev = np.concatenate([np.zeros((ux.shape[0], 1)), ux[:, :-1]], axis=1)
    uy_prev = np.concatenate([np.zeros((uy.shape[0], 1)), uy[:, :-1]], axis=1)
    ex = w * (ux - a * ux_prev - b * uy_prev)
    ey = w * (uy - c * ux_prev - d * uy_prev)
    with np.errstate(divide="ignore", invalid="ignore"):
        det, i11, i12, i22 = sym_inverse(s11, s12, s22)
    # cells outside the series may hold Q = 0 (no transition): their inverse is not read
    i11, i12, i22 = (np.where(w > 0, e, 0.0) for e in (i11, i12, i22))
    a11, a12, a21, a22 = 1 - a, -b, -c, 1 - d
    # B = P A, then L = A' B and g = A' (P e)
    b11, b12 = i11 * a11 + i12 * a21, i11 * a12 + i12 * a22
    b21, b22 = i12 * a11 + i22 * a21, i12 * a12 + i22 * a22
    hx, hy = i11 * ex + i12 * ey, i12 * ex + i22 * ey
    log_c = (w * (-LOG_2PI - 0.5 * np.log(np.where(w > 0, det, 1.0)))).sum(axis=1)
    factor = MeanFactor(
        (a11 * b11 + a21 * b21).sum(axis=1),
        (a11 * b12 + a21 * b22).sum(axis=1),
        (a12 * b12 + a22 * b22).sum(axis=1),
        (a11 * hx + a21 * hy).sum(axis=1),
        (a12 * hx + a22 * hy).sum(axis=1),
        (ex * hx + ey * hy).sum(axis=1),
    )
    return log_c, factor


def integrated_loglik(
    sums: SeriesSums,
    phi: tuple[Any, Any, Any, Any],
    first: tuple[Any, Any, Any],
    m0: tuple[Any, Any],
    tau: tuple[Any, Any, Any],
    xp: Any = np,
) -> Any:
    """Log density of each patient's completed series with the latent mean integrated out.

    Parameters
    ----------
    sums
        Per-patient statistics (:class:`SeriesSums`).
    phi
        Reduced-form lag matrix entries (a, b, c, d) = (phi_xx, phi_xy, phi_yx, phi_yy); scalars
        or per-patient vectors.
    first
        Entries (11, 12, 22) of the first cell's covariance.
    m0, tau
        Prior mean (per patient) and covariance entries of the latent mean.
    xp
        ``numpy`` or ``pytensor.tensor``.
    """
    log_c, factor = series_factor(sums, phi, first, xp)
    return log_c + mean_integral(factor, m0, tau, xp)


def mean_posterior(
    sums: SeriesSums,
    phi: tuple[Any, Any, Any, Any],
    first: tuple[Any, Any, Any],
    m0: tuple[Any, Any],
    tau: tuple[Any, Any, Any],
) -> tuple[Any, Any, Any, Any, Any]:
    """Conditional posterior of each patient's latent mean: (mean_x, mean_y, c11, c12, c22)."""
    return mean_given(series_factor(sums, phi, first)[1], m0, tau)


def pseudo_observation(
    f: MeanFactor, tau: tuple[Any, Any, Any], xp: Any = np
) -> tuple[Any, MeanFactor]:
    """A patient's factor with its own latent mean integrated out, as a factor in the mean m0
    of that latent mean (the therapist part). Expanding :func:`mean_integral` in m0::

        -1/2 log|I + T L| - 1/2 [(q - g'K g) - 2 m0'(g - L K g) + m0'(L - L K L) m0]

    Returns (the constant, the factor in m0). Summing such factors over a therapist's patients
    gives the caseload's factor in the therapist deviation."""
    k11, k12, k22, det = _shrinkage(f, tau)
    kg1, kg2 = k11 * f.g1 + k12 * f.g2, k12 * f.g1 + k22 * f.g2
    # L K (rows) for L - L K L and L K g
    lk11, lk12 = f.l11 * k11 + f.l12 * k12, f.l11 * k12 + f.l12 * k22
    lk21, lk22 = f.l12 * k11 + f.l22 * k12, f.l12 * k12 + f.l22 * k22
    m11 = f.l11 - (lk11 * f.l11 + lk12 * f.l12)
    m12 = f.l12 - (lk11 * f.l12 + lk12 * f.l22)
    m22 = f.l22 - (lk21 * f.l12 + lk22 * f.l22)
    h1 = f.g1 - (f.l11 * kg1 + f.l12 * kg2)
    h2 = f.g2 - (f.l12 * kg1 + f.l22 * kg2)
    const = -0.5 * xp.log(det)
    return const, MeanFactor(m11, m12, m22, h1, h2, f.q - (f.g1 * kg1 + f.g2 * kg2))


def draw_means(
    moments: tuple[np.ndarray, ...], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw latent means from their conditional posteriors (arrays of any matching shape)."""
    mx, my, c11, c12, c22 = (np.asarray(m, dtype=float) for m in moments)
    l11 = np.sqrt(np.maximum(c11, 0.0))
    l21 = np.where(l11 > 0, c12 / np.where(l11 > 0, l11, 1.0), 0.0)
    l22 = np.sqrt(np.maximum(c22 - l21 * l21, 0.0))
    e1 = rng.standard_normal(mx.shape)
    e2 = rng.standard_normal(mx.shape)
    return mx + l11 * e1, my + l21 * e1 + l22 * e2
