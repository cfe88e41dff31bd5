"""Every validation rule, each with a bad input and the message it must produce."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bayes_alliance import DataValidationError, DataWarning, SessionData
from tests.conftest import ROLES

ROLES_2L = {k: v for k, v in ROLES.items() if k != "therapist"}


def good(n_pat: int = 12, n_sess: int = 4, n_ther: int = 12) -> pd.DataFrame:
    rows = []
    for i in range(n_pat):
        for t in range(1, n_sess + 1):
            rows.append((f"T{i % n_ther}", f"P{i}", t, 3.0 + 0.1 * t + i * 0.01, 1.0 - 0.05 * t))
    return pd.DataFrame(rows, columns=["therapist", "patient", "session", "x", "y"])


def problems(df: pd.DataFrame, **kw) -> str:
    roles = {**ROLES, **kw.pop("roles", {})}
    with pytest.raises(DataValidationError) as exc:
        SessionData.from_frame(df, **roles, **kw)
    return str(exc.value)


def test_good_data_passes_without_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = SessionData.from_frame(good(), **ROLES)
    assert d.n_patients == 12


def test_missing_columns_named():
    msg = problems(good().drop(columns=["y", "therapist"]))
    assert "missing column 'y'" in msg
    assert "missing column 'therapist'" in msg
    assert msg.startswith("2 problems")


def test_null_patient_and_therapist_ids_name_rows():
    df = good()
    df.loc[5, "patient"] = None
    df.loc[7, "therapist"] = None
    msg = problems(df)
    assert "column 'patient': empty id (rows 5)" in msg
    assert "column 'therapist': empty id (rows 7)" in msg


def test_duplicate_patient_session():
    df = pd.concat([good(), good().iloc[[3]]], ignore_index=True)
    msg = problems(df)
    assert "duplicate (patient, session) pair; rows 3, 48" in msg
    assert "P0/session 4" in msg


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.5, "column 'session': session number is not a whole number (rows 2)"),
        ("second", "column 'session': session number is not a whole number (rows 2)"),
        (-1, "column 'session': negative session number (rows 2)"),
        (None, "column 'session': empty session number (rows 2)"),
    ],
)
def test_bad_session_numbers(value, expected):
    df = good()
    df["session"] = df["session"].astype(object)
    df.loc[2, "session"] = value
    assert expected in problems(df)


def test_non_numeric_and_infinite_values():
    df = good()
    df["x"] = df["x"].astype(object)
    df.loc[1, "x"] = "high"
    df.loc[9, "y"] = np.inf
    msg = problems(df)
    assert "column 'x': value is not a number (rows 1)" in msg
    assert "column 'y': infinite value (rows 9)" in msg


def test_patient_with_two_therapists_unless_crossed():
    df = good()
    df.loc[df.patient == "P3", "therapist"] = ["T3", "T3", "T4", "T4"]
    msg = problems(df)
    assert "patient is seen by more than one therapist" in msg
    assert "(ids P3)" in msg
    d = SessionData.from_frame(df, crossed=True, **ROLES)
    assert d.patient_therapist is None
    i = d.patients.tolist().index("P3")
    assert list(d.therapists[d.cell_therapist[i]]) == ["T3", "T3", "T4", "T4"]


def test_variable_entirely_missing():
    df = good()
    df["y"] = np.nan
    assert "column 'y': variable is entirely missing" in problems(df)


def test_fewer_than_two_patients():
    df = good()
    df = df[df.patient == "P0"]
    assert "at least 2 patients are needed, found 1" in problems(df)


def test_covariate_varying_within_patient():
    df = good()
    df["z"] = 1.0
    df.loc[(df.patient == "P2") & (df.session == 3), "z"] = 2.0
    msg = problems(df, covariates=["z"])
    assert "column 'z': patient-level covariate varies within patient (ids P2)" in msg


def test_all_problems_reported_together():
    df = good()
    df["x"] = df["x"].astype(object)
    df.loc[0, "x"] = "n/a"
    df.loc[1, "patient"] = None
    df["session"] = df["session"].astype(float)
    df.loc[2, "session"] = 1.5
    with pytest.raises(DataValidationError) as exc:
        SessionData.from_frame(df, **ROLES)
    assert len(exc.value.problems) == 3
    assert re.match(r"3 problems in the session data:", str(exc.value))


def test_long_row_lists_are_abbreviated():
    df = good()
    df["x"] = df["x"].astype(object)
    df.loc[:19, "x"] = "?"
    assert "(rows 0, 1, 2, 3, 4, 5, 6, 7 and 12 more)" in problems(df)


def test_role_given_twice():
    assert "column 'x': column is given more than one role" in problems(
        good(), roles={"outcome": "x"}
    )


def test_warning_for_short_series():
    df = good()
    df = df[~((df.patient == "P1") & (df.session > 2))]
    with pytest.warns(
        DataWarning, match=r"1 patient\(s\) have fewer than 3 observed sessions \(ids P1\)"
    ):
        SessionData.from_frame(df, **ROLES)


def test_warning_for_few_therapists_says_what_it_costs():
    with pytest.warns(DataWarning, match=r"only 4 therapists.*understate the\s+uncertainty"):
        SessionData.from_frame(good(n_ther=4), **ROLES)


def test_no_therapist_warning_for_two_level_data():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = SessionData.from_frame(good(n_ther=4).drop(columns="therapist"), **ROLES_2L)
    assert d.therapists is None and d.n_therapists == 0


def test_pandas3_dtypes_string_ids_and_nullable_floats():
    df = good()
    df["patient"] = df["patient"].astype("string")
    df["therapist"] = df["therapist"].astype("str")
    df["x"] = df["x"].astype("Float64")
    df.loc[4, "x"] = pd.NA
    df["session"] = df["session"].astype("Int64")
    d = SessionData.from_frame(df, **ROLES)
    assert np.isnan(d.x[1, 0])
    assert d.patients[0] == "P0"


def test_integer_ids_work():
    df = good()
    df["patient"] = df["patient"].str[1:].astype(int)
    df["therapist"] = df["therapist"].str[1:].astype(int)
    d = SessionData.from_frame(df, **ROLES)
    assert d.patients.tolist() == list(range(12))
    assert d.patient_therapist.tolist() == list(range(12))
