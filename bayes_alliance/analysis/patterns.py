r"""State-like dynamic patterns per patient, classified from the posterior of the states.

The review of Zilcha-Mano & Fisher (2022, Box 3; docs/patterns.md) names the patterns a
clinician reads in a patient's session-by-session alliance: linear strengthening or weakening,
a U-shape (high-low-high), rupture-repair (a drop lasting one or two sessions, then recovery)
and sudden gains (a large, lasting improvement between consecutive sessions; adapted from Tang &
DeRubeis 1999). Here each rule is applied to every posterior draw of a patient's states
``w = x - latent mean`` (:meth:`bayes_alliance.inference.fit.FitResult.states`), and a pattern's posterior
probability is the share of draws in which the rule holds. A raw-score reading gives one
yes/no; the share of draws says how sure the model is.

Every function is pure numpy. States are arrays ``(..., draws, sessions)``: any leading batch
axes (patients), then draws, then the sessions of the patient x session grid, adjacent columns
being consecutive session numbers; a missing cell is NaN and every rule that needs it is not met
there (conservative). Higher states are taken as better (alliance); for a variable where lower is
better, pass ``-states``.

The probabilities per patient of a fit (``patterns_table``) and one patient's JSON-ready
summary (``feedback_patterns``) are in :mod:`bayes_alliance.analysis.pattern_table`; the one
patient's as a JSON-ready dict (a clinician feedback page). The patterns as predictors of outcome
are in :mod:`bayes_alliance.analysis.pattern_outcome`, planted patterns for validation in
:mod:`bayes_alliance.sim.patterns`.

Thresholds. By default (``calibration="null"`` in
:func:`~bayes_alliance.analysis.pattern_table.patterns_table` and the feedback) each rule is
reduced to a statistic and holds in a draw when the statistic exceeds its ``1 - alpha``
quantile under the fitted model without patterns, in that draw
(:mod:`bayes_alliance.analysis.pattern_null`): a pattern's probability on a series without it
then averages ``alpha`` (0.05), whatever the series' length, missing sessions or dynamics. The
size thresholds of :class:`PatternThresholds` belong to the fixed rules of this module
(``calibration="fixed"``), kept for comparison and backward compatibility; the calibrated rules
use only its scale-free settings (``min_sessions``, ``u_edge``, ``rupture_max_length``, the gain's
window, t level and reversal).

The unit of the fixed rules. Every fixed threshold is in units of the patient's
session-to-session fluctuation, ``scale`` (broadcast against ``states.shape[:-1]``, i.e. one value
per draw, or per patient and draw). From a fit it is by default the variable's one-step SD in
that draw: the SD of the part of a session's state that the previous session does not predict,
the reduced form's innovation SD (:func:`~bayes_alliance.analysis.pattern_table.innovation_scale`;
with a lag-0 path into the variable it includes the other variable's same-session innovation). With ``scale=None`` the functions estimate it from each series: the median absolute
successive difference divided by ``0.6745 * sqrt(2)`` (:func:`fluctuation_sd`), which equals the
innovation SD for serially independent states and is robust to the one or two large jumps that a
rupture or a gain makes.

What the posterior can and cannot say. *With measurement error* in the model
(``measurement_error=True``) the observed score is the latent mean plus the state plus an error,
and the state draws come from their smoothing distribution given the data (forward filtering,
backward sampling): they differ between draws at every session, so a pattern's probability says
how sure the model is that the *states* show it, given that part of every rating is measurement
noise: a single low rating can be a rupture or an error. *Without* it the states at observed
cells are the observed scores minus the latent mean (and a trend, when the model has one), so the
shape of a patient's series is the same in every draw, only shifted; every statistic here is
shift-invariant, so the probability expresses only the parameters' uncertainty (the unit of the
fixed rules, the null threshold of the calibrated ones), a trend's when the model estimates one
(then the states are deviations from the patient's trajectory and a linear change is in the trend,
not in the states), and imputed missing cells (``impute_missing=True``). Such probabilities are
nearly all 0 or 1 and treat every rating as exact; fit with measurement error when ratings are
noisy. In both cases the calibrated rules' false-positive rates are measured on fits in
docs/patterns.md.

References
----------
Tang, T. Z., & DeRubeis, R. J. (1999). Sudden gains and critical sessions in cognitive-behavioral
therapy for depression. Journal of Consulting and Clinical Psychology, 67(6), 894-904.

Zilcha-Mano, S., & Fisher, H. (2022). Distinct roles of state-like and trait-like patient-therapist
alliance in psychotherapy. Nature Reviews Psychology, 1(4), 194-210.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

PATTERNS = ("strengthening", "weakening", "u_shape", "rupture_repair", "sudden_gain")


@dataclass(frozen=True)
class PatternThresholds:
    """Thresholds of the pattern rules, all in units of the session-to-session fluctuation SD.

    The sizes (``trend_change``, ``u_dip``, ``rupture_drop``, ``repair_tolerance``,
    ``gain_size``) are those of the fixed rules (``calibration="fixed"``); the calibrated rules
    (the default from a fit, :mod:`bayes_alliance.analysis.pattern_null`) take their sizes from
    the fitted model's null and use the other settings.

    Attributes
    ----------
    min_sessions : int, default 5
        Fewest observed sessions for the whole-series patterns (linear, U). Below five a slope
        and a curvature are fitted to almost nothing; a patient with fewer never shows them.
    trend_change : float, default 2.0
        Linear strengthening (weakening): the OLS slope of the states on the session number,
        times the span of the observed sessions (the fitted change from first to last session),
        is at least ``+trend_change`` (at most ``-trend_change``). Two fluctuation SDs is a
        change a clinician notices, and it is about twice the sampling SD of that fitted change
        for a stationary AR(1) series of 10-20 sessions with autoregression 0.3, so a flat
        series rarely crosses it.
    u_dip : float, default 1.5
        U-shape: the OLS quadratic in the session number curves upwards, its minimum lies inside
        the series (see ``u_edge``) and the fitted minimum is at least ``u_dip`` below the lower
        of the fitted values at the first and the last session: a material dip, not a flat
        series with a slight curvature. Fitted values are averages over several sessions, so a
        smaller multiple than the single-session thresholds below already means a real dip.
    u_edge : float, default 0.2
        The minimum of the quadratic must lie at least this share of the observed span away from
        either end (inside the middle 60 %), so that a monotone series with a bend at one end
        is not a U.
    rupture_drop : float, default 3.0
        Rupture: the state falls from one session to the next by at least this much. The
        difference of two sessions of a stationary AR(1) state has SD ``sqrt(2 / (1 + phi))``
        fluctuation SDs (about 1.24 at phi = 0.3), so a fall of 3 is about 2.4 SDs of the usual
        session-to-session change, "well beyond the usual fluctuation"; a series of 15 sessions
        has 14 chances of such a fall, so a smaller multiple (2.5 gave about one flat series in
        nine with serially independent states) flags too many flat series.
    rupture_max_length : int, default 2
        Repair: the state is back within ``repair_tolerance`` of the pre-drop level (the session
        before the drop) after one or two sessions (Zilcha-Mano & Fisher 2022, Box 3: a drop
        lasting one or two sessions); the ruptured sessions are those from the drop up to the
        one before the recovery. A longer dip is not a rupture-repair.
    repair_tolerance : float, default 1.0
        Recovery means reaching at least ``pre-drop level - repair_tolerance``. The pre-drop
        level is a single session, itself noisy: the difference of two sessions has SD of about
        1.24 fluctuation SDs, so a tolerance of 0.5 misses about a third of complete repairs,
        while 1.0 still demands that at least two thirds of a minimal (3 SD) drop is regained.
    gain_size : float, default 2.5
        Sudden gain, criterion 1 (Tang & DeRubeis' absolute criterion): the state rises from
        session ``n - 1`` to session ``n`` by at least this much; as large as a rupture's drop.
        Tang & DeRubeis' relative criterion (at least 25 % of the pre-gain score) has no meaning
        for states, which are centred at zero, and is replaced by ``gain_window``.
    gain_window : int, default 3
        Sudden gain, criterion 2 (Tang & DeRubeis' criterion 3, the gain is large relative to the
        surrounding sessions' variability): the mean of the ``gain_window`` sessions from ``n``
        on exceeds the mean of the ``gain_window`` sessions before ``n`` by a two-sample t
        statistic (pooled SD) above the two-sided critical value at ``gain_alpha`` for the
        available degrees of freedom (Tang & DeRubeis: three and three sessions, t > 2.776);
        missing cells shorten a window, and each side needs at least two sessions.
    gain_alpha : float, default 0.05
        Level of that t criterion.
    gain_reversal : float, default 0.5
        Sudden gain, criterion 3 (stability): each observed session of the ``gain_stable``
        sessions after ``n`` keeps more than ``1 - gain_reversal`` of the gain above the pre-gain
        session, i.e. the gain is not reversed (Tang & DeRubeis call a gain reversed when half of
        it is lost). At least one of them must be observed.
    gain_stable : int, default 2
        How many sessions after ``n`` must hold the gain (with ``n`` itself and
        ``gain_window = 3`` that is the three post-gain sessions of the t criterion).
    """

    min_sessions: int = 5
    trend_change: float = 2.0
    u_dip: float = 1.5
    u_edge: float = 0.2
    rupture_drop: float = 3.0
    rupture_max_length: int = 2
    repair_tolerance: float = 1.0
    gain_size: float = 2.5
    gain_window: int = 3
    gain_alpha: float = 0.05
    gain_reversal: float = 0.5
    gain_stable: int = 2

    def __post_init__(self) -> None:
        positive = ("trend_change", "u_dip", "rupture_drop", "gain_size")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.u_edge < 0.5:
            raise ValueError(f"u_edge must be in [0, 0.5), got {self.u_edge}")
        if not 0 <= self.repair_tolerance < self.rupture_drop:
            raise ValueError(
                f"repair_tolerance must be in [0, rupture_drop), got {self.repair_tolerance}"
            )
        if self.rupture_max_length < 1 or self.gain_window < 2 or self.gain_stable < 0:
            raise ValueError("rupture_max_length >= 1, gain_window >= 2, gain_stable >= 0")
        if self.min_sessions < 3:
            raise ValueError(f"min_sessions must be >= 3, got {self.min_sessions}")
        if not 0 < self.gain_alpha < 1 or not 0 < self.gain_reversal <= 1:
            raise ValueError("gain_alpha in (0, 1), gain_reversal in (0, 1]")


DEFAULT = PatternThresholds()


def as_series(states: Any, sessions: Any) -> tuple[np.ndarray, np.ndarray]:
    """State draws as a float array ``(..., draws, sessions)`` and the session numbers (default
    0, 1, ...), checked against each other."""
    w = np.asarray(states, dtype=float)
    if w.ndim < 2:
        raise ValueError(f"states must be (..., draws, sessions), got shape {w.shape}")
    t = np.asarray(sessions, dtype=float) if sessions is not None else np.arange(w.shape[-1])
    if t.shape != (w.shape[-1],):
        raise ValueError(f"sessions must have {w.shape[-1]} entries, got shape {t.shape}")
    return w, t


def fluctuation_sd(states: Any) -> np.ndarray:
    """Robust SD of a series' session-to-session fluctuation, per series.

    ``median |w_t - w_(t-1)| / (0.6745 sqrt(2))`` over adjacent observed cells: the innovation SD
    when the states are serially independent (the median absolute value of a normal variable is
    0.6745 SD, and a difference of two independent states has variance twice theirs). A median,
    not an SD, so that a single rupture or gain does not inflate its own yardstick.

    Returns an array ``states.shape[:-1]`` (NaN for a series without two adjacent observed cells).
    """
    w = np.asarray(states, dtype=float)
    d = np.abs(np.diff(w, axis=-1))
    with np.errstate(all="ignore"):
        return np.nanmedian(np.where(np.isfinite(d), d, np.nan), axis=-1) / (0.6745 * np.sqrt(2.0))


def _scale(w: np.ndarray, scale: Any) -> np.ndarray:
    if scale is None:
        return fluctuation_sd(w)
    s = np.broadcast_to(np.asarray(scale, dtype=float), w.shape[:-1])
    return np.asarray(s)


def linear_change(states: Any, sessions: Any = None) -> np.ndarray:
    """Fitted change over the series: OLS slope of the observed states on the session number
    times the span of the observed sessions (last minus first). Shape ``states.shape[:-1]``;
    NaN with fewer than two observed cells."""
    w, t = as_series(states, sessions)
    m = np.isfinite(w)
    n = m.sum(-1)
    tt = np.where(m, t, np.nan)
    with np.errstate(all="ignore"):
        tbar = np.nansum(tt, -1) / n
        dt = np.where(m, t - tbar[..., None], 0.0)
        slope = np.sum(dt * np.where(m, w, 0.0), -1) / np.sum(dt**2, -1)
        span = np.nanmax(np.where(m, t, -np.inf), -1) - np.nanmin(np.where(m, t, np.inf), -1)
    return np.where(n >= 2, slope * span, np.nan)


def _trend(
    states: Any, sessions: Any, scale: Any, thresholds: PatternThresholds, sign: float
) -> np.ndarray:
    """``sign * linear_change >= trend_change * scale`` with at least ``min_sessions`` observed
    cells (sign +1: strengthening, -1: weakening; negation is exact, so -1 is
    ``linear_change <= -trend_change * scale``)."""
    w, t = as_series(states, sessions)
    ok = np.isfinite(w).sum(-1) >= thresholds.min_sessions
    with np.errstate(invalid="ignore"):
        return ok & (sign * linear_change(w, t) >= thresholds.trend_change * _scale(w, scale))


def strengthening(
    states: Any, sessions: Any = None, scale: Any = None, thresholds: PatternThresholds = DEFAULT
) -> np.ndarray:
    """Linear strengthening per series: ``linear_change >= trend_change * scale`` with at least
    ``min_sessions`` observed cells. Boolean array ``states.shape[:-1]``."""
    return _trend(states, sessions, scale, thresholds, 1.0)


def weakening(
    states: Any, sessions: Any = None, scale: Any = None, thresholds: PatternThresholds = DEFAULT
) -> np.ndarray:
    """Linear weakening per series: ``linear_change <= -trend_change * scale`` with at least
    ``min_sessions`` observed cells. Boolean array ``states.shape[:-1]``."""
    return _trend(states, sessions, scale, thresholds, -1.0)


def _quadratic_fit(w: np.ndarray, m: np.ndarray, t: np.ndarray) -> np.ndarray:
    """OLS coefficients of ``1, u, u^2`` (``u``: the session rescaled to [-1, 1] over the observed
    span) for the observed cells ``m`` (broadcast against ``w``), (..., 3); the identity system
    where fewer than three cells are observed."""
    with np.errstate(all="ignore"):
        lo = np.min(np.where(m, t, np.inf), -1)
        hi = np.max(np.where(m, t, -np.inf), -1)
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        u = (t - mid[..., None]) / np.where(half > 0, half, 1.0)[..., None]  # in [-1, 1]
    u = np.where(m, u, 0.0)
    basis = np.stack([np.ones_like(u), u, u**2], -1) * m[..., None]
    a = np.einsum("...ti,...tj->...ij", basis, basis)
    a = np.where((m.sum(-1) >= 3)[..., None, None], a, np.eye(3))
    if m.shape[:-1] == (1,):  # one pattern for every series: solve once, then project
        proj = np.linalg.solve(a[0], basis[0].T)  # (3, sessions)
        return np.where(m[0], w, 0.0) @ proj.T
    b = np.einsum("...ti,...t->...i", basis, np.where(m, w, 0.0))
    return np.asarray(np.linalg.solve(a, b[..., None])[..., 0])


def u_dip(states: Any, sessions: Any = None, edge: float = DEFAULT.u_edge) -> np.ndarray:
    """Depth of a U: for the OLS quadratic ``a + b t + c t^2`` of the observed states, the lower
    of its fitted values at the first and last observed session minus its minimum, when
    ``c > 0`` and the minimum lies inside the observed span by at least ``edge`` of the span;
    else 0. NaN with fewer than three observed cells."""
    w, t = as_series(states, sessions)
    m = np.isfinite(w)
    flat = m.reshape(-1, m.shape[-1])
    if flat.shape[0] > 1 and (flat == flat[0]).all():  # one observation pattern: one projection
        coef = _quadratic_fit(w.reshape(-1, w.shape[-1]), flat[:1], t).reshape(*w.shape[:-1], 3)
    else:
        coef = _quadratic_fit(w, m, t)
    n = m.sum(-1)
    enough = n >= 3
    c0, c1, c2 = coef[..., 0], coef[..., 1], coef[..., 2]
    with np.errstate(all="ignore"):
        vertex = -c1 / (2 * c2)
        inside = (c2 > 0) & (np.abs(vertex) <= 1 - 2 * edge)
        f_min = c0 + c1 * vertex + c2 * vertex**2
        ends = np.minimum(c0 - c1 + c2, c0 + c1 + c2)
        depth = np.where(inside, ends - f_min, 0.0)
    return np.where(enough, depth, np.nan)


def u_shape(
    states: Any, sessions: Any = None, scale: Any = None, thresholds: PatternThresholds = DEFAULT
) -> np.ndarray:
    """U-shape per series: :func:`u_dip` ``>= u_dip * scale`` (upward curvature, minimum inside
    the middle ``1 - 2 u_edge`` of the span) with at least ``min_sessions`` observed cells."""
    w, t = as_series(states, sessions)
    ok = np.isfinite(w).sum(-1) >= thresholds.min_sessions
    with np.errstate(invalid="ignore"):
        return ok & (u_dip(w, t, thresholds.u_edge) >= thresholds.u_dip * _scale(w, scale))


def rupture_repair(
    states: Any, sessions: Any = None, scale: Any = None, thresholds: PatternThresholds = DEFAULT
) -> np.ndarray:
    """Sessions inside a rupture that is repaired, per series.

    A rupture starts at session ``s`` when ``w_s <= w_(s-1) - rupture_drop * scale``; it is
    repaired after ``L <= rupture_max_length`` sessions when ``w_(s+L)`` is the first state from
    ``s`` on that is back at ``w_(s-1) - repair_tolerance * scale`` or above. The ruptured
    sessions ``s .. s+L-1`` are marked. Every cell involved must be observed.

    Returns
    -------
    numpy.ndarray of bool, shape ``states.shape``
        True at the sessions inside a rupture-repair episode.
    """
    w, _ = as_series(states, sessions)
    sc = _scale(w, scale)[..., None]
    th = thresholds
    n_t = w.shape[-1]
    out = np.zeros(w.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for length in range(1, th.rupture_max_length + 1):
            if n_t < length + 2:
                break
            pre = w[..., : n_t - length - 1]
            level = pre - th.repair_tolerance * sc
            start = w[..., 1 : n_t - length] <= pre - th.rupture_drop * sc
            low = start
            for k in range(1, length):
                low = low & (w[..., 1 + k : n_t - length + k] < level)
            hit = low & (w[..., 1 + length :] >= level)
            for k in range(length):
                out[..., 1 + k : n_t - length + k] |= hit
    return out


def _t_critical(df: np.ndarray, alpha: float) -> np.ndarray:
    crit = stats.t.ppf(1 - alpha / 2, np.maximum(df, 1))
    return np.where(df >= 1, crit, np.inf)


def gain_candidates(
    states: Any, sessions: Any = None, thresholds: PatternThresholds = DEFAULT
) -> tuple[np.ndarray, np.ndarray]:
    """The scale-free part of the sudden-gain rule, per session: the rise ``w_n - w_(n-1)`` and
    whether session ``n`` meets criteria 2 (t criterion) and 3 (not reversed) of
    :func:`sudden_gains` (and ``w_n`` is observed). Both of shape ``states.shape``; a gain
    arrives at ``n`` when it qualifies and the rise is large enough (criterion 1)."""
    w, _ = as_series(states, sessions)
    th = thresholds
    n_t, k = w.shape[-1], th.gain_window
    obs = np.isfinite(w)
    pad = np.full((*w.shape[:-1], k + th.gain_stable), np.nan)
    wp = np.concatenate([pad, w, pad], -1)  # wp[..., i + off] == w[..., i]
    off = pad.shape[-1]
    fp = np.isfinite(wp)
    zp = np.where(fp, wp, 0.0)

    def window(first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # count, sum and sum of squares of the observed w[n + first + j], j < k
        cols = [slice(off + first + j, off + first + j + n_t) for j in range(k)]
        cnt = sum(fp[..., c].astype(float) for c in cols)
        tot = sum(zp[..., c] for c in cols)
        sq = sum(zp[..., c] ** 2 for c in cols)
        return np.asarray(cnt), np.asarray(tot), np.asarray(sq)

    (nb, sb, qb), (na, sa, qa) = window(-k), window(0)
    crit_by_df = _t_critical(np.arange(2 * k - 1), th.gain_alpha)  # df = nb + na - 2
    with np.errstate(all="ignore"):
        mb, ma = sb / nb, sa / na
        ss = np.maximum(qb - nb * mb**2, 0.0) + np.maximum(qa - na * ma**2, 0.0)
        df = (nb + na - 2).astype(int)
        sp = np.sqrt(ss / np.maximum(df, 1))
        tstat = (ma - mb) / (sp * np.sqrt(1 / np.maximum(nb, 1) + 1 / np.maximum(na, 1)))
        crit = crit_by_df[np.clip(df, 0, 2 * k - 2)]
        prev = wp[..., off - 1 : off - 1 + n_t]
        gain = w - prev
        crit2 = (nb >= 2) & (na >= 2) & (tstat > crit)
        hold = prev + (1 - th.gain_reversal) * gain
        stable = np.ones(w.shape, dtype=bool)
        seen = np.zeros(w.shape, dtype=bool)
        for j in range(1, th.gain_stable + 1):
            nxt = wp[..., off + j : off + j + n_t]
            f = fp[..., off + j : off + j + n_t]
            stable &= ~f | (nxt > hold)
            seen |= f
        if th.gain_stable == 0:
            seen[:] = True
    return gain, crit2 & stable & seen & obs


def sudden_gains(
    states: Any, sessions: Any = None, scale: Any = None, thresholds: PatternThresholds = DEFAULT
) -> np.ndarray:
    """Sessions at which a sudden gain arrives, per series (adapted from Tang & DeRubeis 1999).

    A gain arrives at session ``n`` (the first session at the higher level) when

    1. ``w_n - w_(n-1) >= gain_size * scale`` (large in absolute terms);
    2. the mean of the observed sessions ``n .. n+gain_window-1`` exceeds the mean of the
       observed ``n-gain_window .. n-1`` with a pooled two-sample t statistic above the
       two-sided ``gain_alpha`` critical value for its degrees of freedom (large relative to the
       surrounding sessions' variability; two sessions at least on each side);
    3. every observed session of ``n+1 .. n+gain_stable`` stays above
       ``w_(n-1) + (1 - gain_reversal) (w_n - w_(n-1))`` and at least one of them is observed
       (not reversed).

    Returns
    -------
    numpy.ndarray of bool, shape ``states.shape``
        True at the sessions ``n`` where a gain arrives.
    """
    w, _ = as_series(states, sessions)
    sc = _scale(w, scale)[..., None]
    gain, qualifies = gain_candidates(w, None, thresholds)
    with np.errstate(invalid="ignore"):
        return qualifies & (gain >= thresholds.gain_size * sc)


def pattern_indicators(
    states: Any, sessions: Any = None, scale: Any = None, thresholds: PatternThresholds = DEFAULT
) -> dict[str, np.ndarray]:
    """Every pattern rule per series (draw).

    Returns
    -------
    dict
        ``strengthening``, ``weakening``, ``u_shape``, ``rupture_repair``, ``sudden_gain``:
        booleans of shape ``states.shape[:-1]`` (the pattern occurs somewhere in the series);
        ``rupture_sessions``, ``sudden_gain_sessions``: booleans of shape ``states.shape``.
    """
    w, t = as_series(states, sessions)
    sc = _scale(w, scale)
    rup = rupture_repair(w, t, sc, thresholds)
    gain = sudden_gains(w, t, sc, thresholds)
    return {
        "strengthening": strengthening(w, t, sc, thresholds),
        "weakening": weakening(w, t, sc, thresholds),
        "u_shape": u_shape(w, t, sc, thresholds),
        "rupture_repair": rup.any(-1),
        "sudden_gain": gain.any(-1),
        "rupture_sessions": rup,
        "sudden_gain_sessions": gain,
    }


def pattern_probabilities(
    states: Any, sessions: Any = None, scale: Any = None, thresholds: PatternThresholds = DEFAULT
) -> dict[str, np.ndarray]:
    """Posterior probabilities: the share of draws (axis ``-2`` of ``states``) in which each rule
    of :func:`pattern_indicators` holds. Whole-series patterns have shape ``states.shape[:-2]``;
    ``rupture_sessions`` (probability that a session lies inside a repaired rupture) and
    ``sudden_gain_sessions`` (that a gain arrives at the session) have ``states.shape[:-2] +
    (sessions,)``."""
    ind = pattern_indicators(states, sessions, scale, thresholds)
    return {k: v.mean(-2) if k.endswith("sessions") else v.mean(-1) for k, v in ind.items()}
