"""Where a fit's per-patient and per-therapist draws live: the ``unit_draws`` group.

A fit draws one value per patient or therapist for its latent means (``trait_*``,
``patient_dev_*``), therapist deviations (``therapist_dev_*`` and their standard-normal
``_raw`` scales) and, with random slopes, ``state_effect_by_patient``. They are draws of units'
effects, not the model's named parameters, and a brms user's summary lists population-level
parameters and group-level SDs only. So every variable of ``posterior`` with a ``patient`` or
``therapist`` dimension that is not a named parameter moves to the group ``unit_draws``
(:func:`move_unit_draws`, after the post-hoc draws and on loading a file), and
``arviz_stats.summary(result.idata)`` lists ``result.parameters``' entries only.

Code that reads the draws reads them through :func:`posterior_of`: the posterior with the unit
draws beside it (the layout before this group, so a file written then, which holds them in
``posterior``, reads the same). Merging shares the arrays; nothing is copied.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import xarray as xr

from bayes_alliance.core.vocab import PATIENT, THERAPIST, UNIT_DRAWS

UNIT_DIMS = (PATIENT, THERAPIST)


def unit_names(post: xr.Dataset, keep: Collection[str]) -> list[str]:
    """The variables of ``post`` with a patient or therapist dimension, less those in
    ``keep`` (the named parameters)."""
    return [
        str(n)
        for n, da in post.data_vars.items()
        if str(n) not in keep and any(d in da.dims for d in UNIT_DIMS)
    ]


def move_variables(idata: xr.DataTree, names: Collection[str], group: str) -> xr.DataTree:
    """Move the variables ``names`` of ``posterior`` into ``group`` (joined with what the group
    holds already; in place, returned for chaining). Dimensions the remaining parameters no
    longer use go with them. Without ``posterior`` or ``names`` the tree is unchanged."""
    if "posterior" not in idata.children or not names:
        return idata
    post = idata.posterior.to_dataset()
    moved = post[list(names)]
    if group in idata.children:
        moved = idata[group].to_dataset().assign(moved.data_vars)
    rest = post.drop_vars(list(names))
    unused = [c for c in rest.dims if not any(c in da.dims for da in rest.data_vars.values())]
    idata["posterior"] = xr.DataTree(rest.drop_dims(unused))
    idata[group] = xr.DataTree(moved)
    return idata


def move_unit_draws(idata: xr.DataTree, keep: Collection[str]) -> xr.DataTree:
    """Move the per-unit variables of ``posterior`` (see :func:`unit_names`) into the
    ``unit_draws`` group (:func:`move_variables`)."""
    if "posterior" not in idata.children:
        return idata
    return move_variables(idata, unit_names(idata.posterior.to_dataset(), keep), UNIT_DRAWS)


def merge_unit_draws(idata: xr.DataTree) -> xr.DataTree:
    """The reverse of :func:`move_unit_draws`: the unit draws back in ``posterior`` and their
    group removed (in place; returned), for the steps that recompute them from the posterior
    (loading a file)."""
    if UNIT_DRAWS not in idata.children:
        return idata
    idata["posterior"] = xr.DataTree(posterior_of(idata))
    del idata[UNIT_DRAWS]
    return idata


def unit_dataset(idata: Any) -> xr.Dataset | None:
    """The ``unit_draws`` group of a tree as a Dataset; None when it has none (a tree in the
    layout before the group, a mechanism fit's tree, a hand-made stand-in)."""
    children = getattr(idata, "children", None)
    if children is None or UNIT_DRAWS not in children:
        return None
    return idata[UNIT_DRAWS].to_dataset()


def posterior_of(idata: Any) -> xr.Dataset:
    """The posterior draws with the per-unit draws beside them: what ``idata.posterior`` held
    before the unit draws had their own group. The one way the package's readers take draws.
    An object that is not a tree but has a ``posterior`` (a hand-made stand-in) gives that."""
    post = idata.posterior
    ds = post.to_dataset() if hasattr(post, "to_dataset") else post
    units = unit_dataset(idata)
    return ds if units is None else ds.assign(units.data_vars)


__all__ = [
    "UNIT_DIMS",
    "merge_unit_draws",
    "move_unit_draws",
    "move_variables",
    "posterior_of",
    "unit_dataset",
    "unit_names",
]
