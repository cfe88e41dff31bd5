r"""REML linear mixed model: the frequentist observed-centring baseline.

The classic analysis of trait and state effects regresses the outcome on an observed cluster
mean and the deviation from it in a mixed model fitted by REML (lme4's default). This module
fits that model so the latent model's estimates can be set beside it::

    y_j = X_j beta + Z_j b_j + e_j,   b_j ~ N(0, sigma^2 L L'),   e_j ~ N(0, sigma^2 I)

The REML criterion is profiled over beta and sigma^2 and minimised over the entries of the
lower-triangular L (Bates, Maechler, Bolker & Walker 2015, J Stat Softw 67(1), section 3).
Per cluster, with M_j = I + L' Z_j' Z_j L, the Woodbury identity gives
``V_j^-1 sigma^2 = I - Z_j L M_j^-1 L' Z_j'`` and ``log |V_j / sigma^2| = log |M_j|``, so
only q x q matrices are inverted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize


@dataclass(frozen=True)
class LMMResult:
    """REML estimates.

    Attributes
    ----------
    beta, se
        Fixed effects and standard errors.
    random_cov
        Covariance of the random effects (q x q), ``sigma^2 L L'``.
    sigma2
        Residual variance.
    reml_criterion
        -2 times the REML log-likelihood at the optimum (lme4's "REML criterion").
    """

    beta: np.ndarray
    se: np.ndarray
    random_cov: np.ndarray
    sigma2: float
    reml_criterion: float


def _lower(theta: np.ndarray, q: int) -> np.ndarray:
    lam = np.zeros((q, q))
    lam[np.tril_indices(q)] = theta
    return lam


@dataclass(frozen=True)
class _Cross:
    """Per-cluster cross-products, the only data the REML criterion needs: ``zz`` (G, q, q) =
    Z_j' Z_j, ``zx`` (G, q, p) = Z_j' X_j, ``zy`` (G, q) = Z_j' y_j, and the totals X'X, X'y,
    y'y. Formed once, so that each evaluation is a few batched q x q operations over clusters
    instead of a Python loop over them (20,000 patients: one loop was ~3 s per evaluation)."""

    zz: np.ndarray
    zx: np.ndarray
    zy: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    yy: float


def _cross(y: np.ndarray, x: np.ndarray, z: np.ndarray, inv: np.ndarray, g: int) -> _Cross:
    q, p = z.shape[1], x.shape[1]
    zz = np.zeros((g, q, q))
    zx = np.zeros((g, q, p))
    zy = np.zeros((g, q))
    np.add.at(zz, inv, z[:, :, None] * z[:, None, :])
    np.add.at(zx, inv, z[:, :, None] * x[:, None, :])
    np.add.at(zy, inv, z * y[:, None])
    return _Cross(zz, zx, zy, x.T @ x, x.T @ y, float(y @ y))


def _profile(theta: np.ndarray, c: _Cross, q: int, p: int, n: int):
    lam = _lower(theta, q)
    # M_j = I + L' Z_j' Z_j L; W_j = I - Z_j L M_j^-1 L' Z_j', applied through M_j's Cholesky
    # factor C_j: X_j' W_j X_j = X_j' X_j - A_j' A_j with A_j = C_j^-1 L' Z_j' X_j.
    m = np.eye(q) + lam.T @ c.zz @ lam
    chol = np.linalg.cholesky(m)
    logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
    ax = np.linalg.solve(chol, lam.T @ c.zx)
    ay = np.linalg.solve(chol, (c.zy @ lam)[:, :, None])[:, :, 0]
    xtwx = c.xx - np.einsum("gqi,gqj->ij", ax, ax)
    xtwy = c.xy - np.einsum("gqi,gq->i", ax, ay)
    ytwy = c.yy - float((ay * ay).sum())
    beta = np.linalg.solve(xtwx, xtwy)
    rss = ytwy - beta @ xtwy
    sigma2 = rss / (n - p)
    _, logdet_x = np.linalg.slogdet(xtwx)
    crit = logdet + logdet_x + (n - p) * (1 + np.log(2 * np.pi * sigma2))
    return crit, beta, sigma2, xtwx, lam


def fit_reml(y: np.ndarray, x: np.ndarray, z: np.ndarray, groups: np.ndarray) -> LMMResult:
    """Fit a linear mixed model with one grouping factor by REML.

    Parameters
    ----------
    y
        Response (n,).
    x
        Fixed-effects design (n, p), including the intercept column.
    z
        Random-effects design (n, q), e.g. ``[1, x_within]`` for a random intercept and slope.
    groups
        Cluster label of each row (n,).

    Returns
    -------
    LMMResult
    """
    y, x, z = (np.asarray(a, dtype=float) for a in (y, x, z))
    if x.ndim != 2 or z.ndim != 2 or len(y) != len(x) or len(y) != len(z) or len(groups) != len(y):
        raise ValueError("y, x, z and groups must have the same number of rows (x and z 2-D)")
    if not (np.isfinite(y).all() and np.isfinite(x).all() and np.isfinite(z).all()):
        raise ValueError("y, x and z must be finite (drop incomplete rows first)")
    labels, inv = np.unique(np.asarray(groups), return_inverse=True)
    n, p = x.shape
    q = z.shape[1]
    cross = _cross(y, x, z, inv.ravel(), len(labels))
    start = np.eye(q)[np.tril_indices(q)]
    res = optimize.minimize(
        lambda th: _profile(th, cross, q, p, n)[0],
        start,
        method="Nelder-Mead",
        # The criterion's rounding grows with the rows (a sum over them, ~1e-9 at 300,000):
        # an absolute 1e-10 below it is never met and the search ran to 20,000 evaluations.
        options={"xatol": 1e-10, "fatol": max(1e-10, 1e-13 * n), "maxiter": 20000, "maxfev": 20000},
    )
    crit, beta, sigma2, xtwx, lam = _profile(res.x, cross, q, p, n)
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(xtwx)))
    return LMMResult(beta, se, sigma2 * lam @ lam.T, float(sigma2), float(crit))
