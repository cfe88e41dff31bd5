"""Planted state patterns for validating the pattern rules (:mod:`bayes_alliance.analysis.patterns`).

:func:`planted_shape` is a noise-free pattern in units of the session-to-session fluctuation SD;
:func:`planted_series` adds it to a stationary AR(1) state, the model's within-person process.
:func:`plant_patterns` adds them to a simulated long table, for validation on fits
(``benchmarks/pattern_calibration.py``). Used by ``tests/test_patterns.py``,
``benchmarks/pattern_detection.py`` and docs/patterns.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayes_alliance.analysis.patterns import PATTERNS


def planted_shape(
    pattern: str, n_sessions: int, rng: np.random.Generator, *, size: float = 4.0
) -> tuple[np.ndarray, np.ndarray]:
    """A planted pattern without noise, ``size`` in units of the fluctuation SD:

    - ``"none"``: zeros;
    - ``"strengthening"`` / ``"weakening"``: a linear ramp rising (falling) by ``size`` from the
      first to the last session;
    - ``"u_shape"``: a parabola whose minimum lies at a uniform point of the middle 40 % of the
      series and whose lower end is ``size`` above the minimum;
    - ``"rupture_repair"``: a drop of ``size`` for one or two sessions (equally likely) starting
      at a uniform session with at least two sessions before and after;
    - ``"sudden_gain"``: a step up of ``size`` at a uniform session with at least three sessions
      before and after, lasting to the end.

    Returns
    -------
    shape : numpy.ndarray, shape (n_sessions,)
    planted : numpy.ndarray of bool, shape (n_sessions,)
        The ruptured sessions or the session at which the gain arrives (all False otherwise).
    """
    u = np.linspace(-1, 1, n_sessions)
    shape = np.zeros(n_sessions)
    planted = np.zeros(n_sessions, dtype=bool)
    if pattern == "strengthening":
        shape = size * u / 2
    elif pattern == "weakening":
        shape = -size * u / 2
    elif pattern == "u_shape":
        v = rng.uniform(-0.4, 0.4)
        shape = size * (u - v) ** 2 / (1 - abs(v)) ** 2
    elif pattern == "rupture_repair":
        length = int(rng.integers(1, 3))
        s = int(rng.integers(2, n_sessions - length - 1))
        shape[s : s + length] = -size
        planted[s : s + length] = True
    elif pattern == "sudden_gain":
        n = int(rng.integers(3, n_sessions - 2))
        shape[n:] = size
        planted[n] = True
    elif pattern != "none":
        raise ValueError(f"pattern must be 'none' or one of {PATTERNS}, got {pattern!r}")
    return shape, planted


def planted_series(
    pattern: str,
    n_sessions: int,
    rng: np.random.Generator,
    *,
    size: float = 4.0,
    autoregression: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """One patient's state series with a planted pattern, for validation: the model's
    within-person process (a stationary AR(1) with the given autoregression and innovation SD 1,
    the unit of :class:`PatternThresholds`) plus :func:`planted_shape`, centred at its mean (as
    states around a latent mean are). Returns the series and the planted sessions."""
    phi = autoregression
    e = rng.standard_normal(n_sessions)
    w = np.empty(n_sessions)
    w[0] = e[0] / np.sqrt(1 - phi**2)
    for i in range(1, n_sessions):
        w[i] = phi * w[i - 1] + e[i]
    shape, planted = planted_shape(pattern, n_sessions, rng, size=size)
    w = w + shape
    return w - w.mean(), planted


def plant_patterns(
    df: pd.DataFrame,
    plan: Mapping[object, str],
    unit: float,
    rng: np.random.Generator,
    *,
    column: str = "alliance",
    size: float = 4.0,
    patient: str = "patient",
    session: str = "session",
) -> tuple[pd.DataFrame, dict[object, np.ndarray]]:
    """Plant patterns into a simulated long table (validation on fits): each patient of
    ``plan`` gets :func:`planted_shape` of their pattern (``"none"``: nothing) over their rows
    in session order, times ``unit`` (e.g. the true innovation SD of the variable, so that
    ``size`` is in innovation SDs), added to ``column`` on top of the simulated states (and
    measurement error, where the simulation has it). Returns the new table (rows in patient and
    session order) and each planted patient's planted sessions (the session numbers)."""
    out = df.sort_values([patient, session]).reset_index(drop=True)
    planted_at: dict[object, np.ndarray] = {}
    values = out[column].to_numpy(dtype=float).copy()
    for pid, pattern in plan.items():
        rows = np.flatnonzero(out[patient].to_numpy() == pid)
        shape, planted = planted_shape(pattern, rows.size, rng, size=size)
        values[rows] += unit * shape
        planted_at[pid] = out[session].to_numpy()[rows][planted]
    out[column] = values
    return out, planted_at
