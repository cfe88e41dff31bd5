"""Spec files: validation with suggestions, the shipped specs, and exact reproduction."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from bayes_alliance.cli.app import build_parser, main
from bayes_alliance.data.roles import Roles
from bayes_alliance.spec import options
from bayes_alliance.spec.model_spec import ModelSpec
from bayes_alliance.spec.specfile import SPECS_DIR, load_spec, parse_spec, shipped_specs

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
        (  # an outcome may be left out (the predictor's series alone), the predictor not
            {"data": {"patient": "p", "session": "s", "outcome": "y"}},
            r"must name the columns \['predictor'\]",
        ),
        (
            {**BASE, "priors": {"state_effect": {"dist": "Normal", "sd": 1}}},
            "Normal has no argument 'sd'",
        ),
        # Values of the wrong type are named with an example, never passed on: a string of
        # covariates used to become one covariate per letter.
        (
            {"data": {**BASE["data"], "covariates": "m"}},
            r"\[data\] covariates must be a list of names \(e.g. \[\"a\", \"b\"\]\), got 'm'",
        ),
        ({**BASE, "sampler": {"draws": "many"}}, r"\[sampler\] draws must be a whole number"),
        ({**BASE, "sampler": {"chains": True}}, r"\[sampler\] chains must be a whole number"),
        ({**BASE, "sampler": {"draws": 0}}, r"\[sampler\] draws must be at least 1, got 0"),
        ({**BASE, "sampler": {"sampler": "nuts"}}, r"\[sampler\] sampler must be one of nutpie"),
        ({**BASE, "model": {"trend": "yes"}}, r"\[model\] trend must be a boolean"),
        (
            {**BASE, "model": {"equations": "outcomes"}},
            r"\[model\] equations must be one of .*Did you mean 'outcome'",
        ),
        ({**BASE, "model": {"moderators": ["m"]}}, r"moderator\(s\) \['m'\] must also be listed"),
        ({**BASE, "model": 3}, r"\[model\] must be a table"),
        ({**BASE, "priors": {"state_effect": 0.5}}, r"\[priors.state_effect\] must be a table"),
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
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_spec(binary)


def test_models_folder_is_the_packaged_specs_folder():
    # One copy: models/ is a link to the specs that ship in the wheel, so they cannot diverge.
    assert MODELS.is_symlink() and MODELS.resolve() == SPECS_DIR.resolve()
    assert shipped_specs() == sorted(p.stem for p in MODELS.glob("*.toml"))


@pytest.mark.parametrize("name", ["single_equation", "cross_lagged", "random_slopes", "riclpm"])
def test_shipped_specs_load_by_name(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no models/ folder here: only the package can answer
    for given in (name, f"{name}.toml"):
        spec = load_spec(given)
        assert spec.name == name and spec.path == SPECS_DIR / f"{name}.toml"


def test_a_file_in_the_working_folder_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cross_lagged.toml").write_text(
        'name = "mine"\n[data]\npatient = "p"\nsession = "s"\npredictor = "x"\noutcome = "y"\n'
    )
    assert load_spec("cross_lagged").name == "mine"


def test_unknown_spec_name_lists_the_shipped_ones():
    with pytest.raises(FileNotFoundError) as info:
        load_spec("cross_laged")
    text = str(info.value)
    assert "Did you mean 'cross_lagged'" in text
    assert "Shipped specs: cross_lagged, random_slopes, riclpm, single_equation" in text


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


# ------------------------------------------------------------------ the one table of options
@pytest.mark.parametrize(
    ("section", "cls", "skip"),
    [
        (options.ROLES, Roles, ("indicators",)),  # indicators come from the model options
        # covariates: filled in from the data's declared covariates by fitting
        (options.MODEL, ModelSpec, ("priors", "covariates")),
        (options.SAMPLER, options.SamplerSettings, ()),
    ],
    ids=["roles", "model", "sampler"],
)
def test_option_tables_cover_their_dataclasses(section, cls, skip):
    fields = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    assert sorted(section.names) == sorted(fields)
    kinds = {"flag": bool, "names": tuple, "choice": str, "count": int}
    for o in section.options:
        default = section.default(o.name)
        if default in (None, dataclasses.MISSING) or o.kind not in kinds:
            continue
        assert type(default) is kinds[o.kind], o.name
        assert not o.choices or default in o.choices, o.name


LEGACY_FIT_FLAGS = (
    "--data --spec --out --patient --session --predictor --outcome --therapist --covariates "
    "--crossed --draws --tune --chains --seed --random-slopes --no-therapist --moderators "
    "--equations --same-session --no-reverse-lag --session-means --trend --first-session "
    "--innovations --store --quiet --force"
).split()


def test_every_earlier_fit_flag_still_exists():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    flags = {s for a in sub.choices["fit"]._actions for s in a.option_strings}
    assert set(LEGACY_FIT_FLAGS) <= flags


def _inputs(argv):
    from bayes_alliance.cli.commands import fit_inputs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_inputs(build_parser().parse_args(argv))


def test_flags_and_spec_file_build_the_same_analysis(tmp_path):
    from bayes_alliance import simulate

    df, _ = simulate(seed=2, n_therapists=10, patients_per_therapist=3, sessions=6, moderator=True)
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    spec = tmp_path / "s.toml"
    spec.write_text(
        '[data]\npatient = "patient"\ntherapist = "therapist"\nsession = "session"\n'
        'predictor = "alliance"\noutcome = "symptoms"\ncovariates = ["moderator"]\n'
        '[model]\nrandom_slopes = ["patient", "therapist"]\nmoderators = ["moderator"]\n'
        'same_session = "predictor_to_outcome"\nreverse_lag = false\ntrend = true\n'
        'first_session = "free"\ntraits = "sampled"\n'
        '[sampler]\ndraws = 7\ntune = 3\nchains = 1\nseed = 5\nsampler = "pymc"\n'
    )
    flags = [
        *("--patient", "patient", "--therapist", "therapist", "--session", "session"),
        *("--predictor", "alliance", "--outcome", "symptoms", "--covariates", "moderator"),
        *("--random-slopes", "patient,therapist", "--moderators", "moderator"),
        *("--same-session", "predictor_to_outcome", "--no-reverse-lag", "--trend"),
        *("--first-session", "free", "--traits", "sampled"),
        *("--draws", "7", "--tune", "3", "--chains", "1", "--seed", "5", "--sampler", "pymc"),
    ]
    by_flags = _inputs(["fit", str(csv), *flags, "--out", str(tmp_path / "a")])
    by_spec = _inputs(
        ["fit", "--spec", str(spec), "--data", str(csv), "--out", str(tmp_path / "b")]
    )
    assert by_flags[1] == by_spec[1]
    assert by_flags[1] != ModelSpec()  # every option above moved away from its default
    assert by_flags[0].roles == by_spec[0].roles
    assert (
        by_flags[2]
        == by_spec[2]
        == {
            "draws": 7,
            "tune": 3,
            "chains": 1,
            "random_seed": 5,
            "sampler": "pymc",
        }
    )
    # --no-therapist: a two-level model of the same data, from the flag as from the spec key
    two = _inputs(["fit", str(csv), *flags[:12], "--no-therapist", "--out", str(tmp_path / "c")])
    assert not two[1].therapist_level and two[0].roles.therapist is None


def test_fit_by_spec_name_refuses_flags_the_spec_sets(tmp_path, capsys):
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": [1]}).to_csv(data, index=False)
    argv = ["fit", "--spec", "cross_lagged", "--data", str(data), "--out", str(tmp_path / "o")]
    assert main([*argv, "--draws", "10", "--trend"]) == 2
    err = capsys.readouterr().err
    assert "--draws, --trend: set by the spec file" in err and "Traceback" not in err
    assert main(argv) == 2  # the shipped spec was found: the data lack its columns
    assert "missing column 'alliance'" in capsys.readouterr().err


def test_roles_from_saved_lists_are_the_roles_written():
    # A saved result holds its roles as JSON (lists): rebuilding them gives equal, hashable roles.
    roles = Roles("p", "s", "x", "y", "t", ("age", "sex"))
    back = options.make_roles(json.loads(json.dumps(dataclasses.asdict(roles))))
    assert back == roles and hash(back) == hash(roles)
