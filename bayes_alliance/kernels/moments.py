"""Population moments of the trait/state model: pure numpy, batched over leading axes.

Matrix views (arrays ending in 2x2, with any leading batch axes) of the entry-wise kernel in
:mod:`bayes_alliance.kernels.dynamics`: the stationary within-person covariance of the VAR(1),
stationarity and long-run effects; plus matrix constructors and variance shares per level.
"""

from __future__ import annotations

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


def _entries(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]


def _matrix(e11: np.ndarray, e12: np.ndarray, e21: np.ndarray, e22: np.ndarray) -> np.ndarray:
    e11, e12, e21, e22 = np.broadcast_arrays(e11, e12, e21, e22)
    return np.stack([np.stack([e11, e12], -1), np.stack([e21, e22], -1)], -2)


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
    """Stationary covariance S solving S = Phi S Phi' + Sigma (2x2 matrices, batched).

    A matrix view of :func:`bayes_alliance.kernels.dynamics.stationary_cov`; NaN where Phi is not
    stationary.
    """
    phi = np.asarray(phi, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    s11, s12, s22 = dynamics.stationary_cov(
        _entries(phi), (sigma[..., 0, 0], sigma[..., 0, 1], sigma[..., 1, 1])
    )
    s = _matrix(s11, s12, s12, s22)
    bad = ~is_stationary(phi)
    return np.where(bad[..., None, None], np.nan, s)


def long_run_matrix(
    phi: np.ndarray, b0: np.ndarray | float = 0.0, same_session: str = "none"
) -> np.ndarray:
    """(B0 - Phi)^-1: the long-run response of (x, y) to a sustained unit shift (Falkenstroem
    2024); (I - Phi)^-1 without a same-session path. A matrix view of
    :func:`bayes_alliance.kernels.dynamics.long_run`."""
    phi = np.asarray(phi, dtype=float)
    return _matrix(*dynamics.long_run(_entries(phi), np.asarray(b0, dtype=float), same_session))


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
