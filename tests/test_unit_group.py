"""The per-unit draws' group (bayes_alliance/inference/unit_group.py) on hand-built trees."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import xarray as xr

from bayes_alliance.inference.unit_group import (
    merge_unit_draws,
    move_unit_draws,
    posterior_of,
    unit_dataset,
)


def _tree() -> xr.DataTree:
    rng = np.random.default_rng(0)
    post = xr.Dataset(
        {
            "state_effect": (("chain", "draw"), rng.normal(size=(2, 3))),
            "moderator_effect": (("chain", "draw", "moderator"), rng.normal(size=(2, 3, 2))),
            "trait_outcome": (("chain", "draw", "patient"), rng.normal(size=(2, 3, 4))),
            "therapist_dev_outcome_raw": (
                ("chain", "draw", "therapist"),
                rng.normal(size=(2, 3, 2)),
            ),
        },
        coords={"patient": ["a", "b", "c", "d"], "therapist": ["t1", "t2"]},
    )
    return xr.DataTree(children={"posterior": xr.DataTree(post)})


def test_moves_every_unit_variable_but_the_kept_ones_and_merges_back():
    tree = _tree()
    before = tree.posterior.to_dataset()
    move_unit_draws(tree, keep=("state_effect", "moderator_effect"))
    assert sorted(tree.posterior.data_vars) == ["moderator_effect", "state_effect"]
    assert "patient" not in tree.posterior.dims and "therapist" not in tree.posterior.dims
    units = unit_dataset(tree)
    assert units is not None
    assert sorted(units.data_vars) == ["therapist_dev_outcome_raw", "trait_outcome"]
    assert list(units["trait_outcome"].patient.values) == ["a", "b", "c", "d"]
    merged = posterior_of(tree)
    for name in before.data_vars:
        np.testing.assert_array_equal(merged[name].values, before[name].values)
    merge_unit_draws(tree)
    assert "unit_draws" not in tree.children and "trait_outcome" in tree.posterior


def test_a_kept_unit_variable_stays_and_a_tree_without_any_is_unchanged():
    tree = _tree()
    move_unit_draws(tree, keep=("trait_outcome",))
    assert "trait_outcome" in tree.posterior and "therapist" not in tree.posterior.dims
    again = move_unit_draws(tree, keep=("trait_outcome",))
    assert sorted(unit_dataset(again).data_vars) == ["therapist_dev_outcome_raw"]  # type: ignore[union-attr]
    empty = xr.DataTree(children={"posterior": xr.DataTree(xr.Dataset())})
    assert "unit_draws" not in move_unit_draws(empty, keep=()).children


def test_a_stand_in_with_a_posterior_dataset_reads_as_it_is():
    ds = _tree().posterior.to_dataset()
    stand_in = SimpleNamespace(posterior=ds)
    assert unit_dataset(stand_in) is None
    assert posterior_of(stand_in) is ds
