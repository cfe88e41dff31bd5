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

Every term is linear in the sums, so the pieces of several layouts are one product of their
sums joined on one axis (``S2`` packed as its upper triangle: :func:`owner_sums`) with the
layouts' ``W``, ``W E``, ``L0`` and ``log C`` joined the same way (:func:`stacked`,
:func:`pieces_factor`): one pass over the patients for all layouts.

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


def packed(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the upper triangle of an m x m matrix, the order of a packed
    ``S2`` (:func:`owner_sums`) and of :func:`stacked`'s packed ``W``."""
    return np.triu_indices(m)


def owner_sums(
    d: np.ndarray, owner: np.ndarray, n_owners: int, weight: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-owner ``n`` (P,), ``S1`` (P, m) and packed ``S2`` (P, m(m+1)/2) of pieces ``d``
    (k, m) owned by ``owner`` (k,) in ``0 .. n_owners - 1``, with weights (default 1).

    ``S2`` holds the upper triangle of ``sum d d'`` with its off-diagonal entries doubled, so
    that ``<W, S2> = sum_{i <= j} W_ij S2p_ij`` for a symmetric W: about half the entries."""
    k, m = d.shape
    w = np.ones(k) if weight is None else np.asarray(weight, dtype=float)
    owner = np.asarray(owner, dtype=np.int64)
    iu, ju = packed(m)
    prod = d[:, iu] * d[:, ju] * np.where(iu == ju, 1.0, 2.0)

    def per_owner(cols: np.ndarray) -> np.ndarray:
        out = [np.bincount(owner, w * cols[:, i], n_owners) for i in range(cols.shape[1])]
        return np.stack(out, axis=-1) if out else np.zeros((n_owners, 0))

    n = np.bincount(owner, w, n_owners).astype(float)  # int when there is no piece
    return {"n": n, "s1": per_owner(d), "s2": per_owner(prod)}


def stacked(
    layouts: tuple[Pattern, ...], conds: list[tuple[Any, Any, int]], xp: Any = np
) -> tuple[Any, Any, Any, Any]:
    """What the pieces of several layouts need of the dynamics, stacked in layout order (the
    order of :func:`pieces_factor`'s sums): packed ``W`` (..., sum T), ``W E`` (..., sum m, 2),
    the entries (11, 12, 22) of ``L0 = E'WE`` (..., J, 3) and one piece's ``log C`` (..., J),
    from :func:`conditional`'s ``(W, log |V|, rows)`` per layout."""
    w2, we, l0, lc = [], [], [], []
    for pattern, (w, logdet, rows) in zip(layouts, conds, strict=True):
        ent = entries(pattern)
        e = np.array([[1.0 - j, float(j)] for _, j in ent])  # (m, 2): entry -> variable
        iu, ju = packed(len(ent))
        w2.append(w[..., iu, ju])
        w_e = w @ e
        l_0 = _t(e, xp) @ w_e
        we.append(w_e)
        l0.append(xp.stack([l_0[..., 0, 0], l_0[..., 0, 1], l_0[..., 1, 1]], axis=-1))
        lc.append(-0.5 * (rows * marginal.LOG_2PI + logdet))
    return (
        xp.concatenate(w2, axis=-1),
        xp.concatenate(we, axis=-2),
        xp.stack(l0, axis=-2),
        xp.stack(lc, axis=-1),
    )


def pieces_factor(
    layouts: tuple[Pattern, ...],
    conds: list[tuple[Any, Any, int]],
    sums: dict[str, Any],
    known: tuple[Any, Any],
    xp: Any = np,
) -> tuple[Any, marginal.MeanFactor]:
    """``log C`` and the factor in M of each patient's pieces of several layouts (module
    docstring), from :func:`conditional`'s output per layout and the pieces' sums stacked in
    layout order: ``n`` (P, J), ``s1`` (P, sum m) and packed ``s2`` (P, sum T)
    (:func:`owner_sums` of each layout, joined on the last axis); ``known``: the known part of
    the mean (per patient or scalar, centred like ``d``).

    Summed over layouts the terms are linear in the sums. With the dynamics shared by all
    patients (``W`` without leading axes) they are three matrix products of the stacked sums
    with the stacked dynamics; else a broadcast product and a sum over the last axis each.
    The matrix products cost less per log density and gradient at L-gaps (2,000 x 20,
    without fast-math, as fits compile): 738-750 against 809-840 us
    (``benchmarks/gap_cost.py``), and the command line's sampling 9.7-10.1 against
    10.4-10.7 s (``benchmarks/cli_process.py``; no BLAS thread limit, 2 cores)."""
    w2, we, l0, lc = stacked(layouts, conds, xp)
    n, s1, s2 = sums["n"], sums["s1"], sums["s2"]
    if w2.ndim == 1 and we.ndim == 2:  # shared dynamics: matrix products
        quad = xp.dot(s2, w2)
        u = xp.dot(s1, we)
        ln = xp.dot(n, xp.concatenate([l0, lc[:, None]], axis=1))
        u1, u2 = u[:, 0], u[:, 1]
        l11, l12, l22, log_c = ln[:, 0], ln[:, 1], ln[:, 2], ln[:, 3]
    else:
        quad = (s2 * w2).sum(axis=-1)
        u1, u2 = (s1 * we[..., 0]).sum(axis=-1), (s1 * we[..., 1]).sum(axis=-1)
        l11, l12, l22 = ((n * l0[..., k]).sum(axis=-1) for k in range(3))
        log_c = (n * lc).sum(axis=-1)
    kx, ky = known
    lk1, lk2 = l11 * kx + l12 * ky, l12 * kx + l22 * ky
    q = quad - 2 * (u1 * kx + u2 * ky) + kx * lk1 + ky * lk2
    return log_c, marginal.MeanFactor(l11, l12, l22, u1 - lk1, u2 - lk2, q)


def pattern_factor(
    pattern: Pattern,
    w: Any,
    logdet: Any,
    rows: int,
    sums: dict[str, Any],
    known: tuple[Any, Any],
    xp: Any = np,
) -> tuple[Any, marginal.MeanFactor]:
    """:func:`pieces_factor` of one layout, from :func:`owner_sums`' ``n`` (P,), ``s1`` and
    packed ``s2``."""
    one = {"n": sums["n"][..., None], "s1": sums["s1"], "s2": sums["s2"]}
    return pieces_factor((pattern,), [(w, logdet, rows)], one, known, xp)
