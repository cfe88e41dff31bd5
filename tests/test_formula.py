"""The model string: every documented term -> the ModelSpec and roles the flags make, back to
the same string, the shipped specs through it, and messages that point at the bad term."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.cli.common import CLIError
from bayes_alliance.cli.parser import build_parser
from bayes_alliance.inference import api
from bayes_alliance.spec.formula import FormulaError, looks_like_formula, parse_formula
from bayes_alliance.spec.formula_text import combine, to_formula
from bayes_alliance.spec.model_spec import ModelSpec
from bayes_alliance.spec.options import make_model, make_roles
from bayes_alliance.spec.specfile import load_spec, parse_spec, shipped_specs

BASE = "symptoms ~ lag(alliance) + lag(symptoms) + (1 | therapist/patient)"
X_EQ = "alliance ~ lag(alliance) + lag(symptoms)"
SESSION = "session = session"
FLAG_ROLES = {
    "patient": "patient",
    "therapist": "therapist",
    "session": "session",
    "predictor": "alliance",
    "outcome": "symptoms",
}


def parsed(text: str) -> tuple[dict, ModelSpec]:
    p = parse_formula(text)
    roles = make_roles(p.roles)
    return dataclasses.asdict(roles), make_model(p.model, roles)


def flags(roles: dict | None = None, **model: object) -> tuple[dict, ModelSpec]:
    """What the flags make: roles and options through the option table, as fit_inputs."""
    r = make_roles({**FLAG_ROLES, **(roles or {})})
    return dataclasses.asdict(r), make_model(model, r)


# Each documented term with the roles and options its flags give (written by hand).
CASES = [
    (f"{BASE}\n{X_EQ}\n{SESSION}", flags()),
    (f"{BASE}\n{SESSION}", flags(equations="outcome")),
    (f"{BASE}\nalliance ~ lag(alliance)\n{SESSION}", flags(reverse_lag=False)),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + (lag(alliance) | therapist/patient)\n"
        f"{X_EQ}\n{SESSION}",
        flags(random_slopes=("patient", "therapist")),
    ),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + (1 | therapist) + "
        f"(lag(alliance) | therapist:patient)\n{X_EQ}\n{SESSION}",
        flags(random_slopes=("patient",)),
    ),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + (lag(alliance) | therapist) + "
        f"(1 | therapist:patient)\n{X_EQ}\n{SESSION}",
        flags(random_slopes=("therapist",)),
    ),
    (
        f"symptoms ~ lag(alliance) + lag(symptoms) + (1 | patient)\n{X_EQ}\n{SESSION}",
        flags({"therapist": None}, therapist_level=False),
    ),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + (1 | therapist) + (1 | patient)\n"
        f"{X_EQ}\n{SESSION}\npatient = patient",
        flags({"crossed": True}),
    ),
    (
        "symptoms ~ alliance + lag(alliance) + lag(symptoms) + (1 | therapist/patient)\n"
        f"{X_EQ}\n{SESSION}",
        flags(same_session="predictor_to_outcome"),
    ),
    (
        f"{BASE}\nalliance ~ symptoms + lag(alliance) + lag(symptoms)\n{SESSION}",
        flags(same_session="outcome_to_predictor"),
    ),
    (
        "symptoms ~ alliance + (1 | therapist/patient)\nalliance ~ 1\n" + SESSION,
        flags(dynamics="none", same_session="predictor_to_outcome"),
    ),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + trend(session) + (1 | therapist/patient)\n"
        + X_EQ,
        flags(trend=True),
    ),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + age + motivation + "
        f"lag(alliance):motivation + (1 | therapist/patient)\n{X_EQ}\n{SESSION}",
        flags({"covariates": ("age", "motivation")}, moderators=("motivation",)),
    ),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + baseline(ses) + (1 | therapist/patient)\n"
        f"{X_EQ}\n{SESSION}",
        flags({"covariates": ("ses",)}, baseline=("ses",)),
    ),
    (
        f"{BASE}\n{X_EQ}\nsigma ~ (1 | therapist/patient)\n{SESSION}",
        flags(random_innovations=("patient", "therapist")),
    ),
    (
        f"{BASE}\n{X_EQ}\nsigma ~ (1 | patient)\n{SESSION}",
        flags(random_innovations=("patient",)),
    ),
    (
        f"{BASE}\n{X_EQ}\nalliance =~ goal + task + bond\nsymptoms =~ phq + gad\n{SESSION}",
        flags(predictor_indicators=("goal", "task", "bond"), outcome_indicators=("phq", "gad")),
    ),
    (
        f"{BASE}\n{X_EQ}\n{SESSION}\nfirst_session = free\ninnovations = session\n"
        "session_means = true",
        flags(first_session="free", innovations="session", session_means=True),
    ),
    (
        f"{BASE}\n{X_EQ}\n{SESSION}\nmeasurement_error = true\nceiling_predictor = 7\n"
        "floor_outcome = 0",
        flags(measurement_error=True, ceiling_predictor=7.0, floor_outcome=0.0),
    ),
    (
        f"{BASE}\n{X_EQ}\n{SESSION}\ntime = weeks_in\ntime_unit = weeks\neffects_interval = 1",
        flags({"time": "weeks_in"}, time_unit="weeks", effects_interval=1.0),
    ),
    (
        f"{BASE}\n{X_EQ}\n{SESSION}\nrandom_lags = [outcome_autoregression, state_effect]\n"
        "lag_trait_covariance = true\ntraits = integrated",
        flags(random_lags=("outcome_autoregression", "state_effect"), lag_trait_covariance=True),
    ),
    (
        f"{BASE}\n{X_EQ}\n{SESSION}\nbaseline_level = therapist\ncovariate_level = patient\n"
        "traits = sampled",
        flags(baseline_level="therapist", covariate_level="patient", traits="sampled"),
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_every_term_gives_the_spec_the_flags_make(text: str, expected: tuple) -> None:
    assert parsed(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_spec_to_formula_and_back(text: str, expected: tuple) -> None:
    roles, spec = expected
    again = parsed(to_formula(spec, roles))
    assert again == expected


def test_canonical_strings_round_trip_exactly() -> None:
    canonical = [
        f"{BASE}\n{X_EQ}\n{SESSION}",
        "symptoms ~ lag(alliance) + lag(symptoms) + moderator + lag(alliance):moderator + "
        "(lag(alliance) | therapist/patient)\n" + X_EQ + "\n" + SESSION,
        "y ~ lag(x) + lag(y) + (1 | id)\nx ~ lag(x) + lag(y)\nsession = wave\n"
        "session_means = true\nfirst_session = free\ninnovations = session",
        "symptoms ~ lag(alliance) + lag(symptoms) + (1 | therapist) + "
        f"(lag(alliance) | therapist:patient)\n{X_EQ}\nsigma ~ (1 | therapist/patient)\n"
        f"alliance =~ goal + task\n{SESSION}",
    ]
    for text in canonical:
        p = parse_formula(text)
        roles = make_roles(p.roles)
        assert to_formula(make_model(p.model, roles), roles) == text


CROSSED = "symptoms ~ lag(alliance) + lag(symptoms) + {groups}\n" + X_EQ + "\n" + SESSION


@pytest.mark.parametrize(
    "groups", ["(1 | therapist) + (1 | patient)", "(1 | patient) + (1 | therapist)"]
)
@pytest.mark.parametrize("stated", ["patient = patient", "therapist = therapist"])
def test_crossed_levels_do_not_depend_on_the_order_of_the_terms(groups: str, stated: str) -> None:
    # the roles once followed the order of the terms: patient first made 'therapist' the
    # patients; now the stated role decides, in the string or beside it
    text = CROSSED.format(groups=groups)
    assert parsed(f"{text}\n{stated}") == flags({"crossed": True})
    key, _, col = stated.partition(" = ")
    p = parse_formula(text, {key: col})
    assert (p.roles["patient"], p.roles["therapist"]) == ("patient", "therapist")
    assert p.roles["crossed"] is True


@pytest.mark.parametrize(
    "groups", ["(1 | therapist) + (1 | patient)", "(1 | patient) + (1 | therapist)"]
)
def test_crossed_levels_without_a_stated_patient_say_how_to_write_it(groups: str) -> None:
    text = CROSSED.format(groups=groups)
    with pytest.raises(FormulaError, match=r"do not say which holds the\s+patients") as info:
        parse_formula(text)
    second = groups.split("| ")[2].rstrip(")")
    assert f"'patient = {second}'" in str(info.value) and "--patient" in str(info.value)
    with pytest.raises(FormulaError, match="patient = clinic is not one of the crossed levels"):
        parse_formula(text + "\npatient = clinic")


def test_written_forms_that_mean_the_same() -> None:
    # brms's (1 + x | g) is (x | g); `;` separates statements as a new line does;
    # comments and continued lines are allowed; `m:lag(x)` is `lag(x):m`
    a = parsed(
        "symptoms ~ lag(alliance) + lag(symptoms) + lag(alliance):m + "
        "(1 + lag(alliance) | therapist/patient); session = session"
    )
    b = parsed(
        "# the outcome's regression\nsymptoms ~ lag(alliance) +\n    lag(symptoms) + "
        "m:lag(alliance) + (lag(alliance)\n | therapist/patient)  # slopes\nsession = session"
    )
    assert a == b
    assert a[1].moderators == ("m",) and a[1].random_slopes == ("patient", "therapist")


@pytest.mark.parametrize("name", shipped_specs())
def test_shipped_specs_through_the_model_string(name: str) -> None:
    spec_file = load_spec(name)
    text = to_formula(spec_file.model, spec_file.roles)
    p = parse_formula(text)
    roles = make_roles(p.roles)
    assert roles == spec_file.roles
    assert make_model(p.model, roles, spec_file.model.priors) == spec_file.model
    # the same spec file with its model written as [model] formula
    raw = {"data": {}, "model": {"formula": text}, "priors": spec_file.model.priors}
    again = parse_spec(raw, name)
    assert again.model == spec_file.model and again.roles == spec_file.roles


# (model string, the offending term, which occurrence of it (None: the end), words expected)
BAD = [
    ("symptoms ~ lagg(alliance) + lag(symptoms) + (1 | patient)", "lagg", 0, "unknown function"),
    ("symptoms ~ lag(alliance) + lag(symptoms) + (1 | patient", "", None, "expected ')'"),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + (1 | patient)\nfirst_sesion = free",
        "first_sesion",
        0,
        "Did you mean 'first_session'",
    ),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + (1 | patient)\nfirst_session = fre",
        "fre",
        0,
        "Did you mean 'free'",
    ),
    ("symptoms ~ lag(alliance) + (1 | patient)", "symptoms", 0, "needs lag(symptoms)"),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + lag(mood) + (1 | patient)",
        "lag(mood)",
        0,
        "two columns",
    ),
    ("symptoms ~ lag(alliance) + lag(symptoms)", "symptoms", 0, "no patient level"),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + (lag(symptoms) | patient)",
        "(lag(symptoms) | patient)",
        0,
        "random_lags",
    ),
    ("symptoms ~ lag(alliance) + lag(symptoms) + (x | patient)", "x", 0, "expected 1 or lag"),
    ("symptoms ~ lag(alliance) + lag(symptoms) + (1 | a/b/c)", "/", 1, "at most two levels"),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + lag(symptoms) + (1 | patient)",
        "lag(symptoms)",
        1,
        "appears twice",
    ),
    (
        "symptoms ~ symptoms + lag(alliance) + lag(symptoms) + (1 | patient)",
        "symptoms",
        1,
        "on itself",
    ),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + lag(alliance):m + (1 | patient)\n"
        "alliance ~ lag(alliance) + lag(alliance):n",
        "lag(alliance):n",
        0,
        "moderator",
    ),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + (1 | patient)\nmood =~ a + b",
        "mood",
        0,
        "indicators",
    ),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + (1 | patient)\nsigma ~ (1 | clinic)",
        "(1 | clinic)",
        0,
        "'clinic' is not a level",
    ),
    ("symptoms ~ lag(alliance) + lag(symptoms) + (1 | patient) $", "$", 0, "unexpected"),
    ("symptoms ~ lag(alliance) + lag(symptoms) + 2 + (1 | patient)", "2", 0, "expected 1"),
    (
        "symptoms ~ lag(alliance) + lag(symptoms) + (1 | patient)\ntrend = true",
        "true",
        0,
        "no trend(session) term",
    ),
    ("symptoms ~ lag(alliance) + lag(symptoms) + (1 | patient); x = 1", "x", 0, "unknown option"),
    ("symptoms lag(alliance)", "lag", 0, "expected '~'"),
]


def _position(text: str, term: str, nth: int | None) -> int:
    if nth is None:
        return len(text)
    starts = [m.start() for m in re.finditer(re.escape(term), text)]
    return starts[nth]


@pytest.mark.parametrize(("text", "term", "nth", "words"), BAD, ids=[b[1] or "end" for b in BAD])
def test_bad_terms_are_named_with_a_caret(
    text: str, term: str, nth: int | None, words: str
) -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    message = str(info.value)
    assert words in message
    pos = _position(text, term, nth)
    assert info.value.pos == pos
    line_start = text.rfind("\n", 0, pos) + 1
    shown, caret = message.split("\n")[1:3]
    # the caret sits under the offending term (both lines are indented by 4 spaces)
    assert caret.index("^") - 4 == pos - line_start
    assert shown[caret.index("^") :].startswith(term)
    assert f"column {pos - line_start + 1}" in message


def test_contradicting_flags_are_named_with_the_term() -> None:
    p = parse_formula(f"{BASE}\n{X_EQ}\n{SESSION}")
    with pytest.raises(ValueError, match=r"--no-reverse-lag \(False\) contradicts .*alliance"):
        combine(p, {}, {"reverse_lag": False}, {"reverse_lag": "--no-reverse-lag"})
    with pytest.raises(ValueError, match=r"--therapist \('tid'\) contradicts .*therapist/patient"):
        combine(p, {"therapist": "tid"}, {}, {"therapist": "--therapist"})
    roles, model = combine(p, {"therapist": "therapist"}, {"first_session": "free"})
    assert roles["therapist"] == "therapist" and model["first_session"] == "free"


def test_looks_like_formula() -> None:
    assert looks_like_formula("y ~ lag(x) + (1 | id)")
    assert not looks_like_formula("data/sessions.csv")
    assert not looks_like_formula(pd.DataFrame())


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Three therapists x three patients x five sessions, with a patient-level covariate."""
    rng = np.random.default_rng(3)
    rows = [
        (f"T{t}", f"P{t}{p}", s, *rng.normal(size=2), rng.normal())
        for t in range(3)
        for p in range(3)
        for s in range(1, 6)
    ]
    df = pd.DataFrame(
        rows, columns=["therapist", "patient", "session", "alliance", "symptoms", "z"]
    )
    df["age"] = df.groupby("patient")["z"].transform("first")
    return df.drop(columns="z")


@pytest.fixture
def fit_call(monkeypatch: pytest.MonkeyPatch):
    """``api.fit_frame`` with the sampling replaced by a recorder: one call, and what ``fit``
    would have been given (data, spec, keywords)."""

    def call(*args: object, **kwargs: object) -> tuple:
        seen = []
        monkeypatch.setattr(api, "fit", lambda data, spec, **kw: seen.append((data, spec, kw)))
        api.fit_frame(*args, **kwargs)
        (got,) = seen
        return got

    return call


def test_fit_frame_model_string_gives_the_keyword_spec(table: pd.DataFrame, fit_call) -> None:
    same = dict(first_session="free", random_seed=5)
    d1, s1, k1 = fit_call(
        "symptoms ~ lag(alliance) + lag(symptoms) + age + (lag(alliance) | therapist/patient)\n"
        + X_EQ,
        table,
        session="session",
        **same,
    )
    d2, s2, k2 = fit_call(
        table,
        **FLAG_ROLES,
        covariates=["age"],
        random_slopes=("patient", "therapist"),
        **same,
    )
    assert s1 == s2 and k1 == k2 and d1.data_hash == d2.data_hash
    with pytest.raises(ValueError, match=r"random_slopes= \(\['patient'\]\) contradicts"):
        api.fit_frame(f"{BASE}\n{SESSION}", table, random_slopes=["patient"])
    with pytest.raises(TypeError, match="give the data after the model string"):
        api.fit_frame(f"{BASE}\n{SESSION}")


def test_cli_model_flag(tmp_path, table: pd.DataFrame) -> None:
    from bayes_alliance.cli import commands

    path = tmp_path / "d.csv"
    table.to_csv(path, index=False)
    parser = build_parser()
    model = f"{BASE}; alliance ~ lag(alliance); session = session"
    args = parser.parse_args(["fit", str(path), "--out", str(tmp_path / "o"), "--model", model])
    _, spec, _, _ = commands.fit_inputs(args)
    by_flags = parser.parse_args(
        ["fit", str(path), "--out", "o", "--no-reverse-lag"]
        + [a for k, v in FLAG_ROLES.items() for a in (f"--{k}", v)]
    )
    assert spec == commands.fit_inputs(by_flags)[1]
    clash = parser.parse_args(
        ["fit", str(path), "--out", "o", "--model", model, "--equations", "outcome"]
    )
    with pytest.raises(ValueError, match=r"--equations \('outcome'\) contradicts"):
        commands.fit_inputs(clash)
    both = parser.parse_args(["fit", "--spec", "cross_lagged", "--out", "o", "--model", model])
    with pytest.raises(CLIError, match="either as --model or in the spec file"):
        commands.fit_inputs(both)


def test_docs_show_the_shipped_specs_as_to_formula_writes_them() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "formulas.md").read_text()
    for name in shipped_specs():
        spec_file = load_spec(name)
        assert to_formula(spec_file.model, spec_file.roles) in page, name


COLUMNS = ["therapist", "patient", "session", "alliance", "symptoms", "age"]


@pytest.mark.parametrize(
    ("text", "bad", "near", "under"),
    [
        # lag() of a misspelt outcome used to read as a second predictor
        (BASE.replace("lag(symptoms)", "lag(symptom)"), "symptom", "symptoms", "lag(symptom)"),
        (BASE.replace("symptoms ~", "symptom ~"), "symptom", "symptoms", "symptom ~"),
        (BASE.replace("lag(alliance)", "lag(aliance)"), "aliance", "alliance", "lag(aliance)"),
        (BASE + " + baseline(ag)", "ag", "age", "baseline(ag)"),
        (BASE + " + agee", "agee", "age", "+ agee"),
        (BASE.replace("therapist/", "therapst/"), "therapst", "therapist", "therapst/"),
        (BASE.replace("/patient", "/patiant"), "patiant", "patient", "patiant)"),
        (f"{BASE}\nsession = sesion", "sesion", "session", "= sesion"),
    ],
)
def test_a_misspelt_column_is_named_with_the_closest(text, bad, near, under) -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula(text, columns=COLUMNS)
    msg = str(info.value)
    assert f"the column {bad!r} is not in the data (did you mean {near!r}?)" in msg
    line, caret = msg.split("\n")[1:3]
    # the caret sits under the misspelt name, inside its term
    start = line.index(under) + under.index(bad)
    assert caret == " " * start + "^" * len(bad)


def test_columns_known_to_the_string_pass_the_check() -> None:
    got = parse_formula(
        f"{BASE} + age\nalliance =~ wai1 + wai2", columns=[*COLUMNS, "wai1", "wai2"]
    )
    assert list(got.roles["covariates"]) == ["age"]
    with pytest.raises(FormulaError, match=r"'wai3' is not in the data \(did you mean 'wai"):
        parse_formula(f"{BASE}\nalliance =~ wai1 + wai3", columns=[*COLUMNS, "wai1", "wai2"])


def test_fit_frame_and_cli_name_a_misspelt_column(tmp_path, table: pd.DataFrame) -> None:
    from bayes_alliance.cli import commands

    typo = BASE.replace("lag(symptoms)", "lag(symptom)")
    with pytest.raises(FormulaError, match="'symptom' is not in the data"):
        api.fit_frame(f"{typo}\n{SESSION}", table)
    path = tmp_path / "d.csv"
    table.to_csv(path, index=False)
    args = build_parser().parse_args(["fit", str(path), "--out", "o", "--model", typo])
    with pytest.raises(FormulaError, match=r"did you mean 'symptoms'\?"):
        commands.fit_inputs(args)
