"""Pattern probabilities of a fit's patients: the table per patient (:func:`patterns_table`,
states taken from the fit in chunks of patients) and one patient's JSON-ready summary for a
clinician feedback page (:func:`feedback_patterns`). The rules and their thresholds are in
:mod:`bayes_alliance.analysis.patterns`; the unit is the model's innovation SD per draw
(:func:`innovation_scale`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_alliance.analysis.patterns import (
    DEFAULT,
    PATTERNS,
    PatternThresholds,
    as_series,
    pattern_probabilities,
)
from bayes_alliance.core import vocab

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult


def innovation_scale(result: FitResult, variable: str) -> np.ndarray:
    """The model's innovation SD of ``variable`` per draw (flattened chain x draw): the unit
    of the pattern thresholds (per-session SDs: their root mean square)."""
    name = (
        vocab.INNOVATION_SD_PREDICTOR
        if variable == vocab.PREDICTOR
        else vocab.INNOVATION_SD_OUTCOME
    )
    sd = result.idata.posterior[name]
    extra = [d for d in sd.dims if d not in ("chain", "draw")]
    if extra:  # per-session innovations: the root mean square over sessions
        sd = np.sqrt((sd**2).mean(extra))
    return np.asarray(sd.values, dtype=float).reshape(-1)


def _sessions_text(sessions: np.ndarray, probs: np.ndarray, at_least: float) -> tuple[str, str]:
    keep = probs >= at_least
    return (
        ",".join(str(s) for s in sessions[keep]),
        ",".join(f"{p:.2f}" for p in probs[keep]),
    )


def patterns_table(
    result: FitResult,
    patients: Sequence[object] | None = None,
    thresholds: PatternThresholds = DEFAULT,
    *,
    variable: str = vocab.PREDICTOR,
    higher_is_better: bool = True,
    scale: str = "model",
    chunk: int = 50,
    session_probability: float = 0.5,
) -> pd.DataFrame:
    """Posterior probability of each pattern per patient, from a fit's state draws.

    Parameters
    ----------
    result
        A fit (:func:`bayes_alliance.inference.fit.fit`); its states come from :meth:`FitResult.states`,
        ``chunk`` patients at a time so that memory stays bounded for a large fit.
    patients
        Patient ids (default all).
    thresholds
        :class:`PatternThresholds`.
    variable
        ``"predictor"`` (default; alliance) or ``"outcome"``.
    higher_is_better
        False for a variable where lower is better (symptoms): the states are negated, so that
        a sudden gain is a sudden improvement and strengthening is improvement.
    scale
        ``"model"`` (default): the unit is the variable's innovation SD in each draw;
        ``"patient"``: each draw's series' own :func:`fluctuation_sd`.
    chunk
        Patients per call of :meth:`FitResult.states`.
    session_probability
        A session is listed in ``rupture_sessions`` / ``sudden_gain_sessions`` when its
        probability is at least this.

    Returns
    -------
    pandas.DataFrame
        One row per patient: ``patient``, ``n_sessions`` (observed), ``p_strengthening``,
        ``p_weakening``, ``p_u_shape``, ``p_rupture_repair`` (some repaired rupture),
        ``rupture_sessions`` and ``p_rupture_sessions`` (sessions inside a rupture, with their
        probabilities), ``p_sudden_gain`` (some gain), ``sudden_gain_session`` (the most probable
        session of a gain's arrival, missing when the gain has probability 0) and
        ``p_sudden_gain_session``.
    """
    if variable not in vocab.VARIABLES:
        raise ValueError(f"variable must be one of {vocab.VARIABLES}, got {variable!r}")
    if scale not in ("model", "patient"):
        raise ValueError(f"scale must be 'model' or 'patient', got {scale!r}")
    ids = list(result.data.patients) if patients is None else list(patients)
    sessions = np.asarray(result.data.coords[vocab.SESSION])
    unit = innovation_scale(result, variable) if scale == "model" else None
    key = "state_predictor" if variable == vocab.PREDICTOR else "state_outcome"
    sign = 1.0 if higher_is_better else -1.0
    rows: list[dict[str, object]] = []
    for lo in range(0, len(ids), max(int(chunk), 1)):
        part = ids[lo : lo + max(int(chunk), 1)]
        da = result.states(part)[key]
        w = sign * np.asarray(da.transpose(vocab.PATIENT, "chain", "draw", vocab.SESSION).values)
        w = w.reshape(len(part), -1, w.shape[-1])  # (patients, draws, sessions)
        sc = None if unit is None else np.broadcast_to(unit, w.shape[:-1])
        pr = pattern_probabilities(w, sessions, sc, thresholds)
        for i, pid in enumerate(part):
            rs, rp = _sessions_text(sessions, pr["rupture_sessions"][i], session_probability)
            g = pr["sudden_gain_sessions"][i]
            best = int(np.argmax(g))
            rows.append(
                {
                    "patient": pid,
                    "n_sessions": int(np.isfinite(w[i, 0]).sum()),
                    "p_strengthening": float(pr["strengthening"][i]),
                    "p_weakening": float(pr["weakening"][i]),
                    "p_u_shape": float(pr["u_shape"][i]),
                    "p_rupture_repair": float(pr["rupture_repair"][i]),
                    "rupture_sessions": rs,
                    "p_rupture_sessions": rp,
                    "p_sudden_gain": float(pr["sudden_gain"][i]),
                    "sudden_gain_session": sessions[best] if g[best] > 0 else None,
                    "p_sudden_gain_session": float(g[best]),
                }
            )
    return pd.DataFrame(rows)


def _session_list(sessions: np.ndarray, probs: np.ndarray) -> list[dict[str, Any]]:
    out = []
    for s, p in zip(sessions, probs, strict=True):
        if p > 0:
            v = s.item()
            v = int(v) if isinstance(v, float) and v.is_integer() else v
            out.append({"session": v, "probability": float(p)})
    return out


def feedback_patterns(
    states: np.ndarray,
    sessions: np.ndarray,
    scale: np.ndarray | None,
    thresholds: PatternThresholds = DEFAULT,
) -> dict[str, Any]:
    """One patient's pattern probabilities as a JSON-ready dict, for a clinician feedback page.

    Parameters
    ----------
    states
        The patient's state draws ``(draws, sessions)`` (higher is better; pass ``-states`` for
        a variable where lower is better).
    sessions
        The session numbers of the columns.
    scale
        The unit per draw, ``(draws,)`` or a scalar (the model's innovation SD); ``None``: each
        draw's own :func:`fluctuation_sd`.
    thresholds
        :class:`PatternThresholds`.

    Returns
    -------
    dict
        ``n_draws``, ``n_sessions`` (observed in the first draw), ``patterns`` (each name of
        :data:`PATTERNS` with its probability), ``rupture_sessions`` and ``sudden_gain_sessions``
        (lists of ``{"session", "probability"}`` in session order, for every session with a
        positive probability of lying inside a repaired rupture, or of a gain arriving there),
        and ``thresholds`` (the rules' settings). Only built-in types: ``json.dumps`` takes it.
    """
    w, t = as_series(states, sessions)
    if w.ndim != 2:
        raise ValueError(f"states must be one patient's (draws, sessions), got shape {w.shape}")
    labels = np.asarray(sessions) if sessions is not None else np.arange(w.shape[-1])
    pr = pattern_probabilities(w, t, scale, thresholds)
    return {
        "n_draws": int(w.shape[0]),
        "n_sessions": int(np.isfinite(w[0]).sum()),
        "patterns": {name: float(pr[name]) for name in PATTERNS},
        "rupture_sessions": _session_list(labels, pr["rupture_sessions"]),
        "sudden_gain_sessions": _session_list(labels, pr["sudden_gain_sessions"]),
        "thresholds": asdict(thresholds),
    }


__all__ = ["feedback_patterns", "innovation_scale", "patterns_table"]
