"""Property-based tests: readers and validation under abuse.

Any table either becomes session data or raises the one DataValidationError listing its
problems; any file either reads or raises ReadError. Never another exception, and no warning
other than DataWarning.
"""

from __future__ import annotations

import os
import string
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bayes_alliance import DataValidationError, DataWarning, SessionData
from bayes_alliance.data.readers import ReadError, read_table, sessions_from_dates, wide_to_long
from bayes_alliance.data.roles import Roles
from bayes_alliance.data.validate import Problem

# Modest by default (the file runs in seconds); raise it for a deeper hunt, e.g.
# BAYES_ALLIANCE_EXAMPLES=5000 pytest tests/test_properties.py
EXAMPLES = int(os.environ.get("BAYES_ALLIANCE_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NAMES = ["patient", "therapist", "session", "x", "y", "z"]

cells = st.one_of(
    st.none(),
    st.integers(-3, 12),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=4),
    st.sampled_from(["-99", "999", "1,5", "2021-03-01", "14.03.2021", "", " ", "NA", "1e400"]),
    st.sampled_from([pd.Timestamp("2021-01-01"), complex(1, 2), b"7", (1, 2), [3]]),
)


@st.composite
def columns(draw, n: int) -> pd.Series:
    """One column of ``n`` cells in one of the dtypes real tables arrive in."""
    kind = draw(
        st.sampled_from(
            ["object", "int", "float", "str", "Int64", "Float64", "category", "datetime", "bool"]
        )
    )
    if kind == "int":
        return pd.Series(draw(st.lists(st.integers(-2, 2000), min_size=n, max_size=n)))
    if kind in ("float", "Float64"):
        values = draw(st.lists(st.floats(-1e6, 1e6) | st.just(np.nan), min_size=n, max_size=n))
        return pd.Series(values, dtype="float64" if kind == "float" else "Float64")
    if kind == "Int64":
        values = draw(st.lists(st.integers(-2, 30) | st.none(), min_size=n, max_size=n))
        return pd.Series(values, dtype="Int64")
    if kind in ("str", "category"):
        values = draw(
            st.lists(
                st.text(string.ascii_letters + "0123456789,.-", max_size=3), min_size=n, max_size=n
            )
        )
        return pd.Series(values, dtype="str" if kind == "str" else "category")
    if kind == "datetime":
        days = draw(st.lists(st.integers(0, 4000), min_size=n, max_size=n))
        return pd.Series(pd.Timestamp("2015-01-01") + pd.to_timedelta(days, unit="D"))
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return pd.Series(draw(st.lists(cells, min_size=n, max_size=n)), dtype=object)


@st.composite
def abused_tables(draw) -> pd.DataFrame:
    """Any columns (some roles missing, doubled names), any dtypes, any index, any attrs."""
    n = draw(st.integers(0, 12))
    names = draw(st.permutations(NAMES))
    if draw(st.integers(0, 4)) == 0:  # now and then a role column missing or doubled
        names = draw(st.lists(st.sampled_from([*NAMES, "other"]), max_size=8))
    df = pd.DataFrame({i: draw(columns(n)) for i in range(len(names))})
    df.columns = pd.Index(names, dtype=object)
    index = draw(st.sampled_from(["range", "shuffled", "duplicated", "text"]))
    if index == "shuffled":
        df.index = draw(st.permutations(list(range(n))))
    elif index == "duplicated":
        df.index = [0] * n
    elif index == "text":
        df.index = [f"r{i}" for i in range(n)]
    if draw(st.booleans()):
        df.attrs = {"first_line": draw(st.integers(1, 5)), "row_unit": "lines"}
    return df


@st.composite
def near_valid_tables(draw) -> pd.DataFrame:
    """Long tables that often pass, with a few cells abused: the grid path gets exercised."""
    n_pat = draw(st.integers(1, 5))
    rows = []
    for p in range(n_pat):
        sessions = draw(st.lists(st.integers(0, 8), min_size=1, max_size=6, unique=True))
        for s in sessions:
            rows.append((f"T{p % 2}", draw(st.sampled_from([f"P{p}", p])), s))
    df = pd.DataFrame(rows, columns=["therapist", "patient", "session"])
    df["patient"] = df["patient"].astype(object)
    n = len(df)
    for c in ("x", "y", "z"):
        df[c] = draw(st.lists(st.floats(-5, 5) | st.just(np.nan), min_size=n, max_size=n))
    for _ in range(draw(st.integers(0, 3))):
        c = draw(st.sampled_from(NAMES))
        i = draw(st.integers(0, n - 1))
        df[c] = df[c].astype(object)
        df.loc[i, c] = draw(cells)
    return df


roles = st.builds(
    Roles,
    patient=st.just("patient"),
    session=st.just("session"),
    predictor=st.just("x"),
    outcome=st.just("y"),
    therapist=st.sampled_from([None, "therapist"]),
    covariates=st.sampled_from([(), ("z",)]),
    crossed=st.booleans(),
)


@contextmanager
def only_data_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    others = [
        f"{w.category.__name__}: {w.message}" for w in caught if w.category is not DataWarning
    ]
    assert not others, others


def session_data_or_validation_error(df: pd.DataFrame, r: Roles) -> SessionData | None:
    """The property itself, with the grid checked against the table when it is built."""
    with only_data_warnings():
        try:
            data = SessionData.from_roles(df, r)
        except DataValidationError as exc:
            assert exc.problems and all(isinstance(p, Problem) for p in exc.problems)
            assert str(exc).startswith(f"{len(exc.problems)} problem")
            return None
    assert int(data.present.sum()) == len(df)
    assert data.x.shape == (data.n_patients, data.n_sessions)
    assert len(set(map(str, data.patients))) == data.n_patients
    assert np.all(data.first <= data.last)
    assert data.covariates.shape == (data.n_patients, len(r.covariates))
    return data


@SETTINGS
@given(abused_tables(), roles)
def test_any_table_becomes_data_or_one_validation_error(df, r):
    data = session_data_or_validation_error(df, r)
    event("built" if data is not None else "validation error")


@settings(max_examples=2 * EXAMPLES, deadline=None)
@given(near_valid_tables(), roles)
def test_near_valid_tables_become_data_or_one_validation_error(df, r):
    data = session_data_or_validation_error(df, r)
    event("built" if data is not None else "validation error")


# ----------------------------------------------------------------------------- readers
@SETTINGS
@given(
    content=st.binary(max_size=300)
    | st.text(alphabet=",;\t\n\r\"' abc019.-", max_size=200).map(str.encode),
    ext=st.sampled_from([".csv", ".txt", ".tsv", ".parquet", ".xlsx", ".sav", ".dta"]),
)
def test_any_file_reads_or_raises_read_error(tmp_path_factory, content, ext):
    path = tmp_path_factory.mktemp("abuse") / f"data{ext}"
    path.write_bytes(content)
    with only_data_warnings():
        try:
            df = read_table(path)
        except ReadError as exc:
            assert str(path) in str(exc)
            return
    assert isinstance(df, pd.DataFrame) and df.attrs["source"] == str(path)
    session_data_or_validation_error(df, Roles("patient", "session", "x", "y"))


ident = st.text(string.ascii_lowercase, min_size=1, max_size=6)


@st.composite
def numeric_tables(draw) -> pd.DataFrame:
    names = draw(st.lists(ident, min_size=1, max_size=5, unique=True))
    n = draw(st.integers(1, 8))
    df = pd.DataFrame()
    for c in names:
        kind = draw(st.sampled_from(["float", "int", "id"]))
        if kind == "float":
            values = st.floats(allow_nan=True, allow_infinity=False, width=64)
            df[c] = draw(st.lists(values, min_size=n, max_size=n))
        elif kind == "int":
            df[c] = draw(st.lists(st.integers(-(10**6), 10**6), min_size=n, max_size=n))
        else:
            # A prefix keeps ids clear of the words pandas reads as missing ("NA", "null").
            ids = st.text(string.ascii_letters, max_size=4).map(lambda t: "P" + t)
            df[c] = draw(st.lists(ids, min_size=n, max_size=n))
    return df


@SETTINGS
@given(
    df=numeric_tables(),
    dialect=st.sampled_from([(",", "."), (";", ","), (";", "."), ("\t", "."), ("\t", ",")]),
)
def test_csv_round_trip_in_every_dialect(tmp_path_factory, df, dialect):
    sep, decimal = dialect
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    df.to_csv(path, sep=sep, decimal=decimal, index=False)
    got = read_table(path)
    # A row with nothing in it is dropped by design; the rest keep their labels.
    kept = df[~df.isna().all(axis=1)]
    assert list(got.columns) == list(df.columns)
    assert got.index.tolist() == kept.index.tolist()
    for c in df.columns:
        if pd.api.types.is_numeric_dtype(df[c]):
            np.testing.assert_array_equal(
                got[c].to_numpy(dtype=float), kept[c].to_numpy(dtype=float)
            )
        else:
            assert got[c].tolist() == kept[c].tolist()


@SETTINGS
@given(df=near_valid_tables(), sep=st.sampled_from([",", ";", "\t"]), r=roles)
def test_csv_problems_name_real_line_numbers(tmp_path_factory, df, sep, r):
    path = tmp_path_factory.mktemp("lines") / "data.csv"
    df.to_csv(path, sep=sep, index=False)
    n_lines = len(path.read_text().splitlines())
    try:
        got = read_table(path)
    except ReadError:
        return
    with only_data_warnings():
        try:
            SessionData.from_roles(got, r)
        except DataValidationError as exc:
            for p in exc.problems:
                assert p.unit == "lines" or not p.rows
                assert all(2 <= int(line) <= n_lines for line in p.rows), (p, n_lines)


# ----------------------------------------------------------------------------- reshapes
@SETTINGS
@given(
    values=st.lists(
        st.lists(st.floats(-10, 10) | st.just(np.nan), min_size=4, max_size=4),
        min_size=1,
        max_size=6,
    ),
    numbers=st.lists(st.integers(0, 40), min_size=2, max_size=2, unique=True),
)
def test_wide_to_long_keeps_every_value(values, numbers):
    # Two sessions, two variables: columns a_<s> and b_<s>.
    cols = [f"a_{numbers[0]}", f"a_{numbers[1]}", f"b_{numbers[0]}", f"b_{numbers[1]}"]
    wide = pd.DataFrame(values, columns=cols)
    wide.insert(0, "id", [f"P{i}" for i in range(len(wide))])
    long = wide_to_long(wide, id_columns=["id"], patterns={"a": "a_{session}", "b": "b_{session}"})
    assert long["session"].dtype == np.int64
    assert not long[["a", "b"]].isna().all(axis=1).any()
    for _, row in wide.iterrows():
        for s in numbers:
            hit = long[(long["id"] == row["id"]) & (long["session"] == s)]
            a, b = row[f"a_{s}"], row[f"b_{s}"]
            if np.isnan(a) and np.isnan(b):
                assert hit.empty
            else:
                np.testing.assert_array_equal(hit[["a", "b"]].to_numpy()[0], [a, b])


@SETTINGS
@given(
    days=st.lists(
        st.lists(st.integers(0, 3000), min_size=1, max_size=6, unique=True), min_size=1, max_size=4
    ),
    seed=st.integers(0, 1000),
)
def test_sessions_from_dates_number_each_patient_in_date_order(days, seed):
    rows = [(f"P{p}", d) for p, ds in enumerate(days) for d in ds]
    df = pd.DataFrame(rows, columns=["patient", "day"]).sample(frac=1, random_state=seed)
    df["date"] = (pd.Timestamp("2018-01-01") + pd.to_timedelta(df["day"], unit="D")).dt.strftime(
        "%Y-%m-%d"
    )
    out = sessions_from_dates(df, patient="patient", date="date")
    for _, g in out.groupby("patient"):
        g = g.sort_values("day")
        assert g["session"].tolist() == list(range(1, len(g) + 1))
        np.testing.assert_array_equal(g["days_since_previous"].to_numpy()[1:], np.diff(g["day"]))
    assume(len(out) > 0)


@SETTINGS
@given(abused_tables())
def test_dates_of_any_table_number_sessions_or_one_validation_error(df):
    with only_data_warnings():
        try:
            out = sessions_from_dates(df, patient="patient", date="session", session="session")
        except DataValidationError as exc:
            assert exc.problems
            return
    assert out.index.equals(df.index)
    assert (out["session"] >= 1).all() and out["session"].dtype == np.int64
