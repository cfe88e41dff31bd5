r"""Derived effects of the mechanism models, per posterior draw: pure numpy on arrays with any
leading batch axes (chain, draw), so every formula is tested on hand-computed inputs.

Within-level (lagged 1-1-1) mediation, x_t -> m_(t+1) -> y_(t+2) with random a and b paths::

    a = Phi[m, x],  b = Phi[y, m],  c' = Phi[y, x]                   (the lag-1 paths)
    indirect = E[a_i b_i] = a b + cov(a_i, b_i)          (Kenny, Korchmaros & Bolger 2003;
                                                         Bauer, Preacher & Gil 2006)
    total = E[(Phi_i^2)[y, x]] = (Phi^2)[y, x] + sum_k cov(Phi_i[y, k], Phi_i[k, x])
    direct = total - indirect,  proportion = indirect / total

Every effect is of x at session t on y at session t+2, the lag over which the indirect path
acts (Cole & Maxwell 2003: effects in a lagged design are defined for a given interval): the
total is the (t, t+2) entry of the squared lag matrix averaged over patients, the indirect
effect its route through the mediator, and the direct effect the rest (c' carried by x's and
y's own persistence, c' phi_xx + phi_yy c', plus the covariances of random entries on those
routes). Adding the lag-1 path c' to a lag-2 indirect effect would mix two intervals, so c' is
reported as a path of its own (``direct_path_within``).

A mediator with two informants (series x, x2, m, y; every lagged path free, as in the single
designs) gives each informant its own mediation over the same two sessions
(:func:`informant_mediation`)::

    a_1 = Phi[m, x],  a_2 = Phi[m, x2],  b = Phi[y, m]
    indirect_j = E[a_ji b_i] = a_j b + cov(a_ji, b_i)
    total_j = E[(Phi_i^2)[y, x_j]],  direct_j = total_j - indirect_j

with rows suffixed ``_second`` for x2 and ``_difference`` for x minus x2 (per draw). With four
series the direct effect of one informant over two sessions also holds its route through the
other informant's next rating, ``Phi[y, x2] Phi[x2, x]`` (x_t -> x2_(t+1) -> y_(t+2)): not
mediated by m, so not indirect, but not a path of x alone either; ``direct_path_within`` (c')
stays the lag-1 path.

Trait level: the regression of the outcome's trait on the other series' traits at one level is
``Sigma[x, x]^-1 Sigma[x, y]`` of that level's covariance (partial effects: each informant's
trait controlling for the other's; with a mediator, the predictor's trait controlling for the
mediator's). Standardised state effects use the model-implied within-person variances of the
states pooled over the patients' sessions (:func:`within_variance`)::

    V_i1 = Sigma_1,  V_it = Phi_i V_i(t-1) Phi_i' + Sigma_e,
    SD_w^2 = sum_i sum_(t <= T_i) diag(V_it) / sum_i T_i

with each patient's own lag matrix ``Phi_i`` (random paths included: the average over the
patients is the E over the random paths that a fixed-lag stationary covariance leaves out) and
series length ``T_i``. A finite series always has a variance, so a posterior draw whose
dynamics are not stationary gives a finite SD (the stationary covariance of such a draw does
not exist, and the Lyapunov solution went negative and its square root NaN); where the first
state is at stationarity, ``Sigma_1 = Phi Sigma_1 Phi' + Sigma_e``, the formula is the
stationary covariance of :func:`bayes_alliance.kernels.moments.stationary_cov`. Standardised
trait effects use the level's trait SDs.

End-of-treatment outcome: effects of the patient part and of the therapist part of the
predictor's trait, each per unit and per SD of its own level (the patients' SD within
therapists, the therapists' SD), and of the patients' changes per unit and per SD of the
changes; a binary outcome adds each per-SD effect's odds ratio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def cov_matrix(sd: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """Covariance from SDs (..., k) and a correlation matrix (..., k, k)."""
    return sd[..., :, None] * corr * sd[..., None, :]


def covariance_of(values: Mapping[Any, Any], name: str) -> np.ndarray | None:
    """The covariance (..., k, k) of a model's ``sd_<name>`` and ``corr_<name>`` (diagonal
    without a correlation; None without the SDs), from posterior arrays of any leading shape
    (a Dataset of draws, or one draw's arrays)."""
    if f"sd_{name}" not in values:
        return None
    sd = np.asarray(values[f"sd_{name}"], dtype=float)
    if f"corr_{name}" not in values:
        return np.einsum("...i,ij->...ij", sd**2, np.eye(sd.shape[-1]))
    return cov_matrix(sd, np.asarray(values[f"corr_{name}"], dtype=float))


def trait_regression(cov: np.ndarray) -> np.ndarray:
    """Coefficients (..., k-1) of the last variable regressed on the others, from their joint
    covariance (..., k, k)."""
    sxx = cov[..., :-1, :-1]
    sxy = cov[..., :-1, -1]
    return np.linalg.solve(sxx, sxy[..., None])[..., 0]


def expected_lag2(
    lag: np.ndarray,
    path_cov: np.ndarray | None,
    paths: Sequence[tuple[int, int]],
    to: int,
    source: int,
) -> np.ndarray:
    """``E[(Phi_i Phi_i)[to, source]]`` over patients: the fixed part's square plus the
    covariance of every pair of random entries (to, k) and (k, source)."""
    out = np.einsum("...j,...j->...", lag[..., to, :], lag[..., :, source])
    if path_cov is None:
        return out
    where = {p: r for r, p in enumerate(paths)}
    for mid in range(lag.shape[-1]):
        r1, r2 = where.get((to, mid)), where.get((mid, source))
        if r1 is not None and r2 is not None:
            out = out + path_cov[..., r1, r2]
    return out


def within_mediation(
    lag: np.ndarray,
    path_cov: np.ndarray | None,
    paths: Sequence[tuple[int, int]],
    x: int,
    m: int,
    y: int,
) -> dict[str, np.ndarray]:
    """Within-level 1-1-1 mediation effects per draw (module docstring).

    Parameters
    ----------
    lag
        Fixed lag matrices (..., k, k), rows to, columns from.
    path_cov
        Covariance (..., r, r) of the random paths, or None without random paths.
    paths
        (to, from) index of each random path, in ``path_cov``'s order.
    x, m, y
        Positions of predictor, mediator and outcome.
    """
    a = lag[..., m, x]
    b = lag[..., y, m]
    c_prime = lag[..., y, x]
    cov_ab = np.zeros_like(a)
    where = {p: r for r, p in enumerate(paths)}
    if path_cov is not None and (m, x) in where and (y, m) in where:
        cov_ab = path_cov[..., where[(m, x)], where[(y, m)]]
    indirect = a * b + cov_ab
    total = expected_lag2(lag, path_cov, paths, y, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        proportion = indirect / total
    return {
        "effect_on_mediator": a,
        "mediator_effect": b,
        "cov_random_paths": cov_ab,
        "indirect_effect_within_fixed": a * b,
        "indirect_effect_within": indirect,
        "direct_path_within": c_prime,
        "direct_effect_within": total - indirect,
        "total_effect_within": total,
        "proportion_mediated_within": proportion,
    }


def informant_mediation(
    lag: np.ndarray,
    path_cov: np.ndarray | None,
    paths: Sequence[tuple[int, int]],
    informants: tuple[int, int],
    m: int,
    y: int,
) -> dict[str, np.ndarray]:
    """Within-level mediation of each of two informants' ratings through one mediator, and
    their differences (module docstring).

    Parameters
    ----------
    lag, path_cov, paths
        As :func:`within_mediation`.
    informants
        Positions of the first (e.g. patient-rated) and the second (therapist-rated) rating.
    m, y
        Positions of the mediator and the outcome.

    Returns
    -------
    dict
        :func:`within_mediation`'s rows for the first informant; the same rows suffixed
        ``_second`` for the second (the b path, shared, once); ``*_difference`` rows (first
        minus second) of the a path and of the indirect, direct and total effects. A raw
        difference compares the two ratings per unit of each one's own scale.
    """
    first, second = informants
    out = within_mediation(lag, path_cov, paths, first, m, y)
    other = within_mediation(lag, path_cov, paths, second, m, y)
    out.update({f"{k}_second": v for k, v in other.items() if k != "mediator_effect"})
    for name in (
        "effect_on_mediator",
        "indirect_effect_within",
        "direct_effect_within",
        "total_effect_within",
    ):
        out[f"{name}_difference"] = out[name] - out[f"{name}_second"]
    return out


def within_variance(
    lag: np.ndarray,
    innovation_cov: np.ndarray,
    first_cov: np.ndarray,
    lengths: np.ndarray,
    deviation: np.ndarray | None = None,
    paths: Sequence[tuple[int, int]] = (),
) -> np.ndarray:
    """Model-implied within-person variance of each series' states (..., k), pooled over the
    patients' sessions (module docstring).

    Parameters
    ----------
    lag, innovation_cov, first_cov
        Fixed lag matrices, innovation and first-state covariances (..., k, k).
    lengths
        Each patient's number of sessions (first to last), shape (patients,).
    deviation
        The patients' random-path deviations (..., patients, paths), or None.
    paths
        (to, from) index of each random path, in ``deviation``'s order.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if deviation is not None and len(paths):
        phi = np.broadcast_to(lag[..., None, :, :], (*deviation.shape[:-1], *lag.shape[-2:])).copy()
        for r, (to, source) in enumerate(paths):
            phi[..., to, source] += deviation[..., r]
        weights = np.ones(len(lengths))
    else:
        # One lag matrix for every patient: one recursion per distinct series length.
        lengths, counts = np.unique(lengths, return_counts=True)
        phi = lag[..., None, :, :]
        weights = counts.astype(float)
    v = np.broadcast_to(first_cov[..., None, :, :], (*phi.shape[:-2], *first_cov.shape[-2:]))
    total = np.zeros(v.shape[:-1])
    for t in range(int(lengths.max())):
        active = (lengths > t) * weights
        total = total + active[:, None] * np.diagonal(v, axis1=-2, axis2=-1)
        v = phi @ v @ np.swapaxes(phi, -1, -2) + innovation_cov[..., None, :, :]
    return total.sum(axis=-2) / float(np.sum(lengths * weights))


def informant_effects(
    lag: np.ndarray,
    innovation_cov: np.ndarray,
    patient_cov: np.ndarray,
    therapist_cov: np.ndarray | None,
    state_var: np.ndarray,
    mediator: int | None = None,
) -> dict[str, np.ndarray]:
    """Two informants' trait and state effects on the outcome and their differences.

    Series order (first informant, second informant[, mediator], outcome): the outcome is
    last. Differences are first minus second, raw and standardised (a raw difference depends
    on the two rating scales; the standardised one compares effects per SD of each
    informant's own part). ``state_var`` (..., k) holds the within-person variances of the
    states that standardise the state effects (:func:`within_variance`).

    With a ``mediator`` (its position) the same rows change meaning: the state effects
    ``Phi[y, x_j]`` also hold the mediator's previous state fixed, so they are the direct
    lag-1 paths c'_j of the mediation, not each rating's whole lag-1 effect; the cross-lags
    hold it fixed too; the trait effects are partial on the mediator's trait as well (each
    rating's trait adjusting for the other's and the mediator's), and the mediator's own
    partial trait effect is added (``trait_effect_<level>_mediator``). The correlations of the
    two ratings (states' innovations, traits) keep their meaning.
    """
    out: dict[str, np.ndarray] = {}
    y = lag.shape[-1] - 1
    sd_w = np.sqrt(state_var)
    for j, suffix in ((0, ""), (1, "_second")):
        out[f"state_effect{suffix}"] = lag[..., y, j]
        out[f"state_effect{suffix}_std"] = lag[..., y, j] * sd_w[..., j] / sd_w[..., y]
    for name in ("state_effect", "state_effect_std"):
        base = name.removesuffix("_std")
        std = "_std" if name.endswith("_std") else ""
        out[f"{base}_difference{std}"] = out[name] - out[f"{base}_second{std}"]
    out["state_corr_informants"] = innovation_cov[..., 0, 1] / np.sqrt(
        innovation_cov[..., 0, 0] * innovation_cov[..., 1, 1]
    )
    out["cross_lag_second_from_first"] = lag[..., 1, 0]
    out["cross_lag_first_from_second"] = lag[..., 0, 1]
    levels = [("patient", patient_cov)] + (
        [("therapist", therapist_cov)] if therapist_cov is not None else []
    )
    for level, cov in levels:
        beta = trait_regression(cov)
        sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
        first, second = beta[..., 0], beta[..., 1]
        out[f"trait_effect_{level}"] = first
        out[f"trait_effect_{level}_second"] = second
        out[f"trait_effect_{level}_difference"] = first - second
        out[f"trait_effect_{level}_std"] = first * sd[..., 0] / sd[..., y]
        out[f"trait_effect_{level}_second_std"] = second * sd[..., 1] / sd[..., y]
        out[f"trait_effect_{level}_difference_std"] = (
            out[f"trait_effect_{level}_std"] - out[f"trait_effect_{level}_second_std"]
        )
        out[f"trait_corr_informants_{level}"] = cov[..., 0, 1] / (sd[..., 0] * sd[..., 1])
        if mediator is not None:
            out[f"trait_effect_{level}_mediator"] = beta[..., mediator]
    return out


def end_outcome_effects(
    trait_effects: Mapping[str, tuple[np.ndarray, np.ndarray]],
    change_effect: np.ndarray | None,
    change_sd: np.ndarray | None,
    binary: bool,
) -> dict[str, np.ndarray]:
    """Effects on an end-of-treatment outcome per unit and per SD.

    Parameters
    ----------
    trait_effects
        By name (``end_trait_effect_patient``, ``end_trait_effect_therapist``): the effect per
        unit of that part of the predictor's trait and the SD of that part at its own level.
    change_effect, change_sd
        The effect per unit of the patients' changes (slopes) and their SD, or None.
    binary
        Add the odds ratio of every per-SD effect (logit link).
    """
    out: dict[str, np.ndarray] = {}
    for name, (effect, sd) in trait_effects.items():
        out[name] = effect
        out[f"{name}_per_sd"] = effect * sd
    if change_effect is not None and change_sd is not None:
        out["end_change_effect"] = change_effect
        out["end_change_effect_per_sd"] = change_effect * change_sd
    if binary:
        for key in [k for k in out if k.endswith("_per_sd")]:
            out[key.replace("_per_sd", "_odds_ratio_per_sd")] = np.exp(out[key])
    return out


def average_innovation_cov(innovation_cov: np.ndarray, sd_log: np.ndarray) -> np.ndarray:
    r"""The patients' average innovation covariance (..., k, k) under random innovations
    ``D_i Sigma_e D_i``, ``D_i = diag(exp(s u_i))``, ``u_i ~ N(0, I)``:
    ``E[exp(s_a u_a + s_b u_b)] = exp((s_a^2 + s_b^2) / 2 + [a = b] s_a^2)`` (log-normal
    moments), so a variance grows by ``exp(2 s_a^2)``.

    Parameters
    ----------
    innovation_cov
        The population's ``Sigma_e`` (..., k, k).
    sd_log
        The SDs ``s`` (..., k) of the patients' log innovation SDs.
    """
    s2 = np.asarray(sd_log, dtype=float) ** 2
    eye = np.eye(s2.shape[-1])
    log_scale = 0.5 * (s2[..., :, None] + s2[..., None, :]) + eye * s2[..., :, None]
    return innovation_cov * np.exp(log_scale)


def single_series_effects(
    lag: np.ndarray,
    innovation_cov: np.ndarray,
    patient_cov: np.ndarray,
    therapist_cov: np.ndarray | None,
    state_var: np.ndarray,
    error_var: np.ndarray | None,
) -> dict[str, np.ndarray]:
    r"""Effects of one series alone (k = 1: the predictor without an outcome) per draw.

    The series' variance splits into the trait parts (therapists' means ``tau_T^2``, patients'
    traits within therapists ``tau_P^2``), the within-person state variance ``V_w`` pooled
    over the patients' sessions (:func:`within_variance`) and the measurement-error variance
    ``omega^2``; the ICCs are each level's share of the observed score's variance, as the
    joint model's (``icc_predictor_<level>``, the session share holding the error), and the
    within-person reliability is ``V_w / (V_w + omega^2)`` (Schuurman & Hamaker 2019).

    Parameters
    ----------
    lag, innovation_cov, patient_cov
        (..., 1, 1) arrays: the autoregression, the innovation variance and the patients'
        trait variance (the trait block only, without a trend's change).
    therapist_cov
        The therapists' (..., 1, 1), or None with two levels.
    state_var
        ``V_w`` (..., 1).
    error_var
        ``omega^2`` (...), or None without measurement error.
    """
    out = {
        "predictor_autoregression": lag[..., 0, 0],
        "innovation_sd_predictor": np.sqrt(innovation_cov[..., 0, 0]),
        "sd_patient_predictor": np.sqrt(patient_cov[..., 0, 0]),
    }
    between = {"patient": patient_cov[..., 0, 0]}
    if therapist_cov is not None:
        out["sd_therapist_predictor"] = np.sqrt(therapist_cov[..., 0, 0])
        between["therapist"] = therapist_cov[..., 0, 0]
    within = state_var[..., 0]
    if error_var is not None:
        out["measurement_error_sd_predictor"] = np.sqrt(error_var)
        out["reliability_predictor"] = within / (within + error_var)
        within = within + error_var
    total = within + sum(between.values())
    for level, var in (*between.items(), ("session", within)):
        out[f"icc_predictor_{level}"] = var / total
    return out


__all__ = [
    "average_innovation_cov",
    "cov_matrix",
    "covariance_of",
    "end_outcome_effects",
    "expected_lag2",
    "informant_effects",
    "informant_mediation",
    "single_series_effects",
    "trait_regression",
    "within_mediation",
    "within_variance",
]
