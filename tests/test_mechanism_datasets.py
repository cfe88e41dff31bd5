"""The shipped data of the mechanism models: documented columns and sizes, exact redraw from the
records, true effects computed by hand, and the two tutorials that use them (parsed, not run)."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_alliance import datasets
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim.mechanisms import simulate_mechanisms

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "mediation_within": (
        datasets.load_mediation_within,
        datasets.regenerate_mediation_within,
        datasets.mediation_within_record,
        datasets.MEDIATION_WITHIN_ROLES,
        datasets.MEDIATION_WITHIN_SETTINGS,
        datasets.MEDIATION_WITHIN_SEED,
        [
            "therapist",
            "patient",
            "session",
            "alliance",
            "emotional_processing",
            "symptoms",
            "post_symptoms",
        ],
        "mediation",
    ),
    "informants": (
        datasets.load_informants,
        datasets.regenerate_informants,
        datasets.informants_record,
        datasets.INFORMANTS_ROLES,
        datasets.INFORMANTS_SETTINGS,
        datasets.INFORMANTS_SEED,
        ["therapist", "patient", "session", "alliance", "alliance_therapist", "symptoms"],
        "informants",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_loader_gives_the_documented_table(name: str) -> None:
    load, _, _, roles, _, _, columns, design = CASES[name]
    df = load()
    assert list(df.columns) == columns
    assert df["therapist"].nunique() == 20
    assert (df.groupby("therapist")["patient"].nunique() == 6).all()
    assert (df.groupby("patient")["session"].agg(list).map(list(range(1, 13)).__eq__)).all()
    series = columns[3:6]
    assert df[["therapist", "patient", "session"]].notna().all().all()
    assert 0.01 < df[series].isna().mean().mean() < 0.06
    data = SeriesData.from_frame(df, **roles)
    assert data.columns == tuple(series)
    assert MechanismSpec().design(data) == design
    if "end_outcome" in roles:
        assert (df.groupby("patient")["post_symptoms"].nunique() == 1).all()
        assert data.end_outcome is not None and np.isfinite(data.end_outcome).all()


@pytest.mark.parametrize("name", list(CASES))
def test_data_regenerate_from_their_record(name: str) -> None:
    load, regenerate, read_record, _, settings, seed, _, _ = CASES[name]
    stored = load()
    fresh, truth = regenerate()
    assert stored.shape == fresh.shape
    pd.testing.assert_frame_equal(stored, fresh, atol=1e-6, check_dtype=False)
    record = read_record()
    assert record["seed"] == seed
    assert {k: v for k, v in record["design"].items() if k != "columns"} == settings
    assert record["effects"] == pytest.approx(datasets.true_effects(truth), abs=1e-12)
    np.testing.assert_allclose(record["params"]["lag"], truth.lag)


def test_true_within_mediation_effects_by_hand() -> None:
    effects = datasets.mediation_within_record()["effects"]
    a, b, c = 0.3, -0.3, -0.1
    sd_a, sd_b = datasets.MEDIATION_WITHIN_SETTINGS["path_sd"]
    cov_ab = datasets.MEDIATION_WITHIN_SETTINGS["path_corr"] * sd_a * sd_b
    assert effects["effect_on_mediator"] == pytest.approx(a)
    assert effects["mediator_effect"] == pytest.approx(b)
    assert effects["cov_random_paths"] == pytest.approx(cov_ab)
    assert effects["indirect_effect_within_fixed"] == pytest.approx(a * b)
    assert effects["indirect_effect_within"] == pytest.approx(a * b + cov_ab)
    lag = datasets.mediation_within_record()["params"]["lag"]
    phi_xx, phi_yy = lag[0][0], lag[2][2]
    assert effects["direct_path_within"] == pytest.approx(c)
    # x_t -> y_(t+2): c' phi_xx + ab + cov(a, b) + phi_yy c'.
    total = c * phi_xx + a * b + cov_ab + phi_yy * c
    assert effects["total_effect_within"] == pytest.approx(total)
    assert effects["direct_effect_within"] == pytest.approx(c * (phi_xx + phi_yy))
    # End of treatment: one effect, -.5, of both parts of trait-like alliance, each per SD of
    # its own level (patients 1, therapists .3).
    assert effects["end_trait_effect_patient_per_sd"] == pytest.approx(-0.5)
    assert effects["end_trait_effect_therapist_per_sd"] == pytest.approx(-0.5 * 0.3)
    assert effects["end_change_effect_per_sd"] == pytest.approx(-2.0 * 0.15)
    sample = datasets.mediation_within_record()["sample"]["indirect_effect_within"]
    assert sample == pytest.approx(datasets.regenerate_mediation_within()[1].expected_indirect())


def test_true_informant_effects_by_hand() -> None:
    effects = datasets.informants_record()["effects"]
    # Symptom trait = -.5 x patient-rated + 0 x therapist-rated + N(0, .6^2); traits SD 1.
    sd_y = math.sqrt(0.25 + 0.36)
    assert effects["trait_effect_patient"] == pytest.approx(-0.5)
    assert effects["trait_effect_patient_second"] == pytest.approx(0.0, abs=1e-12)
    assert effects["trait_effect_patient_std"] == pytest.approx(-0.5 / sd_y)
    assert effects["trait_effect_patient_difference"] == pytest.approx(-0.5)
    assert effects["trait_corr_informants_patient"] == pytest.approx(0.5)
    assert effects["state_effect"] == pytest.approx(-0.2)
    assert effects["state_effect_second"] == pytest.approx(-0.2)
    assert effects["state_effect_difference"] == pytest.approx(0.0, abs=1e-12)
    assert effects["trait_effect_therapist"] == pytest.approx(0.0, abs=1e-12)


def test_simulated_truth_keeps_the_latent_parts() -> None:
    """The observed table is traits + trend + states, exactly, from the truth's arrays."""
    df, truth = simulate_mechanisms(
        seed=3, design="two_series", patients_per_therapist=30, n_sessions=8, change_sd=0.2
    )
    n, t, k = truth.states.shape
    assert (n, t, k) == (30, 8, 2)
    time = np.arange(t) - 0.5 * (t - 1)
    z = truth.traits[:, None, :] + truth.states
    z[:, :, 0] += truth.changes[:, None] * time
    for c, col in enumerate(truth.columns):
        grid = df.pivot(index="patient", columns="session", values=col).to_numpy()
        np.testing.assert_allclose(grid, z[:, :, c], rtol=0, atol=1e-12)


def test_state_lag_ols_on_noise_free_and_on_hand_states() -> None:
    """Exact on a noise-free VAR(1) (coefficients = the lag matrix, SEs 0), and equal to the
    normal equations on a tiny hand-made set of states."""
    _, truth = simulate_mechanisms(seed=4, design="two_series", patients_per_therapist=5)
    phi = np.array([[0.5, 0.1], [-0.3, 0.2]])
    rng = np.random.default_rng(0)
    w = np.empty((5, 6, 2))
    w[:, 0] = rng.standard_normal((5, 2))
    for s in range(1, 6):
        w[:, s] = w[:, s - 1] @ phi.T
    truth.states = w
    coef, se = truth.state_lag_ols()
    np.testing.assert_allclose(coef, phi, atol=1e-10)
    np.testing.assert_allclose(se, 0.0, atol=1e-6)
    # One patient, three sessions: y_t = a x_(t-1) fitted through the origin on two transitions.
    truth.states = np.array([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]])
    coef, _ = truth.state_lag_ols()
    # rows of x: (1, 0), (0, 2); of y: (0, 2), (1, 1): x is invertible, coef = solve(x, y)'.
    expected = np.linalg.solve(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[0, 2], [1, 1]]))
    np.testing.assert_allclose(coef, expected.T, atol=1e-12)


@pytest.mark.parametrize("stem", ["06_within_mediation", "07_two_informants"])
def test_tutorial_parses_and_uses_the_profile(stem: str) -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from build import cells
    finally:
        sys.path.remove(str(ROOT / "docs"))
    source = (ROOT / "notebooks" / f"{stem}.py").read_text()
    parts = cells(source)
    assert parts[0][0] == "markdown" and parts[0][1].startswith("# ")
    for kind, text in parts:
        if kind == "code":
            compile(text, stem, "exec")
    # The sampler settings come from the profile (06 takes twice its draws: see the tutorial).
    assert re.search(r"draws=(2 \* )?DRAWS", source) and "tune=TUNE" in source
