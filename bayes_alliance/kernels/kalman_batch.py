r"""The model's default Kalman-filter Op: :mod:`bayes_alliance.kernels.kalman_op`'s filter
vectorised across patients, its forward and reverse kernels in
:mod:`bayes_alliance.kernels.kalman_batch_nb` (the algorithm, the memory layout and the input
forms are described there; that module imports no PyTensor).
"""

from __future__ import annotations

from typing import Any

from bayes_alliance.kernels.factor_op import FactorGrad, FactorOp, factor_of, register_numba
from bayes_alliance.kernels.kalman_batch_nb import batch_factor, batch_factor_vjp
from bayes_alliance.kernels.marginal import MeanFactor

CACHE_VERSION = 2


class BatchFactorGrad(FactorGrad):
    """Vector-Jacobian product of :class:`BatchFactor` (kernel :func:`batch_factor_vjp`)."""

    kernel = staticmethod(batch_factor_vjp)
    lag_ndims = (1, 2)


class BatchFactor(FactorOp):
    """:class:`~bayes_alliance.kernels.kalman_op.KalmanFactor` vectorised across patients
    (same inputs and outputs; the lags may also be (P, S): the transition into each column;
    the fourth-order output is empty)."""

    kernel = staticmethod(batch_factor)
    vjp = BatchFactorGrad()
    lag_ndims = (1, 2)
    shared_error = True


batch_factor_op = BatchFactor()
register_numba(BatchFactor, CACHE_VERSION)
register_numba(BatchFactorGrad, CACHE_VERSION)


def batch_filter_factor_op(
    cells: Any,
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
    first_cov: tuple[Any, Any, Any],
    by_session: bool = False,
    error: tuple[Any, Any] = (0.0, 0.0),
) -> tuple[Any, MeanFactor]:
    """:func:`~bayes_alliance.kernels.kalman_op.filter_factor_op` through :class:`BatchFactor`.

    The same arguments, and ``phi`` entries may also be (P, S) grids: the lags of the
    transition into each column (column 0 unused); a scalar ``error`` entry goes to the Op as
    (1, 1). The kernels read the grids fastest when
    they are transposed views of (S, P) arrays (``cells.x`` = ``xt.T``): a column of the grid
    is then contiguous over the patients.
    """
    return factor_of(batch_factor_op, cells, phi, sigma, first_cov, by_session, error)


__all__ = [
    "BatchFactor",
    "BatchFactorGrad",
    "batch_factor",
    "batch_factor_vjp",
    "batch_filter_factor_op",
]
