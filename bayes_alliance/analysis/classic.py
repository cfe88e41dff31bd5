"""Classic two-step trait/state methods (docs/methods.md, section 'Classic two-step methods'),
for comparison and teaching.

Each function takes validated :class:`~bayes_alliance.data.session_data.SessionData` and returns a long table
with one row per present (patient, session) cell, in grid order, with ``trait`` and ``state``
columns. Lags and differences use session numbers, so a skipped session gives a missing lag.

These methods treat an observed summary (mean, first score, OLS intercept) as if it were the
trait. With short series that summary is unreliable, which biases between effects toward
within effects (Lüdtke et al. 2008) and lagged effects downward (Nickell 1981); the joint
model of :mod:`bayes_alliance.model.build` exists to avoid both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData


def _cells(data: SessionData) -> tuple[np.ndarray, np.ndarray]:
    return np.nonzero(data.present)


def _frame(data: SessionData, which: str, trait: np.ndarray, state: np.ndarray) -> pd.DataFrame:
    pi, si = _cells(data)
    g = data.variable(which)
    return pd.DataFrame(
        {
            vocab.PATIENT: data.patients[pi],
            vocab.SESSION: data.sessions[si],
            "value": g[pi, si],
            "trait": trait[pi] if trait.ndim == 1 else trait[pi, si],
            "state": state[pi, si],
        }
    )


def _nanmean_rows(g: np.ndarray) -> np.ndarray:
    n = (~np.isnan(g)).sum(axis=1)
    s = np.nansum(g, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / n, np.nan)


def person_mean_centre(data: SessionData, which: str = vocab.PREDICTOR) -> pd.DataFrame:
    """Trait = the patient's observed mean; state = score - trait."""
    g = data.variable(which)
    trait = _nanmean_rows(g)
    return _frame(data, which, trait, g - trait[:, None])


def baseline_centre(data: SessionData, which: str = vocab.PREDICTOR, k: int = 1) -> pd.DataFrame:
    """Trait = mean of the patient's first ``k`` observed scores (by session number); state = score - trait."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    g = data.variable(which)
    obs = ~np.isnan(g)
    rank = np.cumsum(obs, axis=1)  # 1 for the first observed score, 2 for the second, ...
    first_k = np.where(obs & (rank <= k), g, np.nan)
    trait = _nanmean_rows(first_k)
    return _frame(data, which, trait, g - trait[:, None])


def growth(data: SessionData, which: str = vocab.PREDICTOR) -> pd.DataFrame:
    """Per-patient OLS of the score on the session number: intercept (at session 0) and slope.

    Patients with fewer than two observed scores, or a single distinct session, get NaN.
    """
    g = data.variable(which)
    obs = ~np.isnan(g)
    t = np.broadcast_to(data.sessions.astype(float), g.shape)
    n = obs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tbar = np.where(obs, t, 0).sum(axis=1) / n
        gbar = np.where(obs, g, 0).sum(axis=1) / n
        dt = np.where(obs, t - tbar[:, None], 0)
        dg = np.where(obs, g - gbar[:, None], 0)
        sxx = (dt * dt).sum(axis=1)
        slope = np.where(sxx > 0, (dt * dg).sum(axis=1) / sxx, np.nan)
    intercept = gbar - slope * tbar
    return pd.DataFrame(
        {vocab.PATIENT: data.patients, "intercept": intercept, "slope": slope, "n_observed": n}
    )


def detrend(data: SessionData, which: str = vocab.PREDICTOR) -> pd.DataFrame:
    """Trait = the patient's OLS intercept (session 0); state = residual from the patient's line."""
    gr = growth(data, which)
    g = data.variable(which)
    fitted = (
        gr["intercept"].to_numpy()[:, None]
        + gr["slope"].to_numpy()[:, None] * data.sessions[None, :]
    )
    out = _frame(data, which, gr["intercept"].to_numpy(), g - fitted)
    pi, _ = _cells(data)
    out["slope"] = gr["slope"].to_numpy()[pi]
    return out


def difference_scores(data: SessionData, which: str = vocab.PREDICTOR) -> pd.DataFrame:
    """State = x_t - x_(t-1) (NaN when the previous session number is missing); trait = NaN."""
    g = data.variable(which)
    state = g - data.lagged(which, 1)
    return _frame(data, which, np.full(data.n_patients, np.nan), state)


def lagged(data: SessionData, which: str = vocab.PREDICTOR, lag: int = 1) -> pd.DataFrame:
    """The score ``lag`` session numbers earlier, for each present cell."""
    if lag < 1:
        raise ValueError(f"lag must be at least 1, got {lag}")
    pi, si = _cells(data)
    return pd.DataFrame(
        {
            vocab.PATIENT: data.patients[pi],
            vocab.SESSION: data.sessions[si],
            "value": data.variable(which)[pi, si],
            f"lag{lag}": data.lagged(which, lag)[pi, si],
        }
    )


def ols(
    design: np.ndarray, response: np.ndarray, cluster: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """OLS estimates and standard errors (cluster-robust CR1 when ``cluster`` is given).

    Rows with any NaN are dropped.
    """
    keep = ~np.isnan(design).any(axis=1) & ~np.isnan(response)
    xm, yv = design[keep], response[keep]
    n, k = xm.shape
    if n <= k or np.linalg.matrix_rank(xm) < k:
        raise ValueError(
            f"cannot fit the regression: {n} complete rows for {k} terms"
            + ("" if n <= k else " (the terms are collinear)")
        )
    xtx_inv = np.linalg.inv(xm.T @ xm)
    beta = xtx_inv @ xm.T @ yv
    resid = yv - xm @ beta
    if cluster is None:
        cov = xtx_inv * (resid @ resid) / (n - k)
    else:
        cl = cluster[keep]
        codes, inv = np.unique(cl, return_inverse=True)
        scores = np.zeros((len(codes), k))
        np.add.at(scores, inv, xm * resid[:, None])
        g = len(codes)
        adj = g / (g - 1) * (n - 1) / (n - k)
        cov = adj * xtx_inv @ (scores.T @ scores) @ xtx_inv
    return beta, np.sqrt(np.diag(cov))


def within_autoregression(data: SessionData, which: str = vocab.OUTCOME) -> float:
    """Classic AR estimate: person-mean-centred score on its own centred lag, pooled, no intercept.

    Biased by about -(1 + phi) / (T - 1) with T sessions per patient (Nickell 1981).
    """
    g = data.variable(which)
    c = g - _nanmean_rows(g)[:, None]
    lag = np.full_like(c, np.nan)
    lag[:, 1:] = c[:, :-1]
    ok = ~np.isnan(c) & ~np.isnan(lag)
    return float((c[ok] * lag[ok]).sum() / (lag[ok] ** 2).sum())


def two_step_regression(data: SessionData) -> pd.DataFrame:
    """The literature's single-equation model fitted in two steps by OLS.

    ``y_t = b0 + b_trait * mean(x)_i + b_state * (x_(t-1) - mean(x)_i) + b_ar * y_(t-1) + e``,
    with person-mean centring of x and standard errors clustered by patient (CR1).

    Returns
    -------
    pandas.DataFrame
        Rows ``intercept, trait_effect, state_effect, outcome_autoregression``; columns
        ``estimate, se``.
    """
    x, y = data.x, data.y
    trait = _nanmean_rows(x)
    x_lag = data.lagged(vocab.PREDICTOR, 1)
    y_lag = data.lagged(vocab.OUTCOME, 1)
    pi, si = _cells(data)
    design = np.column_stack(
        [
            np.ones(len(pi)),
            trait[pi],
            x_lag[pi, si] - trait[pi],
            y_lag[pi, si],
        ]
    )
    beta, se = ols(design, y[pi, si], cluster=pi)
    names = ["intercept", "trait_effect", vocab.STATE_EFFECT, vocab.OUTCOME_AUTOREGRESSION]
    return pd.DataFrame({"estimate": beta, "se": se}, index=pd.Index(names, name="term"))
