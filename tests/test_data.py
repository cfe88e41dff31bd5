"""The patient x session grid: gaps, lags, codes, covariates, hash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_alliance import SessionData
from tests.conftest import ROLES, long_frame


@pytest.fixture
def small() -> SessionData:
    # Patient A skips session 3; patient B starts at session 2; rows are shuffled on purpose.
    df = long_frame(
        [
            ("T2", "B", 4, 5.0, np.nan),
            ("T1", "A", 1, 2.0, 1.0),
            ("T1", "A", 4, 6.0, 3.0),
            ("T1", "A", 2, 4.0, 2.0),
            ("T2", "B", 2, 1.0, 2.0),
            ("T2", "B", 3, np.nan, 0.0),
        ]
    )
    df["z"] = [0.5, 1.0, 1.0, 1.0, 0.5, 0.5]
    with pytest.warns(UserWarning):
        return SessionData.from_frame(df, covariates=["z"], **ROLES)


def test_grid_shape_coords_and_values(small):
    assert small.sessions.tolist() == [1, 2, 3, 4]
    assert small.coords == {
        "patient": ["A", "B"],
        "session": [1, 2, 3, 4],
        "therapist": ["T1", "T2"],
    }
    np.testing.assert_array_equal(small.x, [[2, 4, np.nan, 6], [np.nan, 1, np.nan, 5]])
    np.testing.assert_array_equal(small.y, [[1, 2, np.nan, 3], [np.nan, 2, 0, np.nan]])
    np.testing.assert_array_equal(small.present, [[1, 1, 0, 1], [0, 1, 1, 1]])
    assert small.first.tolist() == [0, 1]
    assert small.last.tolist() == [3, 3]
    assert small.patient_therapist.tolist() == [0, 1]
    np.testing.assert_array_equal(small.in_series, [[1, 1, 1, 1], [0, 1, 1, 1]])


def test_skipped_session_is_a_missing_lag_not_a_shorter_one(small):
    lag = small.lagged("predictor")
    # A's session 4 follows a skipped session 3: its lag is missing, not session 2's value.
    assert np.isnan(lag[0, 3])
    assert lag[0, 1] == 2.0
    assert lag[1, 3] != lag[1, 3]  # B's session 3 predictor is missing, so the lag at 4 is too


def test_covariates_one_row_per_patient(small):
    assert small.covariates["z"].tolist() == [1.0, 0.5]
    assert small.covariates.index.tolist() == ["A", "B"]


def test_long_view_and_describe(small):
    long = small.to_long()
    assert long[["patient", "session"]].values.tolist() == [
        ["A", 1],
        ["A", 2],
        ["A", 4],
        ["B", 2],
        ["B", 3],
        ["B", 4],
    ]
    d = small.describe()
    assert d["n_rows"] == 6 and d["skipped_sessions"] == 1
    assert d["missing_predictor_share"] == pytest.approx(2 / 7)


def test_hash_is_stable_and_sensitive(small):
    df = small.frame[["therapist", "patient", "session", "x", "y", "z"]].copy()
    with pytest.warns(UserWarning):
        again = SessionData.from_frame(df.sample(frac=1, random_state=1), covariates=["z"], **ROLES)
    assert again.data_hash == small.data_hash
    df.loc[0, "x"] += 0.001
    with pytest.warns(UserWarning):
        changed = SessionData.from_frame(df, covariates=["z"], **ROLES)
    assert changed.data_hash != small.data_hash


def test_unknown_variable_name_suggests():
    df = long_frame([("T", "A", 1, 1.0, 1.0), ("T", "B", 1, 2.0, 2.0)])
    with pytest.warns(UserWarning):
        d = SessionData.from_frame(df, **ROLES)
    with pytest.raises(ValueError, match="Did you mean 'predictor'"):
        d.variable("predicter")


def test_nonzero_session_origin():
    df = pd.DataFrame(
        {
            "patient": [1, 1, 1, 2, 2, 2],
            "session": [0, 1, 2, 5, 6, 7],
            "x": [1.0, 2.0, 1.5, 3.0, 2.5, 2.0],
            "y": [2.0, 1.0, 0.5, 1.5, 2.5, 1.0],
        }
    )
    d = SessionData.from_frame(df, patient="patient", session="session", predictor="x", outcome="y")
    assert d.sessions.tolist() == list(range(8))
    assert d.first.tolist() == [0, 5] and d.last.tolist() == [2, 7]
