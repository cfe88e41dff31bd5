r"""Continuous time on the sessions' own times: the within-person part of the model as a
continuous-time VAR(1) (an Ornstein-Uhlenbeck process).

For patient i of therapist j the within-person deviations ``w(t) = (x, y)(t) - latent means``
follow (Oud & Jansen 2000; Voelkle, Oud, Davidov & Schmidt 2012; Driver, Oud & Voelkle 2017)::

    dw = A_i w dt + G dW,   A_i = [[a_xx, a_xy], [a_yx[i], a_yy]],   G G' = Q
    a_yx[i] = a_yx + lambda' z_i + c_j + d_i          (random slopes of the drift's cross effect)
    Q = [[g_x^2, r g_x g_y], [r g_x g_y, g_y^2]]      (diffusion SDs g, correlation r)

Column t of a patient's grid is the patient's t-th session (:attr:`SessionData.times`) and
``dt_it`` the time since the patient's previous session, in the spec's time unit. The exact
discrete form of each interval (:mod:`bayes_alliance.kernels.ctime`)::

    w_t = Phi_i(dt_it) w_(t-1) + u_t,   Phi_i(dt) = expm(A_i dt),
    u_t ~ N(0, Q_i(dt_it)),             Q_i(dt) = S_i - Phi_i(dt) S_i Phi_i(dt)'
    w_1 ~ N(0, S_i),                    A_i S_i + S_i A_i' + Q = 0

feeds the Kalman filter of :mod:`bayes_alliance.kernels.kalman_op` with one lag matrix and one
innovation covariance per cell, so the latent means, the therapist parts, missing values at a
dated session and measurement error are integrated out exactly as in the session-number model
(the first session from the stationary distribution, as there). With the drift shared by all
patients, ``expm`` and ``Q`` are computed once per distinct interval and gathered to the cells;
with varying cross effects once per cell. Complete series with the drift shared and no
measurement error skip the filter: the same density as sums of products per distinct
interval (:mod:`bayes_alliance.model.interval_sums`). With equal unit intervals the likelihood is the
discrete model's at ``Phi = expm(A)``, ``Sigma = Q(1)``; the prior is not (the drift prior
below implies another prior on Phi than the session-number model's).

Stationarity (both eigenvalues of A_i with negative real part: ``tr A < 0``, ``det A_i > 0``)
is imposed as the discrete model imposes it (:mod:`bayes_alliance.model.within`): the prior is
truncated to the stationary region, the random cross effects each to their stationary
interval with its normalising constant. ``det A_i > 0`` bounds ``a_yx[i]`` on one side:
``a_yx[i] < a_xx a_yy / a_xy`` for ``a_xy > 0`` (above it for ``a_xy < 0``; no bound at 0).

Priors, in the time unit, scaled by the data's median interval m (``median_interval``):
``a_xx, a_yy ~ N(-0.7 / m, 0.7 / m)``, ``a_xy, a_yx ~ N(0, 0.5 ratio / m)``, diffusion SDs
``g ~ HalfNormal(sd sqrt(1.4 / m))``, ``r ~ U(-1, 1)``, the random cross effects' SDs
``HalfNormal(0.25 ratio / m)``. What they imply, by Monte Carlo (40,000 draws, m = 7, ratio 1,
truncated to stable drifts, which keeps 69%; the autoregression and the cross effect are
entries of ``expm(A m)``, so the other entries matter): the autoregression at the median
interval has prior median 0.42 and central 90% 0.14-0.89; the cross effect at the median
interval has central 90% -0.37 to 0.37 (SD 0.23), about 4x tighter than the session-number
prior ``N(0, ratio)`` before its truncation; the stationary SD over the variable's SD
(``sqrt(S_xx) / sd``) has median 0.77 and a long upper tail (95% quantile 3.2, 99% 7.2).

References
----------
Oud, J. H. L., & Jansen, R. A. R. G. (2000). *Psychometrika*, 65(2), 199-215.
Voelkle, M. C., Oud, J. H. L., Davidov, E., & Schmidt, P. (2012). *Psychological Methods*,
17(2), 176-192.
Driver, C. C., Oud, J. H. L., & Voelkle, M. C. (2017). ctsem. *Journal of Statistical
Software*, 77(5). Driver, C. C., & Voelkle, M. C. (2018). Hierarchical Bayesian continuous
time dynamic modeling. *Psychological Methods*, 23(4), 774-799.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_alliance.core import vocab as v
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import ctime
from bayes_alliance.kernels.dynamics import UNBOUNDED
from bayes_alliance.model.structure import Dynamics, Get, Structural, slope_deviations
from bayes_alliance.model.variability import error_var
from bayes_alliance.spec.model_spec import ModelSpec

CONTAINERS = ("interval_grid", "interval_values", "interval_index")


@dataclass(frozen=True)
class Intervals:
    """Each cell's time since the patient's previous session (``grid``, (P, S); 0 at a
    patient's first cell and after the last, where the filter reads no transition), and the
    same as distinct ``values`` with each cell's ``index`` into them."""

    grid: np.ndarray
    values: np.ndarray
    index: np.ndarray

    @classmethod
    def of(cls, data: SessionData) -> Intervals:
        if data.times is None:
            raise ValueError(
                "continuous time needs each session's time: a time column (--time COLUMN, "
                "Roles.time) or dates (--dates)"
            )
        dt = np.zeros(data.times.shape)
        dt[:, 1:] = np.diff(data.times, axis=1)
        dt[~np.isfinite(dt)] = 0.0
        values, index = ctime.distinct_intervals(dt)
        return cls(dt, values, index)

    def containers(self) -> dict[str, np.ndarray]:
        return dict(zip(CONTAINERS, (self.grid, self.values, self.index), strict=True))


def median_interval(data: SessionData) -> float:
    """The median time between a patient's consecutive sessions (the default effects
    interval and the scale of the priors)."""
    Intervals.of(data)  # the clear message without times
    return ctime.median_interval(data.times)


def check(data: SessionData, spec: ModelSpec) -> None:
    """What continuous time needs of the data (the spec checks its own options)."""
    Intervals.of(data)
    if data.n_sessions < 2:
        raise ValueError("continuous time needs patients with at least two sessions")


def drift_priors(
    data: SessionData, sd_x: Any, sd_y: Any, interval: Any = None
) -> dict[str, dict[str, Any]]:
    """Default priors of the drift, the diffusion and the random cross effects (module
    docstring), in the data's time unit; ``interval`` is the median interval m (default: the
    data's; the builder passes it as a ``pm.Data`` container, so that the priors follow new
    data when a compiled model is refitted, as the data's SDs do)."""
    m = median_interval(data) if interval is None else interval
    ratio = sd_y / sd_x

    def normal(mu: Any, sigma: Any) -> dict[str, Any]:
        return {"dist": "Normal", "mu": mu, "sigma": sigma}

    def half(sigma: Any) -> dict[str, Any]:
        return {"dist": "HalfNormal", "sigma": sigma}

    return {
        v.DRIFT_PREDICTOR_AUTOREGRESSION: normal(-0.7 / m, 0.7 / m),
        v.DRIFT_OUTCOME_AUTOREGRESSION: normal(-0.7 / m, 0.7 / m),
        v.DRIFT_STATE_EFFECT: normal(0.0, 0.5 * ratio / m),
        v.DRIFT_REVERSE_STATE_EFFECT: normal(0.0, 0.5 / ratio / m),
        v.DIFFUSION_SD_PREDICTOR: half(sd_x * (1.4 / m) ** 0.5),
        v.DIFFUSION_SD_OUTCOME: half(sd_y * (1.4 / m) ** 0.5),
        v.DIFFUSION_CORR: {"dist": "Uniform", "lower": -1.0, "upper": 1.0},
        v.SD_STATE_EFFECT_PATIENT: half(0.25 * ratio / m),
        v.SD_STATE_EFFECT_THERAPIST: half(0.25 * ratio / m),
    }


def drift_of(get: Get) -> tuple[Any, Any, Any, Any]:
    """The fixed drift entries (A_xx, A_xy, A_yx, A_yy)."""
    return tuple(get(n) for n in v.DRIFT_PARAMETERS)


def diffusion_of(get: Get) -> tuple[Any, Any, Any]:
    """The diffusion covariance entries ``(g_x^2, r g_x g_y, g_y^2)``."""
    gx, gy = get(v.DIFFUSION_SD_PREDICTOR), get(v.DIFFUSION_SD_OUTCOME)
    return gx**2, get(v.DIFFUSION_CORR) * gx * gy, gy**2


def cross_interval(drift: tuple[Any, Any, Any, Any], xp: Any = np) -> tuple[Any, Any, Any]:
    """``(lo, hi, feasible)``: the cross effects A_yx that keep A stable given the other
    entries (``det A > 0``; ``feasible``: ``tr A < 0`` and, where a_xy = 0, a_xx a_yy > 0);
    an open end is +-UNBOUNDED."""
    a11, a12, _, a22 = drift
    prod = a11 * a22
    nonzero = xp.where(a12 == 0 if xp is np else xp.eq(a12, 0), 1.0, a12)
    bound = prod / nonzero
    hi = xp.where(a12 > 0, bound, UNBOUNDED)
    lo = xp.where(a12 < 0, bound, -UNBOUNDED)
    nonzero_cross = a12 != 0 if xp is np else xp.neq(a12, 0)
    feasible = ((a11 + a22) < 0) & (nonzero_cross | (prod > 0))
    return lo, hi, feasible


def continuous_dynamics(
    get: Get,
    spec: ModelSpec,
    cells: dict[str, Any],
    *,
    z: Any = None,
    tj: Any = None,
    n_pat: Any = None,
    xp: Any = np,
    slope: Any = None,
) -> Dynamics:
    """The per-cell dynamics of the continuous-time model (module docstring) for the Kalman
    filter: ``phi`` and ``sigma`` entries (P, S), ``first`` the stationary covariance.

    ``cells`` holds :meth:`Intervals.containers` (arrays or ``pm.Data``), or, with the drift
    shared, only ``interval_values`` (:class:`bayes_alliance.model.interval_sums.IntervalSums`):
    ``phi`` and ``sigma`` are then per distinct interval (D,), not gathered to the cells.
    Parameters are
    requested in the order: the drift, the moderator effects, the random cross effects'
    SDs and raw deviations, the diffusion, the measurement-error SDs. ``slope``: each
    patient's cross effect where the caller has it (a completed posterior's
    ``state_effect_by_patient``); its pieces are then not requested.
    """
    a11, a12, a21, a22 = drift_of(get)
    varying = bool(spec.random_slopes or spec.moderators)
    if slope is not None:
        parts = Structural((a11, a12, a22), None)
    else:
        fixed = a21
        if z is not None:
            fixed = a21 + xp.dot(z, get(v.MODERATOR_EFFECT, dims="moderator"))
        parts = Structural((a11, a12, a22), fixed)
        slope_deviations(get, spec, parts)
        slope = fixed
        if parts.dev_therapist is not None:
            slope = slope + parts.dev_therapist[tj]
        if parts.dev_patient is not None:
            slope = slope + parts.dev_patient
    if varying and n_pat is not None:
        slope = xp.ones(n_pat) * slope
    q = diffusion_of(get)
    parts.sigma = q
    if varying:
        drift = (a11, a12, slope, a22)
        stat = ctime.stationary_cov(drift, q)
        # the scalar entries broadcast; the patient's cross effect and S down the rows
        col = (a11, a12, slope[:, None], a22)
        phi = ctime.expm(col, cells["interval_grid"], xp)
        sigma = ctime.interval_cov(phi, tuple(e[:, None] for e in stat))
    else:
        drift = (a11, a12, a21, a22)
        stat = ctime.stationary_cov(drift, q)
        phi = ctime.expm(drift, cells["interval_values"], xp)
        sigma = ctime.interval_cov(phi, stat)
        if "interval_index" in cells:  # the filter's cells; else per distinct interval
            index = cells["interval_index"]
            phi = tuple(e[index] for e in phi)
            sigma = tuple(e[index] for e in sigma)
    return Dynamics(
        phi,
        sigma,
        stat,
        varying,
        slope=slope if varying else None,
        parts=parts,
        error=error_var(get, spec),
        by_cell="interval_index" in cells or varying,
    )


def posthoc_dynamics(
    get: Get,
    spec: ModelSpec,
    cells: dict[str, Any],
    z: Any = None,
    tj: Any = None,
    slope: Any = None,
) -> Dynamics:
    """:func:`continuous_dynamics` of one posterior draw in numpy, for the post-hoc draws
    (latent means, states, pointwise log-likelihood, replicates). The cells without a
    transition (a patient's first cell and those after the last, interval 0: ``Phi = I``,
    ``Q = 0``) get the stationary covariance instead of ``Q(0) = 0``: no filter or sampler
    reads them, and a replicate or a Cholesky factor there stays finite."""
    dyn = continuous_dynamics(get, spec, cells, z=z, tj=tj, xp=np, slope=slope)
    none = np.asarray(cells["interval_grid"]) <= 0
    first = tuple(np.asarray(e, dtype=float) for e in dyn.first)
    col = tuple(e[:, None] if e.ndim == 1 else e for e in first)
    s11, s12, s22 = (np.where(none, c, np.asarray(e)) for c, e in zip(col, dyn.sigma, strict=True))
    dyn.sigma = (s11, s12, s22)
    return dyn


def stationarity_logp(dyn: Dynamics, tj: Any, z: Any, caseload: Any) -> Any:
    """Log density of the truncation of the prior to stable drifts (pytensor): -inf outside,
    minus the log normalising constants of the truncated cross-effect deviations inside; the
    session-number model's truncation (:func:`bayes_alliance.model.within.truncation_logp`)
    on the cross effect's stable interval (:func:`cross_interval`)."""
    import pytensor.tensor as pt  # the model's graph only: post-hoc code runs without it

    from bayes_alliance.model.within import truncation_logp  # imports PyMC: the builder's

    parts = dyn.parts
    assert parts is not None
    a11, a12, a22 = parts.lags
    interval = cross_interval((a11, a12, None, a22), xp=pt)
    return truncation_logp(parts, dyn.slope, interval, tj, z, caseload)


__all__ = [
    "Intervals",
    "check",
    "continuous_dynamics",
    "cross_interval",
    "drift_priors",
    "median_interval",
    "posthoc_dynamics",
    "stationarity_logp",
]
