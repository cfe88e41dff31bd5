"""A patient-level baseline of three-level data is split into within- and between-therapist
parts (issue 25, item 8): z_i = (z_i - zbar_j) + (zbar_j - zbar), the within part with the
paths a, c' and b = trait_effect_patient, the between part with its own paths a_B, c'_B and
b_T = trait_effect_therapist. Two-level data and therapist-level baselines are unchanged.

The dense Gaussian check of the model's density with the split shift is the "baseline, three
levels" case of tests/test_likelihood_variants.py (its reference, likelihood_cases.baseline_known,
writes the within and between parts out by hand); here: the rows by hand, the between path
reaching the density, the derived effects and variance shares, the names, the labels and (slow)
recovery of two paths of opposite sign from simulated data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayes_alliance.core import vocab as v
from bayes_alliance.effects import derived as effects
from bayes_alliance.effects.variance import Design
from bayes_alliance.model.covariates import (
    SplitBaseline,
    baseline_split_values,
    baseline_values,
    resolve,
)
from bayes_alliance.model.structure import baseline_shift, lookup
from bayes_alliance.spec.model_spec import ModelSpec
from tests.likelihood_cases import POINT, ROWS, session_data

SPLIT_NAMES = [v.BASELINE_EFFECT_PREDICTOR_BETWEEN, v.BASELINE_EFFECT_OUTCOME_BETWEEN]

# ROWS by hand: therapist T1 treats A (moderator 0.5) and D (-1.0), mean -0.25; T2 treats B
# (1.5) and C (0.0), mean 0.75; the therapist means' mean is 0.25.
WITHIN = {"A": 0.75, "D": -0.75, "B": 0.75, "C": -0.75}
BETWEEN = {"A": -0.5, "D": -0.5, "B": 0.5, "C": 0.5}


def _point(**over: object) -> dict[str, np.ndarray]:
    return {k: np.asarray(over.get(k, val), dtype=float) for k, val in POINT.items()}


def test_rows_are_split_at_the_therapists_by_hand():
    data = session_data(ROWS)
    spec = resolve(data, ModelSpec(baseline=("moderator",)))
    split = baseline_values(data, spec)
    assert isinstance(split, SplitBaseline)
    ids = [str(p) for p in data.patients]
    np.testing.assert_allclose(split.within[:, 0], [WITHIN[i] for i in ids], atol=1e-12)
    np.testing.assert_allclose(split.between[:, 0], [BETWEEN[i] for i in ids], atol=1e-12)
    # Indexing picks patients of both parts (the post-hoc paths select rows this way).
    picked = split[np.array([1, 0])]
    np.testing.assert_allclose(picked.within, split.within[[1, 0]])
    np.testing.assert_allclose(picked.between, split.between[[1, 0]])


def test_split_shift_by_hand():
    """The shift of the latent means: a_W z_W + a_B z_B and (c'_W + b_P a_W) z_W + (c'_B +
    b_T a_B) z_B, each path with its own trait effect."""
    data = session_data(ROWS)
    spec = resolve(data, ModelSpec(baseline=("moderator",)))
    p = _point()
    got = baseline_shift(lookup(p, spec), baseline_values(data, spec), spec.baseline_level)
    assert got is not None
    a, c = 0.45, -0.3  # POINT's within paths
    a_b, c_b = -0.6, 0.25  # POINT's between paths
    b_p, b_t = float(p["trait_effect_patient"]), float(p["trait_effect_therapist"])
    ids = [str(i) for i in data.patients]
    zw = np.array([WITHIN[i] for i in ids])
    zb = np.array([BETWEEN[i] for i in ids])
    np.testing.assert_allclose(got[0], a * zw + a_b * zb, atol=1e-12)
    np.testing.assert_allclose(got[1], (c + b_p * a) * zw + (c_b + b_t * a_b) * zb, atol=1e-12)


def test_between_path_reaches_the_density():
    """The compiled density agrees with the dense Gaussian (see the module docstring) and moves
    with the between path alone: the between part is not dropped or folded into the within
    one."""
    from tests.likelihood_cases import transformed_point
    from tests.test_likelihood_variants import _integrated_against_dense

    ours, ref, fn, model, nat, _ = _integrated_against_dense(
        {"baseline": ("moderator",)}, "complete", 11
    )
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)
    moved = {**nat, v.BASELINE_EFFECT_PREDICTOR_BETWEEN: np.array([0.9])}
    assert float(fn(transformed_point(model, moved))) != pytest.approx(ours, rel=1e-6)


def test_names_only_for_a_patient_baseline_of_three_level_data():
    three = session_data(ROWS, experience=True)
    two = session_data(ROWS, therapist=False)
    split = resolve(three, ModelSpec(baseline=("moderator",)))
    top = resolve(three, ModelSpec(baseline=("experience",)))
    flat = resolve(two, ModelSpec(baseline=("moderator",), therapist_level=False))
    assert set(SPLIT_NAMES) <= set(split.free_parameters())
    assert set(SPLIT_NAMES) <= set(split.prior_names())
    names = v.NAMED_PARAMETERS
    assert names.index(v.BASELINE_EFFECT_OUTCOME) < names.index(SPLIT_NAMES[0])
    for spec, data in ((top, three), (flat, two)):
        assert not set(SPLIT_NAMES) & set(spec.free_parameters())
        assert baseline_split_values(data, spec) is None
        assert isinstance(baseline_values(data, spec), np.ndarray)


def test_two_level_and_therapist_baselines_keep_their_shift():
    """Unchanged: a two-level patient baseline shifts by a z, (c' + b_P a) z with z centred over
    patients; a therapist baseline by the same paths on the therapist's value centred over
    therapists with b_T (written out by hand)."""
    p = _point()
    b_p, b_t = float(p["trait_effect_patient"]), float(p["trait_effect_therapist"])
    two = session_data(ROWS, therapist=False)
    spec = resolve(two, ModelSpec(baseline=("moderator",), therapist_level=False))
    z = two.covariates["moderator"].to_numpy(dtype=float)
    z = z - z.mean()
    got = baseline_shift(lookup(p, spec), baseline_values(two, spec), spec.baseline_level)
    assert got is not None
    np.testing.assert_allclose(got[0], 0.45 * z)
    np.testing.assert_allclose(got[1], (-0.3 + b_p * 0.45) * z)

    three = session_data(ROWS, experience=True)
    spec = resolve(three, ModelSpec(baseline=("experience",)))
    assert spec.baseline_level == v.THERAPIST
    # T1: 4, T2: 11, centred over the two therapists: -3.5, +3.5.
    zt = np.where(three.covariates["experience"].to_numpy() == 4.0, -3.5, 3.5)
    got = baseline_shift(lookup(p, spec), baseline_values(three, spec), spec.baseline_level)
    assert got is not None
    np.testing.assert_allclose(got[0], 0.45 * zt)
    np.testing.assert_allclose(got[1], (-0.3 + b_t * 0.45) * zt)


def test_derived_effects_and_variance_shares_of_both_parts():
    data = session_data(ROWS)
    spec = resolve(data, ModelSpec(baseline=("moderator",)))
    post = {k: val[None, None] for k, val in _point().items()}
    design = Design.of(data, spec)
    out = effects.derived_effects(post, spec, design)
    b_p, b_t = float(POINT["trait_effect_patient"]), float(POINT["trait_effect_therapist"])
    assert float(out["indirect_effect_between"][0, 0]) == pytest.approx(0.45 * b_p)
    assert float(out["indirect_effect_between_therapist"][0, 0]) == pytest.approx(-0.6 * b_t)
    assert float(out["direct_effect_between_therapist"][0, 0]) == pytest.approx(0.25)
    total_b = 0.25 - 0.6 * b_t
    assert float(out["total_effect_between_therapist"][0, 0]) == pytest.approx(total_b)
    # Shares by hand: the within rows (+-0.75, variance 0.5625 over the four patients) join
    # the patients' level, the therapist means (+-0.5, variance 0.25 over two therapists) the
    # therapists'.
    gx2, gy2, gx3, gy3 = effects.baseline_shares(post, design, np.zeros((1, 1)))
    assert float(gx2[0, 0]) == pytest.approx(0.45**2 * 0.5625)
    assert float(gy2[0, 0]) == pytest.approx((-0.3 + b_p * 0.45) ** 2 * 0.5625)
    assert float(gx3[0, 0]) == pytest.approx(0.6**2 * 0.25)
    assert float(gy3[0, 0]) == pytest.approx(total_b**2 * 0.25)


def test_labels_say_within_and_between_therapists():
    from bayes_alliance.report.effect_notes import effect_note
    from bayes_alliance.report.labels import label_level, parameter_label

    data = session_data(ROWS, experience=True)
    split = resolve(data, ModelSpec(baseline=("moderator",)))
    top = resolve(data, ModelSpec(baseline=("experience",)))
    level = label_level(split)
    assert "within therapists" in parameter_label(
        "indirect_effect_between", "x", "y", "none", level
    )
    assert "within-therapist" in parameter_label(
        "baseline_effect_predictor[moderator]", "x", "y", "none", level
    )
    assert "between therapists" in parameter_label(
        "baseline_effect_predictor_between[moderator]", "x", "y", "none", level
    )
    assert "a_W" in effect_note(v.BASELINE_EFFECT_PREDICTOR, "x", "y", "none", level)
    assert "a_B" in effect_note(v.BASELINE_EFFECT_PREDICTOR_BETWEEN, "x", "y", "none", level)
    # A therapist-level baseline keeps its labels.
    plain = parameter_label("indirect_effect_between", "x", "y", "none", label_level(top))
    assert "within" not in plain


def test_report_section_shows_both_parts():
    import pandas as pd

    from bayes_alliance.report.mediation import between_mediation_section

    rows = {
        "baseline_effect_predictor[g]": (0.5, 0.3, 0.7),
        "trait_effect_patient": (-0.3, -0.5, -0.1),
        "baseline_effect_outcome[g]": (0.1, -0.1, 0.3),
        "indirect_effect_between": (-0.15, -0.3, -0.05),
        "total_effect_between": (-0.05, -0.3, 0.2),
        "baseline_effect_predictor_between[g]": (-0.5, -0.8, -0.2),
        "trait_effect_therapist": (-0.6, -1.0, -0.2),
        "baseline_effect_outcome_between[g]": (0.2, -0.2, 0.6),
        "indirect_effect_between_therapist": (0.3, 0.1, 0.6),
        "total_effect_between_therapist": (0.5, 0.1, 0.9),
    }
    eff = pd.DataFrame(
        [
            {"parameter": k, "mean": m, "ci_low": lo, "ci_high": hi}
            for k, (m, lo, hi) in rows.items()
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sec = between_mediation_section(
            eff, ("g",), "95% HDI", predictor="x", outcome="y", split=True
        )
    text = " ".join(sec.paragraphs)
    assert "within therapists" in text and "between therapists" in text
    assert "0.30 (95% HDI [0.10, 0.60])" in text  # the between part's a_B b_T
    assert "-0.15 (95% HDI [-0.30, -0.05])" in text  # the within part's a_W b_P
    assert len(sec.figures) == 2


# --- recovery (two compiled-model fits: about 15 s) ---------------------------------------------------------------------

A_W, A_B = 0.5, -0.5
SEEDS = (311, 312)


def _simulated(seed: int):
    from bayes_alliance import SessionData, simulate

    df, _ = simulate(
        seed=seed,
        n_therapists=30,
        patients_per_therapist=6,
        sessions=8,
        baseline_icc=0.5,
        baseline_effect_predictor=A_W,
        baseline_effect_predictor_between=A_B,
        baseline_effect_outcome=0.0,
        baseline_effect_outcome_between=0.0,
    )
    return SessionData.from_frame(
        df,
        patient="patient",
        therapist="therapist",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        covariates=["baseline"],
    )


def test_within_and_between_paths_recovered():
    """a_W = 0.5 and a_B = -0.5 with half the baseline's variance between therapists: each
    split path's 99% interval covers its truth and excludes the other's. A single path on the
    whole baseline (the model before the split) estimates a variance-weighted mix of the two,
    near 0 here: it would sit between them, and describe neither the patients of one
    therapist nor the therapists."""
    from bayes_alliance.inference.compiled import compile_model

    spec = ModelSpec(baseline=("baseline",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = compile_model(_simulated(SEEDS[0]), spec)
        for seed in SEEDS:
            r = cm.fit(_simulated(seed), random_seed=seed, draws=400, tune=400, complete=False)
            a_w = r.draws(v.BASELINE_EFFECT_PREDICTOR)[..., 0].ravel()
            a_b = r.draws(v.BASELINE_EFFECT_PREDICTOR_BETWEEN)[..., 0].ravel()
            for d, truth, other in ((a_w, A_W, A_B), (a_b, A_B, A_W)):
                lo, hi = np.quantile(d, [0.005, 0.995])
                print(seed, truth, float(d.mean()), lo, hi)
                assert lo <= truth <= hi, (seed, truth, lo, hi)
                assert not lo <= other <= hi, (seed, other, lo, hi)


def test_prior_of_the_between_paths_is_scaled_by_the_therapist_means():
    """Normal(0, SD(x) / SD over therapists of the therapist means) and the same for y: with
    ROWS the therapist means are -0.25 and 0.75 (SD 0.5, by hand)."""
    from bayes_alliance.inference.prior_predictive import prior_predictive
    from bayes_alliance.model.build import build_model

    data = session_data(ROWS)
    spec = ModelSpec(baseline=("moderator",))
    prior, _ = prior_predictive(build_model(data, spec), data, spec, 4000, random_seed=2)
    a_b = prior[v.BASELINE_EFFECT_PREDICTOR_BETWEEN]
    assert a_b.dims == ("chain", "draw", "baseline")
    assert float(a_b.std()) == pytest.approx(np.nanstd(data.x) / 0.5, rel=0.05)
    c_b = prior[v.BASELINE_EFFECT_OUTCOME_BETWEEN]
    assert float(c_b.std()) == pytest.approx(np.nanstd(data.y) / 0.5, rel=0.05)


def test_new_patient_rows_are_centred_as_in_the_fit():
    """A new patient of therapist T1 (moderator 2.0): within row 2.0 less the mean of T1's
    fitted patients (-0.25), between row T1's fitted one (-0.5), by hand; the fitted patients
    keep theirs."""
    from types import SimpleNamespace

    import pandas as pd

    from bayes_alliance import SessionData
    from bayes_alliance.feedback.caseload import _covariate_rows
    from tests.conftest import ROLES

    data = session_data(ROWS)
    spec = resolve(data, ModelSpec(baseline=("moderator",)))
    cols = ["therapist", "patient", "session", "x", "y", "moderator"]
    t1 = [r for r in ROWS if r[0] == "T1"] + [("T1", "G", 1, 3.0, 1.0, 2.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub = SessionData.from_frame(
            pd.DataFrame(t1, columns=cols), covariates=["moderator"], **ROLES
        )
    ids = [str(p) for p in sub.patients]
    target = ids.index("G")
    fitted = np.array([int(np.flatnonzero(data.patients == p)[0]) for p in ids if p != "G"])
    _, zb, _ = _covariate_rows(SimpleNamespace(data=data, spec=spec), sub, fitted, target)
    assert isinstance(zb, SplitBaseline)
    want_w = {**WITHIN, "G": 2.25}
    want_b = {**BETWEEN, "G": -0.5}
    np.testing.assert_allclose(zb.within[:, 0], [want_w[i] for i in ids], atol=1e-12)
    np.testing.assert_allclose(zb.between[:, 0], [want_b[i] for i in ids], atol=1e-12)


def test_simulator_splits_the_baseline_at_the_therapists():
    """With a_B given, the latent means move by a z_W + a_B z_B (x) and (c' + b_P a) z_W +
    (c'_B + b_T a_B) z_B (y), z_W and z_B computed here from the drawn baseline values;
    without a therapist component the data are those of before (the same random stream)."""
    from bayes_alliance import simulate

    kw = dict(seed=5, n_therapists=6, patients_per_therapist=4, sessions=5)
    base, _ = simulate(**kw, baseline=True)
    same, _ = simulate(**kw, baseline=True, baseline_icc=0.0)
    np.testing.assert_array_equal(base.to_numpy(), same.to_numpy())
    flat = dict(sd_patient_predictor=0.0, sd_therapist_predictor=0.0)
    flat |= dict(sd_patient_outcome=0.0, sd_therapist_outcome=0.0)
    _, truth = simulate(
        **kw,
        **flat,
        baseline_icc=0.6,
        baseline_effect_predictor=0.5,
        baseline_effect_predictor_between=-0.5,
        baseline_effect_outcome=0.2,
        baseline_effect_outcome_between=0.1,
    )
    pat = truth.patients
    g = pat["baseline"].to_numpy()
    means = pat.groupby("therapist")["baseline"].transform("mean").to_numpy()
    t_means = pat.groupby("therapist")["baseline"].mean()
    z_w, z_b = g - means, means - t_means.mean()
    assert t_means.std() > 0.3  # the therapist component spreads the therapist means
    p = truth.params
    b_p, b_t = p.trait_effect_patient, p.trait_effect_therapist
    want_x = p.intercept_predictor + 0.5 * z_w - 0.5 * z_b
    want_y = p.intercept_outcome + (0.2 + b_p * 0.5) * z_w + (0.1 - b_t * 0.5) * z_b
    np.testing.assert_allclose(pat["trait_predictor"], want_x, atol=1e-10)
    np.testing.assert_allclose(pat["trait_outcome"], want_y, atol=1e-10)
    assert truth.mediation_split["indirect_effect_between_therapist"] == pytest.approx(-0.5 * b_t)
