r"""Effects of a continuous-time fit at a stated interval, as pure functions of the draws.

A continuous-time fit (:mod:`bayes_alliance.model.continuous`) estimates the drift matrix A
and the diffusion covariance Q of ``dw = A w dt + G dW`` (``GG' = Q``) in the time unit of the
data. The lagged effects a reader knows from the session-number model are entries of the
discrete-time lag matrix of an interval ``dt`` (Voelkle, Oud, Davidov & Schmidt 2012;
Driver, Oud & Voelkle 2017)::

    Phi(dt) = expm(A dt) = [[predictor_autoregression, reverse_state_effect],
                            [state_effect,             outcome_autoregression]]

so they are reported at one interval, the *effects interval* (``ModelSpec.effects_interval``,
by default the median interval between a patient's sessions in the data), beside the drift
rows, which hold for every interval. Their size depends on the interval: a cross effect is 0
at ``dt = 0``, peaks and decays to 0 as ``dt`` grows (Deboeck & Preacher 2016).

The within-person variances are those of the stationary distribution S
(``A S + S A' + Q = 0``), the same at every interval: S = Phi(dt) S Phi(dt)' + Q(dt) for
every dt, so the within-person totals and the shares of the trait levels in the R-squared
decomposition do not depend on the interval. How the within variance of an equation splits
into the part predicted by the previous session (``f1``, ``v12``, ``v13``) and the innovation
(``sigma2``) does: over a longer interval less is predicted. :func:`within_moments` returns
the moments of :func:`bayes_alliance.effects.variance.within_moments` at the effects interval
(every patient's own stationary covariance, the first session being drawn from it), so that
:func:`bayes_alliance.effects.derived.r2_components` and ``derived_effects`` apply unchanged.

References
----------
Voelkle, M. C., Oud, J. H. L., Davidov, E., & Schmidt, P. (2012). *Psychological Methods*,
17(2), 176-192.
Driver, C. C., Oud, J. H. L., & Voelkle, M. C. (2017). *Journal of Statistical Software*,
77(5).
Deboeck, P. R., & Preacher, K. J. (2016). No need to be discrete: A method for continuous
time mediation analysis. *Structural Equation Modeling*, 23(1), 61-75.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayes_alliance.core import vocab as v
from bayes_alliance.kernels import ctime
from bayes_alliance.spec.model_spec import ModelSpec

# The entries of Phi(dt) in the drift's row order (A_xx, A_xy, A_yx, A_yy).
INTERVAL_PARAMETERS = (
    v.PREDICTOR_AUTOREGRESSION,
    v.REVERSE_STATE_EFFECT,
    v.STATE_EFFECT,
    v.OUTCOME_AUTOREGRESSION,
)


def interval_of(spec: ModelSpec, times: np.ndarray | None = None) -> float:
    """The effects interval of a fitted (resolved) spec; of an unresolved one the median
    interval of the session ``times`` (patients x sessions) when given."""
    if spec.effects_interval is None and times is not None:
        return ctime.median_interval(times)
    if spec.effects_interval is None:
        raise ValueError(
            "the spec has no effects interval: resolve it against the data first "
            "(bayes_alliance.model.covariates.resolve)"
        )
    return float(spec.effects_interval)


def interval_words(spec: ModelSpec) -> str:
    """The effects interval in words, e.g. ``"per 7 days"`` or ``"per 1.5 weeks"``."""
    dt = interval_of(spec)
    unit = spec.time_unit
    if dt == 1:
        unit = unit[:-1]  # "day", "week"
    return f"per {dt:g} {unit}"


def drift_draws(post: Mapping[str, Any]) -> ctime.Drift:
    """The drift entries (A_xx, A_xy, A_yx, A_yy) per draw."""
    a11, a12, a21, a22 = (np.asarray(post[n], dtype=float) for n in v.DRIFT_PARAMETERS)
    return a11, a12, a21, a22


def diffusion_draws(post: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The diffusion covariance entries (q11, q12, q22) per draw."""
    gx = np.asarray(post[v.DIFFUSION_SD_PREDICTOR], dtype=float)
    gy = np.asarray(post[v.DIFFUSION_SD_OUTCOME], dtype=float)
    return gx**2, np.asarray(post[v.DIFFUSION_CORR], dtype=float) * gx * gy, gy**2


def phi_draws(post: Mapping[str, Any], dt: Any) -> dict[str, np.ndarray]:
    """The entries of ``Phi(dt) = expm(A dt)`` at the fixed drift, by their session-model
    names (:data:`INTERVAL_PARAMETERS`); ``dt`` broadcasts against the draws (a trailing axis
    of intervals: ``dt`` of shape (n,) with draws (chain, draw) needs ``dt`` shaped
    (1, 1, n) and the draws a trailing axis, see :func:`phi_curve`)."""
    phi = ctime.expm(drift_draws(post), dt)
    return dict(zip(INTERVAL_PARAMETERS, phi, strict=True))


def phi_curve(post: Mapping[str, Any], grid: np.ndarray) -> dict[str, np.ndarray]:
    """Phi(dt) entries over a grid of intervals, (chain, draw, len(grid)) each."""
    a11, a12, a21, a22 = (e[..., None] for e in drift_draws(post))
    phi = ctime.expm((a11, a12, a21, a22), np.asarray(grid, dtype=float))
    return dict(zip(INTERVAL_PARAMETERS, phi, strict=True))


def interval_draws(
    post: Mapping[str, Any], spec: ModelSpec, times: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The lag effects at the spec's effects interval (:func:`phi_draws`, :func:`interval_of`)."""
    return phi_draws(post, interval_of(spec, times))


def within_moments(
    post: Mapping[str, Any],
    spec: ModelSpec,
    own_slope: np.ndarray | None = None,
    deviations: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The within-person moments of :func:`bayes_alliance.effects.variance.within_moments`
    for a continuous-time fit at its effects interval ``dt``, per draw.

    Each patient i has the drift ``A_i`` (its own cross effect ``own_slope``, (chain, draw,
    patient), when slopes vary or moderators move it; else the fixed drift), the stationary
    covariance ``S_i`` and ``Phi_i = expm(A_i dt)``; the moments are averages over the data's
    patients::

        var_x, cov_xy, var_y = S_i entries;          target_x, target_y = S_i diagonal
        f1_y  = [Phi_m S_i Phi_m']_yy                (m: the fixed cross effect with moderators)
        v13_y = [Phi_(m+c) S_i Phi_(m+c)']_yy - f1_y (c: the therapist's deviation)
        v12_y = [Phi_i S_i Phi_i']_yy - f1_y - v13_y (the patient's own)
        sigma2_y = S_i,yy - [Phi_i S_i Phi_i']_yy    (= Q_i(dt)_yy)
        f1_x = [Phi_i S_i Phi_i']_xx,   sigma2_x = S_i,xx - f1_x

    as the session-number model splits a lagged equation (its lagged states have the
    stationary covariance here, every first session being drawn from it). ``deviations``:
    the slope deviations by level (``"therapist"``, ``"patient"``; (chain, draw, patient)),
    :meth:`bayes_alliance.inference.fit.FitResult.slope_deviations`.
    """
    a11, a12, a21, a22 = drift_draws(post)
    q = diffusion_draws(post)
    dt = interval_of(spec)
    if own_slope is None:
        own = a21[..., None]
        dev_t = dev_p = np.zeros_like(own)
    else:
        own = np.asarray(own_slope, dtype=float)
        deviations = deviations or {}
        dev_t = np.asarray(deviations.get(v.THERAPIST, np.zeros_like(own)), dtype=float)
        dev_p = np.asarray(deviations.get(v.PATIENT, np.zeros_like(own)), dtype=float)
    col = (a11[..., None], a12[..., None], None, a22[..., None])
    qc = (q[0][..., None], q[1][..., None], q[2][..., None])

    def drift(cross: np.ndarray) -> ctime.Drift:
        return (col[0], col[1], cross, col[3])

    stat = ctime.stationary_cov(drift(own), qc)

    def explained(cross: np.ndarray) -> tuple[Any, Any, Any]:
        return ctime.sandwich(ctime.expm(drift(cross), dt), stat)

    fixed = explained(own - dev_t - dev_p)
    ther = explained(own - dev_p)
    full = explained(own)

    def avg(x: Any) -> np.ndarray:
        return np.broadcast_to(x, np.broadcast_shapes(np.shape(x), own.shape)).mean(axis=-1)

    return {
        "var_x": avg(stat[0]),
        "cov_xy": avg(stat[1]),
        "var_y": avg(stat[2]),
        "f1_y": avg(fixed[2]),
        "v13_y": avg(ther[2] - fixed[2]),
        "v12_y": avg(full[2] - ther[2]),
        "sigma2_y": avg(stat[2] - full[2]),
        "f1_x": avg(full[0]),
        "sigma2_x": avg(stat[0] - full[0]),
        "target_y": avg(stat[2]),
        "target_x": avg(stat[0]),
    }


def bayesian_r2(post: Any, y: np.ndarray, times: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Whole-model Bayesian R-squared of the outcome per draw (Gelman, Goodrich, Gabry &
    Vehtari 2019) in continuous time: ``var(fit) / (var(fit) + sigma^2)`` over the observed
    outcome cells with a previous session, the fit ``M_y + Phi_i(dt)_yx w_x + Phi_i(dt)_yy
    w_y`` of the previous states at each cell's own interval and ``sigma^2`` the average
    over those cells of the interval's innovation variance ``Q_i(dt)_yy`` (plus the error
    variance with measurement error). ``post``: a completed posterior with the states
    (``state_*``, (chain, draw, patient, session)); ``times`` the grid's session times."""
    if "state_outcome" not in post:
        raise ValueError("Bayesian R-squared needs the stored states (store_states=True)")
    dt = np.diff(np.asarray(times, dtype=float), axis=1)  # (P, S - 1): into columns 1..
    a11, a12, a21, a22 = (e[..., None, None] for e in drift_draws(post))
    if "state_effect_by_patient" in post:
        a21 = np.asarray(post["state_effect_by_patient"].values, dtype=float)[..., None]
    q11, q12, q22 = (e[..., None, None] for e in diffusion_draws(post))
    q = (q11, q12, q22)
    stat = ctime.stationary_cov((a11, a12, a21, a22), q)
    safe = np.where(np.isfinite(dt) & (dt > 0), dt, 1.0)
    phi = ctime.expm((a11, a12, a21, a22), safe)
    sig = ctime.interval_cov(phi, stat)
    wx = np.asarray(post["state_predictor"].values, dtype=float)
    wy = np.asarray(post["state_outcome"].values, dtype=float)
    if spec.measurement_error:  # observed minus state keeps the error: the drawn means
        m_y = np.asarray(post["trait_outcome"].values, dtype=float)[..., None]
    else:
        m_y = y[None, None, :, 1:] - wy[..., 1:]
    fit = m_y + phi[2] * wx[..., :-1] + phi[3] * wy[..., :-1]
    valid = (~np.isnan(y[:, 1:]) & np.isfinite(dt))[None, None] & np.isfinite(fit)
    n = valid.sum(axis=(-2, -1))
    f = np.where(valid, fit, 0.0)
    mean = f.sum(axis=(-2, -1)) / n
    var_fit = (np.where(valid, fit - mean[..., None, None], 0.0) ** 2).sum(axis=(-2, -1)) / (n - 1)
    sigma2 = np.where(valid, sig[2], 0.0).sum(axis=(-2, -1)) / n
    if spec.measurement_error:
        sigma2 = sigma2 + np.asarray(post[v.MEASUREMENT_ERROR_SD_OUTCOME].values) ** 2
    out: np.ndarray = var_fit / (var_fit + sigma2)
    return out


def summary_rows(names: list[str]) -> list[str]:
    """The summary's row order of a continuous-time fit: the lag effects at the effects
    interval right after the drift rows."""
    present = [names.index(n) for n in v.DRIFT_PARAMETERS if n in names]
    if not present:
        return names
    at = max(present) + 1
    rows = [n for n in v.NAMED_PARAMETERS if n in INTERVAL_PARAMETERS and n not in names]
    return [*names[:at], *rows, *names[at:]]


__all__ = [
    "INTERVAL_PARAMETERS",
    "bayesian_r2",
    "diffusion_draws",
    "drift_draws",
    "interval_draws",
    "interval_of",
    "interval_words",
    "phi_curve",
    "phi_draws",
    "summary_rows",
    "within_moments",
]
