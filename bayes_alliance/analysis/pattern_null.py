r"""Pattern rules calibrated against the fitted model's own null (issue 24).

Each pattern rule of :mod:`bayes_alliance.analysis.patterns` reduces a series of states to a
statistic ``T`` (:func:`pattern_statistics`): the fitted linear change (strengthening; its
negative for weakening), the depth of a U (:func:`~bayes_alliance.analysis.patterns.u_dip`), the
depth of a repaired dip of one or two sessions (:func:`rupture_depths`) and the size of a rise
that meets the scale-free sudden-gain criteria (:func:`gain_sizes`). A pattern holds in a
posterior draw when ``T`` exceeds that draw's **null threshold**: the ``1 - alpha`` quantile of
``T`` on series drawn from the fitted model *without* the pattern, i.e. the stationary
within-person VAR(1) of the draw (reduced-form lag matrix, innovation covariance, first-session
covariance) observed at the patient's observed sessions (:func:`null_thresholds`).

Why this calibrates the posterior probability. Given the parameters, a posterior draw of a
patient's states (the latent mean and the states drawn from their conditional given the data;
with measurement error from the smoothing distribution) has, averaged over the data sets the
model generates, the model's prior distribution of the states: ``int p(w | y) p(y) dy = p(w)``.
So on series without a pattern, ``T`` of a posterior draw has the null law of ``T`` under that
draw's parameters, it exceeds the null threshold with probability ``alpha``, and the pattern's
posterior probability (the share of draws) has expectation ``alpha``. A flag raised at
probability ``p0`` is then raised for at most ``alpha / p0`` of the null patients (Markov's
inequality; 0.067 at ``alpha = 0.05``, ``p0 = 0.75``), and far fewer when the probability is
spread out (measured on fits in docs/patterns.md). It is exact at the true parameters and
approximate by the parameters' posterior uncertainty.

Thresholds. A linear statistic (the fitted change) is Gaussian under the null with the variance
``c' C c`` (``C``: the states' covariance at the observed sessions,
:func:`state_covariance`), so its quantile is exact (:func:`linear_null_sd`). The others are
computed by Monte Carlo, ``n_null`` null series per draw, and the threshold is the
``k = ceil((1 - alpha)(n_null + 1))``-th smallest null value: since the patient's null statistic
and the ``n_null`` simulated ones are exchangeable, ``P(T > threshold) = (n_null + 1 - k) /
(n_null + 1) <= alpha`` exactly, Monte Carlo error included (with 99 series: 0.05). Each draw has
its own series, so the thresholds' Monte Carlo noise averages out over draws in a probability.
Thresholds depend on the draw and on the observation pattern (first column, observed cells) only,
so :class:`NullCache` shares them between patients with the same pattern (not with patient-
specific dynamics: random slopes, moderators or random innovation variances).

Every function is pure numpy; arrays of draws have the draws on the *first* axis here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from bayes_alliance.analysis.patterns import (
    DEFAULT,
    PatternThresholds,
    as_series,
    gain_candidates,
    linear_change,
    u_dip,
)

# The statistics whose null quantile is computed by Monte Carlo (the linear change's is exact).
SIMULATED = ("u_shape", "rupture_repair", "sudden_gain")
DEFAULT_ALPHA = 0.05
DEFAULT_N_NULL = 99


def rupture_depths(states: Any, max_length: int = DEFAULT.rupture_max_length) -> np.ndarray:
    """Depth of the deepest repaired dip containing each session, per series.

    A dip of ``L <= max_length`` sessions starting at ``s`` has depth ``min(w_(s-1), w_(s+L)) -
    max(w_s, ..., w_(s+L-1))``: how far every dipped session lies below both the session before
    the drop and the session of the recovery (a drop and a regain of at least that size). All
    cells involved must be observed. Returns ``states.shape``, 0 where no dip contains the
    session (depths below 0 count as 0)."""
    w = np.asarray(states, dtype=float)
    n_t = w.shape[-1]
    out = np.zeros(w.shape)
    with np.errstate(invalid="ignore"):
        for length in range(1, max_length + 1):
            if n_t < length + 2:
                break
            top = w[..., 1 : n_t - length]
            for k in range(1, length):
                top = np.maximum(top, w[..., 1 + k : n_t - length + k])  # NaN propagates
            ends = np.minimum(w[..., : n_t - length - 1], w[..., 1 + length :])
            depth = np.nan_to_num(ends - top, nan=0.0)
            for k in range(length):
                part = out[..., 1 + k : n_t - length + k]
                np.maximum(part, depth, out=part)
    return np.maximum(out, 0.0)


def gain_sizes(
    states: Any, sessions: Any = None, thresholds: PatternThresholds = DEFAULT
) -> np.ndarray:
    """The rise into each session where it meets the scale-free sudden-gain criteria (the t
    criterion and no reversal, :func:`~bayes_alliance.analysis.patterns.gain_candidates`), else
    0; shape ``states.shape``. A gain arrives where this exceeds the size threshold."""
    gain, qualifies = gain_candidates(states, sessions, thresholds)
    return np.where(qualifies, np.maximum(np.nan_to_num(gain), 0.0), 0.0)


def pattern_statistics(
    states: Any, sessions: Any = None, thresholds: PatternThresholds = DEFAULT
) -> dict[str, np.ndarray]:
    """The statistic of each calibrated rule per series.

    Returns
    -------
    dict
        ``linear_change`` and ``u_dip`` (shape ``states.shape[:-1]``; NaN with fewer than
        ``min_sessions`` observed cells), ``rupture_depth`` and ``gain_size`` per session
        (``states.shape``, :func:`rupture_depths`, :func:`gain_sizes`).
    """
    w, t = as_series(states, sessions)
    enough = np.isfinite(w).sum(-1) >= thresholds.min_sessions
    return {
        "linear_change": np.where(enough, linear_change(w, t), np.nan),
        "u_dip": np.where(enough, u_dip(w, t, thresholds.u_edge), np.nan),
        "rupture_depth": rupture_depths(w, thresholds.rupture_max_length),
        "gain_size": gain_sizes(w, t, thresholds),
    }


def calibrated_indicators(
    states: Any,
    sessions: Any,
    null: dict[str, Any],
    thresholds: PatternThresholds = DEFAULT,
) -> dict[str, np.ndarray]:
    """Every pattern rule per series against null thresholds: the output of
    :func:`~bayes_alliance.analysis.patterns.pattern_indicators` with each statistic compared
    to its threshold in ``null`` (a dict of :func:`null_thresholds`, each entry broadcast
    against ``states.shape[:-1]``): strengthening ``linear_change > strengthening``, weakening
    ``-linear_change > weakening``, U ``u_dip > u_shape``, a session inside a repaired rupture
    ``rupture_depth > rupture_repair``, a gain arriving ``gain_size > sudden_gain``."""
    w, t = as_series(states, sessions)
    st = pattern_statistics(w, t, thresholds)
    q = {k: np.broadcast_to(np.asarray(val, dtype=float), w.shape[:-1]) for k, val in null.items()}
    with np.errstate(invalid="ignore"):
        rup = st["rupture_depth"] > q["rupture_repair"][..., None]
        gain = (st["gain_size"] > q["sudden_gain"][..., None]) & np.isfinite(w)
        return {
            "strengthening": st["linear_change"] > q["strengthening"],
            "weakening": -st["linear_change"] > q["weakening"],
            "u_shape": st["u_dip"] > q["u_shape"],
            "rupture_repair": rup.any(-1),
            "sudden_gain": gain.any(-1),
            "rupture_sessions": rup,
            "sudden_gain_sessions": gain,
        }


def _entries(entries: Any, n_d: int) -> list[np.ndarray]:
    return [np.broadcast_to(np.asarray(e, dtype=float), (n_d,)) for e in entries]


def state_covariance(
    phi: Any,
    sigma: Any,
    first: Any,
    n: int,
    variable: int = 0,
    *,
    start: int = 0,
    by_session: bool = False,
) -> np.ndarray:
    """Covariance of one variable's states at ``n`` consecutive grid columns of a series, per
    draw: ``w_1 ~ N(0, first)``, ``w_t = Phi w_(t-1) + u_t``, ``u_t ~ N(0, Sigma_t)``.

    Parameters
    ----------
    phi, sigma, first
        Entries ``(a, b, c, d)``, ``(s11, s12, s22)``, ``(f11, f12, f22)`` of the reduced-form
        lag matrix, innovation and first-session covariances, each a scalar or ``(D,)`` (with
        ``by_session`` the sigma entries are ``(D, S - 1)`` over the grid's transition columns).
    n
        Number of columns (the series' span).
    variable
        0 for the predictor, 1 for the outcome.
    start, by_session
        The series' first grid column: the transition into column ``start + j`` uses
        ``sigma[..., start + j - 1]`` when the innovations are session-specific.

    Returns
    -------
    numpy.ndarray, shape ``(D, n, n)``
    """
    n_d = max(np.shape(e)[0] if np.ndim(e) else 1 for e in (*phi, *first, *sigma))
    a, b, c, d = _entries(phi, n_d)
    big_phi = np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)  # (D, 2, 2)

    def mat(e11: Any, e12: Any, e22: Any) -> np.ndarray:
        e11, e12, e22 = _entries((e11, e12, e22), n_d)
        return np.stack([np.stack([e11, e12], -1), np.stack([e12, e22], -1)], -2)

    if by_session:
        sig = np.stack(
            [mat(*(np.asarray(e)[..., j] for e in sigma)) for j in range(np.shape(sigma[0])[-1])], 1
        )  # (D, S - 1, 2, 2)
        sig = sig[:, start : start + n - 1]
    else:
        sig = mat(*sigma)
    return state_covariance_k(big_phi, sig, mat(*first), n, variable)


def state_covariance_k(phi: Any, sigma: Any, first: Any, n: int, variable: int = 0) -> np.ndarray:
    r"""Covariance of one series' states at ``n`` consecutive grid columns of a k-series
    VAR(1), per draw: ``w_1 ~ N(0, F)``, ``w_t = Phi w_(t-1) + u_t``, ``u_t ~ N(0, Sigma_t)``,
    so ``V_t = Phi V_(t-1) Phi' + Sigma_t`` and ``Cov(w_(s+h), w_s) = Phi^h V_s``
    (Hamilton 1994, *Time Series Analysis*, ch. 10).

    Parameters
    ----------
    phi
        Lag matrices (D, k, k) (rows: to, columns: from).
    sigma
        Innovation covariances (D, k, k), or (D, n - 1, k, k) per transition into columns
        2..n.
    first
        First-column covariances (D, k, k).
    n
        Number of columns (the series' span).
    variable
        The series' position among the k.

    Returns
    -------
    numpy.ndarray, shape ``(D, n, n)``
    """
    big_phi = np.asarray(phi, dtype=float)
    n_d = big_phi.shape[0]
    sig = np.asarray(sigma, dtype=float)
    v = [np.broadcast_to(np.asarray(first, dtype=float), big_phi.shape)]
    for j in range(1, n):
        step = sig[:, j - 1] if sig.ndim == 4 else sig
        prev = v[-1]
        v.append(big_phi @ prev @ np.swapaxes(big_phi, -1, -2) + step)
    lagged = np.stack(v, 1)  # (D, n, k, k): Cov(w_(s+h), w_s) over s, h = 0 to start with
    out = np.empty((n_d, n, n))
    idx = np.arange(n)
    out[:, idx, idx] = lagged[:, :, variable, variable]
    for h in range(1, n):  # Cov(w_(s+h), w_s) = Phi Cov(w_(s+h-1), w_s)
        lagged = big_phi[:, None] @ lagged[:, : n - h]
        vals = lagged[:, :, variable, variable]
        out[:, idx[h:], idx[: n - h]] = vals
        out[:, idx[: n - h], idx[h:]] = vals
    return out


def linear_weights(observed: Any, sessions: Any) -> np.ndarray:
    """Weights ``c`` with ``linear_change = c . w`` over the observed cells (zero elsewhere):
    the OLS slope on the session number times the observed span."""
    m = np.asarray(observed, dtype=bool)
    t = np.asarray(sessions, dtype=float)
    tt = t[m]
    dt = np.where(m, t - tt.mean(), 0.0)
    return dt * (tt.max() - tt.min()) / np.sum(dt**2)


def linear_null_sd(cov: np.ndarray, observed: Any, sessions: Any) -> np.ndarray:
    """Null SD of the fitted linear change per draw: ``sqrt(c' C c)`` (``cov``: (D, n, n) over
    the span, :func:`state_covariance`)."""
    c = linear_weights(observed, sessions)
    return np.sqrt(np.einsum("i,dij,j->d", c, cov, c))


def order_quantile(values: np.ndarray, alpha: float, axis: int = -1) -> np.ndarray:
    """The ``k = ceil((1 - alpha)(K + 1))``-th smallest of ``K`` values along ``axis`` (+inf
    when ``k > K``): a statistic exchangeable with the ``K`` exceeds it with probability
    ``(K + 1 - k) / (K + 1) <= alpha``."""
    n_k = values.shape[axis]
    k = math.ceil((1 - alpha) * (n_k + 1) - 1e-9)
    if k > n_k:
        return np.full(np.delete(values.shape, axis if axis >= 0 else values.ndim + axis), np.inf)
    return np.partition(values, k - 1, axis=axis).take(k - 1, axis=axis)


def simulate_null(
    cov: np.ndarray, observed: Any, n_null: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_null`` null series per draw at the span's cells, NaN where not observed:
    (D, n_null, n), drawn as ``L z`` with ``L`` the Cholesky factor of the observed cells'
    covariance."""
    m = np.asarray(observed, dtype=bool)
    sub = cov[:, m][:, :, m]
    jitter = 1e-10 * np.maximum(np.abs(np.diagonal(sub, axis1=1, axis2=2)).max(-1), 1e-300)
    chol = np.linalg.cholesky(sub + jitter[:, None, None] * np.eye(m.sum()))
    z = rng.standard_normal((cov.shape[0], n_null, int(m.sum())))
    out = np.full((cov.shape[0], n_null, m.size), np.nan)
    out[:, :, m] = np.einsum("dij,dkj->dki", chol, z)
    return out


def null_thresholds(
    cov: np.ndarray,
    observed: Any,
    sessions: Any,
    thresholds: PatternThresholds = DEFAULT,
    *,
    alpha: float = DEFAULT_ALPHA,
    n_null: int = DEFAULT_N_NULL,
    rng: np.random.Generator | None = None,
    chunk_cells: int = 2_000_000,
) -> dict[str, np.ndarray]:
    """Each rule's null threshold per draw for one observation pattern.

    Parameters
    ----------
    cov
        The states' covariance over the span, (D, n, n) (:func:`state_covariance`).
    observed, sessions
        The observed cells of the span (bool, (n,)) and their session numbers.
    thresholds
        The scale-free settings of the rules (``min_sessions``, ``u_edge``,
        ``rupture_max_length`` and the gain criteria); its size thresholds are not used.
    alpha
        The false-positive rate per draw.
    n_null
        Null series per draw for the simulated statistics (:data:`SIMULATED`).
    rng
        Random numbers of the null series (default: seeded 0).
    chunk_cells
        Draws are simulated in chunks of about this many cells (memory).

    Returns
    -------
    dict
        ``strengthening``, ``weakening`` (``z_(1-alpha)`` times :func:`linear_null_sd`),
        ``u_shape``, ``rupture_repair``, ``sudden_gain`` (:func:`order_quantile` of the null
        statistics): arrays (D,). NaN where the pattern needs more observed sessions.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    rng = rng if rng is not None else np.random.default_rng(0)
    m = np.asarray(observed, dtype=bool)
    t = np.asarray(sessions, dtype=float)
    n_d = cov.shape[0]
    out: dict[str, np.ndarray] = {}
    nan = np.full(n_d, np.nan)
    enough = m.sum() >= thresholds.min_sessions
    lin = stats.norm.ppf(1 - alpha) * linear_null_sd(cov, m, t) if enough else nan
    out["strengthening"] = out["weakening"] = lin
    sims: dict[str, list[np.ndarray]] = {k: [] for k in SIMULATED}
    step = max(1, chunk_cells // max(n_null * m.size, 1))
    for lo in range(0, n_d, step):
        null = simulate_null(cov[lo : lo + step], m, n_null, rng)
        if enough:
            depth = u_dip(null, t, thresholds.u_edge)
            sims["u_shape"].append(order_quantile(depth, alpha))
        rup = rupture_depths(null, thresholds.rupture_max_length).max(-1)
        sims["rupture_repair"].append(order_quantile(rup, alpha))
        sims["sudden_gain"].append(order_quantile(gain_sizes(null, t, thresholds).max(-1), alpha))
    for k, parts in sims.items():
        out[k] = np.concatenate(parts) if parts else nan
    return out


@dataclass
class NullCache:
    """Null thresholds shared by every patient with the same observation pattern and the same
    dynamics: ``get(key, compute)`` computes once per key (the key must identify the
    dynamics too when they are patient-specific)."""

    store: dict[Any, dict[str, np.ndarray]] = field(default_factory=dict)

    def get(self, key: Any, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        if key not in self.store:
            self.store[key] = compute()
        return self.store[key]


def pattern_key(observed: Any, start: int) -> tuple[int, ...]:
    """An observation pattern as a hashable key (first column, then the observed offsets)."""
    return (int(start), *(int(i) for i in np.flatnonzero(np.asarray(observed, dtype=bool))))


__all__ = [
    "NullCache",
    "calibrated_indicators",
    "gain_sizes",
    "linear_null_sd",
    "linear_weights",
    "null_thresholds",
    "order_quantile",
    "pattern_key",
    "pattern_statistics",
    "rupture_depths",
    "simulate_null",
    "state_covariance",
    "state_covariance_k",
]
