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


def test_the_few_therapists_warning_needs_no_docs_to_be_read():
    """The warning is also printed in the report, for a journal's readers: it says what to do
    in words and points at no file of this repository (it once pointed at "METHODS.md
    section 8", which did not exist, and then at docs/methods.md)."""
    with pytest.warns(DataWarning) as caught:
        SessionData.from_frame(good(n_ther=4), **ROLES)
    text = " ".join(str(w.message) for w in caught)
    assert "only 4 therapists" in text and "two-level model" in text, text
    assert "METHODS.md" not in text and "docs/" not in text, text


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


# ------------------------------------------------------ warnings that protect the model
def warned(df: pd.DataFrame, **kw) -> list[str]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SessionData.from_frame(df, **{**ROLES, **kw})
    assert all(issubclass(w.category, DataWarning) for w in caught)
    return [str(w.message) for w in caught]


def test_sentinel_missing_codes_warned_with_file_lines():
    df = good()
    df.loc[5, "x"] = -99
    df.loc[[9, 30], "y"] = 999
    df.attrs["first_line"] = 2
    msgs = warned(df)
    assert any(
        m.startswith("column 'x': -99 looks like a missing-value code (lines 7)") for m in msgs
    )
    assert any("column 'y': 999 looks like a missing-value code (lines 11, 32)" in m for m in msgs)


def test_plausible_score_shaped_like_a_code_is_not_warned():
    df = good()
    df["y"] = np.linspace(20, 180, len(df))  # an OQ-45 total: 99 is a real score
    df.loc[3, "y"] = 99
    assert warned(df) == []


def test_session_far_outside_the_rest_is_warned():
    df = good()
    df.loc[5, "session"] = 1000  # a typo for 2
    msgs = warned(df)
    assert any(
        "column 'session': session numbers 1000 lie far from the rest (1 to 4) (rows 5)" in m
        and "1000 columns instead of 4" in m
        for m in msgs
    )


def test_spaced_assessments_are_not_far_sessions():
    df = good(n_sess=5)
    df["session"] = df["session"].map({1: 0, 2: 4, 3: 12, 4: 26, 5: 52})
    assert warned(df) == []


def test_constant_columns_warned():
    df = good()
    df["y"] = 2.0
    df["z"] = 1.0
    msgs = warned(df, covariates=["z"])
    assert "column 'y' is constant (every observation has 2)" in msgs[0]
    assert "column 'z' is constant (every patient has 1)" in msgs[1]


def test_misspelt_column_gets_did_you_mean():
    msg = problems(good().rename(columns={"x": "Alliance"}), roles={"predictor": "aliance"})
    assert "missing column 'aliance' (did you mean 'Alliance'?)" in msg


def test_problems_name_file_lines_and_survive_filtering():
    df = good()
    df["x"] = df["x"].astype(object)
    df.loc[5, "x"] = "high"
    df.attrs.update(first_line=2, row_unit="lines")
    df = df[df.session != 1]  # labels, and so line numbers, survive the filter
    assert "column 'x': value is not a number (lines 7)" in problems(df)
    df = pd.concat([df, df.loc[[6]]])
    assert "duplicate (patient, session) pair; lines 8, 8" in problems(df)


def test_decimal_commas_get_a_hint():
    df = good()
    df["x"] = df["x"].map(lambda v: f"{v:.2f}".replace(".", ","))
    assert "value is not a number (decimal commas? read_table detects them)" in problems(df)


def test_session_dates_point_to_sessions_from_dates():
    df = good()
    df["session"] = pd.Timestamp("2021-01-01") + pd.to_timedelta(df["session"] * 7, unit="D")
    assert "the session column holds dates; number the sessions" in problems(df)
    df["session"] = df["session"].dt.strftime("%d.%m.%Y")
    assert "sessions_from_dates (command line: --dates)" in problems(df)


def test_absurd_session_numbers_are_problems_not_a_huge_grid():
    df = good()
    df.loc[0, "session"] = 20210301
    assert "session number above 100,000 (a date written as a number?" in problems(df)
    many = pd.DataFrame(
        {"patient": np.arange(300), "session": 1, "x": np.arange(300.0), "y": 1.0}
    ).astype({"session": int})
    many.loc[0, "session"] = 99_999
    msg = problems(many, roles={"therapist": None})
    assert "the grid of 300 patients x every session number between would have 29,999,700" in msg


def test_mixed_text_and_number_ids_become_text():
    df = good(n_ther=12)
    df["patient"] = df["patient"].astype(object)
    df.loc[df.patient == "P0", "patient"] = 0  # a spreadsheet column with one number
    d = SessionData.from_frame(df, **ROLES)
    assert "0" in d.patients.tolist() and "P1" in d.patients.tolist()


def test_doubled_and_reserved_column_names():
    df = good()
    df.columns = ["therapist", "patient", "session", "x", "x"]
    assert "column 'x': 2 columns have this name" in problems(df, roles={"outcome": "y"})
    df = good().rename(columns={"y": "session_code"})
    assert "column 'session_code': name is reserved" in problems(
        df, roles={"outcome": "session_code"}
    )


def test_long_table_with_item_columns_and_a_misspelt_session_gets_did_you_mean():
    df = good().rename(columns={"session": "Session"})
    for k in range(1, 5):  # questionnaire items: numbered columns, but the table is long
        df[f"wai_{k}"] = 1.0
    msg = problems(df)
    assert "missing column 'session' (did you mean 'Session'?)" in msg
    assert "looks wide" not in msg
