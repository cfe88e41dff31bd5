"""Reading every supported format, the wide reshape and sessions from dates."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from bayes_alliance import DataValidationError, DataWarning, SessionData
from bayes_alliance.data.readers import (
    ReadError,
    looks_wide,
    read_table,
    sessions_from_dates,
    wide_to_long,
)


def long_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient": [1, 1, 1, 2, 2, 2],
            "therapist": [7, 7, 7, 8, 8, 8],
            "session": [1, 2, 3, 1, 2, 3],
            "wai": [3.5, 4.25, np.nan, 5.0, 4.5, 6.0],
            "oq": [80.0, 75.5, 70.0, 60.0, np.nan, 58.0],
        }
    )


def same_values(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    for c in want.columns:
        np.testing.assert_allclose(got[c].to_numpy(dtype=float), want[c].to_numpy(dtype=float))


# ------------------------------------------------------------------------------ formats
@pytest.mark.parametrize(("sep", "decimal"), [(",", "."), (";", ","), ("\t", "."), ("\t", ",")])
def test_csv_delimiter_and_decimal_comma_detected(tmp_path, sep, decimal):
    path = tmp_path / "data.csv"
    long_table().to_csv(path, sep=sep, decimal=decimal, index=False)
    df = read_table(path)
    same_values(df, long_table())
    assert df.attrs == {"source": str(path), "first_line": 2, "row_unit": "lines"}


def test_semicolon_export_with_decimal_commas_as_spss_writes_it(tmp_path):
    path = tmp_path / "export.txt"
    path.write_bytes("Patient;Sitzung;WAI\r\n1;1;3,5\r\n1;2;4\r\n2;1;\r\n".encode("cp1252"))
    df = read_table(path)
    assert df["WAI"].tolist()[:2] == [3.5, 4.0] and np.isnan(df["WAI"].iloc[2])
    assert df["Patient"].tolist() == [1, 1, 2]


def test_tsv_utf16_as_excel_unicode_text(tmp_path):
    path = tmp_path / "data.tsv"
    long_table().to_csv(path, sep="\t", index=False, encoding="utf-16")
    same_values(read_table(path), long_table())


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "data.parquet"
    long_table().to_parquet(path)
    df = read_table(path)
    same_values(df, long_table())
    assert df.attrs["first_line"] == 1 and df.attrs["row_unit"] == "rows"


def test_parquet_stored_index_becomes_a_column(tmp_path):
    path = tmp_path / "data.pq"
    long_table().set_index("patient").to_parquet(path)
    assert "patient" in read_table(path).columns


def test_excel_round_trip_and_sheet_choice(tmp_path):
    path = tmp_path / "data.xlsx"
    with pd.ExcelWriter(path) as w:
        pd.DataFrame({"note": ["cover sheet"]}).to_excel(w, sheet_name="about", index=False)
        long_table().to_excel(w, sheet_name="sessions", index=False)
    same_values(read_table(path, sheet="sessions"), long_table())
    same_values(read_table(path, sheet=1), long_table())
    assert list(read_table(path).columns) == ["note"]
    with pytest.raises(
        ReadError, match=r"as Excel: no sheet 'visits'; the workbook has \['about', 'sessions'\]"
    ):
        read_table(path, sheet="visits")


def test_excel_header_below_blank_rows(tmp_path):
    import openpyxl

    path = tmp_path / "data.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    for j, name in enumerate(["patient", "session", "x"], start=1):
        sheet.cell(row=3, column=j, value=name)
    sheet.cell(row=4, column=1, value="A")
    sheet.cell(row=4, column=2, value=1)
    sheet.cell(row=4, column=3, value=2.5)
    book.save(path)
    df = read_table(path)
    assert list(df.columns) == ["patient", "session", "x"]
    assert df.attrs["first_line"] + df.index[0] == 4  # the sheet's own row number


def test_spss_value_labels_name_ids_and_user_missing(tmp_path):
    path = tmp_path / "data.sav"
    df = long_table().astype(float)
    df.loc[2, "wai"] = -99.0
    pyreadstat.write_sav(
        df,
        path,
        variable_value_labels={
            "patient": {1.0: "Anna", 2.0: "Ben"},
            "wai": {-99.0: "not asked", 7.0: "very strong"},
        },
        missing_ranges={"wai": [-99.0]},
    )
    got = read_table(path)
    assert got["patient"].tolist() == ["Anna"] * 3 + ["Ben"] * 3
    assert got["therapist"].tolist() == [7, 7, 7, 8, 8, 8]  # no labels: whole numbers
    assert pd.api.types.is_float_dtype(got["wai"]) and np.isnan(got["wai"].iloc[2])
    assert got.attrs["row_unit"] == "cases"
    data = SessionData.from_frame(
        got, patient="patient", session="session", predictor="wai", outcome="oq"
    )
    assert data.patients.tolist() == ["Anna", "Ben"]


def test_stata_value_labels_for_ids_only(tmp_path):
    path = tmp_path / "data.dta"
    df = long_table()
    df["therapist_sex"] = [1, 1, 1, 2, 2, 2]
    pyreadstat.write_dta(
        df,
        path,
        variable_value_labels={
            "therapist": {7: "Dr Weiss", 8: "Dr Roth"},
            "therapist_sex": {1: "female", 2: "male"},
        },
    )
    got = read_table(path)
    assert got["therapist"].tolist() == ["Dr Weiss"] * 3 + ["Dr Roth"] * 3
    assert got["therapist_sex"].tolist() == [1, 1, 1, 2, 2, 2]  # a covariate stays numeric
    same_values(got[["session", "wai", "oq"]], long_table()[["session", "wai", "oq"]])


def test_duplicate_value_labels_keep_the_codes(tmp_path):
    path = tmp_path / "data.sav"
    pyreadstat.write_sav(
        long_table().astype(float), path, variable_value_labels={"patient": {1.0: "X", 2.0: "X"}}
    )
    with pytest.warns(DataWarning, match="name different codes alike"):
        got = read_table(path)
    assert got["patient"].tolist() == [1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("data.parquet", b"not parquet at all", r"'.*data\.parquet' as Parquet: "),
        (
            "data.xlsx",
            b"PK\x03\x04 truncated zip",
            r"'.*data\.xlsx' as Excel: not a readable workbook",
        ),
        ("data.sav", b"$FL2 broken", r"'.*data\.sav' as SPSS: "),
        ("data.dta", b"\x00\x01garbage", r"'.*data\.dta' as Stata: "),
        ("data.csv", b"\x00\x01\x02PAR1", r"'.*data\.csv' as CSV: the file holds binary data"),
        ("data.csv", b"\n\n  \n", r"as CSV: the file is empty"),
        ("data.csv", b'a,b\n1,"2\n', r"as CSV: .*EOF"),
        ("data.xls", b"\xd0\xcf\x11\xe0", r"as Excel: old \.xls files need the xlrd package"),
        ("data.json", b"{}", r"'.*data\.json': unknown file type '\.json'; known: \.csv"),
    ],
)
def test_unreadable_file_names_file_and_format(tmp_path, name, content, message):
    if name.endswith(".xls") and importlib.util.find_spec("xlrd") is not None:
        pytest.skip("xlrd is installed here, so .xls files are read")
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ReadError, match=message):
        read_table(path)


def test_missing_file_and_sheet_on_csv(tmp_path):
    with pytest.raises(ReadError, match=r"nowhere\.csv' as CSV: no such file"):
        read_table(tmp_path / "nowhere.csv")
    path = tmp_path / "data.csv"
    long_table().to_csv(path, index=False)
    with pytest.raises(ReadError, match="a sheet can only be chosen in an Excel file"):
        read_table(path, sheet="x")


def test_csv_line_numbers_survive_blank_lines_and_quoted_breaks(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('\npatient,note,x\nA,"two\nlines",1\n\nB,,2\n,,\nC,,oops\n')
    df = read_table(path)
    assert df["patient"].tolist() == ["A", "B", "C"]  # the all-empty row ',,' is dropped
    assert (df.attrs["first_line"] + df.index).tolist() == [3, 6, 8]


# --------------------------------------------------------------------------------- wide
def wide_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient": ["A", "B"],
            "therapist": ["T1", "T2"],
            "age": [30, 41],
            "wai_1": [3.0, 5.0],
            "wai_2": [3.5, np.nan],
            "wai_10": [4.0, np.nan],
            "oq_01": [90.0, 60.0],
            "oq_2": [85.0, np.nan],
            "oq_10": [80.0, np.nan],
            "comment": ["", "moved away"],
        }
    )


def test_wide_to_long_reshapes_and_drops_empty_sessions():
    with pytest.warns(DataWarning, match="drops columns that are neither ids nor matched.*comment"):
        long = wide_to_long(
            wide_table(),
            id_columns=["patient", "therapist", "age"],
            patterns={"alliance": "wai_{session}", "symptoms": "oq_{session}"},
        )
    assert list(long.columns) == ["patient", "therapist", "age", "session", "alliance", "symptoms"]
    assert long[["patient", "session"]].values.tolist() == [
        ["A", 1],
        ["A", 2],
        ["A", 10],
        ["B", 1],
    ]
    assert long["alliance"].tolist() == [3.0, 3.5, 4.0, 5.0]
    assert long["symptoms"].tolist() == [90.0, 85.0, 80.0, 60.0]
    assert long["age"].tolist() == [30, 30, 30, 41]


def test_wide_to_long_errors_name_the_columns():
    with pytest.raises(DataValidationError) as exc:
        wide_to_long(
            wide_table(),
            id_columns=["patinet"],
            patterns={"alliance": "WAI{session}", "symptoms": "oq", "session": "x_{session}"},
        )
    msg = str(exc.value)
    assert "id column 'patinet' not found (did you mean 'patient'?)" in msg
    assert "pattern 'oq' for 'symptoms' needs '{session}' once" in msg
    assert "pattern 'WAI{session}' for 'alliance' matches no column (did you mean 'wai_1'?)" in msg
    assert "columns not matched by any pattern: patient, therapist, age, wai_1" in msg
    assert "output column 'session' is also an id column or the session" in msg


def test_wide_to_long_two_columns_for_one_session():
    df = wide_table().assign(wai_01=1.0)
    with pytest.raises(
        DataValidationError, match="columns 'wai_1' and 'wai_01' both give session 1"
    ):
        wide_to_long(df, id_columns=["patient"], patterns={"x": "wai_{session}"})


def test_wide_table_passed_as_long_gets_one_hint():
    with pytest.raises(DataValidationError) as exc:
        SessionData.from_frame(
            wide_table(), patient="patient", session="session", predictor="wai", outcome="oq"
        )
    assert len(exc.value.problems) == 1
    msg = str(exc.value)
    assert "missing columns 'session', 'wai', 'oq': the table looks wide" in msg
    assert "wai_1 ... wai_10 (3 columns)" in msg
    assert "patterns={'wai': 'wai_{session}', 'oq': 'oq_{session}'}" in msg


def test_looks_wide_needs_three_numbered_columns():
    assert looks_wide(pd.DataFrame(columns=["patient", "session", "x1", "x2"])) is None
    assert looks_wide(pd.DataFrame(columns=["id", "s1", "s2", "s3"])) is not None


# -------------------------------------------------------------------------------- dates
def test_sessions_numbered_by_date_with_gaps():
    df = pd.DataFrame(
        {
            "patient": ["A", "A", "B", "A", "B"],
            "visit": ["14.03.2021", "01.03.2021", "02.01.2020", "28.03.2021", "09.01.2020"],
        },
        index=[10, 11, 12, 13, 14],
    )
    out = sessions_from_dates(df, patient="patient", date="visit")
    assert out.index.tolist() == [10, 11, 12, 13, 14]  # rows stay where they were
    assert out["session"].tolist() == [2, 1, 1, 3, 2]
    np.testing.assert_array_equal(out["days_since_previous"], [13, np.nan, np.nan, 14, 7])


def test_dates_replace_the_session_column_and_datetimes_work():
    df = pd.DataFrame(
        {
            "id": [1, 1, 2, 2],
            "session": pd.to_datetime(
                ["2021-01-05 10:00", "2021-01-05 08:00", "2021-02-01", "2021-01-01"],
                format="ISO8601",
            ),
        }
    )
    out = sessions_from_dates(df, patient="id", date="session", session="session", gap=None)
    assert out["session"].tolist() == [2, 1, 2, 1]
    assert list(out.columns) == ["id", "session"]


def test_date_problems_name_rows_as_file_lines():
    df = pd.DataFrame(
        {"p": [1, 1, 1, 2, None], "d": ["2021-03-01", "someday", None, "2021-01-01", "2021-01-02"]}
    )
    df.attrs = {"first_line": 2, "row_unit": "lines"}
    with pytest.raises(DataValidationError) as exc:
        sessions_from_dates(df, patient="p", date="d")
    msg = str(exc.value)
    assert "column 'p': empty id (lines 6)" in msg
    assert "column 'd': empty date of patient 1 (lines 4)" in msg
    assert "column 'd': not a date (write YYYY-MM-DD), patient 1 (lines 3)" in msg


def test_date_ties_and_ambiguous_formats():
    df = pd.DataFrame({"p": [1, 1, 2], "d": ["2021-03-01", "2021-03-01", "2021-03-02"]})
    with pytest.raises(
        DataValidationError,
        match=r"same date \(their order is unknown\): patient 1 \(rows 0, 1\)",
    ):
        sessions_from_dates(df, patient="p", date="d")
    df = pd.DataFrame({"p": [1, 1], "d": ["03/04/2021", "05/04/2021"]})
    with pytest.raises(DataValidationError, match="pass date_format"):
        sessions_from_dates(df, patient="p", date="d")
    out = sessions_from_dates(df, patient="p", date="d", date_format="%m/%d/%Y")
    assert out["days_since_previous"].tolist()[1] == 61


def test_numeric_yyyymmdd_dates():
    df = pd.DataFrame({"p": [1, 1], "d": [20210302, 20210301]})
    assert sessions_from_dates(df, patient="p", date="d")["session"].tolist() == [2, 1]


def test_csv_to_session_data_end_to_end(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(
        "client;wai_1;wai_2;wai_3;oq_1;oq_2;oq_3\nA;3,5;4;4,5;90;80;70\nB;5;5,5;6;60;55;50\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        long = wide_to_long(
            read_table(path),
            id_columns=["client"],
            patterns={"alliance": "wai_{session}", "symptoms": "oq_{session}"},
        )
        data = SessionData.from_frame(
            long, patient="client", session="session", predictor="alliance", outcome="symptoms"
        )
    np.testing.assert_array_equal(data.x, [[3.5, 4.0, 4.5], [5.0, 5.5, 6.0]])
