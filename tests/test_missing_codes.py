"""Declared missing-value codes: --missing-code, [data] missing_codes, missing_codes= in Python."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.cli.app import main
from bayes_alliance.data.missing_codes import MissingCodes, apply_missing_codes
from bayes_alliance.data.readers import read_table
from bayes_alliance.data.session_data import DataWarning, SessionData
from bayes_alliance.spec.specfile import parse_spec

ROLES = dict(patient="pid", session="session", predictor="wai", outcome="oq", therapist="tid")
FLAGS = ["--patient", "pid", "--session", "session", "--predictor", "wai", "--outcome", "oq"]
FLAGS += ["--therapist", "tid"]


def table() -> pd.DataFrame:
    """Four patients of 99 (a real id) and other ids, 5 sessions; -99 in wai, 999 and -98 in oq."""
    rng = np.random.default_rng(3)
    rows = []
    for k, pid in enumerate([99, 5, 7, 8]):
        for s in range(1, 6):
            rows.append((pid, k % 2, s, 4 + rng.normal(0, 0.5), 2 + rng.normal(0, 0.5)))
    df = pd.DataFrame(rows, columns=["pid", "tid", "session", "wai", "oq"])
    df.loc[[1, 7], "wai"] = -99.0
    df.loc[3, "oq"] = 999.0
    df.loc[12, "oq"] = -98.0
    return df


def test_parse_every_form():
    mc = MissingCodes.parse(["-99", "-98,-97", "oq=999,-98", "oq=5"])
    assert mc.everywhere == (-99.0, -98.0, -97.0)
    assert dict(mc.by_column) == {"oq": (999.0, -98.0, 5.0)}
    assert MissingCodes.parse(["a=b=-9"]).by_column == {"a=b": (-9.0,)}  # the last = splits
    assert MissingCodes.coerce(-99).everywhere == (-99.0,)
    assert MissingCodes.coerce([-99, -98]).everywhere == (-99.0, -98.0)
    mapped = MissingCodes.coerce({"oq": [999], "*": -99})
    assert mapped.everywhere == (-99.0,) and dict(mapped.by_column) == {"oq": (999.0,)}
    assert MissingCodes.coerce(mapped.to_dict()) == mapped
    assert not MissingCodes.coerce(None)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["x99"], "'x99': expected a number"),
        (["oq=abc"], "'oq=abc': expected a number"),
        (["=5"], "give COLUMN=CODES"),
        (["oq="], "no value given"),
        (["nan"], "finite"),
    ],
)
def test_parse_names_the_bad_word(words, message):
    with pytest.raises(ValueError, match=message):
        MissingCodes.parse(words)


def test_codes_everywhere_skip_ids_and_count_cells():
    df = table()
    out, counts = apply_missing_codes(df, [-99, 99, -98], keep=("pid", "tid", "session"))
    assert counts == {"wai": 2, "oq": 1}
    assert out["pid"].tolist() == df["pid"].tolist()  # patient 99 stays patient 99
    assert np.isnan(out.loc[[1, 7], "wai"]).all() and np.isnan(out.loc[12, "oq"])
    assert out.loc[3, "oq"] == 999.0  # not declared
    assert df.loc[1, "wai"] == -99.0  # the caller's table is not changed


def test_codes_per_column_only_touch_that_column():
    df = table()
    out, counts = apply_missing_codes(df, {"oq": [999, -98]})
    assert counts == {"oq": 2}
    assert (out["wai"] == -99.0).sum() == 2
    # a code named for an id column by name applies there (the user asked for it)
    out, counts = apply_missing_codes(df, {"pid": 99}, keep=("pid",))
    assert counts == {"pid": 5}


def test_text_columns_and_integer_columns():
    df = pd.DataFrame({"a": ["1", "-99", "x", "-99.0"], "b": [1, -99, 3, 4]})
    out, counts = apply_missing_codes(df, -99)
    assert counts == {"a": 2, "b": 1}
    assert out["a"].isna().tolist() == [False, True, False, True]
    assert out["b"].dtype == np.float64 and np.isnan(out.loc[1, "b"])


def test_unknown_column_is_named_with_a_suggestion():
    with pytest.raises(ValueError, match=r"column 'OQ ', .*did you mean 'oq'"):
        apply_missing_codes(table(), {"OQ ": -99})


def test_warning_suggests_the_flag_and_goes_away_when_declared():
    with pytest.warns(DataWarning, match=r"--missing-code wai=-99"):
        SessionData.from_frame(table(), **ROLES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        data = SessionData.from_frame(
            table(), **ROLES, missing_codes={"wai": -99, "oq": [999, -98]}
        )
    texts = [str(w.message) for w in caught]
    assert texts and not [t for t in texts if "code" in t]  # only the 2-therapists warning
    assert np.isnan(data.x).sum() == 2 and np.isnan(data.y).sum() == 2
    assert data.patients.tolist() == [5, 7, 8, 99]


def test_read_table_applies_codes_and_records_counts(tmp_path):
    path = tmp_path / "d.csv"
    table().to_csv(path, index=False)
    got = read_table(path, missing_codes=-99, keep=("pid", "tid", "session"))
    assert got.attrs["missing_codes"] == {"wai": 2}
    assert got.attrs["first_line"] == 2  # the file's line numbers still name rows
    with pytest.raises(ValueError, match="column 'symptoms'"):
        read_table(path, missing_codes={"symptoms": -99})


def test_spec_file_missing_codes():
    raw = {"data": {**ROLES, "missing_codes": {"wai": -99, "*": [999]}}}
    spec = parse_spec(raw)
    assert spec.missing_codes == {"*": [999.0], "wai": [-99.0]}
    raw["data"]["missing_codes"] = {"wai": "x"}
    with pytest.raises(ValueError, match=r"\[data\] missing_codes: .*column 'wai'"):
        parse_spec(raw)


def test_cli_validate_with_missing_codes(tmp_path, capsys):
    path = tmp_path / "d.csv"
    table().to_csv(path, index=False)
    assert main(["validate", str(path), *FLAGS]) == 0
    assert "--missing-code wai=-99" in capsys.readouterr().out
    rc = main(["validate", str(path), *FLAGS, "--missing-code", "-99", "oq=999,-98"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "code" not in captured.out
    assert "cells set missing: 2 in 'wai', 2 in 'oq'" in captured.err
    rc = main(["validate", str(path), *FLAGS, "--missing-code", "symptoms=-99"])
    err = capsys.readouterr().err
    assert rc == 2 and "column 'symptoms'" in err and "Traceback" not in err
    rc = main(["validate", str(path), *FLAGS, "--missing-code", "minus99"])
    assert rc == 2 and "'minus99': expected a number" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the file swallowed by --missing-code: DATA is missing
        main(["validate", *FLAGS, "--missing-code", "-99", str(path)])
    capsys.readouterr()
    out = ["--out", str(tmp_path / "o"), "--quiet"]
    rc = main(["fit", *FLAGS, *out, "--missing-code", "-99", str(path)])  # fit's DATA is optional
    assert rc == 2 and "d.csv is a data file: give it before" in capsys.readouterr().err


def test_cli_spec_codes_and_flag_together_are_refused(tmp_path, capsys):
    path = tmp_path / "d.csv"
    table().to_csv(path, index=False)
    spec = tmp_path / "s.toml"
    spec.write_text(
        '[data]\npatient = "pid"\nsession = "session"\npredictor = "wai"\noutcome = "oq"\n'
        'therapist = "tid"\nmissing_codes = { wai = -99 }\n'
    )
    flags = ["--spec", str(spec), "--out", str(tmp_path / "o"), "--missing-code", "-99"]
    rc = main(["fit", str(path), *flags, "--quiet"])
    assert rc == 2 and "give them in one place" in capsys.readouterr().err


def test_series_data_takes_missing_codes():
    from bayes_alliance.data.series_data import SeriesData

    one = dict(patient="pid", session="session", predictor="wai", therapist="tid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        single = SeriesData.single(table(), **one, missing_codes=-99)
        both = SeriesData.from_frame(
            table(), **one, outcome="oq", missing_codes={"wai": -99, "oq": [999, -98]}
        )
    assert np.isnan(single.z[..., 0]).sum() == 2
    assert np.isnan(both.z).sum() == 4
