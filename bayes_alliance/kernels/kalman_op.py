r"""The Kalman filter of :func:`bayes_alliance.kernels.gaps.filter_factor` as a pytensor Op.

Written as a pytensor graph the filter is unrolled or scanned over the sessions, and compiling
the model's logp and gradient takes minutes. Here the filter is one Op whose forward pass and
vector-Jacobian product are the numba kernels of :mod:`bayes_alliance.kernels.kalman_op_nb`
(the algorithm is described there; that module imports no PyTensor, so post-hoc code uses the
kernels without it). The numba linker (nutpie) calls the kernels natively; the default linker
calls the same kernels from ``perform``.
"""

from __future__ import annotations

from typing import Any

from bayes_alliance.kernels.factor_op import FactorGrad, FactorOp, factor_of, register_numba
from bayes_alliance.kernels.kalman_op_nb import (
    kalman_factor,
    kalman_factor_cells,
    kalman_factor_forward,
    kalman_factor_vjp,
    kalman_factor_vjp_cells,
)
from bayes_alliance.kernels.marginal import MeanFactor

CACHE_VERSION = 7


class KalmanFactorGrad(FactorGrad):
    """Vector-Jacobian product of :class:`KalmanFactor` (kernel :func:`kalman_factor_vjp_cells`)."""

    kernel = staticmethod(kalman_factor_vjp_cells)
    lag_ndims = (2,)


class KalmanFactor(FactorOp):
    """Per-patient ``log C`` and Gaussian factor of the observed cells (see the module).

    Inputs: ``dx, dy, ox, oy, first`` (P, S): data minus the known mean (0 where not observed),
    observed masks and first-cell mask; ``a, b, c, d`` (P, 1) or (P, S): lag entries of each
    patient or of each transition into a column (continuous time); ``f11, f12, f22`` (P,):
    first-cell covariance entries; ``s11, s12, s22`` (P, S): innovation covariance entries of the
    transition into each column (column 0 unused), one row per patient or one row for all
    (1, S); ``rx, ry`` (P, S): measurement-error variances of the cells. Outputs (P,): ``log_c, l11, l12, l22, g1, g2, q``, and
    the states of the forward sweep (P, S, 3, 9) that the gradient reads (no gradient).
    """

    kernel = staticmethod(kalman_factor_cells)
    vjp = KalmanFactorGrad()
    lag_ndims = (2,)
    shared_error = False


kalman_factor_op = KalmanFactor()
register_numba(KalmanFactor, CACHE_VERSION)
register_numba(KalmanFactorGrad, CACHE_VERSION)


def filter_factor_op(
    cells: Any,
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
    first_cov: tuple[Any, Any, Any],
    by_session: bool = False,
    error: tuple[Any, Any] = (0.0, 0.0),
) -> tuple[Any, MeanFactor]:
    """:func:`bayes_alliance.kernels.gaps.filter_factor` through :class:`KalmanFactor` (pytensor).

    The entries' shapes are those of :func:`~bayes_alliance.kernels.factor_op.factor_of`
    (scalars, per-patient vectors, per-cell grids; ``sigma`` over the transition columns with
    ``by_session``). Returns ``log_c`` and the
    :class:`~bayes_alliance.kernels.marginal.MeanFactor`.
    """
    return factor_of(kalman_factor_op, cells, phi, sigma, first_cov, by_session, error)


__all__ = [
    "KalmanFactor",
    "KalmanFactorGrad",
    "filter_factor_op",
    "kalman_factor",
    "kalman_factor_cells",
    "kalman_factor_forward",
    "kalman_factor_vjp",
    "kalman_factor_vjp_cells",
]
