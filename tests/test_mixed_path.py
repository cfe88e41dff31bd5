"""The mixed likelihood path: complete patients through the sums of products, patients with
gaps through the Kalman filter, outputs back in patient order (model/grid.py
``mixed_containers``, model/likelihood.py ``_mixed_factor``). The truth is the same model with
every patient through the filter, which tests/test_kalman_batch.py and tests/test_gaps.py check
against dense Gaussians."""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.compiled import compile_model
from bayes_alliance.model import build, likelihood
from bayes_alliance.spec.model_spec import ModelSpec

SMALL = dict(n_therapists=4, patients_per_therapist=5, sessions=7)


def _data(seed: int, **settings) -> SessionData:
    df, _ = simulate(seed=seed, **{**SMALL, **settings})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_frame(df, **EXAMPLE_ROLES)


@pytest.fixture(autouse=True)
def _no_segment_path(monkeypatch):
    """These tests are of the mixed path, which the segment path (tests/test_segments.py) takes
    precedence over for models with shared dynamics."""
    monkeypatch.setattr(likelihood, "SEGMENT_PATH", False)


def _logp_and_grad(data: SessionData, spec: ModelSpec, mixed: bool, seed: int):
    old = likelihood.MIXED_PATH
    likelihood.MIXED_PATH = mixed
    try:
        model = build.build_model(data, spec)
    finally:
        likelihood.MIXED_PATH = old
    logp = model.logp()
    fn = pytensor.function(
        model.value_vars, [logp, *pytensor.grad(logp, model.value_vars)], mode="NUMBA"
    )
    rng = np.random.default_rng(seed)
    point = model.initial_point()
    # away from the initial point, where many gradients vanish by symmetry
    x = [point[v.name] + 0.3 * rng.normal(size=np.shape(point[v.name])) for v in model.value_vars]
    return model, [np.asarray(e) for e in fn(*x)]


@pytest.mark.parametrize(
    ("seed", "spec"),
    [
        (1, ModelSpec(therapist_level=True)),
        (2, ModelSpec(therapist_level=False)),
        (3, ModelSpec(therapist_level=True, random_slopes=("patient",))),
    ],
)
def test_mixed_path_equals_the_filter_for_every_patient(seed, spec):
    data = _data(seed, p_missing_value=0.04, p_missing_session=0.05, dropout=0.3)
    mixed, got = _logp_and_grad(data, spec, mixed=True, seed=seed)
    filtered, want = _logp_and_grad(data, spec, mixed=False, seed=seed)
    complete = mixed["mixed_complete"].get_value()
    gapped = mixed["mixed_gapped"].get_value()
    # both groups present, and the order a real permutation (else the test proves little)
    assert 0 < len(complete) < data.n_patients and len(gapped) > 0
    assert "gap_first" in filtered.named_vars and "mixed_order" not in filtered.named_vars
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9 * (1 + np.abs(w).max()))


def test_mixed_containers_split_patients_by_gaps():
    data = _data(4, p_missing_value=0.05, dropout=0.3)
    model = build.build_model(data, ModelSpec())
    complete = model["mixed_complete"].get_value()
    gapped = model["mixed_gapped"].get_value()
    order = model["mixed_order"].get_value()
    inside = data.in_series
    has_gap = (inside & ~(data.observed_x & data.observed_y)).any(axis=1)
    np.testing.assert_array_equal(complete, np.flatnonzero(~has_gap))
    np.testing.assert_array_equal(gapped, np.flatnonzero(has_gap))
    # order puts the concatenated outputs (complete first) back in patient order
    np.testing.assert_array_equal(np.concatenate([complete, gapped])[order], np.arange(len(order)))
    # a dropout is a shorter series, not a gap: some complete patients stop early
    assert (~inside[complete]).any()


def test_a_mixed_model_refits_other_gaps_as_a_fresh_compile():
    """Which patients are complete is data: a compiled mixed model refits data with another
    split (other group sizes) and equals a fresh compile of the new data."""
    first, new = _data(6, p_missing_value=0.05), _data(7, p_missing_value=0.02)
    cm = compile_model(first)
    n_first = len(cm.model["mixed_complete"].get_value())
    kw = dict(random_seed=4, draws=60, tune=60, complete=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh_cm = compile_model(new)
        assert len(fresh_cm.model["mixed_complete"].get_value()) != n_first
        refit = cm.fit(new, **kw)
        fresh = fresh_cm.fit(new, **kw)
    np.testing.assert_array_equal(refit.draws("state_effect"), fresh.draws("state_effect"))
