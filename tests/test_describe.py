"""SessionData.describe and `bayes-alliance describe`: design counts, missingness, ICCs."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.analysis.lmm import fit_reml
from bayes_alliance.cli.app import main
from bayes_alliance.data.describe import nested_variance_components
from bayes_alliance.data.session_data import SessionData


def test_balanced_nested_anova_by_hand():
    # therapist 1: patients [1, 3] and [5, 7]; therapist 2: [10, 12] and [14, 16].
    # SS_W = 4 x 2 = 8 on 4 df -> MS_W = 2. Patient means 2, 6 | 11, 15; therapist means 4, 13.
    # SS_B = 2 (4 + 4) + 2 (4 + 4) = 32 on 2 df -> MS_B = 16 -> var_P = (16 - 2) / 2 = 7.
    # Grand mean 8.5: SS_A = 4 (4.5^2) x 2 = 162 on 1 df -> var_T = (162 - 16) / (2 x 2) = 36.5.
    y = np.array([1, 3, 5, 7, 10, 12, 14, 16], dtype=float)
    patient = np.repeat([0, 1, 2, 3], 2)
    therapist = np.repeat([0, 1], 4)
    assert nested_variance_components(y, patient, therapist) == pytest.approx((36.5, 7.0, 2.0))


def test_unbalanced_one_way_anova_by_hand():
    # Patients [1, 3] and [6, 8, 10]: MS_W = (2 + 8) / 3; grand mean 5.6,
    # SS_B = 2 (3.6^2) + 3 (2.4^2) = 43.2 on 1 df; n0 = 5 - (4 + 9) / 5 = 2.4.
    y = np.array([1, 3, 6, 8, 10], dtype=float)
    got = nested_variance_components(y, np.array([0, 0, 1, 1, 1]))
    assert got == pytest.approx((0.0, (43.2 - 10 / 3) / 2.4, 10 / 3))


def test_unbalanced_nested_anova_by_hand():
    # Therapist A: patients [1, 3] and [4]; therapist B: [8, 10, 12]. N = 6, a = 2, B = 3.
    # Patient means 2, 4, 10; therapist means 8/3, 10; grand 38/6.
    # SS_W = 2 + 0 + 8 = 10 on 3 df. SS_B = 2 (2 - 8/3)^2 + (4 - 8/3)^2 + 0 = 8/9 + 16/9 = 8/3
    # on 1 df. n0 = (6 - (4 + 1) / 3 - 9 / 3) / 1 = 4/3.
    # SS_A = 3 (8/3 - 19/3)^2 + 3 (10 - 19/3)^2 = 3 (121/9) x 2 = 242/3 on 1 df.
    # n0' = ((5/3 + 3) - (4 + 1 + 9) / 6) / 1 = 14/3 - 7/3 = 7/3; n0'' = (6 - 18/6) / 1 = 3.
    y = np.array([1, 3, 4, 8, 10, 12], dtype=float)
    patient = np.array([0, 0, 1, 2, 2, 2])
    therapist = np.array([0, 0, 0, 1, 1, 1])
    ms_w, ms_b, ms_a = 10 / 3, 8 / 3, 242 / 3
    var_p = max((ms_b - ms_w) / (4 / 3), 0.0)  # negative -> 0
    var_t = (ms_a - ms_w - 7 / 3 * var_p) / 3
    assert var_p == 0.0
    assert nested_variance_components(y, patient, therapist) == pytest.approx((var_t, 0.0, ms_w))


def test_one_way_equals_reml_on_balanced_sleepstudy(reference_dir):
    # Balanced data: the ANOVA estimator of the patient variance is REML's (when positive).
    df = pd.read_csv(reference_dir / "sleepstudy-lme4" / "sleepstudy.csv")
    y = df["Reaction"].to_numpy(float)
    ones = np.ones((len(y), 1))
    reml = fit_reml(y, ones, ones, df["Subject"].to_numpy())
    _, var_p, var_w = nested_variance_components(y, df["Subject"].to_numpy())
    assert var_p == pytest.approx(float(reml.random_cov[0, 0]), rel=1e-5)
    assert var_w == pytest.approx(reml.sigma2, rel=1e-5)


def test_recovers_simulated_components():
    # Independent truth: scores drawn with variances 0.5 (therapist), 1.0 (patient), 2.0.
    rng = np.random.default_rng(11)
    n_t, per_t = 200, 6
    sizes = rng.integers(3, 15, size=n_t * per_t)
    therapist = np.repeat(np.arange(n_t), per_t)
    t_eff = rng.normal(0, np.sqrt(0.5), n_t)[therapist]
    p_eff = rng.normal(0, 1.0, n_t * per_t)
    pat = np.repeat(np.arange(n_t * per_t), sizes)
    y = 3 + t_eff[pat] + p_eff[pat] + rng.normal(0, np.sqrt(2.0), len(pat))
    got = nested_variance_components(y, pat, therapist[pat])
    assert got == pytest.approx((0.5, 1.0, 2.0), rel=0.15)


def grid_frame() -> pd.DataFrame:
    rows = [
        ("T1", "A", 1, 1.0, 2.0, 0.5),
        ("T1", "A", 2, 3.0, np.nan, 0.5),
        ("T1", "A", 4, 2.0, 3.0, 0.5),
        ("T1", "B", 1, 5.0, 4.0, 1.5),
        ("T1", "B", 2, 7.0, 6.0, 1.5),
        ("T1", "B", 3, 6.0, 5.0, 1.5),
        ("T2", "C", 1, 10.0, 1.0, np.nan),
        ("T2", "C", 2, 12.0, 2.0, np.nan),
        ("T2", "C", 3, 11.0, 0.0, np.nan),
    ]
    return pd.DataFrame(rows, columns=["tid", "pid", "session", "wai", "oq", "age"])


def test_session_data_describe_tables():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(
            grid_frame(),
            patient="pid",
            session="session",
            predictor="wai",
            outcome="oq",
            therapist="tid",
            covariates=["age"],
        )
    d = data.describe()
    design = d.design["value"]
    assert design["n_patients"] == 3 and design["n_therapists"] == 2 and design["n_rows"] == 9
    assert (design["patients_per_therapist_min"], design["patients_per_therapist_max"]) == (1, 2)
    assert design["patients_per_therapist_median"] == 1.5
    assert design["sessions_per_patient_median"] == 3 and design["skipped_sessions"] == 1
    v = d.variables
    assert v.loc["oq", "n_observed"] == 8 and v.loc["oq", "missing_share"] == pytest.approx(1 / 9)
    assert v.loc["wai", "mean"] == pytest.approx(57 / 9)
    assert v.loc["wai", "sd"] == pytest.approx(np.std(grid_frame()["wai"], ddof=1))
    var_t, var_p, var_w = nested_variance_components(
        np.array([1, 3, 2, 5, 7, 6, 10, 12, 11.0]),
        np.repeat([0, 1, 2], 3),
        np.repeat([0, 0, 1], 3),
    )
    total = var_t + var_p + var_w
    assert v.loc["wai", "icc_patient"] == pytest.approx(var_p / total)
    assert v.loc["wai", "icc_therapist"] == pytest.approx(var_t / total)
    assert v.loc["age", "level"] == "patient" and v.loc["age", "n_observed"] == 2
    assert np.isnan(v.loc["age", "icc_patient"])
    # the plain counts of the provenance and the report, as before
    assert d["n_rows"] == 9 and d["missing_outcome_share"] == pytest.approx(2 / 10)
    md = d.to_markdown()
    assert "| icc_patient" in md
    assert re.search(r"\| patients_per_therapist_max +\| 2 +\|", md)
    assert d.to_frame().index.tolist() == ["wai", "oq", "age"]


def test_describe_command(tmp_path, capsys):
    path = tmp_path / "d.csv"
    df = grid_frame()
    df.loc[0, "oq"] = -99
    df.to_csv(path, index=False)
    flags = ["--patient", "pid", "--session", "session", "--predictor", "wai", "--outcome", "oq"]
    flags += ["--therapist", "tid", "--covariates", "age"]
    out = tmp_path / "desc.csv"
    rc = main(["describe", str(path), *flags, "--missing-code", "oq=-99", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "| oq " in captured.out and "icc_therapist" in captured.out
    written = pd.read_csv(out, nrows=3)
    assert written["variable"].tolist() == ["wai", "oq", "age"]
    assert written.loc[1, "n_observed"] == 7  # the -99 declared missing
    assert main(["describe", str(path), *flags, "--out", str(out)]) == 2  # exists, no --force
    assert main(["describe", str(path), *flags[:6]]) == 2  # no outcome
