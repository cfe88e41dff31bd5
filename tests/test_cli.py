"""The command line: outputs, refusal to overwrite, and one-line errors with exit status 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bayes_alliance.cli import main


def test_demo_writes_report_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "317 patients, 40 therapists" in text
    assert "state_effect" in text
    (out / "mine.txt").write_text("user file")
    assert main(["demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists; pass --force" in err and "Traceback" not in err
    assert (out / "mine.txt").read_text() == "user file"
    assert main(["demo", "--out", str(out), "--force"]) == 0
    assert not (out / "mine.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_validate_lists_every_problem(tmp_path, capsys):
    df = pd.DataFrame(
        {"pid": ["a", "a", "b", None], "s": [1, 1, 2.5, 3], "x": [1, 2, "?", 4], "y": 1.0}
    )
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    rc = main(
        [
            "validate",
            str(path),
            "--patient",
            "pid",
            "--session",
            "s",
            "--predictor",
            "x",
            "--outcome",
            "y",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert "column 'pid': empty id (rows 3)" in err
    assert "column 's': session number is not a whole number (rows 2)" in err
    assert "column 'x': value is not a number (rows 2)" in err
    assert "duplicate (patient, session) pair" in err


def test_validate_missing_file_and_bad_flag(tmp_path, capsys):
    rc = main(
        [
            "validate",
            str(tmp_path / "nope.csv"),
            "--patient",
            "p",
            "--session",
            "s",
            "--predictor",
            "x",
            "--outcome",
            "y",
        ]
    )
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["validate"])
    assert exc.value.code == 2


def test_simulate_writes_data_and_truth(tmp_path, capsys):
    out = tmp_path / "sim"
    assert (
        main(
            [
                "simulate",
                "--out",
                str(out),
                "--seed",
                "3",
                "--set",
                "n_therapists=4",
                "--set",
                "sessions=5,9",
                "--set",
                "state_effect=-0.3",
            ]
        )
        == 0
    )
    df = pd.read_csv(out / "data.csv")
    truth = json.loads((out / "truth.json").read_text())
    assert df["therapist"].nunique() == 4
    assert truth["params"]["state_effect"] == -0.3 and truth["seed"] == 3
    assert (
        main(["simulate", "--out", str(tmp_path / "x"), "--seed", "1", "--set", "stat_effect=1"])
        == 2
    )
    assert "Did you mean 'state_effect'" in capsys.readouterr().err
