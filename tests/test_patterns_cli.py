"""``bayes-alliance patterns FITDIR --out DIR``: the file, its values, and the refusals.

Reuses the session fit of ``conftest.baseline_cli_fit`` (48 patients, 8 sessions, written by
``bayes-alliance fit``) instead of fitting again.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.analysis.pattern_table import patterns_table
from bayes_alliance.analysis.patterns import DEFAULT, PATTERNS
from bayes_alliance.cli import patterns as cli_patterns
from bayes_alliance.cli.app import main
from bayes_alliance.cli.parser import build_parser
from bayes_alliance.mechanisms.fit import MechanismResult
from bayes_alliance.mechanisms.load import load_result

COLUMNS = ["patient", "strengthening", "weakening", "u_shape", "rupture_repair", "sudden_gain"]


@pytest.fixture(scope="module")
def fit_dir(baseline_cli_fit):
    folder, rc, _ = baseline_cli_fit
    assert rc in (0, 3)  # a short fit may fail the convergence check; its files are written
    return folder


@pytest.fixture(scope="module")
def written(fit_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("patterns") / "p"
    rc = main(["patterns", str(fit_dir), "--out", str(out)])
    assert rc == 0
    return out, pd.read_csv(out / "patterns.csv")


def test_file_has_exactly_the_columns_one_row_per_patient(fit_dir, written):
    out, table = written
    assert list(table.columns) == COLUMNS
    assert sorted(p.name for p in out.iterdir()) == ["patterns.csv"]
    result = load_result(fit_dir / "fit.nc")
    assert [str(p) for p in table["patient"]] == [str(p) for p in result.data.patients]
    probs = table[list(PATTERNS)].to_numpy()
    assert np.isfinite(probs).all()
    assert ((probs >= 0) & (probs <= 1)).all()


def test_values_equal_patterns_table_of_the_same_result(fit_dir, written):
    _, table = written
    expected = patterns_table(load_result(fit_dir / "fit.nc"))
    for name in PATTERNS:
        np.testing.assert_allclose(table[name], expected[f"p_{name}"], rtol=0, atol=1e-12)


def test_outcome_lower_is_better(fit_dir, tmp_path, capsys):
    out = tmp_path / "y"
    argv = ["patterns", str(fit_dir), "--out", str(out), "--variable", "outcome"]
    assert main([*argv, "--lower-is-better"]) == 0
    assert "'symptoms'" in capsys.readouterr().out  # names the data's column
    table = pd.read_csv(out / "patterns.csv")
    expected = patterns_table(
        load_result(fit_dir / "fit.nc"), variable="outcome", higher_is_better=False
    )
    np.testing.assert_allclose(table["sudden_gain"], expected["p_sudden_gain"], atol=1e-12)


def test_refuses_to_overwrite_without_force(fit_dir, tmp_path, capsys):
    out = tmp_path / "p"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["patterns", str(fit_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out} exists; pass --force" in err and err.count("\n") == 1
    assert (out / "mine.txt").read_text() == "keep"
    assert main(["patterns", str(fit_dir), "--out", str(out), "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["patterns.csv"]


def test_missing_fit_folder_names_the_path(tmp_path, capsys):
    nowhere = tmp_path / "nowhere"
    assert main(["patterns", str(nowhere), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {nowhere} has no fit.nc (write one with 'bayes-alliance fit')\n"
    assert not (tmp_path / "p").exists()


def test_fit_without_states_says_how_to_refit(fit_dir, tmp_path, capsys, monkeypatch):
    result = load_result(fit_dir / "fit.nc")
    # What such a fit loads as: no states in the posterior, none recomputable.
    result.spec = dataclasses.replace(result.spec, store_states=False)
    del result.idata["latent_states"]
    monkeypatch.setattr(cli_patterns, "load_result", lambda path: result)
    assert main(["patterns", str(fit_dir), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert str(fit_dir / "fit.nc") in err
    assert "holds no states" in err and "store_states = true" in err
    assert not (tmp_path / "p").exists()


def test_mechanism_fit_is_refused_clearly(fit_dir, tmp_path, capsys, monkeypatch):
    # A stand-in of the other family's type: only the type is read before the refusal.
    monkeypatch.setattr(
        cli_patterns, "load_result", lambda path: MechanismResult.__new__(MechanismResult)
    )
    assert main(["patterns", str(fit_dir), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "mechanism-model fit" in err and "joint trait/state model" in err
    assert not (tmp_path / "p").exists()


def test_help_states_the_default_thresholds():
    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices)
    text = " ".join(sub.choices["patterns"].format_help().split())
    for column in COLUMNS:
        assert column in text
    for value in (
        DEFAULT.trend_change,
        DEFAULT.u_dip,
        DEFAULT.rupture_drop,
        DEFAULT.repair_tolerance,
        DEFAULT.gain_size,
        DEFAULT.min_sessions,
    ):
        assert re.search(rf"\b{value:g}\b", text), value
    assert "--calibration fixed" in text and "null" in text
    assert "predictor (default; the alliance)" in text
