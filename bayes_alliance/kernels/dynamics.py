r"""The within-person dynamics in one place: an entry-wise 2x2 kernel for numpy and pytensor.

The structural model of the states ``w_t = (xw_t, yw_t)`` of one patient is::

    B0 w_t = Phi w_(t-1) + e_t,   e_t ~ N(0, Sigma),   Phi = [[a, b], [c, d]]

with ``a`` = predictor_autoregression, ``b`` = reverse_state_effect, ``c`` = state_effect (the
patient's own slope when slopes vary), ``d`` = outcome_autoregression. ``B0`` is the identity
unless a same-session (lag-0) path is present: ``"predictor_to_outcome"`` adds ``b0 x_t`` to
the outcome equation, ``"outcome_to_predictor"`` adds ``b0 y_t`` to the predictor equation.
The reduced form ``w_t = Phi* w_(t-1) + u_t`` has ``Phi* = B0^-1 Phi`` and
``Sigma* = B0^-1 Sigma B0^-T``; its stationary covariance S solves ``S = Phi* S Phi*' + Sigma*``.

Every function takes and returns tuples of entries (scalars, numpy arrays or pytensor tensors
that broadcast against each other), never 2x2 matrices: batched 2x2 matrix products compile
slowly and sample slowly in PyTensor (measured in benchmarks/README.md). The model, the effect sizes, the
report and the simulator all use these functions, so their algebra cannot drift apart.
Functions that branch on values take ``xp`` (``numpy`` or ``pytensor.tensor``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAME_SESSION = ("none", "predictor_to_outcome", "outcome_to_predictor")
# Stands in for an infinite bound of the stationary slope interval (finite, so that gradients
# through the truncation constant stay finite).
UNBOUNDED = 1e6

Entries4 = tuple[Any, ...]  # (a, b, c, d)
Entries3 = tuple[Any, ...]  # (11, 12, 22)


def reduced_form(
    phi: Entries4, sigma: Entries3, b0: Any = 0.0, same_session: str = "none"
) -> tuple[Entries4, Entries3]:
    """Reduced-form lag matrix and innovation covariance: (Phi*, Sigma*) as entries.

    Parameters
    ----------
    phi
        Structural lag matrix entries (a, b, c, d).
    sigma
        Structural innovation covariance entries (s11, s12, s22).
    b0, same_session
        The lag-0 coefficient and its direction (one of :data:`SAME_SESSION`).
    """
    a, b, c, d = phi
    s11, s12, s22 = sigma
    if same_session == "none":
        return (a, b, c, d), (s11, s12, s22)
    if same_session == "predictor_to_outcome":  # B0^-1 = [[1, 0], [b0, 1]]
        return (a, b, c + b0 * a, d + b0 * b), (
            s11,
            s12 + b0 * s11,
            s22 + 2 * b0 * s12 + b0 * b0 * s11,
        )
    if same_session == "outcome_to_predictor":  # B0^-1 = [[1, b0], [0, 1]]
        return (a + b0 * c, b + b0 * d, c, d), (
            s11 + 2 * b0 * s12 + b0 * b0 * s22,
            s12 + b0 * s22,
            s22,
        )
    raise ValueError(f"same_session must be one of {SAME_SESSION}, got {same_session!r}")


def stationary_cov(phi: Entries4, sigma: Entries3) -> Entries3:
    """Entries (S11, S12, S22) of the stationary covariance of ``w_t = Phi w_(t-1) + u_t``.

    Solves the 3x3 system (I - K) vech(S) = vech(Sigma), K the action of ``S -> Phi S Phi'`` on
    the distinct entries, by Cramer's rule. Meaningless where Phi is not stationary (see
    :func:`stationarity_margins`).
    """
    a, b, c, d = phi
    s11, s12, s22 = sigma
    m11, m12, m13 = 1 - a * a, -2 * a * b, -b * b
    m21, m22, m23 = -a * c, 1 - (a * d + b * c), -b * d
    m31, m32, m33 = -c * c, -2 * c * d, 1 - d * d
    det = (
        m11 * (m22 * m33 - m23 * m32)
        - m12 * (m21 * m33 - m23 * m31)
        + m13 * (m21 * m32 - m22 * m31)
    )
    det1 = (
        s11 * (m22 * m33 - m23 * m32)
        - m12 * (s12 * m33 - m23 * s22)
        + m13 * (s12 * m32 - m22 * s22)
    )
    det2 = (
        m11 * (s12 * m33 - m23 * s22)
        - s11 * (m21 * m33 - m23 * m31)
        + m13 * (m21 * s22 - s12 * m31)
    )
    det3 = (
        m11 * (m22 * s22 - s12 * m32)
        - m12 * (m21 * s22 - s12 * m31)
        + s11 * (m21 * m32 - m22 * m31)
    )
    return det1 / det, det2 / det, det3 / det


def propagate_cov(phi: Entries4, cov: Entries3, sigma: Entries3) -> Entries3:
    """One step of the covariance recursion: entries of ``Phi V Phi' + Sigma``."""
    a, b, c, d = phi
    v11, v12, v22 = cov
    t11, t12 = a * v11 + b * v12, a * v12 + b * v22  # row 1 of Phi V
    t21, t22 = c * v11 + d * v12, c * v12 + d * v22
    return (
        t11 * a + t12 * b + sigma[0],
        t11 * c + t12 * d + sigma[1],
        t21 * c + t22 * d + sigma[2],
    )


def lag_cross_cov(phi: Entries4, cov: Entries3) -> Entries4:
    """Entries of ``Cov(w_t, w_(t-1)) = Phi V`` with V = Var(w_(t-1)): (xx, xy, yx, yy), where
    ``xy`` is Cov(x_t, y_(t-1))."""
    a, b, c, d = phi
    v11, v12, v22 = cov
    return a * v11 + b * v12, a * v12 + b * v22, c * v11 + d * v12, c * v12 + d * v22


def stationarity_margins(phi: Entries4) -> Entries3:
    """Three margins that are all positive exactly when both eigenvalues of Phi lie strictly
    inside the unit circle (Schur-Cohn for 2x2): ``1 - det``, ``1 + det - tr``, ``1 + det + tr``."""
    a, b, c, d = phi
    tr, det = a + d, a * d - b * c
    return 1 - det, 1 + det - tr, 1 + det + tr


def is_stationary(phi: Entries4, xp: Any = np) -> Any:
    """True where the lag matrix (reduced form) is stationary."""
    m1, m2, m3 = stationarity_margins(phi)
    return (m1 > 0) & (m2 > 0) & (m3 > 0)


def slope_interval(
    a: Any, b: Any, d: Any, b0: Any = 0.0, same_session: str = "none", xp: Any = np
) -> tuple[Any, Any, Any]:
    """The interval (lo, hi) of state effects c for which the reduced-form dynamics are
    stationary, given the other structural entries, and whether it is non-empty.

    Each margin of :func:`stationarity_margins` is linear in c (the reduced-form determinant is
    ``a d - b c`` in every lag-0 variant), so the set is an interval. Open ends are
    :data:`UNBOUNDED`.
    """
    (a0, b0_, c0, d0), _ = reduced_form((a, b, 0.0 * a, d), (0.0, 0.0, 0.0), b0, same_session)
    alphas = stationarity_margins((a0, b0_, c0, d0))
    d_tr = b0 if same_session == "outcome_to_predictor" else 0.0 * a
    d_det = -b
    betas = (-d_det, d_det - d_tr, d_det + d_tr)
    eq = np.equal if xp is np else xp.eq
    lo: Any = -UNBOUNDED + 0.0 * a
    hi: Any = UNBOUNDED + 0.0 * a
    feasible = []
    for alpha, beta in zip(alphas, betas, strict=True):
        flat = eq(beta, 0)
        root = -alpha / xp.where(flat, 1.0, beta)
        lo = xp.maximum(lo, xp.where(beta > 0, root, -UNBOUNDED))
        hi = xp.minimum(hi, xp.where(beta < 0, root, UNBOUNDED))
        feasible.append(xp.where(flat, alpha > 0, lo < hi))
    return lo, hi, feasible[0] & feasible[1] & feasible[2] & (lo < hi)


def long_run(phi: Entries4, b0: Any = 0.0, same_session: str = "none") -> Entries4:
    """Entries (xx, xy, yx, yy) of ``(B0 - Phi)^-1 = (I - Phi*)^-1 B0^-1``: the long-run
    response of (x, y) to a sustained unit shift in each variable's equation (its intercept or
    innovation; Falkenstroem 2024). Entry ``yx`` is the long-run state effect. Such a shift moves
    x itself by ``xx``; per unit of sustained change in x the response of y is
    ``yx / xx = (c + b0) / (1 - d)`` (with b0 only for a lag-0 path x -> y), whatever the
    reverse path."""
    a, b, c, d = phi
    m11, m12, m21, m22 = 1 - a, -b, -c, 1 - d
    if same_session == "predictor_to_outcome":
        m21 = m21 - b0
    elif same_session == "outcome_to_predictor":
        m12 = m12 - b0
    det = m11 * m22 - m12 * m21
    return m22 / det, -m12 / det, -m21 / det, m11 / det


def outcome_mean(
    c: Any,
    d: Any,
    wx_prev: Any,
    wy_prev: Any,
    b0: Any = 0.0,
    same_session: str = "none",
    wx_now: Any = None,
) -> Any:
    """The outcome equation's systematic part for the state: ``c xw_(t-1) + d yw_(t-1)``, plus
    ``b0 xw_t`` when the lag-0 path runs from predictor to outcome. Its residual variance is the
    structural innovation variance of the outcome. Used for Bayesian R-squared and for the
    report's predictive replicates."""
    mean = c * wx_prev + d * wy_prev
    if same_session == "predictor_to_outcome":
        if wx_now is None:
            raise ValueError("the lag-0 path x_t -> y_t needs the current predictor state")
        mean = mean + b0 * wx_now
    return mean
