"""States held in the posterior or computed on demand, and the size rule that chooses."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_alliance.inference import posthoc
from bayes_alliance.inference.fit import STATES_AUTO_BYTES, FitResult, states_wanted
from bayes_alliance.inference.storage import derived_kind


def test_size_rule(recovery):
    _, _, data, _ = recovery
    grid = 2 * 8 * data.n_patients * data.n_sessions  # bytes per draw
    fits = STATES_AUTO_BYTES // grid
    assert states_wanted(data, 1, fits, None)
    assert not states_wanted(data, 1, fits + 1, None)
    assert states_wanted(data, 4, 10**6, True)
    assert not states_wanted(data, 1, 1, False)


def test_states_computed_on_demand_equal_held_ones(recovery):
    _, _, data, result = recovery
    ids = [data.patients[3], data.patients[0], data.patients[-1]]
    held = result.states(ids)
    bare = FitResult(
        result.idata.copy(), result.spec, data, dict(result.provenance), result.convergence
    )
    del bare.idata["latent_states"]
    computed = bare.states(ids)
    for name in ("state_predictor", "state_outcome"):
        a, b = held[name].values, computed[name].values
        assert a.shape == b.shape == (2, 600, 3, data.n_sessions)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        assert list(computed[name].patient.values) == ids
    with pytest.raises(ValueError, match="unknown patient"):
        bare.states(["no such patient"])


def test_leaving_states_out_keeps_every_other_draw(recovery):
    _, _, data, result = recovery
    post = result.idata.posterior.to_dataset()
    derived = [n for n in post.data_vars if derived_kind(str(n)) is not None]
    sampled = post.drop_vars(derived)
    seed = result.provenance["random_seed"]
    with_states, _ = posthoc.complete(sampled, data, result.spec, seed, states=True)
    without, _ = posthoc.complete(sampled, data, result.spec, seed, states=False)
    assert "state_predictor" in with_states and "state_predictor" not in without
    for name, da in without.items():
        np.testing.assert_array_equal(da.values, with_states[name].values)
