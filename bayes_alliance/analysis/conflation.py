r"""Why decompose: one raw slope mixes the within and between effects (Rights 2023).

Two REML random-intercept models on the same cells (outcome at t with the predictor at t-1)::

    conflated:   y_t = b0 + b x_(t-1) + u_i + e
    decomposed:  y_t = b0 + b_W (x_(t-1) - xbar_i) + b_B xbar_i + u_i + e

The conflated slope is a precision-weighted blend of b_W and b_B, so when the state and trait
effects differ (or have opposite signs) it describes neither. R-squared per component (Rights &
Sterba 2019) shows the same thing: the conflated model has one fixed part ``f`` that cannot be
split into within and between variance explained. Observed person means are used here because
that is what the conflated literature does; the latent model (:mod:`bayes_alliance.model.build`)
removes their unreliability as well.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_alliance.analysis.lmm import fit_reml
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import r2


def conflation_table(data: SessionData) -> pd.DataFrame:
    """Slopes and R-squared (total denominator) of the conflated and decomposed models.

    Returns
    -------
    pandas.DataFrame
        Index ``conflated``, ``decomposed``; columns ``slope`` (the raw slope), ``within``,
        ``between``, ``r2_f1``, ``r2_f2``, ``r2_f`` (all fixed), ``r2_m`` (intercept variance),
        ``r2_sigma2``. Predictor moments are sample moments over the rows used, as in r2mlm.
    """
    x_lag = data.lagged("predictor", 1)
    y = data.y
    xbar = np.nanmean(np.where(data.present, data.x, np.nan), axis=1)
    ok = ~np.isnan(y) & ~np.isnan(x_lag)
    pi, si = np.nonzero(ok)
    if len(pi) < 10 or len(np.unique(pi)) < 3:
        raise ValueError(
            "too few sessions with an observed outcome and a lagged predictor for the comparison"
        )
    yv, xl, mb = y[pi, si], x_lag[pi, si], xbar[pi]
    xw = xl - mb
    one = np.ones_like(yv)
    a = fit_reml(yv, np.column_stack([one, xl]), one[:, None], pi)
    b = fit_reml(yv, np.column_stack([one, xw, mb]), one[:, None], pi)
    ca = r2.two_level_components(
        gamma_w=np.array([a.beta[1]]),
        phi_w=np.array([[np.var(xl, ddof=1)]]),
        gamma_b=None,
        phi_b=None,
        tau=a.random_cov,
        sigma_re=None,
        sigma2=a.sigma2,
    )
    cb = r2.two_level_components(
        gamma_w=np.array([b.beta[1]]),
        phi_w=np.array([[np.var(xw, ddof=1)]]),
        gamma_b=np.array([b.beta[2]]),
        phi_b=np.array([[np.var(mb, ddof=1)]]),
        tau=b.random_cov,
        sigma_re=None,
        sigma2=b.sigma2,
    )
    ra, rb = r2.two_level_r2(ca), r2.two_level_r2(cb)
    return pd.DataFrame(
        {
            "slope": [a.beta[1], np.nan],
            "within": [np.nan, b.beta[1]],
            "between": [np.nan, b.beta[2]],
            # The raw predictor carries within and between variance at once: its share is not f1.
            "r2_f1": [np.nan, float(rb[("total", "f1")])],
            "r2_f2": [np.nan, float(rb[("total", "f2")])],
            "r2_f": [float(ra[("total", "f1")]), float(rb[("total", "f")])],
            "r2_m": [float(ra[("total", "m")]), float(rb[("total", "m")])],
            "r2_sigma2": [float(ra[("total", "sigma2")]), float(rb[("total", "sigma2")])],
        },
        index=pd.Index(["conflated", "decomposed"], name="model"),
    )
