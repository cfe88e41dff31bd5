r"""Several indicators per session: a one-factor measurement model reduced to one score per cell.

With indicators k = 1..K of a variable (the marker k = 1 with loading 1 and intercept 0, so the
factor is on the marker's scale), each observed indicator of patient i at session t is

.. math::

    z_{k,ti} = \nu_k + \lambda_k \eta_{ti} + e_{k,ti}, \qquad e_{k,ti} \sim N(0, \theta_k^2),

with the latent score :math:`\eta_{ti} = \text{known mean} + M_i + w_{ti}` (plus white-noise
error with ``measurement_error``), the same loadings at the within and the between level. The
intercepts are parameterised at the marker's mean :math:`\bar z_1`:
:math:`\nu_k = \bar z_k + \nu'_k - \lambda_k \bar z_1`, so that :math:`\nu'_k`
(``indicator_intercept_<variable>``) is indicator k's offset from its own mean where the factor
is at the marker's mean, and its prior can be centred at 0.

Given the parameters, the indicators of one cell factorise exactly (complete the square in
:math:`\eta`) into a Gaussian "observation" of :math:`\eta` and a residual free of it:

.. math::

    \prod_k N(z_k; \nu_k + \lambda_k \eta, \theta_k^2)
      = N(\hat\eta; \eta, V) \, R(z), \qquad
    V = \Big(\sum_k \lambda_k^2 / \theta_k^2\Big)^{-1}, \quad
    \hat\eta = V \sum_k \lambda_k (z_k - \nu_k) / \theta_k^2,

    \log R = -\tfrac12 \sum_k (z_k - \nu_k - \lambda_k \hat\eta)^2 / \theta_k^2
             - \tfrac12 \sum_k \log(2\pi\theta_k^2) + \tfrac12 \log(2\pi V),

the sums over the cell's observed indicators. So :math:`\hat\eta` enters the Kalman filter as
the variable's observed score with a per-cell measurement-error variance V (plus
:math:`\omega^2`), the latent means and states integrate out exactly as before, and
:math:`\log R` is added to the log density. The error variance is then identified by the
indicators' agreement within a session, not by the dynamics alone. Indicators are read at the
cells where the marker is observed (a cell without the marker counts as missing).

References: Schuurman & Hamaker (2019), Psychological Methods 24:70 (reliability of
intensive longitudinal measures); Asparouhov, Hamaker & Muthen (2018), Struct Equ Modeling
25:359 (DSEM with several indicators).

No PyMC here: the builder calls :func:`composite` on tensors, the post-hoc draws on arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_alliance.core import vocab as v
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.spec.model_spec import ModelSpec

LOG_2PI = float(np.log(2 * np.pi))
NAMES = {
    v.PREDICTOR: (
        v.INDICATOR_LOADING_PREDICTOR,
        v.INDICATOR_INTERCEPT_PREDICTOR,
        v.INDICATOR_SD_PREDICTOR,
    ),
    v.OUTCOME: (v.INDICATOR_LOADING_OUTCOME, v.INDICATOR_INTERCEPT_OUTCOME, v.INDICATOR_SD_OUTCOME),
}


def columns(spec: ModelSpec, which: str, marker: str) -> tuple[str, ...]:
    """The indicator columns of a variable, its marker (the variable's own column) first; ()
    without indicators. The variable's own column must be one of its indicators (listed or
    not): a total score beside its subscales would be a linear function of them."""
    listed = spec.predictor_indicators if which == v.PREDICTOR else spec.outcome_indicators
    if not listed:
        return ()
    return (marker, *(c for c in dict.fromkeys(listed) if c != marker))


def check_marker(spec: ModelSpec, which: str, marker: str) -> None:
    """Refuse a variable column that looks like a total of its listed indicators: when the
    variable's own column is not listed, it is taken as the marker indicator; say so if the
    list already holds three or more indicators (a total plus its subscales is singular)."""
    listed = spec.predictor_indicators if which == v.PREDICTOR else spec.outcome_indicators
    if listed and marker not in listed and len(listed) >= 3:
        raise ValueError(
            f"the {which} column {marker!r} is not among its indicators {list(listed)}: it is "
            f"used as the marker indicator (loading 1) beside them. If {marker!r} is a total or "
            "mean of them, the indicators are linearly dependent: name one subscale as the "
            f"{which} (e.g. --{which} {listed[0]}) and list the others"
        )


@dataclass(frozen=True)
class IndicatorGrid:
    """One variable's indicators on the patient x session grid: values ``z`` (P, S, K; 0 where
    not read), masks ``o`` (1.0 where read: inside the series, the marker observed, the
    indicator observed), each indicator's mean and SD over its read cells, and the names."""

    names: tuple[str, ...]
    z: np.ndarray
    o: np.ndarray
    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def of(cls, data: SessionData, spec: ModelSpec, which: str) -> IndicatorGrid | None:
        marker = data.roles.predictor if which == v.PREDICTOR else data.roles.outcome
        check_marker(spec, which, marker)
        names = columns(spec, which, marker)
        if not names:
            return None
        if len(names) < 2:
            raise ValueError(
                f"{which}_indicators names no column other than the {which}'s own ({marker!r}): "
                "list at least one more indicator"
            )
        frame = data.frame
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ValueError(
                f"indicator column(s) {missing} of the {which} are not in the data (pass them as "
                "indicators so that they are read and checked)"
            )
        observed = data.observed_x if which == v.PREDICTOR else data.observed_y
        keep = observed & data.in_series
        p_code = frame["patient_code"].to_numpy()
        s_code = frame["session_code"].to_numpy()
        z = np.zeros((*keep.shape, len(names)))
        o = np.zeros_like(z)
        for k, c in enumerate(names):
            val = np.full(keep.shape, np.nan)
            val[p_code, s_code] = frame[c].to_numpy(dtype=float)
            ok = keep & np.isfinite(val)
            z[..., k] = np.where(ok, val, 0.0)
            o[..., k] = ok
        counts = o.sum(axis=(0, 1))
        mean = (z * o).sum(axis=(0, 1)) / np.maximum(counts, 1)
        var = (((z - mean) * o) ** 2).sum(axis=(0, 1)) / np.maximum(counts - 1, 1)
        sd = np.sqrt(var)
        few = [names[k] for k in range(len(names)) if counts[k] < 3 or not sd[k] > 0]
        if few:
            raise ValueError(
                f"indicator column(s) {few} of the {which} have fewer than 3 values or no "
                "variation where the marker is observed"
            )
        return cls(names, z, o, mean, sd)


def full_parameters(
    grid: IndicatorGrid, loading: Any, intercept: Any, sd: Any, xp: Any = np
) -> tuple[Any, Any, Any]:
    r"""Loadings, intercepts :math:`\nu_k` and residual variances of all K indicators (marker
    first) from the free parameters (``loading``, ``intercept``: the K - 1 others, draws on a
    trailing axis or none; ``sd``: all K)."""
    one = xp.ones_like(loading[:1])
    lam = xp.concatenate([one, loading], axis=0)
    nu_rest = grid.mean[1:].reshape(-1, *([1] * (np.ndim(loading) - 1)))
    m1 = grid.mean[0]
    nu = xp.concatenate([0.0 * one, nu_rest + intercept - loading * m1], axis=0)
    return lam, nu, sd**2


def composite(
    grid: IndicatorGrid, loading: Any, intercept: Any, sd: Any, xp: Any = np
) -> tuple[Any, Any, Any]:
    r"""Each cell's score :math:`\hat\eta`, its error variance V (1 where nothing is read) and
    :math:`\log R` (0 where nothing is read; module docstring).

    Parameters without draws (the builder, one draw) give (P, S) grids; parameters with draws
    on a trailing axis (K[, D]) give (P, S, D) grids."""
    lam, nu, theta = full_parameters(grid, loading, intercept, sd, xp)
    trailing = np.ndim(loading) > 1
    z = grid.z[..., None] if trailing else grid.z
    o = grid.o[..., None] if trailing else grid.o
    # the indicator axis is -1 without draws, -2 with them
    axis = -2 if trailing else -1
    prec = (o * lam**2 / theta).sum(axis=axis)
    read = (grid.o.sum(axis=-1) > 0)[..., None] if trailing else grid.o.sum(axis=-1) > 0
    prec_safe = xp.where(read, prec, 1.0)
    var = 1.0 / prec_safe
    eta = (o * lam * (z - nu) / theta).sum(axis=axis) * var
    eta_k = eta[..., None, :] if trailing else eta[..., None]
    resid = o * ((z - nu - lam * eta_k) ** 2 / theta + LOG_2PI + xp.log(theta))
    log_r = -0.5 * resid.sum(axis=axis) + xp.where(read, 0.5 * (LOG_2PI + xp.log(var)), 0.0)
    return xp.where(read, eta, 0.0), var, log_r


def default_priors(grid: IndicatorGrid, which: str) -> dict[str, dict[str, Any]]:
    """Priors on the indicators' scales: a loading Normal(r, r) with r = SD(z_k) / SD(z_1)
    (an indicator about as strongly related to the factor as the marker, in its own units), an
    intercept offset Normal(0, SD(z_k)), a residual SD HalfNormal(SD(z_k))."""
    loading, intercept, sd = NAMES[which]
    ratio = grid.sd[1:] / grid.sd[0]
    return {
        loading: {"dist": "Normal", "mu": ratio, "sigma": ratio},
        intercept: {"dist": "Normal", "mu": 0.0, "sigma": grid.sd[1:]},
        sd: {"dist": "HalfNormal", "sigma": grid.sd},
    }


def dims(which: str) -> dict[str, str]:
    """The dims of a variable's indicator parameters (the others; all, marker first)."""
    loading, intercept, sd = NAMES[which]
    return {loading: f"{which}_indicator", intercept: f"{which}_indicator", sd: f"{which}_item"}


def prior_defaults(data: SessionData, spec: ModelSpec) -> dict[str, dict[str, Any]]:
    """The default priors of every indicator parameter of the data (none without indicators),
    for :func:`bayes_alliance.model.priors.default_priors`'s ``extra``."""
    out: dict[str, dict[str, Any]] = {}
    for which, grid in grids(data, spec).items():
        out.update(default_priors(grid, which))
    return out


def grids(data: SessionData, spec: ModelSpec) -> dict[str, IndicatorGrid]:
    """The indicator grids of the variables that have indicators."""
    out = {}
    for which in v.VARIABLES:
        g = IndicatorGrid.of(data, spec, which)
        if g is not None:
            out[which] = g
    return out


__all__ = [
    "NAMES",
    "IndicatorGrid",
    "columns",
    "composite",
    "default_priors",
    "dims",
    "grids",
    "prior_defaults",
]
