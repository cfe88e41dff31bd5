"""Spec files: validation with suggestions, the shipped specs, and exact reproduction."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from bayes_alliance.cli import main
from bayes_alliance.specfile import load_spec, parse_spec

MODELS = Path(__file__).resolve().parents[1] / "models"
BASE = {"data": {"patient": "p", "session": "s", "predictor": "x", "outcome": "y"}}


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_specs_load(path):
    spec = load_spec(path)
    assert spec.name == path.stem and spec.description
    assert spec.sampler.seed == 20261126
    assert spec.model.free_parameters()


def test_the_four_canonical_analyses_are_shipped():
    names = {p.stem for p in MODELS.glob("*.toml")}
    assert {"single_equation", "cross_lagged", "random_slopes", "riclpm"} <= names
    assert load_spec(MODELS / "single_equation").model.equations == "outcome"
    assert set(load_spec(MODELS / "random_slopes").model.random_slopes) == {"patient", "therapist"}
    riclpm = load_spec(MODELS / "riclpm").model
    assert riclpm.session_means and riclpm.first_session == "free" and not riclpm.therapist_level


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**BASE, "modle": {}}, r"unknown key 'modle' in \[spec\]\. Did you mean 'model'"),
        (
            {**BASE, "model": {"random_slope": ["patient"]}},
            r"unknown key 'random_slope' in \[model\]\. Did you mean 'random_slopes'",
        ),
        (
            {**BASE, "sampler": {"draw": 10}},
            r"unknown key 'draw' in \[sampler\]\. Did you mean 'draws'",
        ),
        (
            {"data": {"patient": "p", "session": "s", "predictor": "x", "outcom": "y"}},
            r"unknown key 'outcom' in \[data\]",
        ),
        (
            {"data": {"patient": "p", "session": "s", "predictor": "x"}},
            r"must name the columns \['outcome'\]",
        ),
        (
            {**BASE, "priors": {"state_effect": {"dist": "Normal", "sd": 1}}},
            "Normal has no argument 'sd'",
        ),
    ],
)
def test_spec_errors_name_the_key(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(raw)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no spec file"):
        load_spec(tmp_path / "nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_spec(bad)


def test_fit_from_spec_reproduces_exactly(tmp_path):
    from bayes_alliance import simulate

    df, _ = simulate(seed=9, n_therapists=10, patients_per_therapist=4, sessions=7)
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    spec = tmp_path / "small.toml"
    spec.write_text(
        'name = "small"\ndescription = "test"\n[data]\npatient = "patient"\ntherapist = "therapist"\n'
        'session = "session"\npredictor = "alliance"\noutcome = "symptoms"\n'
        '[model]\nequations = "outcome"\n[sampler]\ndraws = 100\ntune = 100\nchains = 2\nseed = 5\n'
    )
    tables = []
    for run in ("a", "b"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rc = main(
                [
                    "fit",
                    "--spec",
                    str(spec),
                    "--data",
                    str(data),
                    "--out",
                    str(tmp_path / run),
                    "--quiet",
                ]
            )
        # 100 draws may fail the convergence check (exit 3); the results are written either way
        assert rc in (0, 3)
        converged = json.loads((tmp_path / run / "convergence.json").read_text())["ok"]
        assert rc == (0 if converged else 3)
        tables.append(pd.read_csv(tmp_path / run / "summary.csv"))
        assert (tmp_path / run / "spec.toml").read_text() == spec.read_text()
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_fit_without_spec_needs_the_role_flags(tmp_path, capsys):
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": [1]}).to_csv(data, index=False)
    assert main(["fit", str(data), "--out", str(tmp_path / "o")]) == 2
    assert "without --spec these flags are required: --patient" in capsys.readouterr().err
