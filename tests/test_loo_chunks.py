"""PSIS-LOO in chunks of units: exact (Pareto smoothing is per unit), with bounded memory."""

from __future__ import annotations

import tracemalloc

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr

from bayes_alliance.analysis import comparison


def _draws(n_units: int, n_draw: int = 200, seed: int = 0) -> tuple[xr.Dataset, xr.DataArray]:
    rng = np.random.default_rng(seed)
    post = xr.Dataset({"mu": (("chain", "draw"), rng.normal(size=(2, n_draw)))})
    ll = rng.normal(-1.0, 0.3, size=(2, n_draw, n_units))
    # heavy-tailed units: a few draws fit them far better, so some Pareto k are high
    ll[..., ::9] += 6.0 * rng.standard_t(2, size=(2, n_draw, len(range(0, n_units, 9))))
    return post, xr.DataArray(ll, dims=("chain", "draw", "session_cell"))


def test_chunked_psis_equals_one_call_of_arviz():
    # Truth: arviz-stats' loo on all units at once, from a tree with the same posterior.
    post, ll = _draws(50)
    tree = xr.DataTree(
        children={
            "posterior": xr.DataTree(post),
            "log_likelihood": xr.DataTree(xr.Dataset({"loglik": ll})),
        }
    )
    whole = azs.loo(tree, var_name="loglik")
    chunked, used = comparison.psis_loo(ll, comparison.relative_ess(post), chunk=7)
    assert used == 7
    assert chunked.elpd == pytest.approx(whole.elpd, abs=1e-12, rel=1e-12)
    assert chunked.se == pytest.approx(whole.se, rel=1e-12)
    assert chunked.p == pytest.approx(whole.p, rel=1e-12)
    assert chunked.n_data_points == whole.n_data_points == 50
    assert chunked.warning == whole.warning
    np.testing.assert_allclose(chunked.elpd_i.values, whole.elpd_i.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunked.pareto_k.values, whole.pareto_k.values, rtol=0, atol=1e-12)
    assert (np.asarray(whole.pareto_k) > comparison.K_GOOD).any()  # the high-k path is covered


def test_memory_limited_chunk_never_copies_all_units(monkeypatch):
    # 400 draws x 2,000 units (6.4 MB): with a 256 kB budget each PSIS call sees 81 units, and
    # the peak of new allocations stays far below one copy of the input (one arviz call on all
    # units makes several).
    post, ll = _draws(2_000, n_draw=200, seed=1)
    monkeypatch.setattr(comparison, "CHUNK_BYTES", 2**18)
    reff = comparison.relative_ess(post)
    tracemalloc.start()
    _, used = comparison.psis_loo(ll, reff)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert used == 2**18 // (8 * 400)
    assert peak < 0.25 * ll.values.nbytes


def test_relative_efficiency_is_arviz_own_over_every_variable():
    # With 2 x 1,500 draws the Pareto tail is 3 sqrt(S / r_eff) draws, so r_eff moves the ELPD.
    # A fast first variable and a slow second one: the mean-ESS of the first alone (the old
    # r_eff) is about 1, ArviZ's mean over every element of every variable far less.
    rng = np.random.default_rng(4)
    n = 1_500
    slow = np.zeros((2, n, 3))
    for t in range(1, n):
        slow[:, t] = 0.95 * slow[:, t - 1] + rng.normal(size=(2, 3))
    post = xr.Dataset(
        {
            "fast": (("chain", "draw"), rng.normal(size=(2, n))),
            "slow": (("chain", "draw", "k"), slow),
        }
    )
    ll = xr.DataArray(
        rng.normal(-1.0, 0.3, size=(2, n, 20)) + 2.0 * rng.standard_t(3, size=(2, n, 20)),
        dims=("chain", "draw", "patient"),
    )
    tree = xr.DataTree(
        children={
            "posterior": xr.DataTree(post),
            "log_likelihood": xr.DataTree(xr.Dataset({"patient": ll})),
        }
    )
    reff = comparison.relative_ess(post)
    assert reff < 0.5
    theirs = azs.loo(tree, var_name="patient")  # ArviZ's default r_eff
    ours, _ = comparison.psis_loo(ll, reff)
    np.testing.assert_allclose(ours.elpd_i.values, theirs.elpd_i.values, rtol=0, atol=1e-12)
    assert ours.elpd == pytest.approx(theirs.elpd, rel=1e-12)
    # the first variable's r_eff alone gives another ELPD: the difference the test guards
    first, _ = comparison.psis_loo(ll, comparison.relative_ess(post[["fast"]]))
    assert abs(first.elpd - theirs.elpd) > 1e-6
