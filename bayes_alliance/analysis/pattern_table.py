"""Pattern probabilities of a fit's patients: the table per patient (:func:`patterns_table`,
states taken from the fit in chunks of patients) and one patient's JSON-ready summary for a
clinician feedback page (:func:`feedback_patterns`). The rules are in
:mod:`bayes_alliance.analysis.patterns`. By default each rule's threshold in each draw is its
null quantile under the fitted model (:mod:`bayes_alliance.analysis.pattern_null`; the draws'
dynamics: :class:`NullModel`); ``calibration="fixed"`` keeps the fixed multiples of the
variable's one-step SD per draw (:func:`innovation_scale`: the reduced form's innovation SD, the
structural one unless a lag-0 path runs into the variable)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_alliance.analysis import pattern_null as pn
from bayes_alliance.analysis.patterns import (
    DEFAULT,
    PATTERNS,
    PatternThresholds,
    as_series,
    pattern_indicators,
)
from bayes_alliance.core import vocab
from bayes_alliance.inference.unit_group import posterior_of
from bayes_alliance.kernels import dynamics
from bayes_alliance.model.structure import draws_last, dynamics_from, lag0, lookup

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult


def session_model_only(result: FitResult, what: str) -> None:
    """Refuse ``what`` for a continuous-time fit with a message naming the way out.

    The pattern rules and their null models are written in session steps: one-step innovation
    SDs and a session-number VAR(1). A continuous-time fit has neither (a drift and a
    diffusion, each interval its own ``Phi(dt)`` and ``Q(dt)``); read by name, its
    autoregressions and innovation SDs would be 0, the thresholds 0 and the null series flat.
    """
    if getattr(result.spec, "time_model", "sessions") == "continuous":
        raise ValueError(
            f"{what} is defined in session steps and not yet for a continuous-time fit (a fit "
            "on dates or a time column); refit with --time-model sessions (spec file: [model] "
            "time_model = 'sessions') to use it"
        )


def innovation_scale(result: FitResult, variable: str) -> np.ndarray:
    r"""The one-step SD of ``variable`` per draw (flattened chain x draw): the unit of the fixed
    pattern thresholds.

    It is the SD of the variable's one-step-ahead prediction error given the past, the
    reduced form's innovation :math:`u_t = B_0^{-1} e_t`
    (:func:`bayes_alliance.kernels.dynamics.reduced_form`): with a lag-0 path into the variable
    (``x -> y``: :math:`y_t = b_0 x_t + \dots`) its variance is
    :math:`\sigma_y^2 + 2 b_0 \sigma_{xy} + b_0^2 \sigma_x^2`, not the structural
    :math:`\sigma_y^2`, since :math:`x_t` is not known one session ahead; the other variable's
    is its structural variance. Without a lag-0 path both are structural. Per-session
    innovations: the root mean square over the transitions. With random innovation variances,
    the population's (the named SDs).
    """
    session_model_only(result, "the pattern thresholds' innovation scale")
    spec, post = result.spec, result.idata.posterior
    names = (
        vocab.INNOVATION_SD_PREDICTOR,
        vocab.INNOVATION_SD_OUTCOME,
        vocab.INNOVATION_CORR,
        vocab.SAME_SESSION_EFFECT,
    )
    get = lookup(
        draws_last({n: np.asarray(post[n].values, float) for n in names if n in post}), spec
    )
    sd_x, sd_y = get(vocab.INNOVATION_SD_PREDICTOR), get(vocab.INNOVATION_SD_OUTCOME)
    sigma = (sd_x**2, get(vocab.INNOVATION_CORR) * sd_x * sd_y, sd_y**2)
    zero = (0.0, 0.0, 0.0, 0.0)
    _, reduced = dynamics.reduced_form(zero, sigma, lag0(get, spec), spec.same_session)
    var = np.asarray(reduced[0 if variable == vocab.PREDICTOR else 2], dtype=float)
    if var.ndim > 1:  # per-session innovations (transition, draw): the root mean square
        var = var.mean(axis=0)
    return np.sqrt(var).reshape(-1)


CALIBRATIONS = ("null", "fixed")


class NullModel:
    """The fitted model's null for the pattern rules: each draw's reduced-form within-person
    dynamics (:func:`bayes_alliance.model.structure.dynamics_from` on the posterior's arrays,
    draws of all chains flattened in chain-draw order) and the null thresholds of
    :func:`bayes_alliance.analysis.pattern_null.null_thresholds` per observation pattern,
    cached (per patient too when the dynamics are patient-specific).

    Parameters
    ----------
    result
        A fit.
    variable
        ``"predictor"`` or ``"outcome"``: whose states the rules read.
    thresholds, alpha, n_null, seed
        The rules' scale-free settings, the false-positive rate per draw, the null series per
        draw and the seed of the null series (each observation pattern draws from its own
        stream ``(seed, pattern)``, so a patient's thresholds do not depend on the others).
    """

    def __init__(
        self,
        result: FitResult,
        variable: str = vocab.PREDICTOR,
        thresholds: PatternThresholds = DEFAULT,
        *,
        alpha: float = pn.DEFAULT_ALPHA,
        n_null: int = pn.DEFAULT_N_NULL,
        seed: int = 0,
    ) -> None:
        session_model_only(result, "the patterns' null model")
        spec, data = result.spec, result.data
        post = posterior_of(result.idata)
        # Parameters and raw deviations (per patient or therapist: random innovations); not
        # the states or other per-session draws.
        keep = {"chain", "draw", "innovation_session", "moderator", vocab.PATIENT, vocab.THERAPIST}
        arrays = {
            str(k): np.asarray(da.values, dtype=float)
            for k, da in post.data_vars.items()
            if set(da.dims) <= keep
        }
        varying = bool(spec.random_slopes or spec.moderators)
        flat = draws_last(arrays)
        slope = flat.pop("state_effect_by_patient", None) if varying else None  # (patient, D)
        tj = data.patient_therapist
        dyn = dynamics_from(lookup(flat, spec), spec, slope=slope, tj=tj)
        self.n_draws = int(post.sizes["chain"] * post.sizes["draw"])
        self.by_session = dyn.by_session
        self.sigma_varying = bool(getattr(dyn, "sigma_varying", False))
        self.varying = varying or self.sigma_varying
        self.phi, self.first = dyn.phi, dyn.first
        # by session: (S - 1, D) -> (D, S - 1); per patient: (patient, D), a row per patient
        self.sigma = (
            dyn.sigma
            if self.sigma_varying or not self.by_session
            else tuple(np.moveaxis(np.asarray(e, dtype=float), -1, 0) for e in dyn.sigma)
        )
        self.variable = 0 if variable == vocab.PREDICTOR else 1
        self.thresholds, self.alpha, self.n_null, self.seed = thresholds, alpha, n_null, seed
        self.patient_rows = {p: i for i, p in enumerate(result.data.patients)}
        self.cache = pn.NullCache()

    def _row(self, entries: tuple[Any, ...], row: int | None) -> tuple[np.ndarray, ...]:
        out = []
        for e in entries:
            arr = np.asarray(e, dtype=float)
            if arr.ndim == 2:  # (patient, D) with patient-specific dynamics
                arr = arr[row] if row is not None else arr.mean(0)
            out.append(np.broadcast_to(arr, (self.n_draws,)))
        return tuple(out)

    def covariance(self, n: int, start: int = 0, patient: object = None) -> np.ndarray:
        """The states' covariance over ``n`` columns from grid column ``start`` per draw, (D, n,
        n); with patient-specific dynamics those of ``patient`` (a fitted id; another patient
        gets the draw's average over the fitted patients' entries)."""
        row = self.patient_rows.get(patient) if self.varying else None
        sigma = self._row(self.sigma, row) if not self.by_session else self.sigma
        return pn.state_covariance(
            self._row(self.phi, row),
            sigma,
            self._row(self.first, row),
            n,
            self.variable,
            start=start,
            by_session=self.by_session,
        )

    def thresholds_for(
        self, observed: np.ndarray, sessions: np.ndarray, start: int = 0, patient: object = None
    ) -> dict[str, np.ndarray]:
        """Null thresholds per draw, (D,) each, for a series observed at ``observed`` (bool
        over its span from its first to its last observed cell) with those session numbers;
        ``start``: the span's first grid column (it matters only with session-specific
        innovations)."""
        m = np.asarray(observed, dtype=bool)
        key: tuple[Any, ...] = pn.pattern_key(m, start if self.by_session else 0)
        if self.varying:
            key = (*key, "patient", patient)
        key = (*key, *np.diff(np.asarray(sessions, dtype=float)).tolist())

        def compute() -> dict[str, np.ndarray]:
            cov = self.covariance(m.size, start, patient)
            rng = np.random.default_rng([self.seed, zlib.crc32(repr(key).encode())])
            return pn.null_thresholds(
                cov, m, sessions, self.thresholds, alpha=self.alpha, n_null=self.n_null, rng=rng
            )

        return self.cache.get(key, compute)

    def indicators(
        self, states: np.ndarray, sessions: np.ndarray, patient: object = None
    ) -> dict[str, np.ndarray]:
        """The calibrated rules on one patient's state draws ``(draws, sessions)`` over the
        grid (NaN where not observed): :func:`~bayes_alliance.analysis.pattern_null.calibrated_indicators`."""
        w = np.asarray(states, dtype=float)
        seen = np.flatnonzero(np.isfinite(w).any(0))
        if seen.size == 0:
            nan = {k: np.full(self.n_draws, np.nan) for k in PATTERNS}
            return pn.calibrated_indicators(w, sessions, nan, self.thresholds)
        lo, hi = int(seen[0]), int(seen[-1]) + 1
        t = np.asarray(sessions, dtype=float)
        q = self.thresholds_for(np.isfinite(w[0, lo:hi]), t[lo:hi], lo, patient)
        return pn.calibrated_indicators(w, t, q, self.thresholds)


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
    calibration: str = "null",
    alpha: float = pn.DEFAULT_ALPHA,
    n_null: int = pn.DEFAULT_N_NULL,
    seed: int = 0,
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
        :class:`PatternThresholds`. With ``calibration="null"`` only its scale-free settings
        are used (``min_sessions``, ``u_edge``, ``rupture_max_length``, the gain's window, t
        level and reversal), the sizes come from the null.
    variable
        ``"predictor"`` (default; alliance) or ``"outcome"``.
    higher_is_better
        False for a variable where lower is better (symptoms): the states are negated, so that
        a sudden gain is a sudden improvement and strengthening is improvement.
    scale
        With ``calibration="fixed"``: ``"model"`` (default), the unit is the variable's
        innovation SD in each draw; ``"patient"``: each draw's series' own
        :func:`fluctuation_sd`. Not used by the calibrated rules.
    chunk
        Patients per call of :meth:`FitResult.states`.
    session_probability
        A session is listed in ``rupture_sessions`` / ``sudden_gain_sessions`` when its
        probability is at least this.
    calibration
        ``"null"`` (default): in each draw a rule holds when its statistic exceeds its
        ``1 - alpha`` quantile under the fitted model without patterns
        (:mod:`bayes_alliance.analysis.pattern_null`, :class:`NullModel`), so that a pattern's
        probability on series without it averages ``alpha``; ``"fixed"``: the fixed
        multiples of ``scale`` in ``thresholds`` (the rules before issue 24).
    alpha, n_null, seed
        The calibrated rules' false-positive rate per draw, null series per draw and seed.

    Returns
    -------
    pandas.DataFrame
        One row per patient: ``patient``, ``n_sessions`` (observed), ``p_strengthening``,
        ``p_weakening``, ``p_u_shape``, ``p_rupture_repair`` (some repaired rupture),
        ``rupture_sessions`` and ``p_rupture_sessions`` (sessions inside a rupture, with their
        probabilities), ``p_sudden_gain`` (some gain), ``sudden_gain_session`` (the most probable
        session of a gain's arrival, missing when the gain has probability 0) and
        ``p_sudden_gain_session``. ``attrs["calibration"]`` records the calibration (and
        ``alpha``, ``n_null``, ``seed``).
    """
    session_model_only(result, "the patterns table")
    if variable not in vocab.VARIABLES:
        raise ValueError(f"variable must be one of {vocab.VARIABLES}, got {variable!r}")
    if scale not in ("model", "patient"):
        raise ValueError(f"scale must be 'model' or 'patient', got {scale!r}")
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
    ids = list(result.data.patients) if patients is None else list(patients)
    sessions = np.asarray(result.data.coords[vocab.SESSION])
    null = None
    unit = None
    if calibration == "null":
        null = NullModel(result, variable, thresholds, alpha=alpha, n_null=n_null, seed=seed)
    elif scale == "model":
        unit = innovation_scale(result, variable)
    key = "state_predictor" if variable == vocab.PREDICTOR else "state_outcome"
    sign = 1.0 if higher_is_better else -1.0
    rows: list[dict[str, object]] = []
    for lo in range(0, len(ids), max(int(chunk), 1)):
        part = ids[lo : lo + max(int(chunk), 1)]
        da = result.states(part)[key]
        w = sign * np.asarray(da.transpose(vocab.PATIENT, "chain", "draw", vocab.SESSION).values)
        w = w.reshape(len(part), -1, w.shape[-1])  # (patients, draws, sessions)
        for i, pid in enumerate(part):
            if null is not None:
                ind = null.indicators(w[i], sessions, pid)
            else:
                sc = None if unit is None else unit
                ind = pattern_indicators(w[i], sessions, sc, thresholds)
            pr = {k: val.mean(0) for k, val in ind.items()}
            rs, rp = _sessions_text(sessions, pr["rupture_sessions"], session_probability)
            g = pr["sudden_gain_sessions"]
            best = int(np.argmax(g))
            rows.append(
                {
                    "patient": pid,
                    "n_sessions": int(np.isfinite(w[i, 0]).sum()),
                    "p_strengthening": float(pr["strengthening"]),
                    "p_weakening": float(pr["weakening"]),
                    "p_u_shape": float(pr["u_shape"]),
                    "p_rupture_repair": float(pr["rupture_repair"]),
                    "rupture_sessions": rs,
                    "p_rupture_sessions": rp,
                    "p_sudden_gain": float(pr["sudden_gain"]),
                    "sudden_gain_session": sessions[best] if g[best] > 0 else None,
                    "p_sudden_gain_session": float(g[best]),
                }
            )
    df = pd.DataFrame(rows)
    df.attrs["calibration"] = (
        {"calibration": "null", "alpha": alpha, "n_null": n_null, "seed": seed}
        if calibration == "null"
        else {"calibration": "fixed", "scale": scale}
    )
    return df


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
    *,
    null: dict[str, np.ndarray] | None = None,
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
        The unit per draw of the fixed rules, ``(draws,)`` or a scalar (the model's innovation
        SD); ``None``: each draw's own :func:`fluctuation_sd`. Not used with ``null``.
    thresholds
        :class:`PatternThresholds`.
    null
        The calibrated rules' thresholds per draw (:meth:`NullModel.thresholds_for`, each
        ``(draws,)``); None: the fixed rules.

    Returns
    -------
    dict
        ``n_draws``, ``n_sessions`` (observed in the first draw), ``patterns`` (each name of
        :data:`PATTERNS` with its probability), ``rupture_sessions`` and ``sudden_gain_sessions``
        (lists of ``{"session", "probability"}`` in session order, for every session with a
        positive probability of lying inside a repaired rupture, or of a gain arriving there),
        ``thresholds`` (the rules' settings) and ``calibration`` (``"null"`` or ``"fixed"``).
        Only built-in types: ``json.dumps`` takes it.
    """
    w, t = as_series(states, sessions)
    if w.ndim != 2:
        raise ValueError(f"states must be one patient's (draws, sessions), got shape {w.shape}")
    labels = np.asarray(sessions) if sessions is not None else np.arange(w.shape[-1])
    if null is not None:
        ind = pn.calibrated_indicators(w, t, null, thresholds)
    else:
        ind = pattern_indicators(w, t, scale, thresholds)
    pr = {k: val.mean(0) for k, val in ind.items()}
    return {
        "n_draws": int(w.shape[0]),
        "n_sessions": int(np.isfinite(w[0]).sum()),
        "patterns": {name: float(pr[name]) for name in PATTERNS},
        "rupture_sessions": _session_list(labels, pr["rupture_sessions"]),
        "sudden_gain_sessions": _session_list(labels, pr["sudden_gain_sessions"]),
        "thresholds": asdict(thresholds),
        "calibration": "fixed" if null is None else "null",
    }


__all__ = ["CALIBRATIONS", "NullModel", "feedback_patterns", "innovation_scale", "patterns_table"]
