"""Where a fit's per-session states live: the ``latent_states`` group of its DataTree.

The states ``w = z - M`` (``state_predictor``, ``state_outcome``: chain, draw, patient,
session) are draws of the model's latent per-cell quantities, not parameters. Keeping them out
of ``posterior`` lets ArviZ's defaults (``arviz_stats.summary(result.idata)``, trace plots) show
the parameters only, as brms and Bambi users expect. Results written before this layout (and a
model with sampled traits, whose sampler returns the states as deterministics) have them in
``posterior``; :func:`move_states` puts them in their group and :func:`states_dataset` reads
either place.
"""

from __future__ import annotations

import xarray as xr

from bayes_alliance.core.vocab import LATENT_STATES, STATE_VARIABLES
from bayes_alliance.inference.unit_group import move_variables, posterior_of


def move_states(idata: xr.DataTree) -> xr.DataTree:
    """Move any state variables from ``posterior`` into the ``latent_states`` group (in place;
    returned for chaining; the session coordinate goes with them). A tree without states is
    returned unchanged."""
    if "posterior" not in idata.children:
        return idata
    post = idata.posterior
    return move_variables(idata, [n for n in STATE_VARIABLES if n in post.data_vars], LATENT_STATES)


def states_dataset(idata: xr.DataTree) -> xr.Dataset | None:
    """The state draws of a result (``state_predictor``, ``state_outcome``), from the
    ``latent_states`` group or, for a tree in the layout before it, from ``posterior``; None
    when the tree holds none (``store_states=False``: see
    :meth:`bayes_alliance.inference.fit.FitResult.states`). An object that is not a tree but
    has a ``posterior`` dataset (a hand-made stand-in) is read from that."""
    if not hasattr(idata, "children"):
        post = getattr(idata, "posterior", None)
        if post is not None and all(n in post.data_vars for n in STATE_VARIABLES):
            return post[list(STATE_VARIABLES)]
        return None
    if LATENT_STATES in idata.children:
        ds = idata[LATENT_STATES].to_dataset()
        if all(n in ds.data_vars for n in STATE_VARIABLES):
            return ds[list(STATE_VARIABLES)]
    if "posterior" in idata.children:
        post = idata.posterior.to_dataset()
        if all(n in post.data_vars for n in STATE_VARIABLES):
            return post[list(STATE_VARIABLES)]
    return None


def has_states(idata: xr.DataTree) -> bool:
    """Whether the tree holds the state draws (in either place)."""
    return states_dataset(idata) is not None


def with_states(idata: xr.DataTree) -> xr.Dataset:
    """The posterior's variables with the unit draws and the states beside them, for the
    functions on draws that read them all (the Bayesian R-squared of
    :mod:`bayes_alliance.effects.derived`, writing a file)."""
    post = posterior_of(idata)
    w = states_dataset(idata)
    return post if w is None else post.assign(w.data_vars)


__all__ = ["has_states", "move_states", "states_dataset", "with_states"]
