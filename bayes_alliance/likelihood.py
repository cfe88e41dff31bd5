"""The two likelihoods of the trait/state model, given its parameters.

``conditional_likelihood``: the latent means are parameters; every cell contributes
``p(x_t | past, M) p(y_t | x_t, past, M)``; observed cells are observed variables (PyMC records
their pointwise log-likelihood).

``integrated_likelihood``: the latent means are integrated out per patient in closed form
(:mod:`bayes_alliance.marginal`); the data enter as ``pm.Data`` containers so a compiled model can
be refitted to other data of the same layout.

Both complete a patient's series from the first to the last row with imputation parameters for
missing cells (a skipped session, a missing rating), so both give the exact joint density of the
observed and imputed cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_alliance import marginal
from bayes_alliance import vocab as v
from bayes_alliance.data import SessionData


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
class CellIndex:
    """The cells inside each series, flattened patient by patient (session order within).

    ``miss_x`` / ``miss_y`` are positions among the cells, in the order of the imputation
    parameters (that of :class:`GridIndex`).
    """

    patient: np.ndarray  # (C,) patient code of each cell
    session: np.ndarray  # (C,) session column of each cell
    x: np.ndarray  # (C,) values, 0 where missing
    y: np.ndarray
    miss_x: np.ndarray
    miss_y: np.ndarray
    first: np.ndarray  # (P,) position of each patient's first cell
    n_trans: np.ndarray  # (P,) transitions per patient

    @classmethod
    def of(cls, data: SessionData) -> CellIndex:
        inside = data.in_series
        pat, ses = np.nonzero(inside)
        obs_x = data.observed_x[pat, ses]
        obs_y = data.observed_y[pat, ses]
        counts = inside.sum(axis=1)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        return cls(
            patient=pat.astype(np.int64),
            session=ses.astype(np.int64),
            x=np.where(obs_x, data.x[pat, ses], 0.0),
            y=np.where(obs_y, data.y[pat, ses], 0.0),
            miss_x=np.nonzero(~obs_x)[0],
            miss_y=np.nonzero(~obs_y)[0],
            first=first,
            n_trans=(counts - 1).astype(float),
        )

    def containers(self) -> dict[str, np.ndarray]:
        """The arrays that change with the data, by their ``pm.Data`` names."""
        return {
            "cell_patient": self.patient,
            "cell_session": self.session,
            "cell_predictor": self.x,
            "cell_outcome": self.y,
            "cell_missing_predictor": self.miss_x,
            "cell_missing_outcome": self.miss_y,
            "patient_first_cell": self.first,
            "patient_transitions": self.n_trans,
        }


@dataclass
class Dynamics:
    """Reduced-form dynamics: Phi* entries (a, b, c, d), Sigma* and first-cell covariance entries.

    Any entry may be a per-patient vector (``varying``); the others are scalars.
    """

    phi: tuple[Any, Any, Any, Any]
    sigma: tuple[Any, Any, Any]
    first: tuple[Any, Any, Any]
    varying: bool


def _imputed(values: Any, positions: Any, n_missing: int, name: str, dim: str, loc: float) -> Any:
    if not n_missing:
        return values
    # Offsets from the data mean, so the default start (0) is a plausible value.
    offset = pm.Flat(name, dims=dim)
    return pt.set_subtensor(values[positions], loc + offset)


def integrated_likelihood(
    data: dict[str, Any],
    n_missing: tuple[int, int],
    known_x: Any,
    known_y: Any,
    dyn: Dynamics,
    m0: tuple[Any, Any],
    tau: tuple[Any, Any, Any],
    loc: tuple[Any, Any],
    posthoc: bool = False,
) -> None:
    """Add the closed-form marginal likelihood (latent means integrated out) to the model.

    ``data`` holds the ``pm.Data`` containers of :meth:`CellIndex.containers`; ``n_missing`` the
    numbers of missing predictor and outcome cells (imputation parameters).
    ``known_x`` / ``known_y`` map (cell_patient, cell_session) data to the known part of each
    cell's mean (intercept or session means, trend). With ``posthoc`` the conditional posterior
    moments of the latent means are added as deterministics (for drawing them after sampling).
    """
    n_pat = data["patient_first_cell"].shape[0]
    zx = _imputed(
        data["cell_predictor"],
        data["cell_missing_predictor"],
        n_missing[0],
        "missing_predictor_offset",
        "missing_predictor_cell",
        loc[0],
    )
    zy = _imputed(
        data["cell_outcome"],
        data["cell_missing_outcome"],
        n_missing[1],
        "missing_outcome_offset",
        "missing_outcome_cell",
        loc[1],
    )
    zx = zx - known_x(data["cell_patient"], data["cell_session"])
    zy = zy - known_y(data["cell_patient"], data["cell_session"])
    a, b, c, d = dyn.phi
    # Residuals r_t = z~_t - Phi z~_(t-1) for every cell after the first of the flat vector
    # (shifted slices rather than gathers keep the gradient cheap).
    ct = c[data["cell_patient"][1:]] if dyn.varying else c
    rx = zx[1:] - a * zx[:-1] - b * zy[:-1]
    ry = zy[1:] - ct * zx[:-1] - d * zy[:-1]
    q = marginal.residual_quadratic(rx, ry, *dyn.sigma)
    # r_t pairs a cell with its predecessor; pairs that straddle two patients get weight 0.
    t_pat = data["cell_patient"][1:]
    same = pt.eq(t_pat, data["cell_patient"][:-1])
    start = data["patient_first_cell"]

    def per_patient(val: Any) -> Any:
        return pt.inc_subtensor(pt.zeros(start.shape[0])[t_pat], pt.switch(same, val, 0.0))

    sums = marginal.SeriesSums(
        first_x=zx[start],
        first_y=zy[start],
        rx=per_patient(rx),
        ry=per_patient(ry),
        q=per_patient(q),
        n_trans=data["patient_transitions"],
    )
    ll = marginal.integrated_loglik(sums, dyn.phi, dyn.sigma, dyn.first, m0, tau, xp=pt)
    pm.Potential("integrated_series", ll.sum())
    if posthoc:
        names = ("mean_predictor", "mean_outcome", "var_predictor", "cov", "var_outcome")
        moments = marginal.mean_posterior(sums, dyn.phi, dyn.sigma, dyn.first, m0, tau)
        for name, val in zip(names, moments, strict=True):
            pm.Deterministic(f"trait_posterior_{name}", val * pt.ones(n_pat), dims=v.PATIENT)


def conditional_likelihood(
    data: SessionData,
    idx: GridIndex,
    m_x: Any,
    m_y: Any,
    dyn: Dynamics,
    loc: tuple[Any, Any],
    store_states: bool,
) -> None:
    """Add the likelihood given the latent means ``m_x``, ``m_y`` ((P, 1) or (P, S)) to the model."""
    n_pat, n_ses = data.x.shape

    def flat(g: Any, cells: tuple[np.ndarray, np.ndarray]) -> Any:
        # 1-D gathers: their gradients are 1-D scatter-adds, cheaper than 2-D fancy indexing.
        return g.ravel()[np.ravel_multi_index(cells, (n_pat, n_ses))]

    zx0 = np.where(idx.inside & data.observed_x, data.x, 0.0)
    zy0 = np.where(idx.inside & data.observed_y, data.y, 0.0)
    zx = _imputed(
        pt.as_tensor(zx0).ravel(),
        np.ravel_multi_index(idx.miss_x, zx0.shape),
        len(idx.miss_x[0]),
        "missing_predictor_offset",
        "missing_predictor_cell",
        loc[0],
    ).reshape(zx0.shape)
    zy = _imputed(
        pt.as_tensor(zy0).ravel(),
        np.ravel_multi_index(idx.miss_y, zy0.shape),
        len(idx.miss_y[0]),
        "missing_outcome_offset",
        "missing_outcome_cell",
        loc[1],
    ).reshape(zy0.shape)
    wx = zx - m_x
    wy = zy - m_y
    if store_states:
        inside = pt.as_tensor(idx.inside)
        pm.Deterministic(
            "state_predictor", pt.switch(inside, wx, np.nan), dims=(v.PATIENT, v.SESSION)
        )
        pm.Deterministic(
            "state_outcome", pt.switch(inside, wy, np.nan), dims=(v.PATIENT, v.SESSION)
        )

    def col(val: Any) -> Any:  # per-patient vector -> (P, 1); scalar unchanged
        return val[:, None] if dyn.varying and getattr(val, "ndim", 0) == 1 else val

    a, b, c, d = dyn.phi
    s11, s12, s22 = dyn.sigma
    f11, f12, f22 = dyn.first
    wx_prev = pt.concatenate([pt.zeros((n_pat, 1)), wx[:, :-1]], axis=1)
    wy_prev = pt.concatenate([pt.zeros((n_pat, 1)), wy[:, :-1]], axis=1)
    first = pt.as_tensor(idx.first)
    lag_x = pt.switch(first, 0.0, col(a) * wx_prev + col(b) * wy_prev)
    lag_y = pt.switch(first, 0.0, col(c) * wx_prev + col(d) * wy_prev)
    v_x = pt.switch(first, col(f11), col(s11))
    c_xy = pt.switch(first, col(f12), col(s12))
    v_y = pt.switch(first, col(f22), col(s22))
    k = c_xy / v_x
    mean_x = m_x + lag_x
    sd_x = pt.sqrt(v_x) * pt.ones((n_pat, n_ses))
    mean_y = m_y + lag_y + k * (wx - lag_x)
    sd_y = pt.sqrt(v_y - k * c_xy) * pt.ones((n_pat, n_ses))

    pm.Normal(
        v.PREDICTOR,
        mu=flat(mean_x, idx.obs_x),
        sigma=flat(sd_x, idx.obs_x),
        observed=data.x[idx.obs_x],
        dims="observed_predictor_cell",
    )
    pm.Normal(
        v.OUTCOME,
        mu=flat(mean_y, idx.obs_y),
        sigma=flat(sd_y, idx.obs_y),
        observed=data.y[idx.obs_y],
        dims="observed_outcome_cell",
    )
    missing_logp = pt.constant(0.0)
    if len(idx.miss_x[0]):
        missing_logp += pm.logp(
            pm.Normal.dist(flat(mean_x, idx.miss_x), flat(sd_x, idx.miss_x)),
            flat(zx, idx.miss_x),
        ).sum()
    if len(idx.miss_y[0]):
        missing_logp += pm.logp(
            pm.Normal.dist(flat(mean_y, idx.miss_y), flat(sd_y, idx.miss_y)),
            flat(zy, idx.miss_y),
        ).sum()
    pm.Potential("missing_cells", missing_logp)
