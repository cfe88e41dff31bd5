r"""Every derived effect of a fitted mechanism model, per posterior draw.

:func:`effect_draws` turns a posterior (an ``xarray.Dataset`` of draws) into the rows of
:meth:`~bayes_alliance.mechanisms.fit.MechanismResult.effects` by the design: autoregressions and
cross-lagged paths read off the average lag matrix ``Phi``; within-level mediation
``E[a_i b_i] = a b + cov(a_i, b_i)`` and the informant contrasts
(:mod:`bayes_alliance.mechanisms.effects`); the trait regressions at each level
``beta = Sigma[y, x] / Sigma[x, x]``; each random lag's SD between patients and therapists;
end-of-treatment effects; stationarity; the baseline block. Pure functions on draws: nothing
here samples or reads a file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from bayes_alliance.core import vocab
from bayes_alliance.data.series_data import (
    MEDIATOR,
    OUTCOME,
    PREDICTOR,
    SECOND_PREDICTOR,
    SeriesData,
)
from bayes_alliance.mechanisms import effects as me
from bayes_alliance.mechanisms.baseline import baseline_effect_draws
from bayes_alliance.mechanisms.parts import PATH_THERAPIST
from bayes_alliance.mechanisms.spec import (
    MEDIATION_INFORMANTS,
    MechanismSpec,
    path_name,
    path_positions,
    random_lag_row,
)


def _cov(post: xr.Dataset, name: str) -> np.ndarray | None:
    return me.covariance_of(post, name)


def path_covariance(post: xr.Dataset) -> np.ndarray | None:
    """The covariance (chain, draw, paths, paths) of the patients' whole random-path
    deviations ``c_j + d_i``: the patients' plus, for the paths that vary between therapists
    too, the therapists' (independent levels)."""
    cov = _cov(post, "paths")
    between = _cov(post, "paths_therapist")
    if cov is None or between is None:
        return cov
    names = [str(n) for n in post["sd_paths"].coords[vocab.PATH].values]
    sub = [str(n) for n in post["sd_paths_therapist"].coords[PATH_THERAPIST].values]
    embed = np.zeros((len(sub), len(names)))
    embed[np.arange(len(sub)), [names.index(n) for n in sub]] = 1.0
    return cov + np.einsum("ra,...rs,sb->...ab", embed, between, embed)


def _deviations(post: xr.Dataset, data: SeriesData) -> tuple[np.ndarray | None, list[Any]]:
    """The patients' random-path deviations (chain, draw, patients, paths) and each path's
    (to, from) positions; None and [] without random paths."""
    if "path_deviation" not in post:
        return None, []
    names = [str(n) for n in post["path_deviation"].coords[vocab.PATH].values]
    return post["path_deviation"].values, path_positions(data.roles, names)


def stationarity(post: xr.Dataset, data: SeriesData) -> dict[str, np.ndarray]:
    r"""Whether the dynamics are stationary, per draw: ``stationary`` (1 where every eigenvalue
    of the average lag matrix lies inside the unit circle; its mean is the posterior
    probability) and, with random paths, ``stationary_patients`` (the share of patients whose
    own ``Phi_i`` is stationary). The mechanism models leave each patient's first session free
    (its own covariance), so nothing imposes stationarity and an explosive draw is a finite
    density, not an error: these rows say how much of the posterior lies there."""
    lag = post["lag"].values
    out = {"stationary": (_spectral_radius(lag) < 1.0).astype(float)}
    deviation, paths = _deviations(post, data)
    if deviation is not None:
        own = np.repeat(lag[..., None, :, :], deviation.shape[-2], axis=-3)
        for r, (to, source) in enumerate(paths):
            own[..., to, source] += deviation[..., r]
        out["stationary_patients"] = (_spectral_radius(own) < 1.0).mean(axis=-1)
    return out


def _spectral_radius(phi: np.ndarray) -> np.ndarray:
    return np.abs(np.linalg.eigvals(phi)).max(axis=-1)


def _state_var(post: xr.Dataset, data: SeriesData, own_innovations: bool = False) -> np.ndarray:
    """Within-person variances of the states (chain, draw, k) over the patients' own series
    and lag matrices (:func:`bayes_alliance.mechanisms.effects.within_variance`); with
    ``own_innovations`` and random innovations, over the patients' own innovation variances
    too (:func:`~bayes_alliance.mechanisms.effects.average_innovation_cov`)."""
    innov, first = _cov(post, "innovation"), _cov(post, "first")
    assert innov is not None and first is not None
    if own_innovations and "sd_log_innovation" in post:
        innov = me.average_innovation_cov(innov, post["sd_log_innovation"].values)
    deviation, paths = _deviations(post, data)
    lengths = data.last - data.first + 1
    return me.within_variance(post["lag"].values, innov, first, lengths, deviation, paths)


def _end_effects(
    post: xr.Dataset, patient: np.ndarray, therapist: np.ndarray | None, binary: bool
) -> dict[str, np.ndarray]:
    """The end-of-treatment effects, each part of the trait per SD of its own level. A file
    fitted before the levels were split holds one ``end_trait_effect`` of the whole trait,
    reported per SD of the whole trait, as then."""
    trait: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if "end_trait_effect_patient" in post:
        trait["end_trait_effect_patient"] = (
            post["end_trait_effect_patient"].values,
            np.sqrt(patient[..., 0, 0]),
        )
        if "end_trait_effect_therapist" in post and therapist is not None:
            trait["end_trait_effect_therapist"] = (
                post["end_trait_effect_therapist"].values,
                np.sqrt(therapist[..., 0, 0]),
            )
    elif "end_trait_effect" in post:
        var_x = patient[..., 0, 0] + (therapist[..., 0, 0] if therapist is not None else 0.0)
        trait["end_trait_effect"] = (post["end_trait_effect"].values, np.sqrt(var_x))
    else:
        return {}
    return me.end_outcome_effects(
        trait,
        post["end_change_effect"].values if "end_change_effect" in post else None,
        post["sd_trend"].values if "sd_trend" in post else None,
        binary,
    )


def effect_draws(post: xr.Dataset, data: SeriesData, spec: MechanismSpec) -> dict[str, np.ndarray]:
    """Every derived effect of a mechanism model per draw (chain, draw), by the design."""
    spec = spec.resolved(data)
    lag = post["lag"].values
    k = data.k
    x = data.index(PREDICTOR)
    innov = _cov(post, "innovation")
    full = _cov(post, "patient")
    therapist = _cov(post, "therapist")
    assert innov is not None and full is not None
    patient = full[..., :k, :k]  # the traits (a trend adds the patients' change after them)
    design = spec.design(data)
    if design == "single":
        error = post["measurement_error_sd"].values[..., 0] ** 2 if spec.measurement_error else None
        state = _state_var(post, data, own_innovations=True)
        out = me.single_series_effects(lag, innov, patient, therapist, state, error)
    else:
        y = data.index(OUTCOME)
        out = {
            "predictor_autoregression": lag[..., x, x],
            "outcome_autoregression": lag[..., y, y],
            "reverse_state_effect": lag[..., x, y],
        }
    if design == "mediation":
        m = data.index(MEDIATOR)
        paths = path_positions(data.roles, spec.random_paths or ())
        out["mediator_autoregression"] = lag[..., m, m]
        out["state_effect"] = lag[..., y, x]
        out.update(me.within_mediation(lag, path_covariance(post), paths, x, m, y))
        for level, cov in (("patient", patient), ("therapist", therapist)):
            if cov is not None:
                beta = me.trait_regression(cov)
                out[f"trait_effect_{level}"] = beta[..., x]
                out[f"trait_effect_{level}_mediator"] = beta[..., m]
    elif design == MEDIATION_INFORMANTS:
        x2, m = data.index(SECOND_PREDICTOR), data.index(MEDIATOR)
        paths = path_positions(data.roles, spec.random_paths or ())
        out["second_autoregression"] = lag[..., x2, x2]
        out["mediator_autoregression"] = lag[..., m, m]
        out.update(me.informant_mediation(lag, path_covariance(post), paths, (x, x2), m, y))
        state_var = _state_var(post, data)
        out.update(me.informant_effects(lag, innov, patient, therapist, state_var, mediator=m))
    elif design == "informants":
        out["second_autoregression"] = lag[..., 1, 1]
        out.update(me.informant_effects(lag, innov, patient, therapist, _state_var(post, data)))
    elif design == "two_series":
        out["state_effect"] = lag[..., y, x]
        for level, cov in (("patient", patient), ("therapist", therapist)):
            if cov is not None:
                out[f"trait_effect_{level}"] = me.trait_regression(cov)[..., 0]
    if "sd_paths" in post:  # every design: each random lag's SD between patients
        for name, sd in zip(
            [str(n) for n in post["sd_paths"].coords[vocab.PATH].values],
            np.moveaxis(post["sd_paths"].values, -1, 0),
            strict=True,
        ):
            out[random_lag_row(name)] = sd
    if "sd_paths_therapist" in post:  # and between therapists
        for name, sd in zip(
            [str(n) for n in post["sd_paths_therapist"].coords[PATH_THERAPIST].values],
            np.moveaxis(post["sd_paths_therapist"].values, -1, 0),
            strict=True,
        ):
            out[random_lag_row(name, "therapist")] = sd
    if full.shape[-1] > k:
        sd_full = np.sqrt(np.diagonal(full, axis1=-2, axis2=-1))
        out["corr_trait_change"] = full[..., x, k] / (sd_full[..., x] * sd_full[..., k])
        if "change_reliability" in post:
            out["change_reliability"] = post["change_reliability"].values
    out.update(_end_effects(post, patient, therapist, spec.end_family == "binary"))
    out.update(stationarity(post, data))
    therapist_traits = None if therapist is None else therapist[..., :k, :k]
    binary = spec.end_family == "binary"  # a baseline's paths onto the end are then log-odds
    out.update(
        baseline_effect_draws(
            post, data, spec.baseline, patient, therapist_traits, spec.baseline_level, binary
        )
    )
    # (chain, draw) each; with several baseline columns, a baseline dimension after them
    assert all(v.shape[:2] == lag.shape[:-2] for v in out.values()), k
    lag_rows = {random_lag_row(path_name(a, b)) for a, b in spec.random_paths or ()}
    lag_rows |= {random_lag_row(path_name(a, b), "therapist") for a, b in spec.therapist_paths}
    unknown = [n for n in out if n not in vocab.MECHANISM_EFFECTS and n not in lag_rows]
    assert not unknown, f"effects missing from the vocabulary: {unknown}"
    return out
