r"""Impulse responses of the within-person VAR(1): how a one-off shock in one session moves the
states of the sessions after it (the model's "conditional effect" of an alliance state).

In reduced form ``w_t = Phi* w_(t-1) + u_t`` (:mod:`bayes_alliance.kernels.dynamics`), a shock
``s`` to the structural innovations of session 0 moves the states by

.. math::

    r_0 = B_0^{-1} s, \qquad r_h = (\Phi^*)^h \, r_0 \quad (h = 1, 2, \ldots)

with ``B0^-1`` the lag-0 path's inverse (the identity without one). For a shock to the
predictor's (alliance's) innovation ``s = (delta, 0)``: ``r_h[1]`` is the outcome's response h
sessions later and ``r_h[0]`` the predictor's own (Luetkepohl 2005, *New Introduction to
Multiple Time Series Analysis*, section 2.3.2; Hamaker et al. 2018 for the multilevel VAR). The
first lagged response is ``r_1[1] = c delta`` (the state effect times the shock) without a lag-0
path. The responses use the average dynamics (the population lag matrix), not any patient's.

Pure numpy, batched over draws.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayes_alliance.core import vocab
from bayes_alliance.kernels import dynamics

SCALES = ("innovation", "state", "unit")


def impulse_response(phi: np.ndarray, impact: np.ndarray, horizon: int) -> np.ndarray:
    """Responses ``r_h = Phi^h r_0`` for ``h = 0..horizon``.

    Parameters
    ----------
    phi
        Lag matrices, shape (..., k, k).
    impact
        The states' response in the shock's session ``r_0``, shape (..., k).
    horizon
        The last session after the shock (>= 0).

    Returns
    -------
    numpy.ndarray
        Shape (..., horizon + 1, k).
    """
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")
    phi = np.asarray(phi, dtype=float)
    r = np.asarray(impact, dtype=float)
    out = np.empty((*np.broadcast_shapes(phi.shape[:-2], r.shape[:-1]), horizon + 1, r.shape[-1]))
    out[..., 0, :] = r
    for h in range(1, horizon + 1):
        # one step at a time: r_h = Phi r_(h-1), no matrix powers formed
        r = np.einsum("...ij,...j->...i", phi, r)
        out[..., h, :] = r
    return out


def predictor_shock_response(
    post: Mapping[str, np.ndarray],
    same_session: str,
    horizon: int,
    size: np.ndarray | float,
) -> np.ndarray:
    """Response of (predictor, outcome) to a shock of ``size`` (per draw) to the predictor's
    structural innovation, at the average dynamics; shape ``(*draws, horizon + 1, 2)``.

    ``post`` holds the named lag parameters per draw (absent ones are 0:
    ``reverse_state_effect`` and ``same_session_effect`` when the model has none).
    """
    like = np.asarray(post[vocab.OUTCOME_AUTOREGRESSION], dtype=float)
    zero = np.zeros_like(like)

    def get(name: str) -> np.ndarray:
        return np.asarray(post[name], dtype=float) if name in post else zero

    phi = (
        get(vocab.PREDICTOR_AUTOREGRESSION),
        get(vocab.REVERSE_STATE_EFFECT),
        get(vocab.STATE_EFFECT),
        like,
    )
    b0 = get(vocab.SAME_SESSION_EFFECT)
    (a, b, c, d), _ = dynamics.reduced_form(phi, (zero, zero, zero), b0, same_session)
    lag = np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)
    size = np.broadcast_to(np.asarray(size, dtype=float), like.shape)
    # B0^-1 (size, 0): a lag-0 path x -> y moves the outcome in the shock's own session.
    moved_y = b0 * size if same_session == "predictor_to_outcome" else zero
    return impulse_response(lag, np.stack([size, moved_y], -1), horizon)


__all__ = ["SCALES", "impulse_response", "predictor_shock_response"]
