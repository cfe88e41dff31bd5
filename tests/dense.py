"""Dense reference computations for tests: plain matrix algebra, written independently of the
package's entry-wise kernels (Kronecker solves, matrix powers, multivariate normal densities)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def stationary(phi: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """S with S = Phi S Phi' + Sigma, by vec(S) = (I - Phi (x) Phi)^-1 vec(Sigma)."""
    vec = np.linalg.solve(np.eye(4) - np.kron(phi, phi), sigma.reshape(4))
    s = vec.reshape(2, 2)
    return 0.5 * (s + s.T)


def reduced(phi: np.ndarray, sigma: np.ndarray, b0: float, same_session: str):
    """(B0^-1 Phi, B0^-1 Sigma B0^-T) from the structural matrices."""
    b = np.eye(2)
    if same_session == "predictor_to_outcome":
        b[1, 0] = -b0
    elif same_session == "outcome_to_predictor":
        b[0, 1] = -b0
    bi = np.linalg.inv(b)
    return bi @ phi, bi @ sigma @ bi.T


def series_cov(phi: np.ndarray, sigmas: list[np.ndarray], first: np.ndarray) -> np.ndarray:
    """Covariance of (w_1, ..., w_n) stacked (x, y) per cell, for w_t = Phi w_(t-1) + u_t with
    Var(u_t) = sigmas[t - 2] and Var(w_1) = first."""
    n = len(sigmas) + 1
    var = [first]
    for s in sigmas:
        var.append(phi @ var[-1] @ phi.T + s)
    cov = np.zeros((2 * n, 2 * n))
    for t in range(n):
        for u in range(t + 1):
            block = np.linalg.matrix_power(phi, t - u) @ var[u]
            cov[2 * t : 2 * t + 2, 2 * u : 2 * u + 2] = block
            cov[2 * u : 2 * u + 2, 2 * t : 2 * t + 2] = block.T
    return cov


def mvn_logpdf(values: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> float:
    return float(stats.multivariate_normal(mean, cov).logpdf(values))
