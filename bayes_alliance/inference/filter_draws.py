r"""The Kalman filter of one post-hoc draw through the model's numba kernels (no PyTensor).

After sampling, every draw's latent means are drawn from each patient's Gaussian factor in
the mean, and the pointwise log-likelihood needs each observed entry's innovation given the
mean. Both come from the filter of :func:`bayes_alliance.kernels.gaps.filter_factor`; here it
runs as compiled kernels instead of numpy calls over the patients (some 2,600 per draw at 20
sessions):

* :func:`gap_filter`: the factors only, through the model's batched kernel
  (:func:`bayes_alliance.kernels.kalman_batch_nb.batch_factor`), patients in SIMD lanes;
* :func:`filter_cells`: the factors and, with ``innovations``, every cell's innovation
  (:func:`bayes_alliance.kernels.kalman_op_nb.kalman_factor_innovations`, one patient at a
  time), for the pointwise log-likelihood and for dynamics the batched form does not take
  here (one lag matrix per cell, session-specific innovations per patient).

Both do the numpy filter's IEEE operations in its order (the kernels skip an unobserved
entry where numpy adds zeros and multiplies by one), so factors and innovations equal the
numpy filter's to the last bit and ``log C`` to rounding (one log of a running product of
the prediction variances); ``tests/test_posthoc_factor.py`` checks both. (One exception no
draw reaches: an error-variance grid holding 0 at an observed cell takes the kernel's exact
branch there but numpy's error branch, a difference of about 1e-17. Error variances are
squared SDs, and the indicators' added variance is positive.)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from bayes_alliance.kernels.gaps import GapCells, Innovations
from bayes_alliance.kernels.marginal import MeanFactor
from bayes_alliance.model.structure import Dynamics


def compiled_filter(dyn: Dynamics) -> bool:
    """Whether :func:`gap_factor` takes the draw's dynamics: innovation covariances that are
    shared, per patient or per transition, not per patient and transition; lag matrices per
    patient, not per cell (the others take :func:`filter_cells`)."""
    return not (dyn.by_cell or (dyn.by_session and any(np.ndim(e) > 1 for e in dyn.sigma)))


def kernel_inputs(
    cells: GapCells, dyn: Dynamics, error: tuple[Any, Any], batched: bool
) -> tuple[np.ndarray, ...]:
    """The 17 inputs of the filter kernels from a draw's cells, dynamics and error variances.

    Grids are (P, S): for the batched kernel (``batched``) transposed views of (S, P) arrays
    (a column contiguous over the patients), else row-major (a patient's row contiguous).
    Lag entries are (P,) or (P, S) (the transition into each column); first-cell covariances
    (P,); innovation entries one row (1, S) shared by all patients or (P, S), column t the
    transition into column t (column 0 unused); error variances (P, S), or (1, 1) for one
    value of every cell in the batched kernel.
    """
    n_p, n_s = np.shape(cells.x)
    order: Literal["F", "C"] = "F" if batched else "C"

    def grid(e: Any) -> np.ndarray:
        e = np.asarray(e, dtype=float)
        laid = e.flags.f_contiguous if batched else e.flags.c_contiguous
        if e.shape == (n_p, n_s) and laid:
            return e
        return np.array(np.broadcast_to(e, (n_p, n_s)), order=order)

    def per_patient(e: Any) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(e, dtype=float), (n_p,)))

    def lag(e: Any) -> np.ndarray:
        return grid(e) if np.ndim(e) == 2 else per_patient(e)

    def per_column(e: Any) -> np.ndarray:
        e = np.asarray(e, dtype=float)
        if dyn.by_session:  # over the transitions into columns 1..S-1
            e = np.concatenate([e[..., :1], e], axis=-1)
            return grid(e) if e.ndim == 2 else np.array(e[None, :], order=order)
        if e.ndim == 2:  # one per patient and transition (continuous time)
            return grid(e)
        if e.ndim == 1:  # one per patient
            return grid(e[:, None])
        return np.full((1, n_s), float(e), order=order)

    def per_cell(e: Any) -> np.ndarray:
        e = np.asarray(e, dtype=float)
        if e.ndim == 0 and batched:  # one variance for every cell (0: no error)
            return np.full((1, 1), float(e))
        return grid(e[:, None] if e.ndim == 1 else e)

    return (
        *(grid(m) for m in (cells.x, cells.y, cells.obs_x, cells.obs_y, cells.first)),
        *(lag(e) for e in dyn.phi),
        *(per_patient(e) for e in dyn.first),
        *(per_column(e) for e in dyn.sigma),
        *(per_cell(e) for e in error),
    )


def gap_filter(
    cells: GapCells, dyn: Dynamics, error: tuple[Any, Any]
) -> tuple[np.ndarray, MeanFactor]:
    """Each patient's ``log C`` and factor in the latent mean from the observed cells of one
    draw, through the model's batched kernel (module docstring), for dynamics that
    :func:`compiled_filter` accepts. About a third of the per-patient kernel's time (L-gaps,
    2,000 x 20: the forward kernels alone 0.40 against 1.40 ms,
    ``benchmarks/gap_cost.py --kernels``; this function per draw 0.43-0.46 against
    1.15-1.32 ms, profiled in ``posthoc.complete``).
    """
    from bayes_alliance.kernels.kalman_batch_nb import batch_factor

    out = batch_factor(*kernel_inputs(cells, dyn, error, batched=True))
    return out[0], MeanFactor(*out[1:7])


def gap_factor(cells: GapCells, dyn: Dynamics, error: tuple[Any, Any]) -> MeanFactor:
    """Each patient's factor in the latent mean (:func:`gap_filter` without its constant)."""
    return gap_filter(cells, dyn, error)[1]


def filter_cells(
    cells: GapCells, dyn: Dynamics, error: tuple[Any, Any], innovations: bool = True
) -> tuple[np.ndarray, MeanFactor, dict[str, Innovations] | None]:
    """:func:`bayes_alliance.kernels.gaps.filter_factor` of one draw (any dynamics, per-cell
    innovations with ``innovations``) through the per-patient kernel: ``log C``, the factor
    and the innovations of the x and y entries by ``"x"`` and ``"y"`` (None without)."""
    from bayes_alliance.kernels.kalman_op_nb import (
        kalman_factor_forward,
        kalman_factor_innovations,
    )

    args = kernel_inputs(cells, dyn, error, batched=False)
    if not innovations:
        out = kalman_factor_forward(*args)
        return out[0], MeanFactor(*out[1:7]), None
    out, inn = kalman_factor_innovations(*args)
    masks = {"x": np.asarray(cells.obs_x), "y": np.asarray(cells.obs_y)}
    per_var = {
        var: Innovations(inn[k], inn[k + 1], inn[k + 2], inn[k + 3], masks[var])
        for var, k in (("x", 0), ("y", 4))
    }
    return out[0], MeanFactor(*out[1:7]), per_var


__all__ = ["compiled_filter", "filter_cells", "gap_factor", "gap_filter", "kernel_inputs"]
