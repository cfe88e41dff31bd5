"""The command line: outputs, refusal to overwrite, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from bayes_alliance.cli import main


def test_demo_writes_report_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "mine.txt").write_text("user file")
    fast = ["--draws", "100", "--tune", "150", "--quiet"]
    assert main(["demo", "--out", str(out), *fast]) == 2
    err = capsys.readouterr().err
    assert "exists; pass --force" in err and "Traceback" not in err
    assert (out / "mine.txt").read_text() == "user file"
    with pytest.warns(UserWarning):  # 100 draws do not pass the convergence check
        # results written, exit status 3: scripts learn that the check failed
        assert main(["demo", "--out", str(out), "--force", *fast]) == 3
    captured = capsys.readouterr()
    printed = captured.out
    assert "CONVERGENCE CHECK FAILED" in captured.err and "What to change" in captured.err
    assert "--draws" in captured.err
    assert "Trait and state effects of the joint model" in printed and "state_effect" in printed
    assert printed.strip().endswith(f"HTML report: {out / 'report' / 'report.html'}")
    assert {p.name for p in out.iterdir()} == {
        "summary.csv",
        "r2.csv",
        "effects.csv",
        "classic.csv",
        "fit.nc",
        "convergence.json",
        "report",
    }
    html = (out / "report" / "report.html").read_text()
    assert "317 patients of 40 therapists" in html and "State-like effect" in html
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


FIT_FLAGS = [
    "--patient",
    "patient",
    "--therapist",
    "therapist",
    "--session",
    "session",
    "--predictor",
    "alliance",
    "--outcome",
    "symptoms",
]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    from bayes_alliance import simulate

    df, _ = simulate(seed=8, n_therapists=12, patients_per_therapist=4, sessions=8)
    path = tmp_path_factory.mktemp("data") / "small.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fit_dirs(small_csv, tmp_path_factory):
    base = tmp_path_factory.mktemp("fits")
    outs = {}
    for name, extra in (("bivariate", []), ("single", ["--equations", "outcome"])):
        out = base / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rc = main(
                [
                    "fit",
                    str(small_csv),
                    *FIT_FLAGS,
                    "--out",
                    str(out),
                    "--draws",
                    "150",
                    "--tune",
                    "200",
                    "--seed",
                    "4",
                    "--quiet",
                    *extra,
                ]
            )
        converged = json.loads((out / "convergence.json").read_text())["ok"]
        assert rc == (0 if converged else 3)
        outs[name] = out
    return outs


def test_fit_writes_summary_with_exact_columns(fit_dirs):
    out = fit_dirs["bivariate"]
    table = pd.read_csv(out / "summary.csv")
    assert list(table.columns) == [
        "parameter",
        "mean",
        "sd",
        "ci_low",
        "ci_high",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    ]
    from bayes_alliance.spec import ModelSpec

    assert table["parameter"].tolist() == ModelSpec().free_parameters()
    assert (out / "fit.nc").is_file() and (out / "convergence.json").is_file()
    r2 = pd.read_csv(out / "r2.csv")
    assert list(r2.columns) == [
        "equation",
        "denominator",
        "component",
        "label",
        "mean",
        "ci_low",
        "ci_high",
    ]
    assert {"total", "level1", "level2", "level3"} <= set(r2["denominator"])
    assert {"f1", "f2", "f3", "v12", "v13", "v23", "m2", "m3", "fvm", "sigma2"} <= set(
        r2["component"]
    )
    eff = pd.read_csv(out / "effects.csv")
    assert "standardised_state_effect" in set(eff["parameter"])

    from bayes_alliance.fit import FitResult

    res = FitResult.load(out / "fit.nc")
    assert res.provenance["random_seed"] == 4 and res.provenance["draws"] == 150


def test_compare_prints_and_writes_table(fit_dirs, tmp_path, capsys):
    out = tmp_path / "cmp.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(
            ["compare", str(fit_dirs["bivariate"]), str(fit_dirs["single"]), "--out", str(out)]
        )
    assert rc == 0
    table = pd.read_csv(out)
    assert set(table["model"]) == {"bivariate", "single"}
    assert {"elpd", "elpd_diff", "dse", "weight", "delta_r2_fvm"} <= set(table.columns)
    printed = capsys.readouterr().out
    assert "elpd_diff" in printed and "wrote" in printed
    assert (
        main(["compare", str(fit_dirs["bivariate"]), str(fit_dirs["single"]), "--out", str(out)])
        == 2
    )
    assert (
        main(
            ["compare", str(fit_dirs["bivariate"]), str(tmp_path), "--out", str(tmp_path / "x.csv")]
        )
        == 2
    )
    assert "has no fit.nc" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--random-slopes", "clinic"], "unknown random-slope level 'clinic'"),
        (["--draws", "0"], "--draws must be at least 1"),
        (["--store", "states,trait"], "--store: unknown group(s) ['trait']"),
        (["--predictor", "alliancee"], "missing column 'alliancee'"),
    ],
)
def test_fit_bad_flags_exit_2_with_one_clear_line(small_csv, tmp_path, capsys, extra, message):
    flags = FIT_FLAGS.copy()
    if extra[0] == "--predictor":
        flags[flags.index("--predictor") + 1] = extra[1]
        extra = []
    rc = main(["fit", str(small_csv), *flags, "--out", str(tmp_path / "o"), *extra, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_fit_refuses_existing_output(small_csv, tmp_path, capsys):
    (tmp_path / "o").mkdir()
    rc = main(["fit", str(small_csv), *FIT_FLAGS, "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2 and "exists; pass --force" in capsys.readouterr().err


def test_report_command(fit_dirs, capsys):
    d = fit_dirs["bivariate"]
    from bayes_alliance.fit import FitResult

    pid = str(FitResult.load(d / "fit.nc").data.patients[1])
    assert main(["report", str(d), "--patients", pid]) == 0
    assert (d / "report" / "report.html").is_file()
    assert "HTML report:" in capsys.readouterr().out
    assert main(["report", str(d), "--patients", pid]) == 2  # exists, no --force
    assert main(["report", str(d), "--patients", "nobody", "--force"]) == 2
    assert "unknown patient id(s) ['nobody']" in capsys.readouterr().err
