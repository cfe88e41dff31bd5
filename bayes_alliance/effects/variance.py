r"""Model-implied within-person moments over the distribution of the state slopes.

With random state slopes or moderators every patient has their own lag matrix Phi_i, and the
patient's own slope feeds back through the lagged outcome (and through the reverse path into the
predictor), so every patient has their own within covariance S_i. Population quantities are
expectations over the slope distribution (docs/methods.md, section 'Derived effects')::

    Var_w(y) = E_i[S_yy,i]
    f1  = E_i[g_f,i' Phi_i g_f,i]                 fixed part: g_f,i = (phi_yx + lambda' z_i, phi_yy[, b0])
    v13 = E_i[(g_f,i + c_j e1)' Phi_i (g_f,i + c_j e1)] - f1          therapist slope deviations
    v12 = E_i[g_i' Phi_i g_i] - f1 - v13                               patient slope deviations
    sigma2 = innovation variance;   f1 + v12 + v13 + sigma2 = Var_w(y)

where Phi_i is the covariance of the outcome equation's within predictors (x_(t-1), y_(t-1) and,
with a lag-0 path, x_t) under the patient's own dynamics. Without moderators
f1 = g' E[Phi_i] g with g the mean coefficients, as in Rights & Sterba (2019, 2023), with the
predictor covariance averaged over the patients. The expectation runs over

* the therapist and patient slope deviations, by Gauss-Hermite quadrature (through the inverse
  CDF of the truncated normal where the model truncates them to stationary slopes; see
  :mod:`bayes_alliance.model.within`), and
* the moderators' values in the data (each patient equally), as Rights & Sterba use sample
  moments of observed predictors.

Within moments come from the stationary covariance when the first session is stationary, and
otherwise from the recursion ``V_t = Phi* V_(t-1) Phi*' + Sigma*_t`` started at the free first
session covariance, averaged over the transitions (or cells) in the data. Everything is numpy,
batched over posterior draws, and independent of PyMC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import dynamics
from bayes_alliance.model.covariates import (
    baseline_between_unit_values,
    baseline_level,
    baseline_split_values,
    baseline_unit_values,
    covariate_levels,
    covariate_unit_values,
    moderator_values,
)
from bayes_alliance.model.structure import (
    Get,
    dynamics_from,
    fixed_slope,
    free_first_cov,
    innovation_cov,
    lookup,
)
from bayes_alliance.model.variability import average_innovations
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab
NODES_1D = 24  # Gauss-Hermite nodes with one random slope level
NODES_2D = 12  # per level with two
CHUNK = 400_000  # draws x nodes evaluated at once


@dataclass(frozen=True)
class Design:
    """What the data contribute to the population moments.

    Attributes
    ----------
    moderators
        Centred moderator values (patients x moderators) or None.
    patient_therapist
        Therapist code of each patient (None for two levels).
    starts
        Grid column of each distinct first session.
    transitions, cells
        Counts (starts x columns) of in-series transitions into each column and of in-series
        cells, for patients with each start.
    offsets
        Session number minus the first of the grid, per column (for trends).
    baseline
        Centred baseline characteristics of between-level mediation, one row per unit of their
        level (patients, or therapists for a therapist-level baseline) x columns, or None.
    baseline_level
        ``"patient"`` or ``"therapist"``: the level whose variance the baseline's share joins.
    baseline_between
        A patient-level baseline of three-level data is split at the therapists
        (:func:`bayes_alliance.model.covariates.baseline_split_values`): ``baseline`` then holds
        each patient's within-therapist row and this the therapists' centred means
        (therapists x columns), whose share joins the between-therapist variance; else None.
    covariates
        Centred adjusting covariates per unit of their level: ``{"patient": patients x columns,
        "therapist": therapists x columns}`` (levels without columns left out).
    covariate_levels
        The level of each adjusting covariate, in the order of ``spec.covariates`` (and of the
        entries of ``covariate_effect_*``).
    """

    moderators: np.ndarray | None
    patient_therapist: np.ndarray | None
    starts: np.ndarray
    transitions: np.ndarray
    cells: np.ndarray
    offsets: np.ndarray
    baseline: np.ndarray | None = None
    baseline_level: str = "patient"
    baseline_between: np.ndarray | None = None
    covariates: dict[str, np.ndarray] = field(default_factory=dict)
    covariate_levels: tuple[str, ...] = ()

    @classmethod
    def of(cls, data: SessionData, spec: ModelSpec) -> Design:
        inside = data.in_series
        trans = np.zeros_like(inside)
        trans[:, 1:] = inside[:, 1:] & inside[:, :-1]
        starts = np.unique(data.first)
        group = np.searchsorted(starts, data.first)
        n_s = inside.shape[1]
        tr = np.zeros((len(starts), n_s))
        ce = np.zeros((len(starts), n_s))
        np.add.at(tr, group, trans.astype(float))
        np.add.at(ce, group, inside.astype(float))
        return cls(
            moderators=moderator_values(data, spec),
            patient_therapist=data.patient_therapist if spec.therapist_level else None,
            starts=starts,
            transitions=tr,
            cells=ce,
            offsets=(data.sessions - data.sessions[0]).astype(float),
            baseline=_baseline_rows(data, spec),
            baseline_level=baseline_level(data, spec),
            baseline_between=baseline_between_unit_values(data, spec),
            covariates=covariate_unit_values(data, spec),
            covariate_levels=covariate_levels(data, spec),
        )


def _baseline_rows(data: SessionData, spec: ModelSpec) -> np.ndarray | None:
    """The baseline's rows per unit of its level; the within-therapist rows of a split one."""
    split = baseline_split_values(data, spec)
    return baseline_unit_values(data, spec) if split is None else split.within


def truncated_quantile(r: np.ndarray, lo_z: np.ndarray, hi_z: np.ndarray) -> np.ndarray:
    """Quantiles of N(0, 1) truncated to (lo_z, hi_z) at the probabilities Phi(r): the map from
    a standard normal variable to the truncated one. An interval in the upper tail is mirrored
    to the lower one; an interval in the lower tail is handled in log space (log-CDF and its
    inverse), so it stays accurate however far out; otherwise probabilities above one half are
    taken from the upper tail."""
    flip = lo_z > 0
    lo2, hi2 = np.where(flip, -hi_z, lo_z), np.where(flip, -lo_z, hi_z)
    r2 = np.where(flip, -r, r)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p_lo, p_hi, q_hi = special.ndtr(lo2), special.ndtr(hi2), special.ndtr(-hi2)
        mass = p_hi - p_lo
        left = special.ndtri(p_lo + special.ndtr(r2) * mass)
        right = -special.ndtri(q_hi + special.ndtr(-r2) * mass)
        # Lower tail: log p = log(Phi(lo) + Phi(r) (Phi(hi) - Phi(lo))).
        l_lo, l_hi = special.log_ndtr(lo2), special.log_ndtr(hi2)
        l_mass = l_hi + np.log1p(-np.exp(l_lo - l_hi))
        tail = special.ndtri_exp(np.logaddexp(l_lo, special.log_ndtr(r2) + l_mass))
    q = np.where(hi2 <= 0, tail, np.where(r2 <= 0, left, right))
    return np.where(flip, -q, q)


def _gauss_hermite(k: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(k)
    return x, w / w.sum()


@dataclass
class Params:
    """Structural parameters per draw, flattened to one batch axis (the innovation and free
    first-session covariances from the named parameters as every other path computes them,
    :mod:`bayes_alliance.model.structure`)."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray  # average state effect
    d: np.ndarray
    b0: np.ndarray
    sigma: tuple[np.ndarray, np.ndarray, np.ndarray]  # (B,) or (B, S - 1) per transition column
    first: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    sd_slope_therapist: np.ndarray
    sd_slope_patient: np.ndarray
    moderator_effect: np.ndarray | None  # (B, k)
    # Each patient's own slope deviations (B, P), when the average runs over the data's patients.
    dev_therapist: np.ndarray | None = None
    dev_patient: np.ndarray | None = None
    # The named arrays with the draws on their last axis, for the shared accessor (get).
    named: dict[str, Any] | None = None
    spec: ModelSpec | None = None

    def get(self) -> Get:
        """The accessor of :mod:`bayes_alliance.model.structure` over these draws (draws on
        the trailing axis): the dynamics here are computed as everywhere else."""
        assert self.named is not None
        return lookup(self.named, self.spec)

    @classmethod
    def of(
        cls,
        post: Mapping[str, Any],
        spec: ModelSpec,
        slopes: Mapping[str, np.ndarray] | None = None,
    ) -> tuple[Params, tuple[int, ...]]:
        like = np.asarray(post[v.INNOVATION_SD_OUTCOME], dtype=float)
        batch = like.shape[:-1] if spec.innovations == "session" else like.shape
        n = int(np.prod(batch))
        get = lookup(post, spec)

        def flat(name: str, default: float = 0.0, **_dims: Any) -> Any:
            """The named parameter with its draws on one first axis (a default stays a
            scalar, as the builder's constants do)."""
            arr = get(name, default)
            if isinstance(arr, float):
                return arr
            arr = np.asarray(arr, dtype=float)
            return arr.reshape(n, *arr.shape[len(batch) :])

        def each(name: str) -> np.ndarray:
            return np.broadcast_to(flat(name), (n,))

        first = free_first_cov(flat) if spec.first_session == "free" else None
        named = {}
        for k in post:
            arr = flat(k)
            if not isinstance(arr, float):  # a name the spec does not estimate keeps its default
                named[k] = np.moveaxis(arr, 0, -1)
        return (
            cls(
                a=each(v.PREDICTOR_AUTOREGRESSION),
                b=each(v.REVERSE_STATE_EFFECT),
                c=each(v.STATE_EFFECT),
                d=each(v.OUTCOME_AUTOREGRESSION),
                b0=each(v.SAME_SESSION_EFFECT),
                sigma=innovation_cov(flat, spec),
                first=first,
                sd_slope_therapist=each(v.SD_STATE_EFFECT_THERAPIST),
                sd_slope_patient=each(v.SD_STATE_EFFECT_PATIENT),
                moderator_effect=flat(v.MODERATOR_EFFECT) if spec.moderators else None,
                dev_therapist=_per_patient(slopes, v.THERAPIST, n),
                dev_patient=_per_patient(slopes, v.PATIENT, n),
                named=named,
                spec=spec,
            ),
            batch,
        )

    def take(self, sl: slice) -> Params:
        def cut(x: Any) -> Any:
            if x is None or isinstance(x, ModelSpec):
                return x
            if isinstance(x, tuple):
                return tuple(e[sl] for e in x)
            if isinstance(x, dict):  # draws last
                return {k: val[..., sl] for k, val in x.items()}
            return x[sl]

        return Params(**{k: cut(val) for k, val in self.__dict__.items()})


def _per_patient(slopes: Mapping[str, np.ndarray] | None, level: str, n: int) -> np.ndarray | None:
    if slopes is None or level not in slopes:
        return None
    arr = np.asarray(slopes[level], dtype=float)
    return arr.reshape(n, arr.shape[-1])


def slope_nodes(
    p: Params, spec: ModelSpec, design: Design
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nodes of the slope distribution: (fixed part m, therapist deviation c, patient deviation
    d, weight), each (B, N); the weights add to 1 per draw.

    With per-patient deviations in ``p`` (a fitted model's posterior draws) the nodes are the
    data's patients, equally weighted. Otherwise, Gauss-Hermite nodes of the population slope
    distribution (through the truncated normal's inverse CDF where the prior is truncated) for
    each moderator value in the data.
    """
    n_b = p.c.shape[0]
    # (B, G): one patient type, or each patient with their moderators.
    m = _draws_first(fixed_slope(p.get(), design.moderators))
    if p.dev_therapist is not None or p.dev_patient is not None:
        shape = (n_b, max(e.shape[1] for e in (p.dev_therapist, p.dev_patient) if e is not None))
        c = p.dev_therapist if p.dev_therapist is not None else np.zeros(shape)
        d = p.dev_patient if p.dev_patient is not None else np.zeros(shape)
        m = np.broadcast_to(m, shape)
        return m, c, d, np.full(shape, 1.0 / shape[1])
    n_g = m.shape[1]
    if spec.first_session == "stationary" and spec.dynamics == "var1":
        lo, hi, _ = dynamics.slope_interval(p.a, p.b, p.d, p.b0, spec.same_session)
        lo, hi = lo[:, None], hi[:, None]
    else:
        lo = np.full((n_b, 1), -np.inf)
        hi = np.full((n_b, 1), np.inf)
    levels = [lvl for lvl in (v.THERAPIST, v.PATIENT) if lvl in spec.random_slopes]
    zero = np.zeros_like(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        if not levels:
            return m, zero, zero, np.full_like(m, 1.0 / n_g)
        if levels == [v.PATIENT]:
            r, w = _gauss_hermite(NODES_1D)
            sd = p.sd_slope_patient[:, None, None]
            dev = sd * truncated_quantile(
                r, ((lo - m) / sd[..., 0])[..., None], ((hi - m) / sd[..., 0])[..., None]
            )
            dev = np.where(sd > 0, dev, 0.0)
            mm = np.broadcast_to(m[..., None], dev.shape)
            ww = np.broadcast_to(w / n_g, dev.shape)
            return _flat(mm), _flat(np.zeros_like(dev)), _flat(dev), _flat(ww)
        lo_t, hi_t = lo - m, hi - m
        if design.moderators is not None and design.patient_therapist is not None:
            # The therapist's deviation keeps all of the therapist's patients stationary.
            tj = design.patient_therapist
            n_t = int(tj.max()) + 1
            low = np.full((n_b, n_t), np.inf)
            high = np.full((n_b, n_t), -np.inf)
            for j in range(n_t):
                sel = tj == j
                low[:, j] = m[:, sel].min(axis=1)
                high[:, j] = m[:, sel].max(axis=1)
            lo_t, hi_t = lo - low[:, tj], hi - high[:, tj]
        if levels == [v.THERAPIST]:
            r, w = _gauss_hermite(NODES_1D)
            sd = p.sd_slope_therapist[:, None]
            dev = sd[..., None] * truncated_quantile(
                r, (lo_t / sd)[..., None], (hi_t / sd)[..., None]
            )
            dev = np.where(sd[..., None] > 0, dev, 0.0)
            mm = np.broadcast_to(m[..., None], dev.shape)
            ww = np.broadcast_to(w / n_g, dev.shape)
            return _flat(mm), _flat(dev), _flat(np.zeros_like(dev)), _flat(ww)
        # Both levels: the therapist deviation truncated as above, the patient's given it.
        r, w = _gauss_hermite(NODES_2D)
        sd_t = p.sd_slope_therapist[:, None]
        ct = sd_t[..., None] * truncated_quantile(
            r, (lo_t / sd_t)[..., None], (hi_t / sd_t)[..., None]
        )
        ct = np.where(sd_t[..., None] > 0, ct, 0.0)  # (B, G, Kc)
        sd = p.sd_slope_patient[:, None, None, None]
        centre = m[..., None] + ct
        lo_z = ((lo[..., None] - centre) / sd[..., 0])[..., None]
        hi_z = ((hi[..., None] - centre) / sd[..., 0])[..., None]
        dev = sd * truncated_quantile(r, lo_z, hi_z)  # (B, G, Kc, Kd)
        dev = np.where(sd > 0, dev, 0.0)
        shape = dev.shape
        mm = np.broadcast_to(m[..., None, None], shape)
        cc = np.broadcast_to(ct[..., None], shape)
        ww = np.broadcast_to((w[:, None] * w[None, :]) / n_g, shape)
        return _flat(mm), _flat(cc), _flat(dev), _flat(ww)


def _draws_first(entry: Any) -> np.ndarray:
    """An entry of the shared accessor's shape (draws last: (B,) or (N, B)) as this module's
    (draws first: (B, 1) or (B, N))."""
    arr = np.asarray(entry, dtype=float)
    # C order, as the arrays it joins: sums over nodes then add in the same order.
    return arr[:, None] if arr.ndim == 1 else np.ascontiguousarray(arr.T)


def _flat(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).reshape(x.shape[0], -1)


def _lag_moments(
    phi: tuple[Any, ...],
    sigma: tuple[Any, ...],
    first: tuple[Any, ...],
    p: Params,
    spec: ModelSpec,
    design: Design,
) -> dict[str, tuple[np.ndarray, ...]]:
    """Within moments per node: lagged ``L = Var(w_(t-1))``, cross ``C = Cov(w_t, w_(t-1))``,
    current ``N = Var(w_t)`` (averaged over transitions) and ``A = Var(w)`` over all cells.
    ``first``: the first session's covariance (the stationary one when the model imposes it)."""
    if p.first is None:
        s = first
        return {"L": s, "C": dynamics.lag_cross_cov(phi, s), "N": s, "A": s}
    acc = {k: [0.0] * n for k, n in (("L", 3), ("C", 4), ("N", 3), ("A", 3))}
    n_s = design.transitions.shape[1]
    w_tr = design.transitions / design.transitions.sum()
    w_ce = design.cells / design.cells.sum()
    for g, start in enumerate(design.starts):
        shape = np.broadcast(*phi).shape
        var = tuple(np.broadcast_to(e[:, None], shape) for e in p.first)
        acc["A"] = [acc["A"][k] + w_ce[g, start] * var[k] for k in range(3)]
        for col in range(start + 1, n_s):
            if design.cells[g, col] == 0:
                break
            sig = sigma if spec.innovations != "session" else tuple(e[..., col - 1] for e in sigma)
            cross = dynamics.lag_cross_cov(phi, var)
            new = dynamics.propagate_cov(phi, var, sig)
            wt = w_tr[g, col]
            acc["L"] = [acc["L"][k] + wt * var[k] for k in range(3)]
            acc["C"] = [acc["C"][k] + wt * cross[k] for k in range(4)]
            acc["N"] = [acc["N"][k] + wt * new[k] for k in range(3)]
            acc["A"] = [acc["A"][k] + w_ce[g, col] * new[k] for k in range(3)]
            var = new
    return {k: tuple(np.asarray(e) for e in val) for k, val in acc.items()}


def _quad3(g: tuple[Any, ...], m: tuple[Any, ...]) -> Any:
    """g' M g for a symmetric M given by its upper entries (2x2: 11, 12, 22; 3x3: 11, 12, 13,
    22, 23, 33)."""
    if len(g) == 2:
        m11, m12, m22 = m
        return g[0] * g[0] * m11 + 2 * g[0] * g[1] * m12 + g[1] * g[1] * m22
    m11, m12, m13, m22, m23, m33 = m
    return (
        g[0] * g[0] * m11
        + g[1] * g[1] * m22
        + g[2] * g[2] * m33
        + 2 * (g[0] * g[1] * m12 + g[0] * g[2] * m13 + g[1] * g[2] * m23)
    )


def _mean_sigma(entry: np.ndarray, design: Design, spec: ModelSpec) -> np.ndarray:
    """Innovation variance averaged over the transitions of the data."""
    if spec.innovations != "session":
        return entry
    w = design.transitions.sum(axis=0)[1:]
    return (entry * w).sum(axis=-1) / w.sum()


def within_moments(
    post: Mapping[str, Any],
    spec: ModelSpec,
    design: Design,
    slopes: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Within-person moments per draw (shaped like the posterior's draws), averaged over the
    slope distribution.

    With ``slopes`` (per-patient slope deviations by level, ``"therapist"`` and ``"patient"``,
    each (chain, draw, patient) or (patient,)), the average runs over the data's patients with
    their own slopes in each draw: always finite, because every patient's dynamics are
    stationary under the truncated prior. Without it, over the population slope distribution by
    quadrature; that expectation diverges (logarithmically) when the truncation to stationary
    slopes binds, because the stationary variance grows without bound at the edge, so fitted
    results pass their patients' slopes.

    Returns
    -------
    dict
        ``var_x``, ``cov_xy``, ``var_y``: within (co)variances over the cells; ``f1_y``,
        ``v13_y``, ``v12_y``, ``sigma2_y``: outcome equation; ``f1_x``, ``sigma2_x``: predictor
        equation (its coefficients do not vary); ``target_y``, ``target_x``: the model-implied
        variance of each variable at the transitions, to which each equation's parts add up.
    """
    # Random innovations: the moments of the average patient's innovation covariance.
    post, spec = average_innovations(post, spec)
    p_all, batch = Params.of(post, spec, slopes)
    n_b = p_all.c.shape[0]
    nodes = len(slope_nodes(p_all.take(slice(0, 1)), spec, design)[0][0])
    step = max(1, CHUNK // max(nodes, 1))
    parts = [
        _moments_chunk(p_all.take(slice(i, i + step)), spec, design) for i in range(0, n_b, step)
    ]
    return {k: np.concatenate([pt[k] for pt in parts]).reshape(batch) for k in parts[0]}


def _moments_chunk(p: Params, spec: ModelSpec, design: Design) -> dict[str, np.ndarray]:
    m, c, d, w = slope_nodes(p, spec, design)
    s = m + c + d

    def col(x: np.ndarray) -> np.ndarray:
        return x[:, None] if x.ndim == 1 else x

    a, b, dd, b0 = col(p.a), col(p.b), col(p.d), col(p.b0)
    # Each node's dynamics as every other path computes them (draws on the trailing axis
    # there): the reduced-form lags (B, N) and the innovation covariance (B, 1), or per
    # transition column (B, 1, S - 1).
    dyn = dynamics_from(p.get(), spec, slope=s.T)
    phi = tuple(_draws_first(e) for e in dyn.phi)
    sig_r = tuple(
        np.moveaxis(e, -1, 0)[:, None, :] if dyn.by_session else _draws_first(e) for e in dyn.sigma
    )
    mom = _lag_moments(phi, sig_r, tuple(_draws_first(e) for e in dyn.first), p, spec, design)
    lag, cross, now, cells = mom["L"], mom["C"], mom["N"], mom["A"]

    def avg(x: Any) -> np.ndarray:
        return (np.broadcast_to(x, w.shape) * w).sum(axis=1)

    lag0_y = spec.same_session == "predictor_to_outcome"
    design_y: tuple[Any, ...] = (
        (lag[0], lag[1], cross[0], lag[2], cross[1], now[0]) if lag0_y else lag
    )

    def g(slope: Any) -> tuple[Any, ...]:
        return (slope, dd, b0) if lag0_y else (slope, dd)

    q_fixed = avg(_quad3(g(m), design_y))
    q_ther = avg(_quad3(g(m + c), design_y))
    q_full = avg(_quad3(g(s), design_y))
    design_x: tuple[Any, ...]
    if spec.same_session == "outcome_to_predictor":
        design_x = (lag[0], lag[1], cross[2], lag[2], cross[3], now[2])
        gx: tuple[Any, ...] = (a, b, b0)
    else:
        design_x = lag
        gx = (a, b)
    return {
        "var_x": avg(cells[0]),
        "cov_xy": avg(cells[1]),
        "var_y": avg(cells[2]),
        "f1_y": q_fixed,
        "v13_y": q_ther - q_fixed,
        "v12_y": q_full - q_ther,
        "sigma2_y": _mean_sigma(p.sigma[2], design, spec),
        "f1_x": avg(_quad3(gx, design_x)),
        "sigma2_x": _mean_sigma(p.sigma[0], design, spec),
        "target_y": avg(now[2]),
        "target_x": avg(now[0]),
    }
