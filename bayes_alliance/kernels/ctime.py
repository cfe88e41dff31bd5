r"""Continuous-time VAR(1) for two series, entry by entry: the drift's matrix exponential, the
stationary covariance and the innovation covariance of an interval.

The within-person deviations w(t) = (x, y)(t) - latent means follow the Ornstein-Uhlenbeck
process (Oud & Jansen 2000; Voelkle, Oud, Davidov & Schmidt 2012; Driver, Oud & Voelkle
2017, ctsem)::

    dw = A w dt + G dW,        Q = G G'

Over an interval dt the exact discrete form is the VAR(1) with interval-specific
coefficients (the DSEM TINTERVAL model of Asparouhov, Hamaker & Muthen 2018 rounds times to
a grid instead; Hecht & Zitzmann 2020 compare the two)::

    w(t + dt) = Phi(dt) w(t) + u,   Phi(dt) = expm(A dt),
    u ~ N(0, Q(dt)),                Q(dt) = S - Phi(dt) S Phi(dt)'

with S the stationary covariance, ``A S + S A' + Q = 0``. The process is stationary when both
eigenvalues of A have negative real parts: ``tr A < 0`` and ``det A > 0``.

**expm.** With ``s = tr(A) / 2`` and ``N = A - s I`` (trace-free, so ``N^2 = -det(N) I``),
``(N dt)^2 = z I`` with ``z = -det(N) dt^2`` and the exponential series splits into its even
and odd powers::

    expm(A dt) = e^{s dt} [C(z) I + dt S(z) N],
    C(z) = sum_k z^k / (2k)!   = cosh(sqrt z)        (z > 0),  cos(sqrt(-z))           (z < 0)
    S(z) = sum_k z^k / (2k+1)! = sinh(sqrt z)/sqrt z (z > 0),  sin(sqrt(-z))/sqrt(-z)  (z < 0)

C and S are entire functions of z, so the result and its gradient are smooth through repeated
eigenvalues (z = 0) and the change from real to complex ones; near z = 0 their Taylor series
are used (|z| < 1e-2: the first omitted term is below 1e-16 relative). For z > 0 the factor
e^{s dt} is folded into the hyperbolic functions (``e^{s dt} cosh r = (e^{s dt + r} +
e^{s dt - r}) / 2``) so that a long interval does not overflow cosh where the product is
small.

**Stationary covariance** (2 x 2 Lyapunov equation, a 3 x 3 linear system): with
``tau = tr A``, ``delta = det A`` and ``adj(A) = tau I - A``::

    S = -(delta Q + adj(A) Q adj(A)') / (2 tau delta)

(multiply out: A adj(A) = delta I, and A + adj(A) = tau I).

Everything is written for numpy and pytensor alike (``xp``), entry-wise (benchmarks/README.md:
entry-wise 2 x 2 algebra compiles and samples much faster than batched matrix products),
and broadcasts over any shapes of the drift entries and of ``dt``.

References
----------
Oud, J. H. L., & Jansen, R. A. R. G. (2000). Continuous time state space modeling of panel
data by means of SEM. *Psychometrika*, 65(2), 199-215.
Voelkle, M. C., Oud, J. H. L., Davidov, E., & Schmidt, P. (2012). An SEM approach to
continuous time modeling of panel data. *Psychological Methods*, 17(2), 176-192.
Driver, C. C., Oud, J. H. L., & Voelkle, M. C. (2017). Continuous time structural equation
modeling with R package ctsem. *Journal of Statistical Software*, 77(5), 1-35.
Asparouhov, T., Hamaker, E. L., & Muthen, B. (2018). Dynamic structural equation models.
*Structural Equation Modeling*, 25(3), 359-388.
Hecht, M., & Zitzmann, S. (2020). A computationally more efficient Bayesian approach for
estimating continuous-time models. *Structural Equation Modeling*, 27(6), 829-840.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Drift = tuple[Any, Any, Any, Any]  # (a11, a12, a21, a22): row = the equation
Sym = tuple[Any, Any, Any]  # (s11, s12, s22) of a symmetric 2 x 2 matrix

# |z| below this: Taylor series of C and S (the z^5 terms are < 1e-10 / 3.6e6 and 1e-10 / 4e7)
TAYLOR = 1e-2
_C = (1.0, 1 / 2, 1 / 24, 1 / 720, 1 / 40320)
_S = (1.0, 1 / 6, 1 / 120, 1 / 5040, 1 / 362880)


def _poly(z: Any, coef: tuple[float, ...]) -> Any:
    out = coef[-1]
    for c in coef[-2::-1]:
        out = out * z + c
    return out


def _scaled_cs(z: Any, h: Any, xp: Any) -> tuple[Any, Any]:
    """``(e^h C(z), e^h S(z))`` with every branch finite wherever it is not selected (so the
    gradient through the unselected branches of ``where`` is 0, not NaN)."""
    small = abs(z) < TAYLOR
    pos = z >= TAYLOR
    neg = z <= -TAYLOR
    # safe arguments of the branches not taken
    rp = xp.sqrt(xp.where(pos, z, 1.0))
    rn = xp.sqrt(xp.where(neg, -z, 1.0))
    zs = xp.where(small, z, 0.0)
    hp = xp.where(pos, h, 0.0)
    ep, em = xp.exp(hp + rp), xp.exp(hp - rp)
    eh = xp.exp(h)
    c = xp.where(pos, 0.5 * (ep + em), xp.where(neg, eh * xp.cos(rn), eh * _poly(zs, _C)))
    s = xp.where(pos, 0.5 * (ep - em) / rp, xp.where(neg, eh * xp.sin(rn) / rn, eh * _poly(zs, _S)))
    return c, s


def expm(drift: Drift, dt: Any, xp: Any = np) -> Drift:
    """Entries (phi11, phi12, phi21, phi22) of ``expm(A dt)`` (module docstring); the drift
    entries and ``dt`` broadcast against each other."""
    a11, a12, a21, a22 = drift
    s = 0.5 * (a11 + a22)
    n11 = 0.5 * (a11 - a22)  # N = A - s I = [[n11, a12], [a21, -n11]]
    z = (n11 * n11 + a12 * a21) * dt * dt  # -det(N) dt^2
    c, sh = _scaled_cs(z, s * dt, xp)
    k = sh * dt
    return c + k * n11, k * a12, k * a21, c - k * n11


def stable(drift: Drift) -> Any:
    """Whether both eigenvalues of A have negative real parts (``tr A < 0`` and
    ``det A > 0``): the process has a stationary distribution."""
    a11, a12, a21, a22 = drift
    return ((a11 + a22) < 0) & ((a11 * a22 - a12 * a21) > 0)


def stationary_cov(drift: Drift, diffusion: Sym) -> Sym:
    """Entries of S solving ``A S + S A' + Q = 0`` (module docstring), for a stable A."""
    a11, a12, a21, a22 = drift
    q11, q12, q22 = diffusion
    tau = a11 + a22
    delta = a11 * a22 - a12 * a21
    # adj(A) = [[a22, -a12], [-a21, a11]]; B = adj(A) Q adj(A)' entry by entry
    u11 = a22 * q11 - a12 * q12  # (adj(A) Q) entries
    u12 = a22 * q12 - a12 * q22
    u21 = -a21 * q11 + a11 * q12
    u22 = -a21 * q12 + a11 * q22
    b11 = u11 * a22 - u12 * a12
    b12 = -u11 * a21 + u12 * a11
    b22 = -u21 * a21 + u22 * a11
    den = -2.0 * tau * delta
    return (delta * q11 + b11) / den, (delta * q12 + b12) / den, (delta * q22 + b22) / den


def sandwich(phi: Drift, s: Sym) -> Sym:
    """Entries of ``Phi S Phi'``."""
    a, b, c, d = phi
    s11, s12, s22 = s
    p11 = a * a * s11 + 2 * a * b * s12 + b * b * s22
    p12 = a * c * s11 + (a * d + b * c) * s12 + b * d * s22
    p22 = c * c * s11 + 2 * c * d * s12 + d * d * s22
    return p11, p12, p22


def interval_cov(phi: Drift, stationary: Sym) -> Sym:
    """Innovation covariance of an interval, ``Q(dt) = S - Phi(dt) S Phi(dt)'``."""
    p11, p12, p22 = sandwich(phi, stationary)
    return stationary[0] - p11, stationary[1] - p12, stationary[2] - p22


def discretise(drift: Drift, diffusion: Sym, dt: Any, xp: Any = np) -> tuple[Drift, Sym, Sym]:
    """``(Phi(dt), Q(dt), S)``: the exact discrete VAR(1) of an interval and the stationary
    covariance."""
    stat = stationary_cov(drift, diffusion)
    phi = expm(drift, dt, xp)
    return phi, interval_cov(phi, stat), stat


__all__ = [
    "discretise",
    "distinct_intervals",
    "expm",
    "interval_cov",
    "sandwich",
    "stable",
    "stationary_cov",
]


def median_interval(times: Any) -> float:
    """The median time between a patient's consecutive sessions of a (patients, sessions)
    grid of times (NaN where no session; 1 when no patient has two): the default effects
    interval and the scale of the continuous-time priors."""
    t = np.asarray(times, dtype=float)
    dt = np.diff(t, axis=1)
    inner = dt[np.isfinite(dt) & (dt > 0)]
    return float(np.median(inner)) if inner.size else 1.0


# Intervals closer than this (relative) are one interval: times converted between units (days
# to weeks) differ in the last bits, and each distinct interval costs a matrix exponential and,
# on the sums path, a column of every per-patient table.
INTERVAL_RTOL = 1e-9


def distinct_intervals(dt: Any, rtol: float = INTERVAL_RTOL) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of the intervals ``dt`` (any shape) and each entry's index into
    them, with values within ``rtol`` of their sorted neighbour merged into the smallest of
    their run (``Phi`` and ``Q`` are then computed at it: a relative change of at most
    ``rtol`` times the run's length in the interval)."""
    values, index = np.unique(np.asarray(dt, dtype=float), return_inverse=True)
    if values.size > 1:
        new = np.ones(values.size, dtype=bool)
        new[1:] = np.diff(values) > rtol * np.abs(values[1:])
        group = np.cumsum(new) - 1
        values, index = values[new], group[index]
    return values, np.reshape(index, np.shape(dt)).astype(np.int64)
