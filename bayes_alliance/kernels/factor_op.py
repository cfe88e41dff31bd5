r"""The PyTensor side shared by the two Kalman-filter Ops: inputs, outputs, gradient wiring.

:class:`~bayes_alliance.kernels.kalman_op.KalmanFactor` (one patient per loop iteration) and
:class:`~bayes_alliance.kernels.kalman_batch.BatchFactor` (vectorised across patients) take the
same 17 inputs and give the same outputs: per patient ``log_c`` and the Gaussian factor
``(l11, l12, l22, g1, g2, q)`` of :func:`bayes_alliance.kernels.gaps.filter_factor`, and a
fourth-order "tape" that their vector-Jacobian products read. They differ only in their numba
kernels and in two input forms, which each Op states as class attributes:

* ``lag_ndims``: the dimensions the lag entries ``a, b, c, d`` may have: ``(2,)`` where they
  are (P, 1) columns or (P, S) grids, ``(1, 2)`` where (P,) vectors are taken as they are;
* ``shared_error``: whether a scalar measurement-error variance goes to the Op as one (1, 1)
  value for every cell instead of a (P, S) grid.

:class:`FactorOp` and :class:`FactorGrad` hold what the two Ops do alike (one level: each Op
subclasses them directly and names its kernels), :func:`factor_of` builds the inputs from a
:class:`~bayes_alliance.kernels.gaps.GapCells` grid and the dynamics' entries, and
:func:`register_numba` hands the kernels to PyTensor's numba linker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from bayes_alliance.kernels.marginal import MeanFactor

OUTPUTS = ("log_c", "l11", "l12", "l22", "g1", "g2", "q")
# float inputs that get gradients (the masks ox, oy, first at positions 2, 3, 4 do not)
DIFFERENTIABLE = (0, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
N_INPUTS = 17


def input_ndims(lag_ndims: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """The dimensions allowed at each input: ``dx, dy, ox, oy, first`` (P, S), the lags
    ``a, b, c, d`` (``lag_ndims``), ``f11, f12, f22`` (P,), ``s11, s12, s22`` and ``rx, ry``
    two-dimensional."""
    return ((2,),) * 5 + (lag_ndims,) * 4 + ((1,),) * 3 + ((2,),) * 5


def as_inputs(args: Sequence[Any], allowed: Sequence[tuple[int, ...]]) -> list[Any]:
    """``args`` as float64 tensors, each with one of the dimensions ``allowed`` at its position
    (a ValueError names the input that has not)."""
    out = [pt.as_tensor_variable(x).astype("float64") for x in args]
    for k, (x, nds) in enumerate(zip(out, allowed, strict=True)):
        if x.ndim not in nds:
            raise ValueError(f"input {k}: expected {nds} dimensions, got {x.type}")
    return out


class FactorGrad(Op):
    """Vector-Jacobian product of a :class:`FactorOp`: inputs the Op's 17, its tape and the
    seven output adjoints; outputs the adjoints of the :data:`DIFFERENTIABLE` inputs."""

    __props__ = ()
    kernel: ClassVar[Callable[..., Any]]
    lag_ndims: ClassVar[tuple[int, ...]]

    def make_node(self, *args: Any) -> Apply:
        inputs = as_inputs(args, (*input_ndims(self.lag_ndims), (4,)) + ((1,),) * 7)
        outputs = [inputs[i].type() for i in DIFFERENTIABLE]
        return Apply(self, inputs, outputs)

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list[Any]) -> None:
        for store, val in zip(output_storage, self.kernel(*inputs), strict=True):
            store[0] = val


class FactorOp(Op):
    """Per-patient ``log C`` and Gaussian factor of the observed cells (the inputs and outputs
    are described at :class:`~bayes_alliance.kernels.kalman_op.KalmanFactor`); the masks get
    no gradient, the tape output neither."""

    __props__ = ()
    kernel: ClassVar[Callable[..., Any]]
    vjp: ClassVar[FactorGrad]
    lag_ndims: ClassVar[tuple[int, ...]]
    shared_error: ClassVar[bool]

    def make_node(self, *args: Any) -> Apply:
        inputs = as_inputs(args, input_ndims(self.lag_ndims))
        tape = pt.tensor(dtype="float64", shape=(None,) * 4)
        return Apply(self, inputs, [*(pt.dvector() for _ in OUTPUTS), tape])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list[Any]) -> None:
        for store, val in zip(output_storage, self.kernel(*inputs), strict=True):
            store[0] = val

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        return [[i in DIFFERENTIABLE] * 7 + [False] for i in range(len(node.inputs))]

    def pullback(self, inputs: Any, outputs: Any, output_grads: Any) -> list[Any]:
        grads = [
            pt.zeros_like(out) if isinstance(g.type, DisconnectedType) else g
            for out, g in zip(outputs[:7], output_grads[:7], strict=True)
        ]
        pulled = iter(self.vjp.make_node(*inputs, outputs[7], *grads).outputs)
        return [
            next(pulled) if i in DIFFERENTIABLE else disconnected_type() for i in range(N_INPUTS)
        ]


def register_numba(op_type: type[FactorOp] | type[FactorGrad], cache_version: int) -> None:
    """Give PyTensor's numba linker (nutpie) the Op's kernel itself; ``cache_version`` is part
    of the compiled graph's cache key (raise it when a kernel changes)."""

    @register_funcify_default_op_cache_key(op_type)
    def _funcify(op: Op, node: Apply | None = None, **kwargs: Any) -> Any:
        return op_type.kernel, cache_version


def factor_of(
    op: FactorOp,
    cells: Any,
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
    first_cov: tuple[Any, Any, Any],
    by_session: bool = False,
    error: tuple[Any, Any] = (0.0, 0.0),
) -> tuple[Any, MeanFactor]:
    """``log_c`` and the :class:`~bayes_alliance.kernels.marginal.MeanFactor` of the grid
    ``cells`` through ``op``, the entries brought to the Op's input forms.

    ``phi`` entries are scalars, (P,) vectors or (P, S) grids (the lag matrix of the transition
    into each column: continuous time); ``first_cov`` entries scalars or (P,) vectors;
    ``error`` (measurement-error variances) entries scalars, (P,) vectors or (P, S) grids (one
    per cell); ``sigma`` entries scalars, (P,) vectors (random innovations) or, with
    ``by_session``, vectors over the transition columns (into columns 1..S-1), or (P, S) grids
    (one per transition into a column, column 0 unused: continuous time).
    """
    x = pt.as_tensor_variable(cells.x)
    n_p, n_s = x.shape[0], x.shape[1]
    lag_column = 1 not in op.lag_ndims

    def f64(e: Any) -> Any:
        return pt.as_tensor_variable(e).astype("float64")

    def per_patient(e: Any) -> Any:
        return pt.broadcast_to(f64(e), (n_p,))

    def lag(e: Any) -> Any:
        # (P, 1) or (P,): one lag matrix per patient; (P, S): one per transition into a column
        e = f64(e)
        if e.ndim == 2:
            return pt.broadcast_to(e, (n_p, n_s)) if lag_column else e
        return per_patient(e)[:, None] if lag_column else per_patient(e)

    def per_cell(e: Any) -> Any:
        e = f64(e)
        if e.ndim == 0 and op.shared_error:  # one value for every cell (0: no error): no grid
            return e.reshape((1, 1))
        if e.ndim == 1:  # one value per patient
            return pt.broadcast_to(e[:, None], (n_p, n_s))
        return pt.broadcast_to(e, (n_p, n_s))

    def per_column(e: Any) -> Any:
        # one row shared by all patients (1, S), or one per patient (P, S)
        e = f64(e)
        if by_session:
            return pt.concatenate([e[:1], e])[None, :]
        if e.ndim == 1:  # one value per patient
            return pt.broadcast_to(e[:, None], (n_p, n_s))
        if e.ndim == 2:  # one value per cell (continuous time)
            return pt.broadcast_to(e, (n_p, n_s))
        return pt.broadcast_to(e, (n_s,))[None, :]

    out = op.make_node(
        x,
        cells.y,
        cells.obs_x,
        cells.obs_y,
        cells.first,
        *(lag(e) for e in phi),
        *(per_patient(e) for e in first_cov),
        *(per_column(e) for e in sigma),
        *(per_cell(e) for e in error),
    ).outputs
    log_c, l11, l12, l22, g1, g2, q = out[:7]
    return log_c, MeanFactor(l11, l12, l22, g1, g2, q)


__all__ = [
    "DIFFERENTIABLE",
    "N_INPUTS",
    "OUTPUTS",
    "FactorGrad",
    "FactorOp",
    "as_inputs",
    "factor_of",
    "input_ndims",
    "register_numba",
]
