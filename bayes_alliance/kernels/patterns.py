r"""Pieces of a series with a fixed pattern of observed entries, in closed form, from sums of
products: the cheap exact path for the short gaps between fully observed cells.

Without measurement error, a fully observed cell fixes the state, so given the latent mean M a
patient's series factorises at its fully observed cells: the density of the entries after a
fully observed cell c up to and including the next one depends on the data through c alone.
A *pattern* is one such piece's layout, a tuple of cells, each ``(x observed, y observed)``.
Its first cell is either fully observed and conditioned on (``first=None`` in
:func:`conditional`: the density of what follows it) or the series' first cell, drawn from the
first-cell distribution ``N(0, F)``.

The piece's observed entries ``d`` (in cell order, x before y) are Gaussian; written as
``N(R (d - E k_0 - E M); 0, V)``, with ``E`` mapping (M_x, M_y) to the entries and ``k_0`` the
known part of the mean, ``W = R' V^-1 R`` and ``log |V|`` depend on Phi, Sigma and F alone
(:func:`conditional`, from the stacked states' covariance). Summed over the pieces of one
pattern in a patient, with ``n`` pieces, ``S1 = sum d`` and ``S2 = sum d d'``::

    L0 = E'WE,   U = S1' W E,
    q  = <W, S2> - 2 U k + n k' L0 k,
    g  = U' - n L0 k,   L = n L0,
    log C = -n/2 (rows(V) log 2 pi + log |V|),

the terms of :class:`~bayes_alliance.kernels.marginal.MeanFactor` (``exp(-1/2 [q - 2 g'M +
M'LM]) C``), so a patient's pieces add up to the factor its whole series gives. A lag-one
transition between two fully observed cells is the pattern ``((1, 1), (1, 1))``; one skipped
session between them is ``((1, 1), (0, 0), (1, 1))`` (Phi squared and ``Sigma + Phi Sigma Phi'``
in effect). The sums may carry weights (``n`` negative), which subtracts a piece.

Functions take ``xp`` (numpy or ``pytensor.tensor``); parameters are scalars (the model's
segment path has shared dynamics) or per-patient vectors (batched matrices, slow in a graph).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_alliance.kernels import marginal

Pattern = tuple[tuple[int, int], ...]

# The first cell alone, from N(0, F): a series' first cell when it is fully observed.
FIRST: Pattern = ((1, 1),)
LAG1: Pattern = ((1, 1), (1, 1))
SKIP: Pattern = ((1, 1), (0, 0), (1, 1))
X_ONLY: Pattern = ((1, 1), (1, 0), (1, 1))
Y_ONLY: Pattern = ((1, 1), (0, 1), (1, 1))
# The pieces between fully observed cells the sums of products take (start "known"); longer or
# other gaps go through the Kalman filter.
BETWEEN: tuple[Pattern, ...] = (LAG1, SKIP, X_ONLY, Y_ONLY)


def entries(pattern: Pattern) -> list[tuple[int, int]]:
    """The observed entries of a pattern as (cell, variable), variable 0 = x, 1 = y, in the
    order of the data vector ``d``."""
    return [(t, j) for t, cell in enumerate(pattern) for j in (0, 1) if cell[j]]


def _pair(a: Any, b: Any, c: Any, d: Any, xp: Any) -> Any:
    """The 2x2 matrix [[a, b], [c, d]] (entries scalars or per-patient vectors) as (..., 2, 2)."""
    a, b, c, d = xp.broadcast_arrays(a, b, c, d)
    return xp.stack([xp.stack([a, b], axis=-1), xp.stack([c, d], axis=-1)], axis=-2)


def _t(m: Any, xp: Any) -> Any:
    return xp.swapaxes(m, -1, -2)


def conditional(
    pattern: Pattern,
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
    first: tuple[Any, Any, Any] | None = None,
    xp: Any = np,
) -> tuple[Any, Any, int]:
    """The pattern's density as ``N(R d; 0, V)``: ``W = R' V^-1 R`` (..., m, m) over the data
    vector ``d``, ``log |V|`` and the number of rows of V.

    ``first`` is F for a piece that starts at a series' first cell (``w_0 ~ N(0, F)``, R = I);
    None conditions on the first cell (which must be fully observed): ``R = [-B, I]`` with ``B``
    the regression of the later entries on the first cell's. The stacked states have
    ``Cov(w_j, w_i) = Phi^(j-i) C_i`` (j >= i), ``C_i = Phi C_(i-1) Phi' + Sigma`` from
    ``C_0 = F`` or, given ``w_0``, ``C_0 = 0``; given ``w_0`` their mean is ``Phi^j w_0``."""
    known = first is None
    if known and pattern[0] != (1, 1):
        raise ValueError("a known start needs a fully observed first cell")
    # one batch shape for every matrix (per-patient lags with shared innovations, say)
    every = xp.broadcast_arrays(*phi, *sigma, *(first or (0.0, 0.0, 0.0)))
    a, b, c, d, s11, s12, s22, f11, f12, f22 = every
    fi = _pair(a, b, c, d, xp)
    sig = _pair(s11, s12, s12, s22, xp)
    n = len(pattern)
    powers = [None, fi]  # Phi^1, Phi^2, ...
    for _ in range(2, n):
        powers.append(powers[-1] @ fi)
    cov = [None] * n
    if known:
        cov[1] = sig
        rows = range(1, n)
    else:
        cov[0] = _pair(f11, f12, f12, f22, xp)
        rows = range(n)
    for i in range(rows[0] + 1, n):
        cov[i] = fi @ cov[i - 1] @ _t(fi, xp) + sig
    # the stacked covariance of the states in ``rows`` (blocks Phi^(j-i) C_i below the diagonal)
    blocks = []
    for j in rows:
        row: list[Any] = []
        for i in rows:
            if i == j:
                row.append(cov[j])
            elif i < j:
                row.append(powers[j - i] @ cov[i])
            else:
                row.append(cov[j] @ _t(powers[i - j], xp))
        blocks.append(xp.concatenate(row, axis=-1))
    stacked = xp.concatenate(blocks, axis=-2)
    ent = entries(pattern)
    later = [(t, j) for t, j in ent if not (known and t == 0)]
    sel = np.zeros((len(later), 2 * len(rows)))
    for r, (t, j) in enumerate(later):
        sel[r, 2 * (t - rows[0]) + j] = 1.0
    v = sel @ stacked @ sel.T
    inv = xp.linalg.inv(v)
    if known:
        # R = [-B, I]: W = [[B' Vi B, -B' Vi], [-Vi B, Vi]]
        bm = sel @ xp.concatenate([powers[t] for t in rows], axis=-2)
        vb = inv @ bm
        top = xp.concatenate([_t(bm, xp) @ vb, -_t(vb, xp)], axis=-1)
        w = xp.concatenate([top, xp.concatenate([-vb, inv], axis=-1)], axis=-2)
    else:
        w = inv
    return w, xp.log(xp.linalg.det(v)), len(later)


def piece_sums(d: np.ndarray, weight: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``n``, ``S1`` (m,) and ``S2`` (m, m) of pieces ``d`` (pieces, m) with weights (default 1)."""
    w = np.ones(d.shape[0]) if weight is None else weight
    return {"n": w.sum(), "s1": w @ d, "s2": (d * w[:, None]).T @ d}


def pattern_factor(
    pattern: Pattern,
    w: Any,
    logdet: Any,
    rows: int,
    sums: dict[str, Any],
    known: tuple[Any, Any],
    xp: Any = np,
) -> tuple[Any, marginal.MeanFactor]:
    """``log C`` and the factor in M of a patient's pieces of one pattern (module docstring),
    from :func:`conditional`'s ``W``, ``log |V|`` and rows, the pieces' sums (``n`` (P,), ``s1``
    (P, m), ``s2`` (P, m, m), or one patient's) and the known part of the mean ``known``
    (per patient or scalar, centred like ``d``)."""
    ent = entries(pattern)
    e = np.array([[1.0 - j, float(j)] for _, j in ent])  # (m, 2): entry -> variable
    kx, ky = known
    n, s1, s2 = sums["n"], sums["s1"], sums["s2"]
    l0 = _t(e, xp) @ w @ e  # E'WE (..., 2, 2)
    # S1'WE as a broadcast product and a sum: a matrix product would go to BLAS, whose threads
    # compete with the sampler's chains, and per-patient W would be a loop of tiny products
    u = (s1[..., :, None] * (w @ e)).sum(axis=-2)
    u1, u2 = u[..., 0], u[..., 1]
    l11, l12, l22 = l0[..., 0, 0], l0[..., 0, 1], l0[..., 1, 1]
    lk1, lk2 = l11 * kx + l12 * ky, l12 * kx + l22 * ky
    quad = (w * s2).sum(axis=(-2, -1))
    q = quad - 2 * (u1 * kx + u2 * ky) + n * (kx * lk1 + ky * lk2)
    factor = marginal.MeanFactor(n * l11, n * l12, n * l22, u1 - n * lk1, u2 - n * lk2, q)
    log_c = -0.5 * n * (rows * marginal.LOG_2PI + logdet)
    return log_c, factor
