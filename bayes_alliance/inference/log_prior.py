"""The log prior density of each posterior draw, from the model that was sampled.

Power-scaling sensitivity (:mod:`bayes_alliance.analysis.sensitivity`) needs ``log p(theta)``
per draw. It is evaluated by the fitted model itself (rebuilt from the result's data and
spec, so the priors are exactly those the sampler saw, scaled to the data, overrides
included) with :func:`pymc.stats.compute_log_prior`, for the named top-level parameters only:
the hierarchical parts (standard-normal raw deviations, a censored cell's latent score) are
left out (Kallioinen et al. 2024 power-scale the top-level priors of hierarchical models
selectively, the same idea), and so
are potentials (the stationarity truncation is 0 inside the support every draw lies in; the
free first session's regulariser shapes a nuisance covariance, not a reported effect).
"""

from __future__ import annotations

import warnings

import xarray as xr

from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference.sampling import compile_settings
from bayes_alliance.spec.model_spec import ModelSpec


def log_prior(posterior: xr.Dataset, data: SessionData, spec: ModelSpec) -> xr.Dataset:
    """``log p`` of each named parameter's prior at each draw, ``(chain, draw, ...)`` per
    parameter (the names of ``spec.prior_names()`` that the model has as random variables).

    ``posterior`` must hold every free random variable of the model (a fit's posterior does).
    """
    # Here, not at the top: the report imports this module, a fit from the cache need not PyMC.
    import pymc as pm

    from bayes_alliance.model.build import build_model

    model = build_model(data, spec)
    wanted = set(spec.prior_names())
    names = [rv.name for rv in model.free_RVs if rv.name in wanted]
    missing = [rv.name for rv in model.free_RVs if rv.name not in posterior]
    if missing:
        raise ValueError(f"the posterior lacks the model's variables {missing}")
    tree = xr.DataTree(children={"posterior": xr.DataTree(posterior)})
    with compile_settings(), warnings.catch_warnings():
        # PyMC notes that the potentials are not part of the result: documented above.
        warnings.simplefilter("ignore", UserWarning)
        out = pm.stats.compute_log_prior(
            tree, var_names=names, model=model, extend_inferencedata=False, progressbar=False
        )
    return out.to_dataset() if isinstance(out, xr.DataTree) else out


__all__ = ["log_prior"]
