"""A spec file without an outcome fits the predictor's series alone, as ``fit`` without
``--outcome`` does: the same data, options and sampler from the file as from the flags, and the
same options refused (those that need an outcome), each named by its key."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayes_alliance.cli.app import build_parser, main
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.spec.specfile import parse_spec
from tests.test_mechanism_single import simulate_single

SINGLE = {"data": {"patient": "patient", "session": "session", "predictor": "alliance"}}


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    df = simulate_single(3, n_patients=12, n_sessions=5, n_therapists=4, missing=0.1, end=(1, 1))
    df["z"] = df.patient.str[1:].astype(float)  # patient-level
    path = tmp_path_factory.mktemp("single_spec") / "d.csv"
    df.to_csv(path, index=False)
    return path


def _inputs(argv):
    from bayes_alliance.cli.commands import fit_inputs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_inputs(build_parser().parse_args(argv))


def test_a_spec_without_an_outcome_is_the_series_alone():
    spec = parse_spec(SINGLE)
    assert spec.single and spec.model.therapist_level is False
    assert parse_spec({"data": {**SINGLE["data"], "therapist": "t"}}).model.therapist_level
    with pytest.raises(ValueError, match="names no outcome"):
        _ = spec.roles
    assert not parse_spec({"data": {**SINGLE["data"], "outcome": "y"}}).single
    # covariates may declare the baseline's columns (the flags need no declaration)
    raw = {"data": {**SINGLE["data"], "covariates": ["z"]}, "model": {"baseline": ["z"]}}
    assert parse_spec(raw).model.baseline == ("z",)


def test_flags_and_spec_file_build_the_same_single_series(csv, tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text(
        '[data]\npatient = "patient"\ntherapist = "therapist"\nsession = "session"\n'
        'predictor = "alliance"\nend_outcome = "post"\n'
        '[model]\nrandom_lags = ["predictor_autoregression@therapist"]\n'
        'measurement_error = true\nrandom_innovations = ["patient"]\n'
        "[sampler]\ndraws = 7\ntune = 3\nchains = 1\nseed = 5\n"
    )
    flags = [
        *("--patient", "patient", "--therapist", "therapist", "--session", "session"),
        *("--predictor", "alliance", "--end-outcome", "post"),
        *("--random-lags", "predictor_autoregression@therapist", "--measurement-error"),
        *("--random-innovations", "patient"),
        *("--draws", "7", "--tune", "3", "--chains", "1", "--seed", "5"),
    ]
    by_flags = _inputs(["fit", str(csv), *flags, "--out", str(tmp_path / "a")])
    by_spec = _inputs(
        ["fit", "--spec", str(toml), "--data", str(csv), "--out", str(tmp_path / "b")]
    )
    for data in (by_flags[0], by_spec[0]):
        assert isinstance(data, SeriesData) and data.roles == ("predictor",)
    np.testing.assert_array_equal(by_flags[0].z, by_spec[0].z)
    np.testing.assert_array_equal(by_flags[0].end_outcome, by_spec[0].end_outcome)
    assert by_flags[0].patient_therapist is not None
    np.testing.assert_array_equal(by_flags[0].patient_therapist, by_spec[0].patient_therapist)
    assert by_flags[1] == by_spec[1]
    assert by_spec[1].therapist_paths == (("predictor", "predictor"),)
    assert by_spec[1].measurement_error == ("predictor",) and by_spec[1].random_innovations
    assert by_flags[2] == by_spec[2] and by_spec[2]["draws"] == 7
    assert by_spec[3] == toml
    # [model] therapist_level = false: two levels of three-level data, as --no-therapist
    two = tmp_path / "two.toml"
    two.write_text(toml.read_text().replace("[model]\n", "[model]\ntherapist_level = false\n")
                   .replace("@therapist", ""))  # fmt: skip
    data, spec, _, _ = _inputs(["fit", "--spec", str(two), "--data", str(csv), "--out", "x"])
    assert data.patient_therapist is None and not spec.therapist_level


@pytest.mark.parametrize(
    ("data", "model", "named"),
    [
        ({"mediator": "z"}, "", "[data] mediator need an outcome column"),
        ({"second_predictor": "z"}, "", "[data] second_predictor"),
        ({"covariates": ["z"]}, "", "[data] covariates ['z'] (other than the baseline's)"),
        ({}, 'moderators = ["z"]', "model option(s) ['moderators']"),
        ({}, "reverse_lag = false", "model option(s) ['reverse_lag'] need an outcome column"),
        ({}, 'random_lags = ["state_effect"]', "random lag 'state_effect'"),
    ],
)
def test_options_that_need_an_outcome_are_named_by_their_keys(
    csv, tmp_path, capsys, data, model, named
):
    lines = [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v!r}".replace("'", '"')
             for k, v in {**SINGLE["data"], **data}.items()]  # fmt: skip
    toml = tmp_path / "s.toml"
    toml.write_text("[data]\n" + "\n".join(lines) + f"\n[model]\n{model}\n")
    argv = ["fit", "--spec", str(toml), "--data", str(csv), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert "--outcome" not in err  # the spec file's words, not the flags'


@pytest.mark.slow  # about 40 s; the inputs above are those of the flags, fitted in test_mechanism_single
def test_fit_from_a_spec_without_an_outcome_writes_the_single_series_fit(csv, tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text(
        '[data]\npatient = "patient"\nsession = "session"\npredictor = "alliance"\n'
        "[sampler]\ndraws = 30\ntune = 30\nchains = 1\nseed = 4\n"
    )
    out = tmp_path / "o"
    argv = ["fit", "--spec", str(toml), "--data", str(csv), "--out", str(out), "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(argv)
    assert rc in (0, 3)  # 30 draws: the check may fail; the files are written either way
    effects = (out / "effects.csv").read_text()
    assert "predictor_autoregression" in effects and "state_effect" not in effects
    assert (out / "report" / "report.html").is_file()
