r"""A new patient's random parts in a mechanism fit: the parts of the patient (and of a new
therapist) that no posterior draw holds, drawn from their conditional given the draw, the fitted
data and the new patient's sessions.

The integrated form keeps every patient's latent means ``b_i`` and every therapist's ``tau_j``
out of the posterior: given a draw ``theta`` they are Gaussian and are drawn exactly
(:mod:`bayes_alliance.mechanisms.states`), a new patient's as any other's once the patient is
a row of the data. What the posterior does hold per patient are the random parts that enter the
filter non-linearly: the random lags' deviations ``d_i`` and, with random innovations, the
offsets ``u_i`` of the innovation SDs; with lags that vary between therapists a new therapist's
``c_j`` too. For a new patient these are drawn from their prior given the draw and weighted by
the new patient's likelihood (self-normalised importance sampling, one set of ``M`` proposals
per posterior draw, then one of them resampled):

    a_m = (d_m, u_m[, c_m]) ~ p(a | theta)                        (the model's prior)
    w_m  prop.  p(y_new | a_m, theta, y_fit)
         = int p(y_new | a_m, b, tau_j, theta) N(b; m(d_m), S_b) p(tau_j | y_fit, theta) db dtau_j,

with ``b`` integrated under its prior (given ``d_m``'s offsets when the lags covary with the
latent means, ``lag_trait_covariance``: ``b | d ~ N(L_bd L_dd^-1 d, L_bb L_bb')``) and, with a
therapist level, ``tau_j`` under its Gaussian conditional given the fitted caseload (a new
therapist: its prior ``N(0, Sigma_T)``). Both integrals are closed-form
(:class:`bayes_alliance.kernels.levels.Quadratic`), so ``log w_m`` is the therapist's (or the
patient's) marginal log density with the proposal's lag matrix: one batched Kalman-filter pass
over the ``M`` proposals per draw. The resampled ``a`` is a draw of ``p(a | theta, y_fit,
y_new)`` as ``M`` grows (the bias of self-normalised importance sampling is ``O(1/M)``); the
effective sample size ``(sum w)^2 / sum w^2`` of each draw's weights says how far from that the
``M`` proposals are (the prior is wide against a long series' likelihood when the lags vary
much between patients).

The parameters stay at their draws (as for new sessions of a fitted patient), and so do a known
therapist's random lags ``c_j``. The baseline rows are centred by the fit's means over the
baseline's units, as the fit centred them: over patients, or over therapists (each counted once)
for a therapist characteristic, whose end-outcome shift then goes through ``g_T``.

References: Geweke (1989), Econometrica 57:1317 (importance sampling in Bayesian inference);
Kong, Liu & Wong (1994), JASA 89:278 (the effective sample size); Rubin (1988),
Bayesian Statistics 3 (sampling importance resampling).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.kernels.levels import Quadratic
from bayes_alliance.mechanisms.baseline import draw_shifts
from bayes_alliance.mechanisms.baseline_data import baseline_centre, centred_rows
from bayes_alliance.mechanisms.effects import covariance_of
from bayes_alliance.mechanisms.integrated import (
    IntegratedParams,
    filter_inputs,
    patient_factors,
    therapist_prior,
)
from bayes_alliance.mechanisms.patient_density import params_of
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.mechanisms.records import series_data_from_table, series_table
from bayes_alliance.mechanisms.spec import MechanismSpec, path_positions

N_PROPOSALS = 256  # proposals per posterior draw
LOW_ESS = 20.0  # a median effective sample size below this is reported as low

__all__ = [
    "LOW_ESS",
    "N_PROPOSALS",
    "NewDraws",
    "NewPatient",
    "extend",
    "recentred",
    "sample_new_patient",
    "with_new",
]


# The draws' arrays with a patient or a therapist axis first (no chain or draw axes).
PATIENT_ARRAYS = ("path_deviation", "log_innovation_offset")
THERAPIST_ARRAYS = ("path_deviation_therapist",)


@dataclass(frozen=True)
class NewPatient:
    """Where a new patient sits in the data extended by it: its row and its therapist's code
    there (None without therapists) and in the fit (None: a new therapist, or two levels), and
    for every row (code) of the extended data the fitted patient's row (therapist's code) it
    holds, -1 for the new one; the fit's means of the baseline columns (None without one)."""

    row: int
    therapist: int | None
    fit_therapist: int | None
    patient_order: np.ndarray
    therapist_order: np.ndarray | None = None
    centre: np.ndarray | None = None

    @property
    def new_therapist(self) -> bool:
        return self.therapist is not None and self.fit_therapist is None


@dataclass(frozen=True)
class NewDraws:
    """The new patient's (and a new therapist's) random parts per picked draw: ``values[name]``
    (D, ...) fills the new unit of the draw's array ``name``; ``ess`` (D,) the effective sample
    size of each draw's importance weights out of ``n_proposals`` (None: nothing was weighted,
    every part of the new patient is Gaussian given the draw)."""

    where: NewPatient
    picks: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)
    ess: np.ndarray | None = None
    n_proposals: int = 0

    def summary(self) -> dict[str, Any] | None:
        """The effective sample sizes of the draws' weights (median, 5 % quantile, smallest)
        out of the proposals, and whether the median is below :data:`LOW_ESS`; None when
        nothing was weighted."""
        if self.ess is None:
            return None
        return {
            "proposals": self.n_proposals,
            "ess_median": float(np.median(self.ess)),
            "ess_q05": float(np.quantile(self.ess, 0.05)),
            "ess_min": float(self.ess.min()),
            "low": bool(np.median(self.ess) < LOW_ESS),
        }


def with_new(draw: Mapping[str, np.ndarray], new: NewDraws, i: int) -> dict[str, np.ndarray]:
    """One draw's arrays (no chain or draw axes) in the extended data's patients and
    therapists, the new units holding pick ``i``'s values."""
    out = dict(draw)
    orders: list[tuple[str, np.ndarray | None]] = [
        (n, new.where.patient_order) for n in PATIENT_ARRAYS
    ]
    orders += [(n, new.where.therapist_order) for n in THERAPIST_ARRAYS]
    for name, order in orders:
        if name not in draw or order is None:
            continue
        arr = np.asarray(draw[name])[np.clip(order, 0, None)].copy()
        fresh = order < 0
        if fresh.any():
            arr[fresh] = new.values[name][i]
        out[name] = arr
    return out


def recentred(
    params: IntegratedParams,
    draw: Mapping[str, np.ndarray],
    data: SeriesData,
    spec: MechanismSpec,
    centre: np.ndarray | None,
) -> IntegratedParams:
    """``params`` with the baseline's shifts of ``data``'s patients centred by the fit's means
    ``centre`` over the baseline's units (adding a patient, or a therapist, moves the mean
    :func:`params_of` centres by); as given without a baseline."""
    if not spec.baseline or centre is None:
        return params
    z = centred_rows(data, spec.baseline, spec.baseline_level, centre)
    mean, end = draw_shifts(draw, data, spec.baseline, spec.baseline_level, z)
    out = replace(params, baseline=mean)
    if params.end is not None and end is not None:
        out = replace(out, end=replace(params.end, shift=end))
    return out


def _copies(ext: SeriesData, row: int, m: int, prov: Mapping[str, Any]) -> tuple[SeriesData, bool]:
    """The new patient's series ``m`` times, as patients of two-level data (their factors in
    ``tau_j`` are read one by one, never summed); with an end outcome a stand-in value where the
    patient has none (the filter's inputs then mark it unseen), as the data need one."""
    frame = series_table(ext).to_dataframe().reset_index(drop=True)
    roles = prov["roles"]
    pid = str(ext.coords()["patient"][row])
    mine = frame[frame[roles["patient"]] == pid]
    if roles["therapist"] is not None:
        mine = mine.drop(columns=[roles["therapist"]])
    end_seen = False
    if ext.end_column is not None:
        end_seen = bool(np.isfinite(ext.end_outcome[row])) if ext.end_outcome is not None else False
        if not end_seen:
            mine = mine.assign(**{ext.end_column: 0.0})
    width = len(str(m))
    parts = [mine.assign(**{roles["patient"]: f"c{i:0{width}d}"}) for i in range(m)]
    table = xr.Dataset.from_dataframe(pd.concat(parts, ignore_index=True))
    two_level = dict(prov) | {"roles": dict(roles) | {"therapist": None}}
    return series_data_from_table(table, two_level), end_seen


def _chol(cov: np.ndarray | None, name: str) -> np.ndarray:
    if cov is None:
        raise ValueError(f"the draws hold no sd_{name}: a new patient's {name} cannot be drawn")
    return np.linalg.cholesky(cov)


def sample_new_patient(
    arrays: Mapping[str, np.ndarray],
    fit: SeriesData,
    ext: SeriesData,
    spec: MechanismSpec,
    new: NewPatient,
    picks: np.ndarray,
    provenance: Mapping[str, Any],
    rng: np.random.Generator,
    n_proposals: int = N_PROPOSALS,
) -> NewDraws:
    """The new patient's random lags, innovation offsets and (a new therapist's) random lags
    per picked draw (see the module).

    Parameters
    ----------
    arrays
        The fit's posterior arrays by name, (chain, draw, ...).
    fit, ext
        The fitted data and the data extended by the new patient (row ``new.row``).
    spec
        The fit's resolved spec (integrated traits).
    new
        Where the new patient sits in ``ext``.
    picks
        Flat (chain-major) indices of the draws used.
    provenance
        The fit's provenance (the series' roles and columns).
    rng
        The generator drawn from.
    n_proposals
        Proposals ``M`` per draw.
    """
    paths = tuple(spec.random_paths or ())
    between = tuple(spec.therapist_paths or ())
    fresh_between = bool(between) and new.new_therapist
    base = NewDraws(where=new, picks=picks)
    if not paths and not spec.random_innovations:
        return base
    m, k = int(n_proposals), fit.k
    n_draw = np.shape(arrays["lag"])[1]
    copies, end_seen = _copies(ext, new.row, m, provenance)
    grid = MechanismGrid.of(copies)
    inputs = filter_inputs(copies, grid, bool(spec.trend))
    if copies.end_outcome is not None:
        inputs |= {
            "end_seen": np.full(m, float(end_seen)),
            "end_value": np.where(end_seen, copies.end_outcome, 0.0),
        }
    # the copies' own spec: their deviations are the patient's own, the therapist's added below
    spec_m = replace(spec, therapist_paths=(), baseline=())
    fit_grid = MechanismGrid.of(fit)
    fit_inputs = filter_inputs(fit, fit_grid, bool(spec.trend))
    z_new = None
    if spec.baseline and new.centre is not None:
        z_new = centred_rows(ext, spec.baseline, spec.baseline_level, new.centre)
        z_new = z_new[new.row : new.row + 1]
    embed = np.zeros((len(between), len(paths)))
    for r, pair in enumerate(between):
        embed[r, paths.index(pair)] = 1.0
    pos = path_positions(fit.roles, paths)
    out: dict[str, list[np.ndarray]] = {"path_deviation": [], "log_innovation_offset": []}
    out["path_deviation_therapist"] = []
    ess = np.zeros(len(picks))
    for i, flat in enumerate(picks):
        c, d = divmod(int(flat), n_draw)
        draw = {name: np.asarray(a[c, d]) for name, a in arrays.items()}
        own = np.zeros((m, len(paths)))
        if paths:
            own = (
                rng.standard_normal((m, len(paths)))
                @ _chol(covariance_of(draw, "paths"), "paths").T
            )
        offset = rng.standard_normal((m, k)) if spec.random_innovations else None
        c_j = np.zeros((m, len(between)))
        if fresh_between:
            chol_t = _chol(covariance_of(draw, "paths_therapist"), "paths_therapist")
            c_j = rng.standard_normal((m, len(between))) @ chol_t.T
        elif between:
            assert new.fit_therapist is not None
            c_j = np.broadcast_to(draw["path_deviation_therapist"][new.fit_therapist], c_j.shape)
        theirs = c_j @ embed  # the therapist's part of each path
        proposal = dict(draw)
        if paths:
            proposal["path_deviation"] = own
        if offset is not None:
            proposal["log_innovation_offset"] = offset
        params = params_of(proposal, copies, spec_m)
        if between:
            phi = np.array(params.phi)
            for r, (to, source) in enumerate(pos):
                phi[:, to, source] += theirs[:, r]
            params = replace(params, phi=phi)
        if z_new is not None:
            mean, end = draw_shifts(draw, ext, spec.baseline, spec.baseline_level, z_new)
            assert mean is not None  # a baseline was given
            params = replace(params, baseline=np.repeat(mean, m, axis=0))
            if params.end is not None and end is not None:
                params = replace(params, end=replace(params.end, shift=np.repeat(end, m)))
        after, _ = patient_factors(copies, inputs, grid.filled, grid.time, params)
        log_w = _log_weights(after, draw, fit, fit_inputs, fit_grid, spec, new, params)
        w = np.exp(log_w - np.max(log_w))
        w /= w.sum()
        ess[i] = 1.0 / np.sum(w**2)
        pick = int(rng.choice(m, p=w))
        if paths:
            out["path_deviation"].append(own[pick] + theirs[pick])
        if offset is not None:
            out["log_innovation_offset"].append(offset[pick])
        if fresh_between:
            out["path_deviation_therapist"].append(c_j[pick])
    values = {name: np.stack(v) for name, v in out.items() if v}
    return replace(base, values=values, ess=ess, n_proposals=m)


def _log_weights(
    after: Quadratic,
    draw: Mapping[str, np.ndarray],
    fit: SeriesData,
    fit_inputs: dict[str, np.ndarray],
    fit_grid: MechanismGrid,
    spec: MechanismSpec,
    new: NewPatient,
    params: IntegratedParams,
) -> np.ndarray:
    """Each proposal's ``log p(y_new | a_m, theta, y_fit)`` up to a constant of the draw: the
    copies' factors (``b`` integrated) in ``tau_j``, times the fitted caseload's factor of a
    known therapist, with ``tau_j`` integrated under its prior."""
    if params.chol_therapist is None:
        return np.asarray(after.value(), dtype=float)
    prior = therapist_prior(params, fit.k)
    total = after
    if new.fit_therapist is not None:
        fitted = params_of(draw, fit, spec)
        load, _ = patient_factors(fit, fit_inputs, fit_grid.filled, fit_grid.time, fitted)
        mine = np.asarray(fit.patient_therapist) == new.fit_therapist
        total = after.plus(load.map(lambda v: np.sum(v[mine], axis=0)))
    return np.asarray(total.integrate(prior.shape[0], prior).value(), dtype=float)


def _order(ext_ids: list[object], fit_ids: list[object]) -> np.ndarray:
    """For each extended id, the fitted id's position (-1 for a new one); the fit's ids must
    all be there, and one new id at most."""
    at = {str(p): i for i, p in enumerate(fit_ids)}
    order = np.array([at.get(str(p), -1) for p in ext_ids], dtype=int)
    if len(ext_ids) - len(fit_ids) not in (0, 1) or len(set(order[order >= 0])) != len(fit_ids):
        raise ValueError("the new patient's rows changed the fit's units; give one patient's rows")
    return order


def _one_value(rows: pd.DataFrame, col: str, patient: object, what: str) -> object:
    given = pd.unique(rows[col].dropna())
    if len(given) != 1:
        raise ValueError(
            f"patient {patient!r} is new: their rows need one {what} in column {col!r}, "
            f"got {given.tolist()[:5]}"
        )
    return given[0]


def extend(
    fit: SeriesData,
    spec: MechanismSpec,
    provenance: Mapping[str, Any],
    patient: object,
    rows: pd.DataFrame,
) -> tuple[SeriesData, NewPatient]:
    """The fitted data with a new patient's rows (in the fit's column names) added, and where
    the patient sits in it.

    Raises
    ------
    ValueError
        A missing column (the session, every series, the therapist with therapists in the data,
        the baseline columns of the model), more than one therapist, a baseline value that is
        missing or differs between the rows, a value that is not a number.
    """
    roles = fit.base.roles
    need = [roles.session, *fit.columns, *(spec.baseline or ())]
    if roles.therapist is not None:
        need.append(roles.therapist)
    missing = [c for c in need if c not in rows.columns]
    if missing:
        raise ValueError(
            f"patient {patient!r} is new: their rows need the column(s) {missing} (the fit's names)"
        )
    table = series_table(fit).to_dataframe().reset_index(drop=True)
    add = pd.DataFrame({c: np.nan for c in table.columns}, index=range(len(rows)))
    add[roles.patient] = str(patient)
    add[roles.session] = rows[roles.session].to_numpy(dtype=float)
    for c in fit.columns:
        add[c] = pd.to_numeric(rows[c], errors="raise").to_numpy(dtype=float)
    if roles.therapist is not None:
        add[roles.therapist] = str(_one_value(rows, roles.therapist, patient, "therapist"))
    patient_level = [c for c in table.columns if c not in {roles.patient, roles.session}]
    patient_level = [c for c in patient_level if c not in (*fit.columns, roles.therapist)]
    for c in patient_level:
        if c in rows.columns and rows[c].notna().any():
            add[c] = float(_one_value(rows, c, patient, "value"))  # type: ignore[arg-type]
    both = pd.concat([table, add], ignore_index=True)
    ext = series_data_from_table(xr.Dataset.from_dataframe(both), dict(provenance))
    ext_ids = list(ext.coords()["patient"])
    order = _order(ext_ids, list(fit.coords()["patient"]))
    row = int(np.flatnonzero(order == -1)[0])
    ther, fit_ther, t_order = None, None, None
    if ext.patient_therapist is not None and fit.patient_therapist is not None:
        fit_t = list(fit.coords()["therapist"])
        ext_t = list(ext.coords()["therapist"])
        ther = int(ext.patient_therapist[row])
        t_order = _order(ext_t, fit_t)
        fit_ther = None if t_order[ther] < 0 else int(t_order[ther])
    centre = None
    if spec.baseline:
        centre = baseline_centre(fit, spec.baseline, spec.baseline_level)
        # the new row's values checked (named if missing; constant within its therapist)
        centred_rows(ext, spec.baseline, spec.baseline_level, centre)
    return ext, NewPatient(row, ther, fit_ther, order, t_order, centre)
