r"""Each patient's marginal log density of their observed cells, per posterior draw.

Leave-one-patient-out needs ``log p(y_i | theta)`` for every patient i and draw theta, with the
patient's own latent quantities integrated out: the latent mean M_i, the per-patient trend
deviations, and every missing cell (a skipped session or a missing rating). Summing conditional
cell densities given a drawn latent mean and imputed cells is not that density (the imputed
cells' own terms are missing from it), and importance sampling on it is invalid.

Given the parameters, a patient's series is a linear Gaussian state-space model::

    state  a_t = (w_t, M, delta)        w_t = Phi* w_(t-1) + u_t,  u_t ~ N(0, Sigma*_t)
    obs    z_t - known_t = w_t + M + delta (t - t_0)      (the observed entries only)
    start  w_1 ~ N(0, F),  M ~ N(0, T),  delta ~ N(0, D)

with ``known_t`` the intercept (or session mean), the average trend, the baseline's shift of
the latent mean (between-level mediation, patient- or therapist-level) and the therapist part of the latent mean, T the patient-level trait covariance and D the trend-deviation variances. A
Kalman filter that processes the observed entries one at a time (skipping missing ones) gives
the exact marginal density as the sum of its prediction-error terms. The patient's own slope
deviation (random slopes) and the therapist deviations are conditioned on (drawn with the
other parameters), which keeps the importance-sampling identity valid.

Pure numpy, batched over draws and patients; independent of PyMC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import dynamics
from bayes_alliance.model.within import baseline_level, baseline_values
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab
LOG_2PI = float(np.log(2 * np.pi))
CHUNK = 200_000  # draws x patients filtered at once


def _get(post: Mapping[str, np.ndarray], name: str, like: np.ndarray) -> np.ndarray:
    return np.asarray(post[name], dtype=float) if name in post else np.zeros_like(like)


def patient_loglik(
    post: Mapping[str, np.ndarray], data: SessionData, spec: ModelSpec
) -> np.ndarray:
    """Marginal log density of each patient's observed cells, shape (chain, draw, patient).

    Parameters
    ----------
    post
        Posterior arrays (chain, draw[, ...]) by name: the named parameters, the therapist
        deviations' raw values, ``state_effect_by_patient`` when slopes vary, session means,
        the free first-session parameters and the trend raw values as the spec has them.
    data, spec
        The data and options of the fit.
    """
    like = np.asarray(post[v.OUTCOME_AUTOREGRESSION], dtype=float)
    n_c, n_d = like.shape[:2]
    flat = {
        k: np.asarray(val, dtype=float).reshape(n_c * n_d, *np.shape(val)[2:])
        for k, val in post.items()
    }
    n_b = n_c * n_d
    out = np.empty((n_b, data.n_patients))
    step = max(1, CHUNK // data.n_patients)
    for i in range(0, n_b, step):
        part = {k: val[i : i + step] for k, val in flat.items()}
        out[i : i + step] = _filter(part, data, spec)
    return out.reshape(n_c, n_d, data.n_patients)


def _filter(post: Mapping[str, np.ndarray], data: SessionData, spec: ModelSpec) -> np.ndarray:
    like = post[v.OUTCOME_AUTOREGRESSION]
    n_b, n_p, n_s = like.shape[0], data.n_patients, len(data.sessions)
    col = (slice(None), None)  # (B,) -> (B, 1): broadcasts over patients

    # Structural dynamics per draw (and per patient when slopes vary), then the reduced form.
    slope = (
        post["state_effect_by_patient"]
        if "state_effect_by_patient" in post
        else _get(post, v.STATE_EFFECT, like)[col]
    )
    b0 = _get(post, v.SAME_SESSION_EFFECT, like)
    sx = post[v.INNOVATION_SD_PREDICTOR]
    sy = post[v.INNOVATION_SD_OUTCOME]
    rho = _get(post, v.INNOVATION_CORR, sx) if spec.same_session == "none" else np.zeros_like(sx)
    sig = (sx**2, rho * sx * sy, sy**2)  # (B,) or (B, S - 1)
    phi_s = (
        _get(post, v.PREDICTOR_AUTOREGRESSION, like)[col],
        _get(post, v.REVERSE_STATE_EFFECT, like)[col],
        slope * np.ones((1, n_p)),
        _get(post, v.OUTCOME_AUTOREGRESSION, like)[col],
    )
    by_session = spec.innovations == "session"
    sig0 = tuple((e[:, 0] if by_session else e)[col] for e in sig)
    phi, sig_r0 = dynamics.reduced_form(phi_s, sig0, b0[col], spec.same_session)
    phi = tuple(np.broadcast_to(e, (n_b, n_p)) for e in phi)
    if spec.first_session == "stationary":
        first = dynamics.stationary_cov(phi, sig_r0)
    else:
        fx, fy = post["first_sd_predictor"], post["first_sd_outcome"]
        first = ((fx**2)[col], (post["first_corr"] * fx * fy)[col], (fy**2)[col])

    # Known part of each cell's mean (P, S) per draw: intercept or session means, the average
    # trend, and the therapist part of the latent mean.
    if spec.session_means:
        kx = post["session_mean_predictor"][:, None, :]
        ky = post["session_mean_outcome"][:, None, :]
    else:
        kx = post[v.INTERCEPT_PREDICTOR][:, None, None]
        ky = post[v.INTERCEPT_OUTCOME][:, None, None]
    t = (data.sessions - data.sessions[0]).astype(float)
    if spec.trend:
        kx = kx + post[v.TREND_PREDICTOR][:, None, None] * t
        ky = ky + post[v.TREND_OUTCOME][:, None, None] * t
    zb = baseline_values(data, spec)
    if zb is not None:
        # The baseline's known shift of the latent means: a' z and (c' + b a)' z, with b the
        # trait effect at the baseline's level (zb: the patient's or its therapist's row).
        b = post[v.BASELINE_MEDIATOR[baseline_level(data, spec)]]
        a = post[v.BASELINE_EFFECT_PREDICTOR]  # (B, k)
        c_tot = post[v.BASELINE_EFFECT_OUTCOME] + b[:, None] * a
        kx = kx + (a @ zb.T)[..., None]
        ky = ky + (c_tot @ zb.T)[..., None]
    if spec.therapist_level:
        tj = data.patient_therapist
        a_x = (post[v.SD_THERAPIST_PREDICTOR][:, None] * post["therapist_dev_predictor_raw"])[:, tj]
        a_y = (post[v.SD_THERAPIST_OUTCOME][:, None] * post["therapist_dev_outcome_raw"])[:, tj]
        beta_t = post[v.TRAIT_EFFECT_THERAPIST][:, None]
        kx = kx + a_x[..., None]
        ky = ky + (a_y + beta_t * a_x)[..., None]
    zx = data.x[None] - kx
    zy = data.y[None] - ky

    # Initial state covariance: blocks for w_1 (F), M (T) and delta (D), independent.
    n = 6 if spec.trend else 4
    var_px = post[v.SD_PATIENT_PREDICTOR] ** 2
    beta_p = post[v.TRAIT_EFFECT_PATIENT]
    tau = (var_px, beta_p * var_px, beta_p**2 * var_px + post[v.SD_PATIENT_OUTCOME] ** 2)
    p0 = np.zeros((n_b, n_p, n, n))
    p0[..., 0, 0], p0[..., 0, 1], p0[..., 1, 1] = first
    p0[..., 1, 0] = p0[..., 0, 1]
    p0[..., 2, 2], p0[..., 2, 3], p0[..., 3, 3] = (e[:, None] for e in tau)
    p0[..., 3, 2] = p0[..., 2, 3]
    if spec.trend:
        p0[..., 4, 4] = (post[v.SD_TREND_PREDICTOR] ** 2)[:, None]
        p0[..., 5, 5] = (post[v.SD_TREND_OUTCOME] ** 2)[:, None]

    f = np.zeros((n_b, n_p, n, n))  # transition: w block is Phi*, the rest constant
    f[..., 0, 0], f[..., 0, 1], f[..., 1, 0], f[..., 1, 1] = phi
    for k in range(2, n):
        f[..., k, k] = 1.0

    a = np.zeros((n_b, n_p, n))
    p = np.zeros((n_b, n_p, n, n))
    ll = np.zeros((n_b, n_p))
    inside = data.in_series
    obs = (data.observed_x & inside, data.observed_y & inside)
    for c in range(n_s):
        start = data.first == c
        going = inside[:, c] & ~start
        if start.any():
            a[:, start] = 0.0
            p[:, start] = p0[:, start]
        if going.any():
            q = np.zeros((n_b, n, n))
            s11, s12, s22 = (
                (e[:, c - 1] if by_session else e) for e in _reduced_sigma(sig, b0, spec)
            )
            q[:, 0, 0], q[:, 0, 1], q[:, 1, 1] = s11, s12, s22
            q[:, 1, 0] = s12
            fg = f[:, going]
            a[:, going] = np.einsum("bpij,bpj->bpi", fg, a[:, going])
            p[:, going] = fg @ p[:, going] @ np.swapaxes(fg, -1, -2) + q[:, None]
        for k, z in ((0, zx), (1, zy)):
            sel = obs[k][:, c]
            if not sel.any():
                continue
            h = np.zeros(n)
            h[k] = h[k + 2] = 1.0
            if spec.trend:
                h[k + 4] = t[c]
            ps = p[:, sel]
            ph = ps @ h  # (B, P', n)
            s = ph @ h  # (B, P')
            innov = z[:, sel, c] - a[:, sel] @ h
            ll[:, sel] += -0.5 * (LOG_2PI + np.log(s) + innov**2 / s)
            gain = ph / s[..., None]
            a[:, sel] = a[:, sel] + gain * innov[..., None]
            p[:, sel] = ps - gain[..., :, None] * ph[..., None, :]
    return ll


def _reduced_sigma(
    sig: tuple[np.ndarray, np.ndarray, np.ndarray], b0: np.ndarray, spec: ModelSpec
) -> tuple[Any, Any, Any]:
    """Reduced-form innovation covariance entries per draw (and session when session-specific)."""
    bb = b0[:, None] if sig[0].ndim == 2 else b0
    zero = np.zeros_like(sig[0])
    _, red = dynamics.reduced_form((zero, zero, zero, zero), sig, bb, spec.same_session)
    return red
