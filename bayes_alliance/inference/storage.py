"""Saving and loading fitted results of both model families: one compressed NetCDF file each.

One file layout for every result: the groups ``posterior`` (the draws kept), ``sample_stats``,
optionally ``log_likelihood`` and ``latent_states`` (the per-session states, when kept; files
written before that group existed hold them in ``posterior`` and load the same; the
per-patient and per-therapist draws a file stores stay in ``posterior`` and load into the
``unit_draws`` group), and
``session_data`` (the long table the model saw, one row per
cell), with the provenance as JSON in the file's ``bayes_alliance_provenance`` attribute; the
provenance's ``spec.kind`` says which family wrote it (``"mechanism"``; the joint model's spec
has no kind). :func:`write_result` writes it for either family, :func:`read_stored` reads it
back, and the family rebuilds its data and completes the draws
(:meth:`~bayes_alliance.inference.fit.FitResult.load`,
:func:`~bayes_alliance.mechanisms.fit.load_mechanisms`, or either through
:func:`~bayes_alliance.mechanisms.load.load_result`). Files written before this layout had one
writer per family have the same groups and attribute, and read the same way.

For the joint model stored is what cannot be recomputed (sampled draws in float64, sampler
statistics, the data and the provenance); what is a function of those draws and the seed
(latent means, therapist deviations, states, pointwise log-likelihood, posterior predictive
replicates) is recomputed on load, exactly. ``store`` adds float32 copies of chosen derived
groups for other readers.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
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
from bayes_alliance.core.vocab import LATENT_STATES, STATE_VARIABLES
from bayes_alliance.data.roles import Roles
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference import posthoc, predictive
from bayes_alliance.inference.results import MAIN, MECHANISM, RESULT_KINDS, kind_of
from bayes_alliance.inference.state_group import move_states, with_states
from bayes_alliance.inference.unit_group import merge_unit_draws, move_unit_draws, posterior_of
from bayes_alliance.model.variability import BY_PATIENT
from bayes_alliance.spec.model_spec import ModelSpec

DATA_GROUP = "session_data"
STORE_EXTRAS = ("traits", "states", "log_likelihood")
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
    *BY_PATIENT.values(),
)
# How to load each kind, for the message when a file is opened with the other family's loader.
LOADERS = {
    MAIN: "bayes_alliance.FitResult.load",
    MECHANISM: "bayes_alliance.load_mechanisms",
}
_WHAT = {
    MAIN: "the main model",
    MECHANISM: "a mechanism model (mediator, second informant or end-of-treatment outcome)",
}


# ------------------------------------------------------------------------------ both families


def write_result(
    path: str | Path,
    posterior: xr.Dataset,
    data_table: xr.Dataset,
    provenance: dict[str, Any],
    *,
    sample_stats: xr.Dataset | None = None,
    log_likelihood: xr.Dataset | None = None,
    states: xr.Dataset | None = None,
    force: bool = False,
) -> Path:
    """Write a result of either family: the draws to keep, the data table, the sampler
    statistics, an optional pointwise log-likelihood, optional state draws (group
    ``latent_states``) and the provenance (as JSON), atomically; an existing file is replaced
    only with ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass force=True to replace it")
    children = {"posterior": xr.DataTree(posterior), DATA_GROUP: xr.DataTree(data_table)}
    if sample_stats is not None:
        children["sample_stats"] = xr.DataTree(sample_stats)
    if log_likelihood is not None:
        children["log_likelihood"] = xr.DataTree(log_likelihood)
    if states is not None and states.data_vars:
        children[LATENT_STATES] = xr.DataTree(states)
    tree = xr.DataTree(children=children)
    tree.attrs[PROVENANCE_ATTR] = json.dumps(provenance, default=str)
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


@dataclass
class StoredResult:
    """A results file as read: the kind, the DataTree of the draws (without the data group and
    the provenance attribute), the data table and the provenance."""

    kind: str
    tree: xr.DataTree
    data_table: xr.Dataset
    provenance: dict[str, Any]


def stored_kind(path: str | Path) -> str:
    """Which family wrote a results file (``"main"`` or ``"mechanism"``), from its provenance
    alone (the draws are not read)."""
    import h5py

    with h5py.File(check_results_file(path), "r") as fh:
        raw = fh.attrs[PROVENANCE_ATTR]
    return kind_of(json.loads(raw.decode() if isinstance(raw, bytes) else str(raw)))


def read_stored(path: str | Path, kind: str | None = None) -> StoredResult:
    """Read a results file (checked first: a missing, truncated or foreign file is one clear
    error). With ``kind`` a file of the other family is refused, naming its loader."""
    path = check_results_file(path)
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    prov = json.loads(tree.attrs[PROVENANCE_ATTR])
    found = kind_of(prov)
    if found not in RESULT_KINDS:
        raise ResultsFileError(f"{path} holds a result of unknown kind {found!r}")
    if kind is not None and found != kind:
        raise ResultsFileError(
            f"{path} holds {_WHAT[found]}; load it with {LOADERS[found]} (or "
            "bayes_alliance.load_result, which reads either kind)"
        )
    table = tree[DATA_GROUP].to_dataset()
    del tree[DATA_GROUP]
    tree.attrs.pop(PROVENANCE_ATTR, None)
    return StoredResult(found, tree, table, prov)


# ------------------------------------------------------------------------------ joint model


def derived_kind(name: str) -> str | None:
    """Which store option a post-hoc variable of an integrated-traits fit belongs to (None: a
    sampled parameter, always stored)."""
    if name in STATE_VARIABLES:
        return "states"
    if name in _TRAIT_NAMES:
        return "traits"
    return None


def session_table(data: SessionData) -> xr.Dataset:
    """The joint model's data as the file's ``session_data`` group: the roles' columns."""
    r = data.roles
    ds = xr.Dataset()
    for c in r.columns():
        values = data.frame[c]
        if c in (r.patient, r.therapist):
            ds[c] = ("row", values.astype(str).to_numpy(dtype=str))
        else:
            ds[c] = ("row", values.to_numpy(dtype=float))
    return ds


def session_data_from_table(ds: xr.Dataset, roles: dict[str, Any]) -> SessionData:
    """The joint model's data rebuilt (and re-validated) from the ``session_data`` group."""
    df = pd.DataFrame({k: ds[k].values for k in ds.data_vars})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_roles(
            df,
            Roles(
                **{
                    **roles,
                    "covariates": tuple(roles["covariates"]),
                    "indicators": tuple(roles.get("indicators", ())),
                }
            ),
        )


def write_fit(
    path: str | Path,
    idata: xr.DataTree,
    spec: ModelSpec,
    data: SessionData,
    provenance: dict[str, Any],
    *,
    force: bool = False,
    store: tuple[str, ...] = (),
) -> Path:
    """Write a joint-model result (see :meth:`bayes_alliance.inference.fit.FitResult.save`):
    with integrated traits the post-hoc draws are left out unless ``store`` asks for float32
    copies of them."""
    bad = sorted(set(store) - set(STORE_EXTRAS))
    if bad:
        raise ValueError(f"unknown store option(s) {bad}; choose from {list(STORE_EXTRAS)}")
    derived = spec.traits == "integrated"
    post = with_states(idata)
    keep: dict[Any, xr.DataArray] = {}
    states: dict[Any, xr.DataArray] = {}
    for name, da in post.data_vars.items():
        kind = derived_kind(str(name)) if derived else None
        if kind is not None and kind not in store:
            continue
        if kind is not None:
            da = da.astype(np.float32)
        # The states go to their own group of the file, as in the fit's DataTree.
        (states if name in STATE_VARIABLES else keep)[name] = da
    ll = None
    if "log_likelihood" in idata.children and ("log_likelihood" in store or not derived):
        ll = idata.log_likelihood.to_dataset().astype(np.float32)
    stats = idata.sample_stats.to_dataset() if "sample_stats" in idata.children else None
    return write_result(
        path,
        xr.Dataset(keep, attrs=post.attrs),
        session_table(data),
        {**provenance, "stored": sorted(store)},
        sample_stats=stats,
        log_likelihood=ll,
        states=xr.Dataset(states),
        force=force,
    )


def complete_loaded(
    tree: xr.DataTree, data: SessionData, spec: ModelSpec, prov: dict[str, Any]
) -> xr.DataTree:
    """A loaded joint-model DataTree completed as the fit left it: with integrated traits the
    stored float32 copies dropped and the latent means, therapist deviations and states
    recomputed exactly from the draws and the seed; the posterior predictive replicates. The
    states end in the ``latent_states`` group and the per-patient and per-therapist draws in
    ``unit_draws``, also those of a file that kept them in ``posterior`` (the file's layout for
    the unit draws, and for the states before their group existed)."""
    tree = move_states(merge_unit_draws(tree))
    if spec.traits == "integrated":
        if LATENT_STATES in tree.children:
            del tree[LATENT_STATES]
        post = tree.posterior.to_dataset()
        derived = [n for n in post.data_vars if derived_kind(str(n)) is not None]
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
    if "trait_predictor" in posterior_of(tree):
        tree = predictive.add_groups(
            tree, data, spec, prov["random_seed"], prov.get("states", True)
        )
    return move_unit_draws(tree, spec.free_parameters())


def fit_parts(
    stored: StoredResult,
) -> tuple[xr.DataTree, ModelSpec, SessionData, dict[str, Any]]:
    """A joint-model file's completed DataTree, spec, data and provenance."""
    prov = stored.provenance
    data = session_data_from_table(stored.data_table, prov["roles"])
    spec = ModelSpec.from_dict(prov["spec"])
    return complete_loaded(stored.tree, data, spec, prov), spec, data, prov


__all__ = [
    "DATA_GROUP",
    "LOADERS",
    "STORE_EXTRAS",
    "StoredResult",
    "complete_loaded",
    "derived_kind",
    "fit_parts",
    "read_stored",
    "session_data_from_table",
    "session_table",
    "stored_kind",
    "write_fit",
    "write_result",
    "write_tree",
]
