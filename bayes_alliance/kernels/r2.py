"""R-squared per variance component (Rights & Sterba): a pure numpy kernel.

Two levels (Rights & Sterba 2019, Psych Methods 24:309), predictors centred within cluster::

    f1 = g_w' Phi_w g_w      f2 = g_b' Phi_b g_b      v = tr(T Sigma)      m = m' T m
    total = f1 + f2 + v + m + sigma2;  within = f1 + v + sigma2;  between = f2 + m

Three levels (Rights & Sterba 2023, Multivariate Behav Res 58:340)::

    L1 = f1 + v12 + v13 + sigma2;  L2 = f2 + v23 + m2;  L3 = f3 + m3;  total = L1 + L2 + L3

Every input may carry leading batch axes (e.g. chain, draw); components come back with them.

An optional component ``time`` holds variance that belongs to no level: the spread of
session-specific means and of trends over the sessions in the data. It enters the total
denominator only; level-specific (and within / between) denominators exclude it.

An optional component ``omega2`` holds measurement error: with observed scores
``z_ti = M_i + w_ti + eps_ti``, ``eps ~ N(0, omega^2)`` (Schuurman & Hamaker 2019), the
level-1 residual of the observed score splits into the innovation ``sigma2`` (part of the
state's variance) and ``omega2`` (white noise added to the state). It is a level-1 (within)
residual, so it enters the within / level-1 and the total denominators::

    within = f1 + v + sigma2 + omega2;   L1 = f1 + v12 + v13 + sigma2 + omega2

Without it (a model without measurement error) nothing changes: no ``omega2`` share, and the
denominators are summed exactly as before.

Optional components ``c`` (two levels), ``c2`` and ``c3`` (three levels) are the parts of the
fixed components ``f2`` and ``f3`` that covariates adjusting the latent means explain (their
effects' variance over the units of their level, ``g' S g``). They are parts, not further
components: they enter no denominator, and their shares are reported beside ``f2`` / ``f3``
in the total and their level's denominator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

Array = np.ndarray

TWO_LEVEL_COMPONENTS = ("f1", "f2", "v", "m", "sigma2")
THREE_LEVEL_COMPONENTS = ("f1", "f2", "f3", "v12", "v13", "v23", "m2", "m3", "sigma2")
TIME = "time"
ERROR = "omega2"  # measurement error of the observed scores (optional, level 1)
# The adjusting covariates' part of a fixed component (optional): part -> the component.
COVARIATE_PARTS = {"c": "f2", "c2": "f2", "c3": "f3"}

# Plain-language names of the components for this model's outcome equation (sessions in
# patients in therapists); the predictor equation has f1 and sigma2 and the intercept parts.
LABELS = {
    "f1": "state effects and autoregression (f1)",
    "f2": "patient trait effect (f2)",
    "f3": "therapist trait effect (f3)",
    "v": "random state slopes (v)",
    "v12": "patient variation in the state effect (v12)",
    "v13": "therapist variation in the state effect (v13)",
    "v23": "therapist variation in patient-level slopes (v23)",
    "m": "patient intercepts (m)",
    "m2": "patient intercepts (m2)",
    "m3": "therapist intercepts (m3)",
    "sigma2": "innovations (sigma2)",
    "f": "all fixed effects (f)",
    "fv": "fixed effects and random slopes (fv)",
    "fvm": "fixed effects, random slopes and intercepts (fvm)",
    "f1v": "state effects, autoregression and random slopes (f1v)",
    TIME: "session means and trends (time)",
    ERROR: "measurement error (omega2)",
    "c": "patient covariates, part of f2 (c)",
    "c2": "patient covariates, part of f2 (c2)",
    "c3": "therapist covariates, part of f3 (c3)",
}


def _quad(g: Array | None, phi: Array | None) -> Array:
    if g is None or phi is None or np.size(g) == 0:
        return np.asarray(0.0)
    g = np.asarray(g, dtype=float)
    return np.einsum("...i,...ij,...j->...", g, np.asarray(phi, dtype=float), g)


def _trace(t: Array | None, s: Array | None) -> Array:
    if t is None or s is None or np.size(t) == 0:
        return np.asarray(0.0)
    return np.einsum("...ij,...ji->...", np.asarray(t, dtype=float), np.asarray(s, dtype=float))


def _mean_part(t: Array | None, m: Array | None) -> Array:
    if t is None or np.size(t) == 0:
        return np.asarray(0.0)
    t = np.asarray(t, dtype=float)
    if m is None:  # predictors centred within cluster: the design means are (1, 0, ..., 0)
        return t[..., 0, 0]
    return _quad(m, t)


def two_level_components(
    *,
    gamma_w: Array | None,
    phi_w: Array | None,
    gamma_b: Array | None,
    phi_b: Array | None,
    tau: Array | None,
    sigma_re: Array | None,
    sigma2: Array | float,
    mean_re: Array | None = None,
    omega2: Array | float | None = None,
) -> dict[str, Array]:
    """Variance components of a two-level model (Rights & Sterba 2019).

    Parameters
    ----------
    gamma_w, phi_w
        Fixed within-cluster slopes (..., p) and the covariance of the within predictors (..., p, p).
    gamma_b, phi_b
        Fixed between-cluster slopes (..., q) and the covariance of the between predictors.
    tau
        Covariance of the random effects (..., r, r), intercept first.
    sigma_re
        Covariance of the random-effect design variables [1, slope predictors] (..., r, r); the
        intercept row and column are zero.
    sigma2
        Level-1 residual variance.
    mean_re
        Means of the random-effect design variables; default (1, 0, ..., 0), i.e. slope
        predictors centred within cluster.
    omega2
        Measurement-error variance of the observed outcome (a second level-1 residual), or
        None for a model without measurement error.

    Returns
    -------
    dict
        ``f1, f2, v, m, sigma2`` (and ``omega2`` when given) as arrays with the inputs' batch
        shape.
    """
    out = {
        "f1": _quad(gamma_w, phi_w),
        "f2": _quad(gamma_b, phi_b),
        "v": _trace(tau, sigma_re),
        "m": _mean_part(tau, mean_re),
        "sigma2": np.asarray(sigma2, dtype=float),
    }
    if omega2 is not None:
        out[ERROR] = np.asarray(omega2, dtype=float)
    return out


def three_level_components(
    *,
    gamma1: Array | None,
    phi1: Array | None,
    gamma2: Array | None,
    phi2: Array | None,
    gamma3: Array | None,
    phi3: Array | None,
    tau2_slopes: Array | None,
    sigma1_slopes: Array | None,
    tau3_slopes1: Array | None,
    tau3_slopes2: Array | None,
    sigma2_slopes: Array | None,
    m2: Array | float,
    m3: Array | float,
    sigma2: Array | float,
    omega2: Array | float | None = None,
) -> dict[str, Array]:
    """Variance components of a three-level model (Rights & Sterba 2023), centred predictors.

    Level-1 predictors are centred within level-2 clusters and level-2 predictors within level-3
    clusters, so the intercept variances ``m2`` and ``m3`` are the mean parts.

    Parameters
    ----------
    gamma1, phi1
        Level-1 fixed slopes and within-patient covariance of level-1 predictors.
    gamma2, phi2, gamma3, phi3
        The same for level-2 and level-3 predictors.
    tau2_slopes, sigma1_slopes
        Level-2 random-slope covariance of the level-1 predictors with random slopes, and those
        predictors' within covariance: ``v12 = tr(tau2_slopes sigma1_slopes)``.
    tau3_slopes1
        Level-3 random-slope covariance of level-1 predictors: ``v13 = tr(tau3_slopes1 sigma1_slopes)``.
    tau3_slopes2, sigma2_slopes
        Level-3 random slopes of level-2 predictors: ``v23 = tr(tau3_slopes2 sigma2_slopes)``.
    m2, m3
        Random-intercept variances at levels 2 and 3.
    sigma2
        Level-1 residual variance (the innovations).
    omega2
        Measurement-error variance of the observed outcome (a second level-1 residual), or
        None for a model without measurement error.
    """
    out = {
        "f1": _quad(gamma1, phi1),
        "f2": _quad(gamma2, phi2),
        "f3": _quad(gamma3, phi3),
        "v12": _trace(tau2_slopes, sigma1_slopes),
        "v13": _trace(tau3_slopes1, sigma1_slopes),
        "v23": _trace(tau3_slopes2, sigma2_slopes),
        "m2": np.asarray(m2, dtype=float),
        "m3": np.asarray(m3, dtype=float),
        "sigma2": np.asarray(sigma2, dtype=float),
    }
    if omega2 is not None:
        out[ERROR] = np.asarray(omega2, dtype=float)
    return out


def two_level_r2(c: Mapping[str, Any]) -> dict[tuple[str, str], Array]:
    """R-squared measures from two-level components, keyed by (denominator, measure).

    Denominators ``total``, ``within``, ``between``; measures as in r2mlm: f1, f2, v, m, f, fv,
    fvm, sigma2 (total); f1, v, f1v, sigma2 (within); f2, m (between). ``sigma2`` is the residual
    share, r2mlm's "Decompositions" row. A ``time`` component, when present, adds to the total.
    An ``omega2`` component (measurement error), when present, adds to the within and the total
    denominators and has a share of each.
    """
    f1, f2, v, m, s2 = (np.asarray(c[k], dtype=float) for k in TWO_LEVEL_COMPONENTS)
    time = np.asarray(c[TIME], dtype=float) if TIME in c else None
    err = np.asarray(c[ERROR], dtype=float) if ERROR in c else None
    within = f1 + v + s2
    if err is not None:  # added only when present: sums without it stay bit-identical
        within = within + err
    between = f2 + m
    total = within + between + (time if time is not None else 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            ("total", "f1"): f1 / total,
            ("total", "f2"): f2 / total,
            ("total", "v"): v / total,
            ("total", "m"): m / total,
            ("total", "f"): (f1 + f2) / total,
            ("total", "fv"): (f1 + f2 + v) / total,
            ("total", "fvm"): (f1 + f2 + v + m) / total,
            ("total", "sigma2"): s2 / total,
        }
        if err is not None:
            out[("total", ERROR)] = err / total
        if time is not None:
            out[("total", TIME)] = time / total
        out.update(
            {
                ("within", "f1"): f1 / within,
                ("within", "v"): v / within,
                ("within", "f1v"): (f1 + v) / within,
                ("within", "sigma2"): s2 / within,
            }
        )
        if err is not None:
            out[("within", ERROR)] = err / within
        out.update({("between", "f2"): f2 / between, ("between", "m"): m / between})
        if "c" in c:
            part = np.asarray(c["c"], dtype=float)
            out[("total", "c")] = part / total
            out[("between", "c")] = part / between
        return out


def three_level_r2(c: Mapping[str, Any]) -> dict[tuple[str, str], Array]:
    """Level-specific and total R-squared from three-level components, keyed by (denominator,
    measure). An ``omega2`` component (measurement error), when present, is a level-1 residual:
    it adds to the level-1 and the total denominators and has a share of each."""
    g = {k: np.asarray(c[k], dtype=float) for k in THREE_LEVEL_COMPONENTS}
    err = np.asarray(c[ERROR], dtype=float) if ERROR in c else None
    l1 = g["f1"] + g["v12"] + g["v13"] + g["sigma2"]
    if err is not None:  # added only when present: sums without it stay bit-identical
        l1 = l1 + err
    l2 = g["f2"] + g["v23"] + g["m2"]
    l3 = g["f3"] + g["m3"]
    time = np.asarray(c[TIME], dtype=float) if TIME in c else None
    total = l1 + l2 + l3 + (time if time is not None else 0.0)
    out: dict[tuple[str, str], Array] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in ("f1", "f2", "f3", "v12", "v13", "v23", "m2", "m3"):
            out[("total", k)] = g[k] / total
        out[("total", "f")] = (g["f1"] + g["f2"] + g["f3"]) / total
        out[("total", "fv")] = out[("total", "f")] + (g["v12"] + g["v13"] + g["v23"]) / total
        out[("total", "fvm")] = out[("total", "fv")] + (g["m2"] + g["m3"]) / total
        out[("total", "sigma2")] = g["sigma2"] / total
        if err is not None:
            out[("total", ERROR)] = err / total
        if time is not None:
            out[("total", TIME)] = time / total
        for k in ("f1", "v12", "v13", "sigma2"):
            out[("level1", k)] = g[k] / l1
        if err is not None:
            out[("level1", ERROR)] = err / l1
        for k in ("f2", "v23", "m2"):
            out[("level2", k)] = g[k] / l2
        for k in ("f3", "m3"):
            out[("level3", k)] = g[k] / l3
        for k, denom, level in (("c2", l2, "level2"), ("c3", l3, "level3")):
            if k in c:
                part = np.asarray(c[k], dtype=float)
                out[("total", k)] = part / total
                out[(level, k)] = part / denom
    return out


def total_variance(c: Mapping[str, Any]) -> Array:
    """Sum of all components: the model-implied total variance of the outcome (the covariates'
    parts of f2 and f3 are inside those already)."""
    return sum(
        (np.asarray(v, dtype=float) for k, v in c.items() if k not in COVARIATE_PARTS),
        start=np.asarray(0.0),
    )
