"""Saving and loading fitted results: one compressed NetCDF file per result.

Stored is what cannot be recomputed (sampled draws in float64, sampler statistics, the data and
the provenance); what is a function of those draws and the seed (latent means, therapist
deviations, states, pointwise log-likelihood, posterior predictive replicates) is recomputed on
load, exactly. ``store`` adds float32 copies of chosen derived groups for other readers.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.core.files import (
    PROVENANCE_ATTR,
    OutputExistsError,
    ResultsFileError,
    atomic_path,
    check_results_file,
)
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.data.validate import Roles
from bayes_alliance.inference import posthoc, predictive
from bayes_alliance.spec.model_spec import ModelSpec

STORE_EXTRAS = ("traits", "states", "log_likelihood")
_STATE_NAMES = ("state_predictor", "state_outcome")
_TRAIT_NAMES = (
    "trait_predictor",
    "trait_outcome",
    "patient_dev_predictor",
    "patient_dev_outcome",
    "therapist_dev_predictor",
    "therapist_dev_outcome",
    "therapist_dev_predictor_raw",
    "therapist_dev_outcome_raw",
    "state_effect_by_patient",
)


def _derived_kind(name: str) -> str | None:
    """Which store option a post-hoc variable of an integrated-traits fit belongs to (None: a
    sampled parameter, always stored)."""
    if name in _STATE_NAMES:
        return "states"
    if name in _TRAIT_NAMES:
        return "traits"
    return None


def _data_dataset(data: SessionData) -> xr.Dataset:
    r = data.roles
    ds = xr.Dataset()
    for c in r.columns():
        values = data.frame[c]
        if c in (r.patient, r.therapist):
            ds[c] = ("row", values.astype(str).to_numpy(dtype=str))
        else:
            ds[c] = ("row", values.to_numpy(dtype=float))
    return ds


def _data_from_dataset(ds: xr.Dataset, roles: dict[str, Any]) -> SessionData:
    df = pd.DataFrame({k: ds[k].values for k in ds.data_vars})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_roles(
            df, Roles(**{**roles, "covariates": tuple(roles["covariates"])})
        )


def write_result(
    path: str | Path,
    idata: xr.DataTree,
    spec: ModelSpec,
    data: SessionData,
    provenance: dict[str, Any],
    *,
    force: bool = False,
    store: tuple[str, ...] = (),
) -> Path:
    """Write a fitted result (see :meth:`bayes_alliance.inference.fit.FitResult.save`)."""
    bad = sorted(set(store) - set(STORE_EXTRAS))
    if bad:
        raise ValueError(f"unknown store option(s) {bad}; choose from {list(STORE_EXTRAS)}")
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass force=True to replace it")
    derived = spec.traits == "integrated"
    post = idata.posterior.to_dataset()
    keep = {}
    for name, da in post.data_vars.items():
        kind = _derived_kind(str(name)) if derived else None
        if kind is None:
            keep[name] = da
        elif kind in store:
            keep[name] = da.astype(np.float32)
    children = {
        "posterior": xr.DataTree(xr.Dataset(keep, attrs=post.attrs)),
        "session_data": xr.DataTree(_data_dataset(data)),
    }
    if "sample_stats" in idata.children:
        children["sample_stats"] = xr.DataTree(idata.sample_stats.to_dataset())
    if "log_likelihood" in idata.children and ("log_likelihood" in store or not derived):
        ll = idata.log_likelihood.to_dataset()
        children["log_likelihood"] = xr.DataTree(ll.astype(np.float32))
    tree = xr.DataTree(children=children)
    prov = {**provenance, "stored": sorted(store)}
    tree.attrs[PROVENANCE_ATTR] = json.dumps(prov, default=str)
    return write_tree(path, tree, force=force)


def write_tree(path: str | Path, tree: xr.DataTree, *, force: bool = False) -> Path:
    """Write a DataTree as compressed NetCDF (zlib level 4 with shuffle on every numeric
    array), atomically; an existing file is replaced only with ``force``."""
    path = Path(path)
    encoding = {
        f"/{g}": {
            k: {"zlib": True, "complevel": 4, "shuffle": True}
            for k, da in tree[g].to_dataset().data_vars.items()
            if da.dtype.kind in "fiub" and da.ndim
        }
        for g in tree.children
    }
    with atomic_path(path, force=force) as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    return path


def read_result(path: str | Path) -> tuple[xr.DataTree, ModelSpec, SessionData, dict[str, Any]]:
    """Read a file written by :func:`write_result`: the completed DataTree, spec, data and
    provenance."""
    path = check_results_file(path)  # a clear message for missing, truncated or foreign files
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    prov = json.loads(tree.attrs[PROVENANCE_ATTR])
    if prov.get("spec", {}).get("kind") == "mechanism":
        raise ResultsFileError(
            f"{path} holds a mechanism model (mediator, second informant or end-of-treatment "
            "outcome); load it with bayes_alliance.load_mechanisms"
        )
    data = _data_from_dataset(tree["session_data"].to_dataset(), prov["roles"])
    del tree["session_data"]
    tree.attrs.pop(PROVENANCE_ATTR, None)
    spec = ModelSpec.from_dict(prov["spec"])
    if spec.traits == "integrated":
        post = tree.posterior.to_dataset()
        derived = [n for n in post.data_vars if _derived_kind(str(n)) is not None]
        tree["posterior"] = xr.DataTree(post.drop_vars(derived))
        if "log_likelihood" in tree.children:
            # Stored float32 copies are for other readers; recompute on demand, exactly.
            del tree["log_likelihood"]
        tree = posthoc.complete_posterior(
            tree,
            data,
            spec,
            prov["random_seed"],
            False,
            prov.get("impute_missing", False),
            prov.get("states", True),
        )
    if "trait_predictor" in tree.posterior:
        tree = predictive.add_groups(
            tree, data, spec, prov["random_seed"], prov.get("states", True)
        )
    return tree, spec, data, prov
