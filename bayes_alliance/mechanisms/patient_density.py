r"""Each patient's log density per posterior draw in the integrated mechanism model: the values
leave-one-patient-out reads.

For draw theta, patient i's value is ``log p(y_i | theta)`` with its own latent means, change
and missing cells integrated out (:func:`bayes_alliance.mechanisms.integrated.patient_factors`)
and, with three levels, conditioned on its therapist's ``tau_j`` drawn from its exact Gaussian
posterior given all the data and theta,

    tau_j | y, theta ~ N(Q_j^-1 eta_j, Q_j^-1),   Q_j = Lambda_j + (L_T L_T')^-1,

(``Lambda_j``, ``eta_j`` the sum of the caseload's factors in ``tau_j``), so that ``(theta,
tau)`` is a posterior draw and the importance-sampling identity of PSIS-LOO holds, as for the
main model (:mod:`bayes_alliance.analysis.patient_density`). Numpy only; one pass of the
filter's numba kernel per draw.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.kernels.levels import Quadratic
from bayes_alliance.mechanisms.baseline import draw_shifts
from bayes_alliance.mechanisms.effects import covariance_of
from bayes_alliance.mechanisms.integrated import (
    EndParams,
    IntegratedParams,
    caseloads,
    filter_inputs,
    patient_factors,
    therapist_prior,
)
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.mechanisms.spec import MechanismSpec, path_positions


def _cov(draw: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    cov = covariance_of(draw, name)
    assert cov is not None, name
    return cov


def params_of(
    draw: Mapping[str, np.ndarray], data: SeriesData, spec: MechanismSpec
) -> IntegratedParams:
    """The integrated density's parameters from one draw's arrays (no chain or draw axes),
    by the posterior's names; ``spec`` resolved."""
    k, n = data.k, data.n_patients
    phi = np.broadcast_to(np.asarray(draw["lag"], dtype=float), (n, k, k)).copy()
    for r, (to, source) in enumerate(path_positions(data.roles, spec.random_paths or ())):
        phi[:, to, source] += np.asarray(draw["path_deviation"])[:, r]
    idx = {r: i for i, r in enumerate(data.roles)}
    error = np.zeros(k)
    for r, role in enumerate(spec.measurement_error):
        error[idx[role]] = float(np.asarray(draw["measurement_error_sd"])[r]) ** 2
    therapist = None
    if spec.therapist_level:
        therapist = np.linalg.cholesky(_cov(draw, "therapist"))
    mean_shift, end_shift = draw_shifts(draw, data, spec.baseline, spec.baseline_level)
    end = None
    if data.end_outcome is not None:
        end = EndParams(
            float(draw["end_intercept"]),
            float(draw["end_trait_effect_patient"]),
            float(draw["end_change_effect"]) if spec.trend else None,
            float(draw["end_trait_effect_therapist"]) if spec.therapist_level else None,
            float(draw["end_sd"]),
            float(draw["sd_end_therapist"]) if spec.therapist_level else None,
            end_shift,
        )
    chol_patient, patient_mean = patient_level(draw, own_deviation(draw, data, spec))
    sigma = _cov(draw, "innovation")
    if spec.random_innovations:
        scale = np.exp(np.asarray(draw["log_innovation_offset"]) * draw["sd_log_innovation"])
        sigma = scale[:, :, None] * sigma[None, :, :] * scale[:, None, :]
    return IntegratedParams(
        intercept=np.asarray(draw["intercept"], dtype=float),
        phi=phi,
        sigma=sigma,
        first_cov=_cov(draw, "first"),
        chol_patient=chol_patient,
        trend=float(draw["trend"]) if spec.trend else None,
        error=error,
        chol_therapist=therapist,
        end=end,
        baseline=mean_shift,
        patient_mean=patient_mean,
    )


def own_deviation(
    draw: Mapping[str, np.ndarray], data: SeriesData, spec: MechanismSpec
) -> np.ndarray | None:
    """Each patient's own random-path deviations ``d_i`` (patients x paths): the stored whole
    deviation less its therapist's ``c_j`` on the paths that vary between therapists (None
    without random paths)."""
    if "path_deviation" not in draw:
        return None
    own = np.array(draw["path_deviation"], dtype=float)
    if spec.therapist_paths:
        if "path_deviation_therapist" not in draw:
            raise ValueError(
                "the draws hold no path_deviation_therapist although lags vary between "
                "therapists: a patient's own deviations cannot be told from its therapist's"
            )
        paths = list(spec.random_paths or ())
        between = np.asarray(draw["path_deviation_therapist"], dtype=float)
        for r, pair in enumerate(spec.therapist_paths):
            own[:, paths.index(pair)] -= between[data.patient_therapist, r]
    return own


def patient_level(
    draw: Mapping[str, np.ndarray], own: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    r"""The Cholesky factor of the patients' coefficients ``b_i`` and their known means: with
    a covariance shared with the random lags (``corr_paths_patient``), those of ``b_i`` given
    each patient's own deviations ``d_i`` (``own``, :func:`own_deviation`; saved files keep
    no offsets), as the model computes them: with ``L`` the joint lower Cholesky factor,
    ``z_i = L_dd^-1 d_i``, mean ``L_bd z_i`` and factor ``L_bb`` (equal to
    ``S_bd S_dd^-1 d_i`` and ``chol(S_bb - S_bd S_dd^-1 S_db)``, without inverting ``S_dd``);
    else the marginal factor and None."""
    if "corr_paths_patient" not in draw:
        return np.linalg.cholesky(_cov(draw, "patient")), None
    assert own is not None, "random lags that covary with the traits need their deviations"
    cross = np.asarray(draw["corr_paths_patient"], dtype=float)
    n_d, n_b = cross.shape
    corr = np.eye(n_d + n_b)
    if "corr_paths" in draw:
        corr[:n_d, :n_d] = draw["corr_paths"]
    if "corr_patient" in draw:
        corr[n_d:, n_d:] = draw["corr_patient"]
    corr[:n_d, n_d:] = cross
    corr[n_d:, :n_d] = cross.T
    sd = np.concatenate([np.ravel(draw["sd_paths"]), np.ravel(draw["sd_patient"])])
    low = np.linalg.cholesky(sd[:, None] * corr * sd[None, :])
    # a general solve of the small factor: scipy's solve_triangular took ~10 ms per call for a
    # 1 x 1 factor and a few hundred patients (scipy 1.18), numpy's 0.01 ms
    z = np.linalg.solve(low[:n_d, :n_d], own.T).T
    return low[n_d:, n_d:], z @ low[n_d:, :n_d].T


def patient_loglik(
    posterior: Mapping[str, np.ndarray], data: SeriesData, spec: MechanismSpec, seed: int
) -> np.ndarray:
    """Each patient's log density per draw, (chain, draw, patient) (see the module).

    Parameters
    ----------
    posterior
        The posterior's arrays by name, (chain, draw, ...).
    data, spec
        The fit's data and resolved spec (integrated traits).
    seed
        Seed of the therapists' draws (three levels); the same seed gives the same values.
    """
    if spec.traits != "integrated":
        raise ValueError(
            "per-patient densities need the integrated form (traits='integrated'); a fit with "
            "sampled traits (a binary end outcome) has none"
        )
    grid = MechanismGrid.of(data)
    inputs = filter_inputs(data, grid, bool(spec.trend))
    n_chain, n_draw = np.shape(posterior["lag"])[:2]
    out = np.zeros((n_chain, n_draw, data.n_patients))
    rng = np.random.default_rng(seed)
    load = caseloads(data) if spec.therapist_level else None
    for c in range(n_chain):
        for d in range(n_draw):
            draw = {name: np.asarray(v)[c, d] for name, v in posterior.items()}
            params = params_of(draw, data, spec)
            after, _ = patient_factors(data, inputs, grid.filled, grid.time, params)
            if load is None:
                out[c, d] = after.value()
                continue
            tau = _therapist_draws(after, load, therapist_prior(params, data.k), rng)
            at = tau[data.patient_therapist]  # (P, m)
            quad = np.einsum("pa,pab,pb->p", at, after.lam, at)
            out[c, d] = after.log_c - 0.5 * (after.kappa - 2 * np.sum(after.eta * at, -1) + quad)
    return out


def therapist_posterior(
    after: Quadratic, load: np.ndarray, prior_chol: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (T, m) and precision (T, m, m) of every therapist's ``tau_j`` given all the data
    and the parameters: the caseload's factors plus the prior."""
    lam = np.tensordot(load, after.lam, axes=1)
    eta = load @ after.eta
    prec = lam + np.linalg.inv(prior_chol @ prior_chol.T)
    return np.linalg.solve(prec, eta[..., None])[..., 0], prec


def _therapist_draws(
    after: Quadratic, load: np.ndarray, prior_chol: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One draw of every therapist's ``tau_j`` from its Gaussian posterior, (T, m)."""
    return gaussian_draw(*therapist_posterior(after, load, prior_chol), rng)


def gaussian_draw(mean: np.ndarray, prec: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws ``mean + L^-T z`` of ``N(mean, prec^-1)`` with ``prec = L L'`` (so the covariance
    is ``(L L')^-1``): ``mean`` (..., n, m) (leading axes: independent draws), ``prec``
    (n, m, m)."""
    low = np.linalg.cholesky(prec)
    z = rng.standard_normal(mean.shape)
    return mean + np.linalg.solve(np.swapaxes(low, -1, -2), z[..., None])[..., 0]


__all__ = ["gaussian_draw", "params_of", "patient_loglik", "therapist_posterior"]
