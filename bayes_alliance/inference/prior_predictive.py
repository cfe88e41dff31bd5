r"""Prior predictive draws: parameters from the priors actually used (scaled to the data), latent
means from their population distributions, and whole series as in
:mod:`bayes_alliance.inference.predictive`.

The stationarity of the dynamics is part of the prior (:func:`bayes_alliance.model.within.within_part`):
the fixed part of the dynamics is the normal prior restricted to the stationary region, drawn here
by rejection (exact: a restricted normal is the normal conditioned on the region); a therapist's
slope deviation is a normal truncated to the interval that keeps the therapist's patients
stationary, and a patient's deviation a normal truncated given the therapist's, both drawn from
their truncated normals as the model's normalised prior defines them. The latent means follow

.. math::

    a_j \sim N(0, \mathrm{diag}(\tau_{x,T}^2, \tau_{y,T}^2)), \quad
    M_{x,i} = a_{x,j} + e_{x,i}, \quad
    M_{y,i} = a_{y,j} + \beta_T a_{x,j} + \beta_P e_{x,i} + e_{y,i},

with patient parts ``e ~ N(0, diag(tau_x^2, tau_y^2))`` (trait effects ``beta``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr
from scipy import stats

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference.predictive import posterior_predictive
from bayes_alliance.kernels import dynamics
from bayes_alliance.model.covariates import moderator_values
from bayes_alliance.model.structure import fixed_slope, lag0, lookup, therapist_part
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab
_MAX_ROUNDS = 50


def _prior_parameters(model: pm.Model, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` joint draws of the model's free variables from their priors (potentials ignored;
    the censored cells' latent scores, data augmentation with a flat prior, left out: the
    replicates are whole new series)."""
    rvs = [rv for rv in model.free_RVs if not rv.name.startswith("censored_")]
    # The derived trait parameters, drawn jointly with the covariance they come from.
    rvs += [d for d in model.deterministics if d.name in v.DERIVED_PARAMETERS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # potentials are left out by PyMC: handled here
        values = pm.draw(rvs, draws=n, random_seed=rng)
    return {rv.name: np.asarray(val) for rv, val in zip(rvs, values, strict=True)}


def _fixed_slope(p: dict[str, np.ndarray], spec: ModelSpec, z: np.ndarray | None) -> np.ndarray:
    """Each draw's fixed state effect per patient (draws x patients, or draws x 1)."""
    fixed = np.asarray(fixed_slope(lookup(p, spec, draws_first=True), z))
    return np.moveaxis(fixed, -1, 0).reshape(len(p[v.STATE_EFFECT]), -1)


def _stationary_draws(
    model: pm.Model, spec: ModelSpec, z: np.ndarray | None, n: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draws whose fixed dynamics are stationary (all of them when the spec needs none)."""
    need = spec.first_session == "stationary" and spec.dynamics == "var1"
    kept: list[dict[str, np.ndarray]] = []
    got = 0
    for _ in range(_MAX_ROUNDS):
        # Oversampled so that one round (one compiled forward function call) usually suffices.
        p = _prior_parameters(model, max(4 * (n - got), 200), rng)
        if need:
            lo, hi, ok = _interval(p, spec)
            slope = _fixed_slope(p, spec, z)
            ok = ok & np.all((slope > lo[:, None]) & (slope < hi[:, None]), axis=1)
            p = {k: val[ok] for k, val in p.items()}
        kept.append(p)
        got += len(next(iter(p.values())))
        if got >= n:
            break
    else:
        raise RuntimeError(
            f"fewer than {n} stationary draws from the prior after {_MAX_ROUNDS} rounds; the "
            "priors of the autoregressions put little mass on stationary dynamics"
        )
    return {k: np.concatenate([d[k] for d in kept])[:n] for k in kept[0]}


def _interval(p: dict[str, np.ndarray], spec: ModelSpec) -> tuple[Any, Any, Any]:
    """Each draw's stationary interval of the state effect (paths a model leaves out are 0)."""
    get = lookup(p, spec, draws_first=True)
    lags = (get(v.PREDICTOR_AUTOREGRESSION), get(v.REVERSE_STATE_EFFECT))
    d = get(v.OUTCOME_AUTOREGRESSION)
    return dynamics.slope_interval(*lags, d, lag0(get, spec), spec.same_session, xp=np)


def _truncated(lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Standard normal draws truncated to [lo, hi] elementwise."""
    return np.asarray(stats.truncnorm.rvs(lo, hi, random_state=rng))


def _slope_deviations(
    p: dict[str, np.ndarray], spec: ModelSpec, data: SessionData, z: np.ndarray | None, rng: Any
) -> None:
    """Replace the raw slope deviations by draws from their truncated priors (in place)."""
    if spec.first_session != "stationary" or spec.dynamics != "var1":
        return
    lo, hi, _ = _interval(p, spec)
    lo, hi = lo[:, None], hi[:, None]
    fixed = _fixed_slope(p, spec, z)  # draws x patients (or x 1)
    dev_t = 0.0
    tj = data.patient_therapist
    if v.THERAPIST in spec.random_slopes:
        assert tj is not None
        n_t = len(data.therapists) if data.therapists is not None else 0
        if z is not None:  # the deviation keeps every patient of the therapist stationary
            low_m = np.stack([fixed[:, tj == j].min(axis=1) for j in range(n_t)], axis=1)
            high_m = np.stack([fixed[:, tj == j].max(axis=1) for j in range(n_t)], axis=1)
        else:
            low_m = high_m = np.broadcast_to(fixed, (fixed.shape[0], n_t))
        sd_t = p[v.SD_STATE_EFFECT_THERAPIST][:, None]
        raw = _truncated((lo - low_m) / sd_t, (hi - high_m) / sd_t, rng)
        p["state_effect_therapist_raw"] = raw
        dev_t = (sd_t * raw)[:, tj]
    if v.PATIENT in spec.random_slopes:
        sd_p = p[v.SD_STATE_EFFECT_PATIENT][:, None]
        centre = np.broadcast_to(fixed + dev_t, (len(sd_p), data.n_patients))
        p["state_effect_patient_raw"] = _truncated((lo - centre) / sd_p, (hi - centre) / sd_p, rng)


def _latent_means(
    p: dict[str, np.ndarray], spec: ModelSpec, data: SessionData, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Latent-mean deviations (draws x patients) from their population distributions."""
    n, n_p = len(p[v.SD_PATIENT_PREDICTOR]), data.n_patients
    e_x = p[v.SD_PATIENT_PREDICTOR][:, None] * rng.standard_normal((n, n_p))
    e_y = p[v.SD_PATIENT_OUTCOME][:, None] * rng.standard_normal((n, n_p))
    mx = e_x
    my = p[v.TRAIT_EFFECT_PATIENT][:, None] * e_x + e_y
    if spec.therapist_level and data.patient_therapist is not None:
        n_t = len(data.therapists) if data.therapists is not None else 0
        raw = {  # the therapist parts' raw values, draws last
            f"therapist_dev_{w}_raw": rng.standard_normal((n, n_t)).T for w in v.VARIABLES
        }
        get = lookup(p, spec, draws_first=True, given=raw)
        top_x, top_y = therapist_part(get, data.patient_therapist)
        mx = mx + top_x.T
        my = my + top_y.T
    return mx, my


def prior_predictive(
    model: pm.Model, data: SessionData, spec: ModelSpec, draws: int, random_seed: int
) -> tuple[xr.Dataset, xr.Dataset]:
    """Prior draws of the parameters and prior predictive replicates of the observed cells.

    ``model`` must be the integrated-traits model (its free variables are the parameters; the
    prior is the same whichever way the traits are estimated).

    Returns
    -------
    prior, prior_predictive
        Datasets with dims (chain=1, draw, ...): the parameters (with the latent-mean
        deviations ``patient_dev_*``) and ``predictor`` / ``outcome`` at the observed cells.
    """
    rng = np.random.default_rng([random_seed, 20261128])
    z = moderator_values(data, spec)
    p = _stationary_draws(model, spec, z, draws, rng)
    _slope_deviations(p, spec, data, z, rng)
    mx, my = _latent_means(p, spec, data, rng)
    dims: dict[str, tuple[str, ...]] = {}
    for rv in model.free_RVs:
        dims[rv.name] = tuple(model.named_vars_to_dims.get(rv.name, ()))
    prior = xr.Dataset(
        {
            k: xr.DataArray(val[None], dims=("chain", "draw", *dims.get(k, ())))
            for k, val in p.items()
        }
    )
    for which, m in ((v.PREDICTOR, mx), (v.OUTCOME, my)):
        prior[f"patient_dev_{which}"] = xr.DataArray(m[None], dims=("chain", "draw", v.PATIENT))
    prior = prior.assign_coords(
        {k: np.asarray(c) for k, c in model.coords.items() if k in prior.dims}
    )
    return prior, posterior_predictive(prior, data, spec, random_seed, stream=20261128)
