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

import itertools
from typing import Any

import numpy as np

from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import marginal, patterns

# The closed-form patterns by container name: ``piece_<name>_n`` (P,), ``_s1`` (P, m) and
# ``_s2`` (P, m, m), the sums over each patient's pieces (values centred at the data means).
PIECES: dict[str, patterns.Pattern] = {
    "first": patterns.FIRST,
    "lag1": patterns.LAG1,
    "skip": patterns.SKIP,
    "xonly": patterns.X_ONLY,
    "yonly": patterns.Y_ONLY,
}


def _sums(d: np.ndarray, owner: np.ndarray, weight: np.ndarray, n_p: int) -> dict[str, np.ndarray]:
    """Per-patient n (P,), S1 (P, m) and S2 (P, m, m) of pieces ``d`` (k, m) owned by
    patients ``owner``, with weights."""
    m = d.shape[1]
    n = np.bincount(owner, weight, n_p).astype(float)  # int when there is no piece
    s1 = np.zeros((n_p, m))
    s2 = np.zeros((n_p, m, m))
    np.add.at(s1, owner, weight[:, None] * d)
    np.add.at(s2, owner, weight[:, None, None] * d[:, :, None] * d[:, None, :])
    return {"n": n, "s1": s1, "s2": s2}


def segment_containers(data: SessionData, loc: tuple[float, float]) -> dict[str, np.ndarray]:
    """The containers of the segment path (module docstring), by their ``pm.Data`` names.

    ``piece_<name>``: per-patient sums of the closed-form pattern (values centred at ``loc``).
    ``segment_*``: the filtered stretches as a filter grid (S, N) from row 0 (raw values, masks,
    ``segment_first`` 1 in row 0), sorted by length; ``segment_patient`` their patients."""
    n_p, n_s = data.n_patients, data.x.shape[1]
    inside = data.in_series
    ox, oy = inside & data.observed_x, inside & data.observed_y
    full = ox & oy
    x = np.where(ox, data.x, 0.0)
    y = np.where(oy, data.y, 0.0)
    xc, yc = np.where(ox, data.x - loc[0], 0.0), np.where(oy, data.y - loc[1], 0.0)
    pieces: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {k: [] for k in PIECES}

    def add(name: str, p: np.ndarray, t0: np.ndarray, weight: float = 1.0) -> None:
        cols = [(xc if j == 0 else yc)[p, t0 + t] for t, j in patterns.entries(PIECES[name])]
        d = np.stack(cols, axis=1) if cols else np.zeros((len(p), 0))
        pieces[name].append((d, p, np.full(len(p), weight)))

    first = np.asarray(data.first)
    p_all = np.arange(n_p)
    starts_full = full[p_all, first]
    add("first", p_all[starts_full], first[starts_full])
    p, t = np.nonzero(full[:, :-1] & full[:, 1:])
    add("lag1", p, t)
    mid = {"skip": (False, False), "xonly": (True, False), "yonly": (False, True)}
    for name, (mx, my) in mid.items():
        keep = full[:, :-2] & full[:, 2:] & inside[:, 1:-1]
        keep &= (ox[:, 1:-1] == mx) & (oy[:, 1:-1] == my)
        p, t = np.nonzero(keep)
        add(name, p, t)
    # the stretches the filter takes: (patient, first cell, last cell, starts at a full cell)
    stretches: list[tuple[int, int, int, bool]] = []
    last = np.asarray(data.last)
    for q in range(n_p):
        a, b = int(first[q]), int(last[q])
        cells = np.flatnonzero(full[q, a : b + 1]) + a
        if not len(cells):
            stretches.append((q, a, b, False))
            continue
        if cells[0] > a:
            stretches.append((q, a, int(cells[0]), False))
        for i, j in itertools.pairwise(cells):
            if j - i > 2:
                stretches.append((q, int(i), int(j), True))
        if cells[-1] < b:
            stretches.append((q, int(cells[-1]), b, True))
    known_start = [(q, t0) for q, t0, _, at_full in stretches if at_full]
    if known_start:
        kp, kt = (np.array(e) for e in zip(*known_start, strict=True))
        add("first", kp, kt, weight=-1.0)
    out: dict[str, np.ndarray] = {}
    for name, pattern in PIECES.items():
        m = len(patterns.entries(pattern))
        parts = pieces[name]
        d = np.concatenate([e[0] for e in parts]) if parts else np.zeros((0, m))
        owner = np.concatenate([e[1] for e in parts]).astype(np.int64)
        weight = np.concatenate([e[2] for e in parts])
        for key, val in _sums(d.reshape(-1, m), owner, weight, n_p).items():
            out[f"piece_{name}_{key}"] = val
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
    total_c: Any = 0.0
    terms: list[Any] = [0.0] * 6
    for name, pattern in PIECES.items():
        sums = {k: cells[f"piece_{name}_{k}"] for k in ("n", "s1", "s2")}
        cond = patterns.conditional(pattern, phi, sigma, first if name == "first" else None, xp)
        lc, f = patterns.pattern_factor(pattern, *cond, sums, known, xp=xp)
        total_c = total_c + lc
        terms = [u + e for u, e in zip(terms, (f.l11, f.l12, f.l22, f.g1, f.g2, f.q), strict=True)]
    return total_c, marginal.MeanFactor(*terms)
