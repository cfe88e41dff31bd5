"""Series with gaps cut at their fully observed cells: short gaps as sums of products, the rest
through the Kalman filter (the integrated likelihood's path for simple models with gaps).

Without measurement error a fully observed cell fixes the state, so a patient's density given
the latent mean is a product of pieces that meet at fully observed cells
(:mod:`bayes_alliance.kernels.patterns`):

* the first cell, when it is fully observed (pattern ``FIRST``, from ``N(0, F)``);
* each stretch from one fully observed cell to the next whose layout is in
  :data:`~bayes_alliance.kernels.patterns.BETWEEN` (next session, or one session between them
  skipped or half observed): per-patient sums of products, O(patients) per evaluation;
* every other stretch (a longer gap, the cells before the first fully observed cell, the cells
  after the last one, a series with no fully observed cell) as a short series of its own
  through the batched filter (:mod:`bayes_alliance.kernels.kalman_batch`), its rows sorted by
  length so that a block of the filter stops at its longest row.

A stretch that starts at a fully observed cell c is filtered from ``N(0, F)`` at c, which
gives ``p(z_c) p(rest | z_c)``; ``p(z_c)`` is taken off again as a ``FIRST`` piece of weight
-1 (exact for any positive-definite F; near a unit root F is large, and adding and taking off its
log density at a cell inside the series costs some digits that the filter alone keeps). The result
is the filter's density of the whole series (tests compare both to 1e-9), at a
fraction of the cells: at the benchmark's L with gaps (``benchmarks/gap_cost.py``) the filter
reads about a tenth of the grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import marginal, patterns

# The closed-form layouts, in the order of the ``piece_*`` containers' blocks: the first cell
# (from N(0, F)), then the stretches between fully observed cells that take sums of products.
PIECES: tuple[patterns.Pattern, ...] = (patterns.FIRST, *patterns.BETWEEN)


def segment_containers(data: SessionData, loc: tuple[float, float]) -> dict[str, np.ndarray]:
    """The containers of the segment path (module docstring), by their ``pm.Data`` names.

    ``piece_n`` (P, J), ``piece_s1`` (P, sum m), ``piece_s2`` (P, sum T): per-patient sums of
    the closed-form layouts :data:`PIECES` (:func:`~bayes_alliance.kernels.patterns.owner_sums`,
    values centred at ``loc``), joined in layout order.
    ``segment_*``: the filtered stretches as a filter grid (S, N) from row 0 (raw values, masks,
    ``segment_first`` 1 in row 0), sorted by length; ``segment_patient`` their patients."""
    n_p, n_s = data.n_patients, data.x.shape[1]
    inside = data.in_series
    ox, oy = inside & data.observed_x, inside & data.observed_y
    full = ox & oy
    x = np.where(ox, data.x, 0.0)
    y = np.where(oy, data.y, 0.0)
    xc, yc = np.where(ox, data.x - loc[0], 0.0), np.where(oy, data.y - loc[1], 0.0)
    pieces: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in PIECES]

    def add(j: int, p: np.ndarray, t0: np.ndarray, weight: float = 1.0) -> None:
        cols = [(xc if v == 0 else yc)[p, t0 + t] for t, v in patterns.entries(PIECES[j])]
        pieces[j].append((np.stack(cols, axis=1), p, weight))

    first, last = np.asarray(data.first), np.asarray(data.last)
    p_all = np.arange(n_p)
    starts_full = full[p_all, first]
    add(0, p_all[starts_full], first[starts_full])
    # consecutive fully observed cells (i, j) of each patient: a closed-form layout or a stretch
    pf, tf = np.nonzero(full)  # by patient, then session
    same = pf[1:] == pf[:-1]
    pp, ti, tj = pf[1:][same], tf[:-1][same], tf[1:][same]
    closed = np.zeros(len(pp), dtype=bool)
    for j, layout in enumerate(PIECES[1:], start=1):
        hit = tj - ti == len(layout) - 1
        for k, (mx, my) in enumerate(layout[1:-1], start=1):
            at = np.minimum(ti + k, n_s - 1)  # only read where hit
            hit &= (ox[pp, at] == mx) & (oy[pp, at] == my)
        closed |= hit
        add(j, pp[hit], ti[hit])
    # the stretches the filter takes: (patient, first cell, last cell, starts at a full cell)
    stretches = [
        (int(q), int(i), int(k), True)
        for q, i, k in zip(*(e[~closed] for e in (pp, ti, tj)), strict=True)
    ]
    any_full = full.any(axis=1)
    first_full = np.argmax(full, axis=1)
    last_full = n_s - 1 - np.argmax(full[:, ::-1], axis=1)
    for q in range(n_p):
        a, b = int(first[q]), int(last[q])
        if not any_full[q]:
            stretches.append((q, a, b, False))
            continue
        if first_full[q] > a:
            stretches.append((q, a, int(first_full[q]), False))
        if last_full[q] < b:
            stretches.append((q, int(last_full[q]), b, True))
    known_start = [(q, t0) for q, t0, _, at_full in stretches if at_full]
    if known_start:
        kp, kt = (np.array(e) for e in zip(*known_start, strict=True))
        add(0, kp, kt, weight=-1.0)
    blocks = []
    for j, layout in enumerate(PIECES):
        m = len(patterns.entries(layout))
        parts = pieces[j]
        d = np.concatenate([e[0] for e in parts]) if parts else np.zeros((0, m))
        owner = np.concatenate([e[1] for e in parts]) if parts else np.zeros(0, np.int64)
        weight = np.concatenate([np.full(len(e[1]), e[2]) for e in parts]) if parts else None
        blocks.append(patterns.owner_sums(d.reshape(-1, m), owner, n_p, weight))
    out = {
        "piece_n": np.stack([e["n"] for e in blocks], axis=-1),
        "piece_s1": np.concatenate([e["s1"] for e in blocks], axis=-1),
        "piece_s2": np.concatenate([e["s2"] for e in blocks], axis=-1),
    }
    out.update(_stretch_grid(stretches, x, y, ox, oy, n_s))
    return out


def _stretch_grid(
    stretches: list[tuple[int, int, int, bool]],
    x: np.ndarray,
    y: np.ndarray,
    ox: np.ndarray,
    oy: np.ndarray,
    n_s: int,
) -> dict[str, np.ndarray]:
    """The filtered stretches as the filter's transposed grids (S, N), longest first."""
    order = sorted(range(len(stretches)), key=lambda i: stretches[i][1] - stretches[i][2])
    length = max((b - a + 1 for _, a, b, _ in stretches), default=1)
    n = len(stretches)
    grids = {k: np.zeros((length, n)) for k in ("x", "y", "ox", "oy", "first")}
    owner = np.empty(n, dtype=np.int64)
    for col, i in enumerate(order):
        q, a, b, _ = stretches[i]
        owner[col] = q
        span = slice(a, b + 1)
        k = b - a + 1
        for key, src in (("x", x), ("y", y), ("ox", ox), ("oy", oy)):
            grids[key][:k, col] = src[q, span]
        grids["first"][0, col] = 1.0
    return {
        "segment_predictor": grids["x"],
        "segment_outcome": grids["y"],
        "segment_observed_predictor": grids["ox"],
        "segment_observed_outcome": grids["oy"],
        "segment_first": grids["first"],
        "segment_patient": owner,
    }


def piece_factor(
    cells: dict[str, Any],
    known: tuple[Any, Any],
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
    first: tuple[Any, Any, Any],
    xp: Any,
) -> tuple[Any, marginal.MeanFactor]:
    """Each patient's ``log C`` and factor from the closed-form pieces (``known``: the known
    mean minus ``loc``, per patient or scalar)."""
    conds = [
        patterns.conditional(layout, phi, sigma, None if j else first, xp)
        for j, layout in enumerate(PIECES)
    ]
    sums = {k: cells[f"piece_{k}"] for k in ("n", "s1", "s2")}
    return patterns.pieces_factor(PIECES, conds, sums, known, xp)
