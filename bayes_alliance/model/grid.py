"""The patient x session grid as the likelihoods and the post-hoc draws read it (no PyMC):
index arrays of first, observed and missing cells (:class:`GridIndex`), the data as arrays
by their ``pm.Data`` names (:class:`SeriesGrid` for complete series and the Kalman filter's
gap cells; :class:`SeriesMoments`, per-patient sums of products for complete series with one
known mean), the sufficient statistics of a completed grid (:func:`grid_sums`), the sum of
the patients' factors over each therapist's caseload (:func:`therapist_factors`) and the cells
censored at a ceiling or floor (:class:`Censored`). Functions that run in both numpy and
PyTensor take ``xp``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import special

from bayes_alliance.core import vocab
from bayes_alliance.core.problems import DataValidationError, Problem
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import marginal
from bayes_alliance.kernels.gaps import GapCells
from bayes_alliance.model.structure import Dynamics
from bayes_alliance.spec.model_spec import ModelSpec


@dataclass(frozen=True)
class GridIndex:
    """Integer index arrays over the grid, computed once from the data."""

    first: np.ndarray  # bool (P, S): a patient's first cell
    inside: np.ndarray  # bool (P, S): between first and last row
    miss_x: tuple[np.ndarray, np.ndarray]  # inside the series, x missing
    miss_y: tuple[np.ndarray, np.ndarray]
    obs_x: tuple[np.ndarray, np.ndarray]
    obs_y: tuple[np.ndarray, np.ndarray]

    @classmethod
    def of(cls, data: SessionData) -> GridIndex:
        inside = data.in_series
        first = np.zeros_like(inside)
        first[np.arange(data.n_patients), data.first] = True
        return cls(
            first=first,
            inside=inside,
            miss_x=np.nonzero(inside & ~data.observed_x),
            miss_y=np.nonzero(inside & ~data.observed_y),
            obs_x=np.nonzero(data.observed_x),
            obs_y=np.nonzero(data.observed_y),
        )


@dataclass(frozen=True)
class SeriesGrid:
    """The patient x session grid as the integrated likelihood uses it (all float masks).

    ``miss_x`` / ``miss_y`` index the raveled grid, in the order of :class:`GridIndex`. ``transition[:, t-1]`` is 1 where cells t-1 and t both lie in
    the patient's series. Dense masked arrays with sums along the session axis avoid scatter and
    gather operations, which dominate a gradient's cost on a GPU and cost more on a CPU too.
    """

    x: np.ndarray  # (P, S) values, 0 where missing or outside the series
    y: np.ndarray
    miss_x: np.ndarray
    miss_y: np.ndarray
    first: np.ndarray  # (P, S) 1 at each patient's first cell
    transition: np.ndarray  # (P, S - 1)
    n_trans: np.ndarray  # (P,) transitions per patient

    @classmethod
    def of(cls, data: SessionData) -> SeriesGrid:
        inside = data.in_series
        idx = GridIndex.of(data)
        trans = inside[:, 1:] & inside[:, :-1]
        return cls(
            x=np.where(inside & data.observed_x, data.x, 0.0),
            y=np.where(inside & data.observed_y, data.y, 0.0),
            miss_x=np.ravel_multi_index(idx.miss_x, inside.shape),
            miss_y=np.ravel_multi_index(idx.miss_y, inside.shape),
            first=idx.first.astype(float),
            transition=trans.astype(float),
            n_trans=trans.sum(axis=1).astype(float),
            obs_x=(inside & data.observed_x).astype(float),
            obs_y=(inside & data.observed_y).astype(float),
        )

    obs_x: np.ndarray  # (P, S) 1.0 where x is observed inside the series
    obs_y: np.ndarray

    def containers(self) -> dict[str, np.ndarray]:
        """The arrays that change with the data, by their ``pm.Data`` names (complete series)."""
        return {
            "grid_predictor": self.x,
            "grid_outcome": self.y,
            "grid_first": self.first,
            "grid_transition": self.transition,
            "patient_transitions": self.n_trans,
        }

    def gap_containers(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The arrays the Kalman filter of series with missing cells reads (of the patients
        ``rows``, default all), transposed: (S, P), so that one session's cells of all patients
        are contiguous, as the filter vectorised across patients reads them
        (:mod:`bayes_alliance.kernels.kalman_batch`)."""
        pick = slice(None) if rows is None else rows
        return {
            "gap_predictor": np.ascontiguousarray(self.x[pick].T),
            "gap_outcome": np.ascontiguousarray(self.y[pick].T),
            "gap_observed_predictor": np.ascontiguousarray(self.obs_x[pick].T),
            "gap_observed_outcome": np.ascontiguousarray(self.obs_y[pick].T),
            "gap_first": np.ascontiguousarray(self.first[pick].T),
        }

    def completed(self, censored: Censored, values: Mapping[str, np.ndarray]) -> SeriesGrid:
        """The grid with each censored cell's value replaced by its latent value in ``values``
        (by variable: one draw's ``censored_<variable>_value``)."""
        grids = {}
        for which, grid in ((vocab.PREDICTOR, self.x), (vocab.OUTCOME, self.y)):
            cells = censored.cells[which]
            if cells.n:
                grid = grid.copy()
                grid.ravel()[cells.index] = values[which]
            grids[which] = grid
        return replace(self, x=grids[vocab.PREDICTOR], y=grids[vocab.OUTCOME])

    def gap_cells(self, known_x: Any = 0.0, known_y: Any = 0.0) -> GapCells:
        """The filter's view of the grid with a known mean subtracted from observed values."""
        return GapCells(
            (self.x - known_x) * self.obs_x,
            (self.y - known_y) * self.obs_y,
            self.obs_x,
            self.obs_y,
            self.first,
        )


@dataclass(frozen=True)
class SeriesMoments:
    """Per-patient sums of products of complete data over each patient's transitions.

    Values are centred at the data means ``loc``. For transitions t (cells with a predecessor):
    ``c*`` sums z_t, ``p*`` sums z_(t-1), ``cc_*`` / ``pp_*`` sum products within a cell,
    ``cp_<now><before>`` sums z_t[now] z_(t-1)[before]; ``first_*`` is the first cell. With a
    per-patient known mean and no missing cells these are sufficient: the likelihood then costs
    O(patients), not O(patients x sessions), per evaluation.
    """

    arrays: dict[str, np.ndarray]

    @classmethod
    def of(cls, data: SessionData, loc: tuple[float, float]) -> SeriesMoments:
        grid = SeriesGrid.of(data)
        x = np.where(data.in_series, data.x - loc[0], 0.0)
        y = np.where(data.in_series, data.y - loc[1], 0.0)
        m = grid.transition
        cx, cy, px, py = x[:, 1:], y[:, 1:], x[:, :-1], y[:, :-1]
        arr = {
            "first_x": (x * grid.first).sum(1),
            "first_y": (y * grid.first).sum(1),
            "c_x": (cx * m).sum(1),
            "c_y": (cy * m).sum(1),
            "p_x": (px * m).sum(1),
            "p_y": (py * m).sum(1),
            "cc_xx": (cx * cx * m).sum(1),
            "cc_xy": (cx * cy * m).sum(1),
            "cc_yy": (cy * cy * m).sum(1),
            "pp_xx": (px * px * m).sum(1),
            "pp_xy": (px * py * m).sum(1),
            "pp_yy": (py * py * m).sum(1),
            "cp_xx": (cx * px * m).sum(1),
            "cp_xy": (cx * py * m).sum(1),
            "cp_yx": (cy * px * m).sum(1),
            "cp_yy": (cy * py * m).sum(1),
            "n": grid.n_trans,
        }
        return cls(arr)

    def containers(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The sums by their ``pm.Data`` names (of the patients ``rows``, default all)."""
        pick = slice(None) if rows is None else rows
        return {f"moment_{k}": val[pick] for k, val in self.arrays.items()}


def mixed_containers(data: SessionData, loc: tuple[float, float]) -> dict[str, np.ndarray]:
    """Each patient on the cheapest exact path: patients with no missing cell between their
    first and last row as sums of products (:class:`SeriesMoments`), the others as the Kalman
    filter's grids (:meth:`SeriesGrid.gap_containers`).

    ``mixed_complete`` and ``mixed_gapped`` are the two groups' patient indices (ascending);
    ``mixed_order[p]`` is patient p's place in the two groups' outputs concatenated (complete
    first), which puts them back in patient order. A dropout (a shorter series) is not a gap.
    """
    gapped = (data.in_series & ~(data.observed_x & data.observed_y)).any(axis=1)
    complete, rows = np.flatnonzero(~gapped), np.flatnonzero(gapped)
    order = np.empty(data.n_patients, dtype=np.int64)
    order[np.concatenate([complete, rows])] = np.arange(data.n_patients)
    return {
        "mixed_order": order,
        "mixed_complete": complete,
        "mixed_gapped": rows,
        **SeriesMoments.of(data, loc).containers(complete),
        **SeriesGrid.of(data).gap_containers(rows),
    }


def patient_count(cells: Mapping[str, Any]) -> Any:
    """The number of patients of the integrated likelihood's containers (symbolic when they
    are ``pm.Data``): the filter's grids are (S, P)."""
    if "segment_patient" in cells:
        return cells["piece_n"].shape[0]
    if "interval_n" in cells:  # continuous time's sums (model.interval_sums): (P, D)
        return cells["interval_n"].shape[0]
    if "mixed_order" in cells:
        return cells["mixed_order"].shape[0]
    if "gap_first" in cells:
        return cells["gap_first"].shape[1]
    return next(iter(cells.values())).shape[0]


def _tensor(xp: Any) -> Any:
    """``xp``, or PyTensor's tensor module when None: imported only by the model's graph, so
    that post-hoc code (numpy) runs without PyTensor."""
    if xp is not None:
        return xp
    import pytensor.tensor as pt

    return pt


def moment_sums(
    m: dict[str, Any], kx: Any, ky: Any, dyn: Dynamics, xp: Any = None
) -> marginal.SeriesSums:
    """:class:`marginal.SeriesSums` from :class:`SeriesMoments` containers and a known mean
    (kx, ky) per patient, centred like the moments: entry-wise 2x2 algebra per patient.

    With z~ = z - k: sum r = (c - n k) - Phi (p - n k) and
    sum r r' = Ccc - Phi Ccp' - Ccp Phi' + Phi Cpp Phi', where C.. are the sums of products of z~.
    ``xp``: numpy, or None for PyTensor.
    """
    xp = _tensor(xp)
    n = m["moment_n"]
    cx, cy = m["moment_c_x"] - n * kx, m["moment_c_y"] - n * ky
    px, py = m["moment_p_x"] - n * kx, m["moment_p_y"] - n * ky

    def centred(s: Any, u1: Any, u2: Any, k1: Any, k2: Any) -> Any:
        # sum (u - k1)(v - k2) = sum u v - k2 sum u - k1 sum v + n k1 k2
        return s - k2 * u1 - k1 * u2 + n * k1 * k2

    c_sx, c_sy = m["moment_c_x"], m["moment_c_y"]
    p_sx, p_sy = m["moment_p_x"], m["moment_p_y"]
    ccxx = centred(m["moment_cc_xx"], c_sx, c_sx, kx, kx)
    ccxy = centred(m["moment_cc_xy"], c_sx, c_sy, kx, ky)
    ccyy = centred(m["moment_cc_yy"], c_sy, c_sy, ky, ky)
    ppxx = centred(m["moment_pp_xx"], p_sx, p_sx, kx, kx)
    ppxy = centred(m["moment_pp_xy"], p_sx, p_sy, kx, ky)
    ppyy = centred(m["moment_pp_yy"], p_sy, p_sy, ky, ky)
    # sum (x_t - kx)(y_(t-1) - ky) = cp_xy - ky c_x - kx p_y + n kx ky, and so on.
    cpxx = centred(m["moment_cp_xx"], c_sx, p_sx, kx, kx)
    cpxy = centred(m["moment_cp_xy"], c_sx, p_sy, kx, ky)
    cpyx = centred(m["moment_cp_yx"], c_sy, p_sx, ky, kx)
    cpyy = centred(m["moment_cp_yy"], c_sy, p_sy, ky, ky)
    a, b, c, d = dyn.phi
    # G = Phi Ccp' (G_ij = sum_k Phi_ik Ccp_jk); H = Phi Cpp Phi'.
    g11, g12 = a * cpxx + b * cpxy, a * cpyx + b * cpyy
    g21, g22 = c * cpxx + d * cpxy, c * cpyx + d * cpyy
    t11, t12 = a * ppxx + b * ppxy, a * ppxy + b * ppyy  # row 1 of Phi Cpp
    t21, t22 = c * ppxx + d * ppxy, c * ppxy + d * ppyy
    h11 = t11 * a + t12 * b
    h12 = t11 * c + t12 * d
    h22 = t21 * c + t22 * d
    e11 = ccxx - 2 * g11 + h11
    e12 = ccxy - g12 - g21 + h12
    e22 = ccyy - 2 * g22 + h22
    _, i11, i12, i22 = marginal.sym_inverse(*dyn.sigma)
    return marginal.SeriesSums.constant(
        (m["moment_first_x"] - kx, m["moment_first_y"] - ky),
        (cx - a * px - b * py, cy - c * px - d * py),
        i11 * e11 + 2 * i12 * e12 + i22 * e22,
        n,
        dyn.sigma,
        xp=xp,
    )


def grid_sums(
    zx: Any, zy: Any, cells: dict[str, Any], dyn: Dynamics, xp: Any = None
) -> marginal.SeriesSums:
    """:class:`marginal.SeriesSums` from the completed grids minus their known means
    (``zx``, ``zy``, patients x sessions) and the :class:`SeriesGrid` masks in ``cells``
    (``xp``: numpy, or None for PyTensor)."""
    xp = _tensor(xp)
    a, b, c, d = (dyn.per_patient(e) for e in dyn.phi)
    # r_t = z~_t - Phi z~_(t-1) on the whole grid; the transition mask keeps the real ones.
    rx = zx[:, 1:] - a * zx[:, :-1] - b * zy[:, :-1]
    ry = zy[:, 1:] - c * zx[:, :-1] - d * zy[:, :-1]
    trans = cells["grid_transition"]
    first = cells["grid_first"]
    firsts = ((zx * first).sum(axis=1), (zy * first).sum(axis=1))
    n_trans = cells["patient_transitions"]
    if not dyn.by_session:
        q = marginal.residual_quadratic(rx, ry, *dyn.sigma)
        return marginal.SeriesSums.constant(
            firsts,
            ((rx * trans).sum(axis=1), (ry * trans).sum(axis=1)),
            (q * trans).sum(axis=1),
            n_trans,
            dyn.sigma,
            xp=xp,
        )
    # One Sigma per transition column.
    det, i11, i12, i22 = marginal.sym_inverse(*(dyn.per_transition(e) for e in dyn.sigma))
    hx, hy = i11 * rx + i12 * ry, i12 * rx + i22 * ry
    return marginal.SeriesSums(
        first_x=firsts[0],
        first_y=firsts[1],
        hx=(hx * trans).sum(axis=1),
        hy=(hy * trans).sum(axis=1),
        p11=(i11 * trans).sum(axis=1),
        p12=(i12 * trans).sum(axis=1),
        p22=(i22 * trans).sum(axis=1),
        q=((rx * hx + ry * hy) * trans).sum(axis=1),
        logdet=(xp.log(det) * trans).sum(axis=1),
        n_trans=n_trans,
    )


@dataclass(frozen=True)
class TherapistBlock:
    """The therapist level when its deviations are integrated out: each patient's therapist
    code ``tj``, the number of therapists and the covariance entries of the therapist parts
    (a_x, a_y + trait_effect_therapist a_x) of the latent means."""

    tj: Any
    n: Any
    tau: tuple[Any, Any, Any]


def therapist_factors(
    pseudo: marginal.MeanFactor, block: TherapistBlock, xp: Any = None
) -> marginal.MeanFactor:
    """Sum the patients' factors in their therapist part over each therapist's caseload
    (``xp``: numpy, or None for PyTensor, imported only then: post-hoc code runs without it)."""

    def per_therapist(val: Any) -> Any:
        if xp is None:
            import pytensor.tensor as pt

            return pt.inc_subtensor(pt.zeros(block.n)[block.tj], val)
        return np.bincount(block.tj, weights=val, minlength=block.n)

    return marginal.MeanFactor(*(per_therapist(e) for e in pseudo.__dict__.values()))


@dataclass(frozen=True)
class CensoredCells:
    """One variable's cells at a ceiling or floor: their index into the raveled grid (patient,
    then session order), the limit and the side (+1: at the ceiling, the latent score is the
    limit or more; -1: at the floor, the limit or less). The latent score of cell k is
    ``bound[k] + side[k] * excess[k]`` with ``excess >= 0``."""

    index: np.ndarray  # int (n,)
    bound: np.ndarray  # float (n,)
    side: np.ndarray  # float (n,), +1 or -1

    @property
    def n(self) -> int:
        return len(self.index)

    def containers(self, which: str) -> dict[str, np.ndarray]:
        """The arrays the model reads, by their ``pm.Data`` names."""
        return {
            f"censored_{which}_index": self.index,
            f"censored_{which}_bound": self.bound,
            f"censored_{which}_side": self.side,
        }

    def values(self, excess: Any) -> Any:
        """The latent scores from the excesses (numpy or pytensor)."""
        return self.bound + self.side * excess


@dataclass(frozen=True)
class Censored:
    """The censored cells of both variables (:func:`censored_cells`)."""

    cells: dict[str, CensoredCells]

    @property
    def any(self) -> bool:
        return any(c.n for c in self.cells.values())

    def log_probability(
        self, which: str, loglik: np.ndarray, value: np.ndarray, error: np.ndarray, var: np.ndarray
    ) -> np.ndarray:
        """``loglik`` (P, S) with each censored cell of ``which`` replaced by the log
        probability of its event given the past, ``log Phi(side (mean - bound) / sd)``:
        ``value`` the cells' completed scores (n,), ``error`` and ``var`` the filter's
        prediction errors and variances (P, S), so ``mean = value - error``."""
        cells = self.cells[which]
        if not cells.n:
            return loglik
        out = loglik.copy()
        mean = value - error.ravel()[cells.index]
        sd = np.sqrt(var.ravel()[cells.index])
        out.ravel()[cells.index] = special.log_ndtr(cells.side * (mean - cells.bound) / sd)
        return out


def censored_cells(data: SessionData, spec: ModelSpec) -> Censored:
    """The cells of each variable at its ceiling or floor (``spec.bounds``), inside a patient's
    series and observed. A score beyond a limit is a data error (all of them named at once)."""
    problems: list[Problem] = []
    out: dict[str, CensoredCells] = {}
    inside = data.in_series
    for which, grid, observed, column in (
        (vocab.PREDICTOR, data.x, data.observed_x, data.roles.predictor),
        (vocab.OUTCOME, data.y, data.observed_y, data.roles.outcome),
    ):
        floor, ceiling = spec.bounds(which)
        obs = observed & inside
        side = np.zeros(grid.shape)
        bound = np.zeros(grid.shape)
        for limit, sign, word in (
            (ceiling, 1.0, "above its ceiling"),
            (floor, -1.0, "below its floor"),
        ):
            if limit is None:
                continue
            beyond = obs & (sign * (np.where(obs, grid, limit) - limit) > 0)
            if beyond.any():
                rows, cols = np.nonzero(beyond)
                shown = ", ".join(
                    f"patient {data.patients[r]} session {data.sessions[c]}: {grid[r, c]:g}"
                    for r, c in zip(rows[:5], cols[:5], strict=True)
                )
                more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
                problems.append(
                    Problem(
                        f"{len(rows)} score(s) {word} {limit:g} ({shown}{more}); a censored "
                        f"score is recorded at the limit",
                        column=column,
                        ids=tuple(dict.fromkeys(str(data.patients[r]) for r in rows)),
                    )
                )
            at = obs & (np.where(obs, grid, np.nan) == limit)
            side[at], bound[at] = sign, limit
        flat = np.flatnonzero(side)
        out[which] = CensoredCells(flat, bound.ravel()[flat], side.ravel()[flat])
    if problems:
        raise DataValidationError(problems)
    return Censored(out)
