r"""The k-series filter's fast path for two series whose only integrated coefficients are their
latent means: the entry-wise Op of the main model in the form of :func:`~bayes_alliance.
kernels.kalman_k.filter_k`.

With k = 2 and the regressors ``X_t`` the two unit vectors (no change column, J = 2) the
factor of :mod:`bayes_alliance.kernels.kalman_k`,

    log p(d | M) = log C - 1/2 [A_00 - 2 M' A_(1:,0) + M' A_(1:,1:) M],

is the factor :class:`~bayes_alliance.kernels.kalman_op.KalmanFactor` returns for the main
model (:mod:`bayes_alliance.kernels.gaps`: ``q = A_00``, ``g = A_(1:,0)``, ``L = A_(1:,1:)``),
the same filter (Durbin & Koopman 2012, sections 4.10 and 6.4) with its 2 x 2 algebra written
entry by entry and a hand gradient that reads a tape of the forward pass. The general kernels
loop over the state and column indices; these do not, and cost less per draw (see
``benchmarks/mechanism_cost.py``). The value is the same up to rounding (the tests compare
value and gradient of the whole integrated density both ways).

Input mapping: ``Phi = [[a, b], [c, d]]``, ``Sigma``'s and ``F``'s entries (11, 12, 22),
measurement-error variances ``rx = R[..., 0]``, ``ry = R[..., 1]``, data minus known means
``dx, dy`` and observed masks ``ox, oy``; the filter restarts at ``first`` (it starts at ``F``
in column 0 whatever ``first`` says there, as the general filter does).

References
----------
Durbin, J., & Koopman, S. J. (2012). *Time Series Analysis by State Space Methods* (2nd ed.).
Oxford University Press, sections 4.3, 4.10 and 6.4.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytensor.tensor as pt

from bayes_alliance.kernels.kalman_op import filter_factor_op


def unit_mean_columns(x: Any, k: int) -> bool:
    """Whether the regressors ``x`` (P, S, k, J) are the k = 2 unit mean columns and nothing
    else (J = 2, no change column): the case :func:`filter_k2` covers. ``x`` is an array or a
    tensor whose last two sizes are static (a data container); a container's current values
    are checked too."""
    shape = tuple(np.shape(x)) if isinstance(x, np.ndarray) else tuple(x.type.shape)
    if k != 2 or len(shape) != 4 or shape[2:] != (2, 2):
        return False
    value = x if isinstance(x, np.ndarray) else getattr(x, "get_value", lambda: None)()
    if value is None:  # a symbolic input: its layout is all that is known
        return True
    return bool(np.all(np.asarray(value) == np.eye(2)))


def filter_k2(
    d: Any, o: Any, first: Any, phi: Any, sigma: Any, f: Any, r_err: Any
) -> tuple[Any, Any]:
    """``log_c`` (P,) and ``A`` (P, 3, 3) of :func:`~bayes_alliance.kernels.kalman_k.filter_k`
    for two series with the unit mean columns as regressors, through
    :class:`~bayes_alliance.kernels.kalman_op.KalmanFactor` (pytensor).

    Shapes: ``d``, ``o`` (P, S, 2), ``first`` (P, S), ``phi``, ``sigma`` (2, 2) or (P, 2, 2)
    (random lags, random innovations), ``f`` (2, 2), ``r_err`` (P, S, 2) or anything that
    broadcasts to it.
    """
    d = pt.as_tensor_variable(d).astype("float64")
    o = pt.as_tensor_variable(o).astype("float64")
    phi = pt.as_tensor_variable(phi).astype("float64")
    sigma = pt.as_tensor_variable(sigma).astype("float64")
    f = pt.as_tensor_variable(f).astype("float64")
    if f.ndim != 2:
        raise ValueError(f"the first-cell covariance must be (2, 2), got {f.type}")
    r = pt.broadcast_to(pt.as_tensor_variable(r_err).astype("float64"), d.shape)
    cells = SimpleNamespace(x=d[..., 0], y=d[..., 1], obs_x=o[..., 0], obs_y=o[..., 1], first=first)
    lag = (phi[..., 0, 0], phi[..., 0, 1], phi[..., 1, 0], phi[..., 1, 1])
    # Sigma and F are symmetric: the filter reads their upper triangles (the value, as a
    # function of the parameters they are built from, and so its gradient are the same)
    innov = (sigma[..., 0, 0], sigma[..., 0, 1], sigma[..., 1, 1])
    log_c, fac = filter_factor_op(
        cells, lag, innov, (f[0, 0], f[0, 1], f[1, 1]), error=(r[..., 0], r[..., 1])
    )
    rows = (
        (fac.q, fac.g1, fac.g2),
        (fac.g1, fac.l11, fac.l12),
        (fac.g2, fac.l12, fac.l22),
    )
    acc = pt.stack([pt.stack(row, axis=-1) for row in rows], axis=1)
    return log_c, acc


__all__ = ["filter_k2", "unit_mean_columns"]
