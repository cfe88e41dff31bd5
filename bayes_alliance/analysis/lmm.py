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


def _profile(
    theta: np.ndarray,
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    q: int,
    p: int,
    n: int,
):
    lam = _lower(theta, q)
    xtwx = np.zeros((p, p))
    xtwy = np.zeros(p)
    ytwy = 0.0
    logdet = 0.0
    for x, z, y in blocks:
        zl = z @ lam
        m = np.eye(q) + zl.T @ zl
        chol = np.linalg.cholesky(m)
        logdet += 2 * np.log(np.diag(chol)).sum()
        # W = I - ZL M^-1 (ZL)'; apply it through solves with M's Cholesky factor.
        ax = np.linalg.solve(chol, zl.T @ x)
        ay = np.linalg.solve(chol, zl.T @ y)
        xtwx += x.T @ x - ax.T @ ax
        xtwy += x.T @ y - ax.T @ ay
        ytwy += y @ y - ay @ ay
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
    _, inv = np.unique(np.asarray(groups), return_inverse=True)
    order = np.argsort(inv, kind="stable")
    bounds = np.flatnonzero(np.diff(inv[order])) + 1
    blocks = [(x[idx], z[idx], y[idx]) for idx in np.split(order, bounds)]
    n, p = x.shape
    q = z.shape[1]
    start = np.eye(q)[np.tril_indices(q)]
    res = optimize.minimize(
        lambda th: _profile(th, blocks, q, p, n)[0],
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20000, "maxfev": 20000},
    )
    crit, beta, sigma2, xtwx, lam = _profile(res.x, blocks, q, p, n)
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(xtwx)))
    return LMMResult(beta, se, sigma2 * lam @ lam.T, float(sigma2), float(crit))
