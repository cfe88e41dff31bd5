r"""The latent means integrated out in closed form: per-patient 2x2 algebra.

Given the dynamic parameters, a patient's completed series (observed cells plus imputed ones) is
Gaussian and linear in the patient's latent mean M = (M_x, M_y) (METHODS.md section 10). With
``z~_t = z_t - known mean_t`` (intercept or session means, trend) and the reduced-form VAR(1)
``w_t = Phi w_(t-1) + u_t``, ``u ~ N(0, Sigma)``, ``w_1 ~ N(0, F)``::

    p(z~ | M) = C exp(-1/2 [Q0 - 2 g'M + M' L M])
    r_t = z~_t - Phi z~_(t-1)                    (t = 2..n)
    L   = (n - 1) A' Sigma^-1 A + F^-1,          A = I - Phi
    g   = A' Sigma^-1 sum_t r_t + F^-1 z~_1
    Q0  = sum_t r_t' Sigma^-1 r_t + z~_1' F^-1 z~_1
    log C = -n log(2 pi) - (n - 1)/2 log|Sigma| - 1/2 log|F|

and with the prior ``M ~ N(m0, T)`` (therapist part m0, patient covariance T)::

    log p(z~) = log C - 1/2 (Q0 - g' L^-1 g) - 1/2 log|L| - 1/2 log|V| - 1/2 d' V^-1 d,
    V = L^-1 + T,   d = L^-1 g - m0.

This form never inverts T, so it stays finite when a patient-level SD approaches zero. The
conditional posterior ``M | z~ ~ N(m0 + T V^-1 d, T - T V^-1 T)`` is used to draw the latent
means after sampling. Every function is written entry by entry, so it runs on numpy arrays and
pytensor tensors alike (pass ``xp=numpy`` or ``xp=pytensor.tensor``), vectorised over patients.

Removing the 2 x (number of patients) latent means from the sampler leaves NUTS with the dynamic
parameters, the therapist deviations and any imputed cells.
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
    """Per-patient sufficient statistics of a completed series, given Phi and Sigma.

    Attributes
    ----------
    first_x, first_y
        z~ at the patient's first cell.
    rx, ry
        Sums over the patient's transitions of r_t = z~_t - Phi z~_(t-1).
    q
        Sum over the transitions of r_t' Sigma^-1 r_t.
    n_trans
        Number of transitions (cells after the first).
    """

    first_x: Any
    first_y: Any
    rx: Any
    ry: Any
    q: Any
    n_trans: Any


def residual_quadratic(rx: Any, ry: Any, s11: Any, s12: Any, s22: Any) -> Any:
    """r' Sigma^-1 r for residual vectors (rx, ry)."""
    _, i11, i12, i22 = sym_inverse(s11, s12, s22)
    return i11 * rx * rx + 2 * i12 * rx * ry + i22 * ry * ry


def _likelihood_terms(
    sums: SeriesSums, phi: tuple[Any, Any, Any, Any], sigma: tuple[Any, Any, Any], first: tuple
) -> tuple[Any, ...]:
    a, b, c, d = phi
    det_s, i11, i12, i22 = sym_inverse(*sigma)
    det_f, f11, f12, f22 = sym_inverse(*first)
    # A = I - Phi; B = Sigma^-1 A.
    a11, a12, a21, a22 = 1 - a, -b, -c, 1 - d
    b11, b12 = i11 * a11 + i12 * a21, i11 * a12 + i12 * a22
    b21, b22 = i12 * a11 + i22 * a21, i12 * a12 + i22 * a22
    # L = n A' Sigma^-1 A + F^-1 (symmetric).
    n = sums.n_trans
    l11 = n * (a11 * b11 + a21 * b21) + f11
    l12 = n * (a11 * b12 + a21 * b22) + f12
    l22 = n * (a12 * b12 + a22 * b22) + f22
    # g = A' Sigma^-1 R + F^-1 z~_1 (B' R = A' Sigma^-1 R).
    z1x, z1y = sums.first_x, sums.first_y
    g1 = b11 * sums.rx + b21 * sums.ry + f11 * z1x + f12 * z1y
    g2 = b12 * sums.rx + b22 * sums.ry + f12 * z1x + f22 * z1y
    q0 = sums.q + f11 * z1x * z1x + 2 * f12 * z1x * z1y + f22 * z1y * z1y
    return det_s, det_f, l11, l12, l22, g1, g2, q0


def integrated_loglik(
    sums: SeriesSums,
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
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
    sigma, first
        Entries (11, 12, 22) of the innovation covariance and of the first cell's covariance.
    m0, tau
        Prior mean (per patient) and covariance entries of the latent mean.
    xp
        ``numpy`` or ``pytensor.tensor``.
    """
    det_s, det_f, l11, l12, l22, g1, g2, q0 = _likelihood_terms(sums, phi, sigma, first)
    det_l, li11, li12, li22 = sym_inverse(l11, l12, l22)
    gh1, gh2 = li11 * g1 + li12 * g2, li12 * g1 + li22 * g2
    det_v, vi11, vi12, vi22 = sym_inverse(li11 + tau[0], li12 + tau[1], li22 + tau[2])
    d1, d2 = gh1 - m0[0], gh2 - m0[1]
    n_cells = sums.n_trans + 1
    return (
        -n_cells * LOG_2PI
        - 0.5 * sums.n_trans * xp.log(det_s)
        - 0.5 * xp.log(det_f)
        - 0.5 * (q0 - (g1 * gh1 + g2 * gh2))
        - 0.5 * xp.log(det_l)
        - 0.5 * xp.log(det_v)
        - 0.5 * (vi11 * d1 * d1 + 2 * vi12 * d1 * d2 + vi22 * d2 * d2)
    )


def mean_posterior(
    sums: SeriesSums,
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
    first: tuple[Any, Any, Any],
    m0: tuple[Any, Any],
    tau: tuple[Any, Any, Any],
) -> tuple[Any, Any, Any, Any, Any]:
    """Conditional posterior of each patient's latent mean: (mean_x, mean_y, c11, c12, c22)."""
    _, _, l11, l12, l22, g1, g2, _ = _likelihood_terms(sums, phi, sigma, first)
    _, li11, li12, li22 = sym_inverse(l11, l12, l22)
    gh1, gh2 = li11 * g1 + li12 * g2, li12 * g1 + li22 * g2
    _, vi11, vi12, vi22 = sym_inverse(li11 + tau[0], li12 + tau[1], li22 + tau[2])
    d1, d2 = gh1 - m0[0], gh2 - m0[1]
    t11, t12, t22 = tau
    k11, k12 = t11 * vi11 + t12 * vi12, t11 * vi12 + t12 * vi22
    k21, k22 = t12 * vi11 + t22 * vi12, t12 * vi12 + t22 * vi22
    return (
        m0[0] + k11 * d1 + k12 * d2,
        m0[1] + k21 * d1 + k22 * d2,
        t11 - (k11 * t11 + k12 * t12),
        t12 - (k11 * t12 + k12 * t22),
        t22 - (k21 * t12 + k22 * t22),
    )


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
