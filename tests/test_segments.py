"""The segment path of series with gaps (model/segments.py, kernels/patterns.py).

Truths: a pattern's closed form against the density of a dense Gaussian of the stacked states
(scipy), and the whole model's log density and gradient against the same model with every
patient through the Kalman filter (which tests/test_kalman_batch.py and tests/test_gaps.py check
against dense Gaussians)."""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytest
from scipy import stats

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.compiled import compile_model
from bayes_alliance.kernels import patterns
from bayes_alliance.model import build, likelihood, segments
from bayes_alliance.spec.model_spec import ModelSpec

PHI = (0.4, 0.1, -0.2, 0.3)
SIGMA = (1.0, 0.3, 0.8)
F = (1.5, 0.2, 1.2)


def _dense(pattern, d, k, m, known: bool) -> float:
    """log density of one piece: the pattern's observed entries as one Gaussian vector of the
    states w_0 .. w_T (w_0 ~ N(0, F), w_t = Phi w_(t-1) + u_t), minus the first cell's when it
    is conditioned on."""
    a = np.array(PHI).reshape(2, 2)
    s = np.array([[SIGMA[0], SIGMA[1]], [SIGMA[1], SIGMA[2]]])
    covs = [np.array([[F[0], F[1]], [F[1], F[2]]])]
    for _ in pattern[1:]:
        covs.append(a @ covs[-1] @ a.T + s)
    n = len(pattern)
    joint = np.zeros((2 * n, 2 * n))
    for i in range(n):
        for j in range(i, n):
            block = np.linalg.matrix_power(a, j - i) @ covs[i]
            joint[2 * j : 2 * j + 2, 2 * i : 2 * i + 2] = block
            joint[2 * i : 2 * i + 2, 2 * j : 2 * j + 2] = block.T
    ent = patterns.entries(pattern)
    idx = [2 * t + j for t, j in ent]
    mean = np.array([k[j] + m[j] for _, j in ent])
    cov = joint[np.ix_(idx, idx)]
    out = stats.multivariate_normal(mean, cov).logpdf(d)
    if known:
        out -= stats.multivariate_normal(mean[:2], cov[:2, :2]).logpdf(d[:2])
    return float(out)


@pytest.mark.parametrize(
    ("pattern", "known"),
    [
        (patterns.FIRST, False),
        (patterns.LAG1, True),
        (patterns.SKIP, True),
        (patterns.X_ONLY, True),
        (patterns.Y_ONLY, True),
        (((0, 1), (1, 0), (1, 1)), False),
        (((1, 1), (0, 0), (0, 1), (1, 0)), True),
    ],
)
def test_a_pattern_in_closed_form_equals_a_dense_gaussian(pattern, known):
    rng = np.random.default_rng(len(pattern) + 10 * known)
    m = len(patterns.entries(pattern))
    d = rng.normal(size=(3, m))
    k, mean = (0.3, -0.2), (0.5, 1.1)
    cond = patterns.conditional(pattern, PHI, SIGMA, None if known else F)
    sums = patterns.owner_sums(d, np.zeros(3, dtype=np.int64), 1)
    log_c, f = patterns.pattern_factor(pattern, *cond, sums, k)
    quad = f.l11 * mean[0] ** 2 + 2 * f.l12 * mean[0] * mean[1] + f.l22 * mean[1] ** 2
    got = (log_c - 0.5 * (f.q - 2 * (f.g1 * mean[0] + f.g2 * mean[1]) + quad))[0]
    want = sum(_dense(pattern, d[i], k, mean, known) for i in range(3))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_a_negative_weight_takes_a_piece_off():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(4, 2))
    cond = patterns.conditional(patterns.FIRST, PHI, SIGMA, F)
    one = np.zeros(4, dtype=np.int64)
    two = patterns.pattern_factor(
        patterns.FIRST, *cond, patterns.owner_sums(d[:2], one[:2], 1), (0.1, 0.2)
    )
    net = patterns.pattern_factor(
        patterns.FIRST,
        *cond,
        patterns.owner_sums(d[[0, 1, 2, 2]], one, 1, np.array([1, 1, 1, -1.0])),
        (0.1, 0.2),
    )
    assert net[0] == pytest.approx(two[0])
    for a, b in zip(net[1].__dict__.values(), two[1].__dict__.values(), strict=True):
        assert a == pytest.approx(b, abs=1e-12)


def test_owner_sums_pack_the_upper_triangle():
    """n, S1 and packed S2 by hand: owner 0 has one piece, owner 1 one piece plus and one
    minus, owner 2 none; off-diagonal products doubled."""
    d = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]])
    got = patterns.owner_sums(d, np.array([0, 1, 1]), 3, np.array([1.0, 1.0, -1.0]))
    np.testing.assert_array_equal(got["n"], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(got["s1"], [[1.0, 2.0], [2.5, -5.0], [0.0, 0.0]])
    np.testing.assert_array_equal(got["s2"], [[1.0, 4.0, 4.0], [8.75, -10.0, -15.0], [0, 0, 0]])
    # <W, sum d d'> of a symmetric W is the packed W times the packed S2
    w = np.array([[2.0, -0.5], [-0.5, 3.0]])
    full = sum(wt * np.outer(e, e) for wt, e in zip([1, -1], d[1:], strict=True))
    iu, ju = patterns.packed(2)
    assert w[iu, ju] @ got["s2"][1] == pytest.approx((w * full).sum(), abs=1e-14)


def test_a_known_start_needs_a_full_first_cell():
    with pytest.raises(ValueError, match="fully observed"):
        patterns.conditional(((1, 0), (1, 1)), PHI, SIGMA)


SMALL = dict(n_therapists=4, patients_per_therapist=5, sessions=9)


def _data(seed: int, covariate: bool = False, **settings) -> SessionData:
    df, _ = simulate(seed=seed, **{**SMALL, **settings})
    extra = {}
    if covariate:  # a patient characteristic: one known mean per patient
        codes = df["patient"].astype("category").cat.codes.to_numpy()
        df["z"] = np.random.default_rng(seed).normal(size=codes.max() + 1)[codes]
        extra = {"covariates": ("z",)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_frame(df, **EXAMPLE_ROLES, **extra)


def _logp_and_grad(data: SessionData, spec: ModelSpec, segment: bool, seed: int):
    old = likelihood.SEGMENT_PATH, likelihood.MIXED_PATH
    likelihood.SEGMENT_PATH, likelihood.MIXED_PATH = segment, False
    try:
        model = build.build_model(data, spec)
    finally:
        likelihood.SEGMENT_PATH, likelihood.MIXED_PATH = old
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
        (4, ModelSpec(therapist_level=True, baseline=("z",))),
    ],
)
def test_the_segment_path_equals_the_filter_for_every_patient(seed, spec):
    data = _data(
        seed,
        covariate=bool(spec.baseline),
        p_missing_value=0.08,
        p_missing_session=0.1,
        dropout=0.3,
    )
    model, got = _logp_and_grad(data, spec, segment=True, seed=seed)
    filtered, want = _logp_and_grad(data, spec, segment=False, seed=seed)
    # every kind of piece present, else the test proves little
    counts = model["piece_n"].get_value()
    assert counts.shape[1] == len(segments.PIECES)
    for j, layout in enumerate(segments.PIECES):
        assert (counts[:, j] != 0).any(), layout
    assert model["segment_patient"].get_value().size > 0
    assert "gap_first" in filtered.named_vars and "segment_patient" not in filtered.named_vars
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9 * (1 + np.abs(w).max()))


def test_varying_lags_stay_off_the_segment_path():
    """Per-patient lags: each piece would need its own small matrix algebra (measured: about
    30 times the filter's cost per evaluation), so such models keep the mixed path."""
    data = _data(5, p_missing_value=0.08, p_missing_session=0.1)
    model = build.build_model(data, ModelSpec(random_slopes=("patient",)))
    assert "mixed_order" in model.named_vars and "segment_patient" not in model.named_vars


def test_a_compiled_segment_model_refits_other_gaps_as_a_fresh_compile():
    """The pieces and stretches are data (other counts, another longest stretch): a compiled
    model refits data with other gaps and equals a fresh compile of the new data."""
    first = _data(6, p_missing_value=0.05)
    new = _data(7, p_missing_value=0.1, p_missing_session=0.1, dropout=0.2)
    grids = [segments.segment_containers(d, (0.0, 0.0))["segment_predictor"] for d in (first, new)]
    assert grids[0].shape != grids[1].shape  # another longest stretch, another count
    cm = compile_model(first)
    assert "segment_patient" in cm.model.named_vars
    kw = dict(random_seed=4, draws=60, tune=60, complete=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh_cm = compile_model(new)
        refit = cm.fit(new, **kw)
        fresh = fresh_cm.fit(new, **kw)
    np.testing.assert_array_equal(refit.draws("state_effect"), fresh.draws("state_effect"))
