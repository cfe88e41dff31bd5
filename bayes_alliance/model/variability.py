r"""Variability of the within-person part beyond one innovation covariance: measurement error
of the observed scores and patients' (and therapists') own innovation SDs.

* :func:`error_var`: the measurement-error variances ``(omega_x^2, omega_y^2)`` of
  ``x_ti = M_x,i + w_x,ti + eps_x,ti`` (Schuurman & Hamaker 2019).
* :func:`instability`: each patient's deviation of the log innovation SD,
  ``sd_x,i = sd_x exp(s_P u_x,i + s_T v_x,j)`` (Hamaker et al. 2018; Jongerling, Laurenceau &
  Hamaker 2015), and :func:`instability_shift`, the traits' regression on ``u_i``.
* :func:`average_innovations`: the patients' average innovation covariance, for population
  moments.

Part of the one path from named parameters to the dynamics
(:mod:`bayes_alliance.model.structure` calls these through the same accessor ``get``); no PyMC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from bayes_alliance.core import vocab as v
from bayes_alliance.spec.model_spec import ModelSpec

Get = Callable[..., Any]  # get(name, default=0.0, **dims) -> the named parameter


def error_var(get: Get, spec: ModelSpec) -> tuple[Any, Any]:
    """Measurement-error variances ``(omega_x^2, omega_y^2)`` of the observed scores (0.0
    without measurement error)."""
    if not spec.measurement_error:
        return 0.0, 0.0
    return get(v.MEASUREMENT_ERROR_SD_PREDICTOR) ** 2, get(v.MEASUREMENT_ERROR_SD_OUTCOME) ** 2


INSTABILITY_RAW = {
    v.PATIENT: ("log_innovation_predictor_patient_raw", "log_innovation_outcome_patient_raw"),
    v.THERAPIST: ("log_innovation_predictor_therapist_raw", "log_innovation_outcome_therapist_raw"),
}
INSTABILITY_SD = {
    v.PATIENT: (v.SD_LOG_INNOVATION_PREDICTOR_PATIENT, v.SD_LOG_INNOVATION_OUTCOME_PATIENT),
    v.THERAPIST: (v.SD_LOG_INNOVATION_PREDICTOR_THERAPIST, v.SD_LOG_INNOVATION_OUTCOME_THERAPIST),
}


def instability(get: Get, spec: ModelSpec, tj: Any = None) -> tuple[Any, Any]:
    r"""Each patient's deviation of the log innovation SD of x and y,
    ``s_P u_i + s_T v_j`` (``u``, ``v`` standard normal raw deviations; the therapist part only
    with ``"therapist"`` in ``spec.random_innovations``)."""
    out = []
    for k in range(2):
        dev = get(INSTABILITY_SD[v.PATIENT][k]) * get(INSTABILITY_RAW[v.PATIENT][k], dims=v.PATIENT)
        if v.THERAPIST in spec.random_innovations:
            raw_t = get(INSTABILITY_RAW[v.THERAPIST][k], dims=v.THERAPIST)
            dev = dev + get(INSTABILITY_SD[v.THERAPIST][k]) * raw_t[tj]
        out.append(dev)
    return out[0], out[1]


def average_innovations(
    post: Mapping[str, Any], spec: ModelSpec
) -> tuple[dict[str, Any], ModelSpec]:
    r"""Draws and spec whose one innovation covariance is the patients' average ``E[Sigma_i]``
    under random innovations (unchanged without them), for population moments (R-squared,
    reliabilities, ICCs): the stationary covariance is linear in Sigma at a given lag matrix,
    so its average over patients is the stationary covariance of the average Sigma.

    With ``log sd_x,i = log sd_x + a_i``, ``a_i ~ N(0, s_x^2)`` (``s_x^2`` the patient plus
    therapist variances) and the x and y deviations independent, ``E[sd_x,i^2] = sd_x^2
    exp(2 s_x^2)`` and ``E[sd_x,i sd_y,i] = sd_x sd_y exp((s_x^2 + s_y^2) / 2)``; returned as
    innovation SDs ``sd_x exp(s_x^2)`` and a correlation ``rho exp(-(s_x^2 + s_y^2) / 2)``
    with those moments."""
    if not spec.random_innovations:
        return dict(post), spec
    out = dict(post)
    var = []
    for k, name in enumerate((v.INNOVATION_SD_PREDICTOR, v.INNOVATION_SD_OUTCOME)):
        s2 = np.asarray(post[INSTABILITY_SD[v.PATIENT][k]], dtype=float) ** 2
        if v.THERAPIST in spec.random_innovations:
            s2 = s2 + np.asarray(post[INSTABILITY_SD[v.THERAPIST][k]], dtype=float) ** 2
        var.append(s2)
        out[name] = np.asarray(post[name], dtype=float) * np.exp(s2)
    if v.INNOVATION_CORR in post:
        out[v.INNOVATION_CORR] = np.asarray(post[v.INNOVATION_CORR], dtype=float) * np.exp(
            -(var[0] + var[1]) / 2
        )
    return out, replace(spec, random_innovations=())


def instability_shift(get: Get, spec: ModelSpec) -> tuple[Any, Any] | None:
    r"""The traits' known shift by the patient's standardised instability ``u_i``:
    ``G u_i`` with ``G`` = ``trait_instability_effect`` (rows: the trait's variable); None
    without random innovations. Given the parameters it enters the likelihood as the
    intercept does, so the latent means still integrate out."""
    if not spec.random_innovations:
        return None
    g = get(v.TRAIT_INSTABILITY_EFFECT, dims=("trait_of", "instability_of"))
    u_x = get(INSTABILITY_RAW[v.PATIENT][0], dims=v.PATIENT)
    u_y = get(INSTABILITY_RAW[v.PATIENT][1], dims=v.PATIENT)
    return g[0, 0] * u_x + g[0, 1] * u_y, g[1, 0] * u_x + g[1, 1] * u_y


# Each patient's innovation SDs after sampling (stored by the post-hoc draws), by the name of
# the population SD they replace.
BY_PATIENT = {
    v.INNOVATION_SD_PREDICTOR: "innovation_sd_predictor_by_patient",
    v.INNOVATION_SD_OUTCOME: "innovation_sd_outcome_by_patient",
}


def own_innovations(
    arrays: Mapping[str, Any], spec: ModelSpec, by_patient: Mapping[str, Any]
) -> tuple[dict[str, Any], ModelSpec]:
    """Arrays and spec whose innovation SDs are each patient's own (``by_patient``: the arrays
    of :data:`BY_PATIENT`'s names, shaped for the caller's accessor), for code that reads the
    dynamics of a completed posterior; unchanged without random innovations."""
    if not spec.random_innovations:
        return dict(arrays), spec
    out = dict(arrays)
    for name, own in BY_PATIENT.items():
        out[name] = by_patient[own]
    return out, replace(spec, random_innovations=())


__all__ = [
    "BY_PATIENT",
    "INSTABILITY_RAW",
    "INSTABILITY_SD",
    "average_innovations",
    "error_var",
    "instability",
    "instability_shift",
    "own_innovations",
]
