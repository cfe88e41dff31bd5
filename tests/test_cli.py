"""The command line: outputs, refusal to overwrite, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from bayes_alliance.cli.app import main

# Manuscript versions of the effects and R-squared tables, written beside the CSVs.
TABLE_FILES = ("effects.md", "effects.tex", "r2.md", "r2.tex")


def test_demo_writes_report_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "mine.txt").write_text("user file")
    fast = ["--draws", "100", "--tune", "150", "--quiet"]
    assert main(["demo", "--out", str(out), *fast]) == 2
    err = capsys.readouterr().err
    assert "exists; pass --force" in err and "Traceback" not in err
    assert (out / "mine.txt").read_text() == "user file"
    # 100 draws do not pass the convergence check: results written, exit status 3, so scripts
    # learn that the check failed (said once, last, without a warning's source line)
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
        *TABLE_FILES,
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
    # rows as the file's line numbers (the header is line 1)
    assert "column 'pid': empty id (lines 5)" in err
    assert "column 's': session number is not a whole number (lines 4)" in err
    assert "column 'x': value is not a number (lines 4)" in err
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
    assert "no such file" in capsys.readouterr().err
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
        "label",
        "mean",
        "sd",
        "ci_low",
        "ci_high",
        "interval",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    ]
    assert (table["interval"] == "94% HDI").all()
    assert table.set_index("parameter").loc["state_effect", "label"].startswith("state-like")
    from bayes_alliance.spec.model_spec import ModelSpec

    assert table["parameter"].tolist() == ModelSpec().free_parameters()
    assert (out / "fit.nc").is_file() and (out / "convergence.json").is_file()
    r2 = pd.read_csv(out / "r2.csv")
    assert list(r2.columns)[:3] == ["equation", "denominator", "component"]
    assert {"label", "share_of", "mean", "ci_low", "ci_high", "interval"} <= set(r2.columns)
    assert (r2["interval"] == "94% interval").all()
    assert {"total", "level1", "level2", "level3"} <= set(r2["denominator"])
    assert {"f1", "f2", "f3", "m2", "m3", "sigma2"} <= set(r2["component"])
    # Fixed state slopes: no rows for slope variation (v) components the model cannot have.
    assert not {"v1", "v12", "v13", "v23"} & set(r2["component"])
    eff = pd.read_csv(out / "effects.csv")
    assert "standardised_state_effect" in set(eff["parameter"])

    from bayes_alliance.inference.fit import FitResult

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
        (
            ["--equations", "outcom"],
            "--equations must be one of bivariate, outcome, got 'outcom'. Did you mean 'outcome'?",
        ),
        (["--moderators", "age"], "moderator(s) ['age'] must also be listed as covariates"),
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
    from bayes_alliance.inference.fit import FitResult

    pid = str(FitResult.load(d / "fit.nc").data.patients[1])
    assert main(["report", str(d), "--patients", pid]) == 0
    assert (d / "report" / "report.html").is_file()
    assert "HTML report:" in capsys.readouterr().out
    assert main(["report", str(d), "--patients", pid]) == 2  # exists, no --force
    assert main(["report", str(d), "--patients", "nobody", "--force"]) == 2
    assert "unknown patient id(s) ['nobody']" in capsys.readouterr().err


# ------------------------------------------------------------------ versioned, robust under abuse
def test_version(capsys):
    from bayes_alliance import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"bayes-alliance {__version__}"


def test_fit_that_fails_the_convergence_check_exits_3_with_every_output(
    small_csv, tmp_path, capsys
):
    out = tmp_path / "short"
    argv = ["fit", str(small_csv), *FIT_FLAGS, "--out", str(out), "--quiet"]
    assert main([*argv, "--draws", "20", "--tune", "20"]) == 3
    err = capsys.readouterr().err
    assert err.count("CONVERGENCE CHECK FAILED") == 1 and "Traceback" not in err
    assert {p.name for p in out.iterdir()} == {
        "summary.csv",
        "r2.csv",
        "effects.csv",
        *TABLE_FILES,
        "fit.nc",
        "convergence.json",
    }
    assert json.loads((out / "convergence.json").read_text())["ok"] is False


def _no_trace_of(out):
    return not [p for p in out.parent.iterdir() if out.name in p.name]


def test_an_interrupt_the_sampler_swallows_still_stops_the_fit(
    small_csv, tmp_path, monkeypatch, capsys
):
    import os
    import signal

    from bayes_alliance.inference import fit as fitting

    def sampler_that_returns_partial_draws(*args, **kwargs):
        # nutpie and PyMC catch KeyboardInterrupt and return the draws made so far
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            return object()
        raise AssertionError("no KeyboardInterrupt")

    monkeypatch.setattr(fitting, "fit", sampler_that_returns_partial_draws)
    out = tmp_path / "o"
    assert main(["fit", str(small_csv), *FIT_FLAGS, "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted (Ctrl-C)") and "nothing was written" in err
    assert len(err.strip().splitlines()) == 1
    assert _no_trace_of(out)


@pytest.mark.parametrize(("signum", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_during_a_real_fit_leaves_no_output(small_csv, tmp_path, signum, status):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "o"
    code = (
        "import sys; from bayes_alliance.cli.app import main; raise SystemExit(main(sys.argv[1:]))"
    )
    argv = ["fit", str(small_csv), *FIT_FLAGS, "--out", str(out), "--quiet", "--draws", "200000"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".o.incomplete-*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(4)  # into compiling or sampling
        proc.send_signal(getattr(signal, signum))
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == status
    assert "Traceback" not in err and "nothing was written" in err
    assert _no_trace_of(out)


def test_a_second_run_on_the_same_output_is_refused(tmp_path, capsys):
    import subprocess
    import sys

    out = tmp_path / "sim"
    holder = (
        "import sys, time; from bayes_alliance.core.files import atomic_dir\n"
        f"with atomic_dir({str(out)!r}):\n    print('in', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "in"
        assert main(["simulate", "--out", str(out), "--seed", "1", "--force"]) == 2
        err = capsys.readouterr().err
        assert f"is being written by another run (process {proc.pid})" in err
        assert len(err.strip().splitlines()) == 1
    finally:
        proc.kill()
        proc.wait()
    assert main(["simulate", "--out", str(out), "--seed", "1"]) == 0


def test_truncated_or_foreign_results_get_one_line(fit_dirs, tmp_path, capsys):
    import shutil

    from bayes_alliance.core.files import check_results_file

    good = fit_dirs["bivariate"]
    assert check_results_file(good / "fit.nc")  # what fit writes passes the check
    cut = tmp_path / "cut"
    shutil.copytree(good, cut, ignore=shutil.ignore_patterns("report"))
    raw = (cut / "fit.nc").read_bytes()
    (cut / "fit.nc").write_bytes(raw[: len(raw) // 2])
    assert main(["report", str(cut)]) == 2
    err = capsys.readouterr().err
    assert "is truncated" in err and "Traceback" not in err and len(err.splitlines()) == 1
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "fit.nc").write_text("not a netCDF file\n")
    assert main(["compare", str(good), str(foreign), "--out", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert "is not a results file" in err and "Traceback" not in err
    assert not (tmp_path / "c.csv").exists()


TYPED_SPEC = """
[data]
patient = "patient"
session = "session"
predictor = "alliance"
outcome = "symptoms"
[sampler]
draws = "many"
"""


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["fit", "--spec", "{tmp}/nope.toml", "--data", "{csv}", "--out", "{tmp}/o"],
            "no spec file",
        ),
        (["fit", "--spec", "cross_laged", "--data", "{csv}", "--out", "{tmp}/o"], "Did you mean"),
        (["fit", "--spec", "{bad}", "--data", "{csv}", "--out", "{tmp}/o"], "not valid TOML"),
        (["fit", "--spec", "{typed}", "--data", "{csv}", "--out", "{tmp}/o"], "must be a whole"),
        (["fit", "--spec", "cross_lagged", "--data", "{tmp}", "--out", "{tmp}/o"], "cannot read"),
        (["fit", "{binary}", *FIT_FLAGS, "--out", "{tmp}/o"], "binary data"),
        (["validate", "{tmp}/none.csv", *FIT_FLAGS], "no such file"),
        (["validate", "{binary}", *FIT_FLAGS], "binary data"),
        (["report", "{tmp}/nowhere"], "has no fit.nc"),
        (["compare", "{tmp}", "{tmp}/nowhere"], "has no fit.nc"),
        (["simulate", "--out", "{csv}/sub", "--seed", "1"], "is a file, not a folder"),
    ],
    ids=[
        "spec-path",
        "spec-name",
        "spec-toml",
        "spec-type",
        "data-folder",
        "fit-binary",
        "data-missing",
        "validate-binary",
        "report-missing",
        "compare-missing",
        "out-under-file",
    ],
)
def test_errors_are_one_line_never_a_traceback(small_csv, tmp_path, capsys, argv, message):
    paths = {
        "tmp": tmp_path,
        "csv": small_csv,
        "bad": _write(tmp_path / "bad.toml", "name = \n"),
        "typed": _write(tmp_path / "typed.toml", TYPED_SPEC),
        "binary": tmp_path / "binary.csv",
    }
    (tmp_path / "binary.csv").write_bytes(b"a,b\n\x00\x01\x02\n")
    rc = main([a.format(**paths) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_an_unexpected_error_is_one_line_unless_the_traceback_is_asked_for(monkeypatch, capsys):
    from bayes_alliance.cli import commands as cli_commands

    def broken(args):
        raise TypeError("a bug")

    monkeypatch.setattr(cli_commands, "cmd_simulate", broken)
    argv = ["simulate", "--out", "x", "--seed", "1"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected TypeError: a bug. This is a bug")
    monkeypatch.setenv("BAYES_ALLIANCE_TRACEBACK", "1")
    with pytest.raises(TypeError, match="a bug"):
        main(argv)


def test_reshape_and_dates_reach_validation(tmp_path, capsys):
    wide = pd.DataFrame(
        {
            "pid": ["a", "b", "c"],
            "tid": ["t1", "t1", "t2"],
            "wai_1": [4.0, 5.0, 3.5],
            "wai_2": [4.5, None, 3.0],
            "wai_3": [5.0, 5.5, 3.2],
            "oq_1": [60.0, 55.0, 70.0],
            "oq_2": [58.0, None, 71.0],
            "oq_3": [50.0, 52.0, 69.0],
        }
    )
    wide.to_csv(tmp_path / "wide.csv", index=False)
    long = tmp_path / "long.csv"
    argv = ["reshape", str(tmp_path / "wide.csv"), "--id", "pid", "tid", "--pattern"]
    argv += ["alliance=wai_{session}", "symptoms=oq_{session}", "--out", str(long)]
    assert main(argv) == 0
    table = pd.read_csv(long)
    assert len(table) == 8 and set(table.columns) == {
        "pid",
        "tid",
        "session",
        "alliance",
        "symptoms",
    }
    assert main(argv) == 2  # an existing output is not replaced without --force
    assert "exists" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    # the same sessions given as dates, numbered per patient in date order
    dates = {1: "2026-01-05", 2: "2026-01-12", 3: "2026-01-26"}
    table["session"] = table["session"].map(dates)
    table = table.sample(frac=1, random_state=1)  # date order, not row order, counts
    table.to_csv(tmp_path / "dated.csv", index=False)
    roles = ["--patient", "pid", "--therapist", "tid", "--session", "session"]
    roles += ["--predictor", "alliance", "--outcome", "symptoms"]
    assert main(["validate", str(tmp_path / "dated.csv"), *roles]) == 1  # data fail the rules
    assert "--dates" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "dated.csv"), *roles, "--dates"]) == 0
    assert "ok: 8 rows" in capsys.readouterr().out
    bad = ["reshape", str(tmp_path / "wide.csv"), "--id", "pid", "--pattern", "alliance"]
    assert main([*bad, "--out", str(tmp_path / "x.csv")]) == 2
    assert "NAME=PATTERN" in capsys.readouterr().err


def test_spec_command_lists_prints_and_copies(tmp_path, capsys):
    assert main(["spec"]) == 0
    listing = capsys.readouterr().out
    assert {"cross_lagged", "random_slopes", "riclpm", "single_equation"} <= {
        line.split()[0] for line in listing.splitlines()
    }
    assert main(["spec", "cross_lagged"]) == 0
    assert 'name = "cross_lagged"' in capsys.readouterr().out
    copy = tmp_path / "mine.toml"
    assert main(["spec", "cross_lagged", "--out", str(copy)]) == 0
    capsys.readouterr()
    from bayes_alliance.spec.specfile import load_spec

    assert load_spec(copy).model == load_spec("cross_lagged").model
    assert main(["spec", "cross_lagged", "--out", str(copy)]) == 2  # not replaced silently
    assert main(["spec", "no_such_spec"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    # a role flag with --spec is refused with the way to name one's own columns
    argv = ["fit", "--spec", "cross_lagged", "--data", "x.csv", "--patient", "pid", "--out"]
    assert main([*argv, str(tmp_path / "o")]) == 2
    assert "bayes-alliance spec cross_lagged --out" in capsys.readouterr().err


def test_fit_prints_the_missing_codes_line_once(tmp_path, capsys, monkeypatch):
    """issue 28: with the progress lines on stderr the reader's line about the declared codes
    was printed a second time by the command."""
    from bayes_alliance.cli import commands
    from bayes_alliance.cli.common import CLIError
    from bayes_alliance.datasets import load_example

    df = load_example()
    df = df[df["patient"].isin(sorted(df["patient"].unique())[:6])].copy()
    df.loc[df.index[[2, 7]], "symptoms"] = -99
    path = tmp_path / "coded.csv"
    df.to_csv(path, index=False)

    def stop(settings):  # after the data are read and checked, before anything is built
        raise CLIError("stopped here")

    monkeypatch.setattr(commands, "_sampler", stop)
    flags = [
        "fit", str(path), "--therapist", "therapist", "--patient", "patient",
        "--session", "session", "--predictor", "alliance", "--outcome", "symptoms",
        "--missing-code", "-99", "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    for quiet in ([], ["--quiet"]):
        assert main(flags + quiet) == 2
        err = capsys.readouterr().err
        assert "stopped here" in err
        assert err.count("cells set missing: 2 in 'symptoms'") == 1, err
