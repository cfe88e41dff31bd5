r"""Population moments of the trait/state model: pure numpy, batched over leading axes.

Matrix views (arrays ending in 2x2, with any leading batch axes) of the entry-wise kernel in
:mod:`bayes_alliance.kernels.dynamics`: stationarity and long-run effects; the stationary
covariance of a VAR(1) of any order k (the one k x k solver; the entry-wise 2x2 closed form
:func:`bayes_alliance.kernels.dynamics.stationary_cov` is what the models' graphs use); plus
matrix constructors and variance shares per level.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_alliance.kernels import dynamics


def lag_matrix(
    predictor_autoregression: np.ndarray | float,
    reverse_state_effect: np.ndarray | float,
    state_effect: np.ndarray | float,
    outcome_autoregression: np.ndarray | float,
) -> np.ndarray:
    """Lag matrix Phi of the within VAR(1) for the state vector (x, y), shape (..., 2, 2).

    ``z_t = Phi z_(t-1) + e_t`` with ``z = (xw, yw)``, so Phi[0] = (phi_xx, phi_xy) and
    Phi[1] = (phi_yx, phi_yy).
    """
    a, b, c, d = np.broadcast_arrays(
        *(
            np.asarray(v, dtype=float)
            for v in (
                predictor_autoregression,
                reverse_state_effect,
                state_effect,
                outcome_autoregression,
            )
        )
    )
    return np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)


def innovation_cov(
    sd_x: np.ndarray | float, sd_y: np.ndarray | float, corr: np.ndarray | float
) -> np.ndarray:
    """2x2 innovation covariance from SDs and correlation, shape (..., 2, 2)."""
    sx, sy, r = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (sd_x, sd_y, corr)))
    cxy = r * sx * sy
    return np.stack([np.stack([sx**2, cxy], -1), np.stack([cxy, sy**2], -1)], -2)


def sym_matrix(e11: Any, e12: Any, e22: Any) -> np.ndarray:
    """Symmetric 2x2 matrices (..., 2, 2) from the entries (11, 12, 22) of the entry-wise
    kernel (e.g. a covariance of :mod:`bayes_alliance.kernels.dynamics`)."""
    return lag_matrix(e11, e12, e12, e22)


def _entries(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]


def spectral_radius(phi: np.ndarray) -> np.ndarray:
    """Largest absolute eigenvalue of each 2x2 lag matrix (closed form)."""
    phi = np.asarray(phi, dtype=float)
    tr = phi[..., 0, 0] + phi[..., 1, 1]
    det = phi[..., 0, 0] * phi[..., 1, 1] - phi[..., 0, 1] * phi[..., 1, 0]
    disc = (tr / 2) ** 2 - det
    real = disc >= 0
    sq = np.sqrt(np.abs(disc))
    rad_real = np.maximum(np.abs(tr / 2 + sq), np.abs(tr / 2 - sq))
    rad_complex = np.sqrt(np.abs(det))  # complex pair: |lambda|^2 = det
    return np.where(real, rad_real, rad_complex)


def is_stationary(phi: np.ndarray) -> np.ndarray:
    """True where every eigenvalue of Phi lies strictly inside the unit circle."""
    return np.asarray(dynamics.is_stationary(_entries(np.asarray(phi, dtype=float))))


def stationary_cov(phi: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    r"""Stationary covariance S of ``w_t = Phi w_(t-1) + u_t``, ``u_t ~ N(0, Sigma)``: the
    solution of ``S = Phi S Phi' + Sigma`` for k x k matrices (..., k, k), batched over the
    broadcast leading axes; NaN where Phi is not stationary (an eigenvalue of modulus >= 1).

    In vectorised form :math:`(I - \Phi \otimes \Phi)\,\mathrm{vec}(S) = \mathrm{vec}(\Sigma)`
    (Luetkepohl 2005, New Introduction to Multiple Time Series Analysis, section 2.1.4), a
    k^2 x k^2 linear system per matrix: fine for the small k of these models (k <= 4). The
    result is symmetrised (its diagonal is the solver's). For k = 2 the entry-wise closed form
    :func:`bayes_alliance.kernels.dynamics.stationary_cov` gives the same (tested).
    """
    phi = np.asarray(phi, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    k = phi.shape[-1]
    batch = np.broadcast_shapes(phi.shape[:-2], sigma.shape[:-2])
    phi = np.broadcast_to(phi, (*batch, k, k))
    sigma = np.broadcast_to(sigma, (*batch, k, k))
    stable = np.max(np.abs(np.linalg.eigvals(phi)), axis=-1) < 1
    out = np.full((*batch, k, k), np.nan)
    # Only stationary matrices are solved: at a unit root the system is singular.
    lag = phi[stable]
    kron = np.einsum("...ij,...kl->...ikjl", lag, lag).reshape(-1, k * k, k * k)
    vec = np.linalg.solve(np.eye(k * k) - kron, sigma[stable].reshape(-1, k * k, 1))
    s = vec.reshape(-1, k, k)
    out[stable] = 0.5 * (s + np.swapaxes(s, -1, -2))
    return out


def long_run_matrix(
    phi: np.ndarray, b0: np.ndarray | float = 0.0, same_session: str = "none"
) -> np.ndarray:
    """(B0 - Phi)^-1: the long-run response of (x, y) to a sustained unit shift (Falkenstroem
    2024); (I - Phi)^-1 without a same-session path. A matrix view of
    :func:`bayes_alliance.kernels.dynamics.long_run`."""
    phi = np.asarray(phi, dtype=float)
    return lag_matrix(*dynamics.long_run(_entries(phi), np.asarray(b0, dtype=float), same_session))


def icc(
    between_vars: dict[str, np.ndarray | float], within_var: np.ndarray | float
) -> dict[str, np.ndarray]:
    """Shares of total variance per level.

    Parameters
    ----------
    between_vars
        Variance at each higher level, e.g. ``{"therapist": ..., "patient": ...}``.
    within_var
        Session-level (within-person) variance.

    Returns
    -------
    dict
        One share per key of ``between_vars`` plus ``"session"``; the shares add to 1.
    """
    total = np.asarray(within_var, dtype=float) + sum(
        np.asarray(v, dtype=float) for v in between_vars.values()
    )
    out = {k: np.asarray(v, dtype=float) / total for k, v in between_vars.items()}
    out["session"] = np.asarray(within_var, dtype=float) / total
    return out
