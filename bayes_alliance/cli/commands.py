"""The commands of ``bayes-alliance``: one ``cmd_NAME(args) -> exit status`` per subcommand.

Errors meant for the user are raised (:class:`~bayes_alliance.cli.app.CLIError`, ``ValueError``,
the output errors of :mod:`bayes_alliance.core.files`) and turned into one line by
:func:`bayes_alliance.cli.app.main`. A fit runs inside its output's :func:`~bayes_alliance.core.files.atomic_dir`,
so the output folder is locked for the whole run and appears only when complete.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayes_alliance import datasets
from bayes_alliance.analysis import classic
from bayes_alliance.cli import mechanisms as cli_mechanisms
from bayes_alliance.cli.common import (
    EXIT_NOT_CONVERGED,
    INTERRUPTS,
    CLIError,
    read_data,
    swallowed_file,
)
from bayes_alliance.cli.describe import cmd_describe as cmd_describe
from bayes_alliance.cli.output import key_effects_text, write_fit_folder
from bayes_alliance.cli.parser import DEMO_SAMPLER

# Commands on saved results, dispatched by name from this module (cli.app).
from bayes_alliance.cli.saved import cmd_compare as cmd_compare
from bayes_alliance.cli.saved import cmd_feedback as cmd_feedback
from bayes_alliance.cli.saved import cmd_report as cmd_report
from bayes_alliance.core import vocab
from bayes_alliance.core.diagnostics import ConvergenceWarning
from bayes_alliance.core.files import atomic_dir, atomic_path
from bayes_alliance.core.intervals import CI_KIND, DEFAULT_CI_PROB, interval_name
from bayes_alliance.data.readers import sessions_from_dates, wide_to_long
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.data.session_data import DataValidationError, DataWarning, SessionData
from bayes_alliance.data.validate import check_frame
from bayes_alliance.effects.continuous import interval_words
from bayes_alliance.inference import fit as fitting
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim import sessions as simulation
from bayes_alliance.spec import specfile
from bayes_alliance.spec.formula import parse_formula
from bayes_alliance.spec.formula_text import combine
from bayes_alliance.spec.model_spec import ModelSpec
from bayes_alliance.spec.options import (
    MODEL,
    ROLES,
    SAMPLER,
    SamplerSettings,
    make_model,
    make_roles,
    with_indicators,
)
from bayes_alliance.spec.specfile import AnalysisSpec, load_spec

if TYPE_CHECKING:  # the mechanism models import PyMC: a fit from the cache does not
    from bayes_alliance.mechanisms.load import AnyResult

KEY_EFFECTS = vocab.KEY_EFFECTS


# The time column that --dates adds for continuous time (time since the patient's first date).
DATE_TIME = specfile.DATE_TIME


def _dated(
    args: argparse.Namespace,
    df: pd.DataFrame,
    patient: str,
    session: str,
    spec: ModelSpec | None = None,
) -> pd.DataFrame:
    """With --dates: sessions numbered per patient in date order, the day gaps kept; for a
    continuous-time ``spec``, also the time since the patient's first session
    (:data:`DATE_TIME`, in the spec's time unit)."""
    if not getattr(args, "dates", False):
        return df
    continuous = spec is not None and spec.time_model == "continuous"
    return sessions_from_dates(
        df,
        patient=patient,
        date=session,
        session=session,
        date_format=args.date_format,
        elapsed=DATE_TIME if continuous else None,
        unit_days=7.0 if spec is not None and spec.time_unit == "weeks" else 1.0,
    )


def cmd_validate(args: argparse.Namespace) -> int:
    if args.outcome is None:
        return _validate_single(args)
    roles = make_roles(ROLES.from_args(args))
    df = _dated(args, read_data(args, args.data), roles.patient, roles.session)
    res = check_frame(df, roles)
    for w in res.warnings:
        print(f"warning: {w}")
    if res.problems:
        print(str(DataValidationError(res.problems)), file=sys.stderr)
        return 1
    print(f"ok: {len(df)} rows pass every check")
    return 0


def _validate_single(args: argparse.Namespace) -> int:
    """``validate`` without ``--outcome``: the predictor's series alone, by the rules of the
    fit of one series (:meth:`SeriesData.single`)."""
    df = _dated(args, read_data(args, args.data), args.patient, args.session)
    problems = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            SeriesData.single(
                df,
                patient=args.patient,
                session=args.session,
                predictor=args.predictor,
                therapist=args.therapist,
                end_outcome=args.end_outcome,
            )
        except DataValidationError as exc:
            problems = str(exc)
    for w in caught:
        print(f"warning: {w.message}")
    if problems is not None:
        print(problems, file=sys.stderr)
        return 1
    print(f"ok: {len(df)} rows pass every check")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    settings: dict[str, object] = {}
    for item in args.set or []:
        if "=" not in item:
            raise CLIError(f"--set expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        settings[k] = _parse_value(v)
    try:
        df, truth = simulation.simulate(seed=args.seed, **settings)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    with atomic_dir(args.out, force=args.force) as tmp:
        df.to_csv(tmp / "data.csv", index=False)
        (tmp / "truth.json").write_text(truth.to_json() + "\n")
        truth.patients.to_csv(tmp / "truth_patients.csv", index=False)
    out = Path(args.out)
    print(f"wrote {len(df)} rows to {out / 'data.csv'} and the truth to {out / 'truth.json'}")
    return 0


def _parse_value(v: str) -> object:
    if "," in v:
        return tuple(_parse_value(x) for x in v.split(","))
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _effects_text(summary: pd.DataFrame, ci_prob: float = DEFAULT_CI_PROB) -> str:
    return key_effects_text(summary, KEY_EFFECTS, ci_prob, head="parameter", width=26)


def fit_inputs(
    args: argparse.Namespace,
) -> tuple[SessionData | SeriesData, ModelSpec | MechanismSpec, dict[str, Any], Path | None]:
    """Data, model, sampler settings and spec file from either --spec or the flags (a
    mechanism model's data and options when a mediator, second informant or end-of-treatment
    outcome is named, or a predictor without an outcome)."""
    if getattr(args, "model", None):
        if args.spec:
            raise CLIError(
                "give the model either as --model or in the spec file (--spec), not both: "
                'a spec file takes the model string as formula = "..." in its [model] table'
            )
        _model_string_args(args)
    if args.spec:
        given = ROLES.given(args) + SAMPLER.given(args) + MODEL.given(args)
        if given:
            raise CLIError(
                f"{', '.join(given)}: set by the spec file with --spec; edit a copy of the spec "
                "instead, so that the spec copied into the results describes the run "
                f"(`bayes-alliance spec {Path(str(args.spec)).stem} --out my_spec.toml` writes "
                "one, e.g. to name your own columns under [data])"
            )
        spec_file = load_spec(args.spec)
        args.spec_missing_codes = spec_file.missing_codes  # read as --missing-code
        if spec_file.dates:  # [data] dates = true reads the session column as --dates does
            args.dates = True
            args.date_format = spec_file.date_format or getattr(args, "date_format", None)
        if spec_file.single:  # no outcome: the predictor's series alone
            return _single_inputs(args, spec_file)
        roles, spec, settings = spec_file.roles, spec_file.model, spec_file.sampler
        spec_path = spec_file.path
    elif args.outcome is None and args.predictor is not None:
        return _single_inputs(args)
    else:
        missing = [ROLES.flag(ROLES.option(k)) for k in ROLES.required if getattr(args, k) is None]
        if missing:
            raise CLIError(f"without --spec these flags are required: {', '.join(missing)}")
        values = ROLES.from_args(args)
        model = MODEL.from_args(args)
        if getattr(args, "dates", False) and model.get("time_model") != "sessions":
            # dates are times: continuous time unless --time-model sessions
            if values.get("time") is not None:
                raise CLIError("give either --dates or --time, not both")
            model["time_model"] = "continuous"
            values["time"] = DATE_TIME
        if model.get("therapist_level") is False:  # --no-therapist: two-level data too
            values["therapist"] = None
        roles = make_roles(values)
        spec = make_model(model, roles)
        settings, spec_path = SAMPLER.build(SAMPLER.from_args(args)), None
    path = _data_path(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        ids = (roles.patient, roles.session, roles.therapist, roles.time)
        df = _dated(args, read_data(args, path, ids), roles.patient, roles.session, spec)
        if roles.mechanism or spec.random_lags or spec.lag_trait_covariance:
            mech = cli_mechanisms.series_data(df, roles)
        else:
            data = SessionData.from_roles(df, with_indicators(roles, spec))
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    sampler = _sampler(settings)
    if roles.mechanism or spec.random_lags or spec.lag_trait_covariance:
        return mech, cli_mechanisms.mechanism_spec(spec, mech.roles), sampler, spec_path
    return data, spec, sampler, spec_path


def _model_string_args(args: argparse.Namespace) -> None:
    """--model: its roles and options set on ``args`` as if given by their flags; a flag that
    contradicts the model string is an error naming both."""
    labels = {o.name: g.flag(o) for g in (ROLES, MODEL) for o in g.options if o.cli}
    given_roles = {k: getattr(args, k, None) for k in ROLES.names}
    path = args.data or args.data_flag
    # the data's columns, so that a misspelt one is named as such (the table is small; read
    # again below with the roles the string sets)
    columns = [*read_data(args, path, ()).columns, DATE_TIME] if path else None
    parsed = parse_formula(args.model, given_roles, columns)
    given_model = {k: getattr(args, k, None) for k in MODEL.names}
    if given_model.get("therapist_level") is False:  # --no-therapist: two-level data
        given_roles["therapist"] = None
    roles, model = combine(parsed, given_roles, given_model, labels)
    for key, value in (*roles.items(), *model.items()):
        setattr(args, key, tuple(value) if isinstance(value, list) else value)


def _single_inputs(
    args: argparse.Namespace, spec_file: AnalysisSpec | None = None
) -> tuple[SeriesData, MechanismSpec, dict[str, Any], Path | None]:
    """:func:`fit_inputs` for a ``--predictor`` without an ``--outcome``, or a spec file
    without an outcome: that series alone."""
    path = _data_path(args)
    therapist = (spec_file.data if spec_file else vars(args)).get("therapist")

    def read(patient: str, session: str) -> pd.DataFrame:
        return _dated(args, read_data(args, path, (patient, session, therapist)), patient, session)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        if spec_file is None:
            data, spec = cli_mechanisms.single_inputs(args, read)
        else:
            data, spec = cli_mechanisms.spec_single_inputs(spec_file.data, spec_file.model, read)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if spec_file is None:
        return data, spec, _sampler(SAMPLER.build(SAMPLER.from_args(args))), None
    return data, spec, _sampler(spec_file.sampler), spec_file.path


def _data_path(args: argparse.Namespace) -> str:
    path: str | None = args.data or args.data_flag
    if not path:
        raise CLIError(f"give the data file (positional DATA or --data){swallowed_file(args)}")
    return path


def _sampler(settings: SamplerSettings) -> dict[str, Any]:
    """The sampler's keywords from the settings of the flags or the spec file."""
    return {
        "draws": settings.draws,
        "tune": settings.tune,
        "chains": settings.chains,
        "random_seed": settings.seed,
        "sampler": settings.sampler,
    }


def _store(text: str) -> tuple[str, ...]:
    store = tuple(s for s in text.split(",") if s)
    bad = sorted(set(store) - set(fitting.STORE_EXTRAS))
    if bad:
        raise CLIError(f"--store: unknown group(s) {bad}; choose from {list(fitting.STORE_EXTRAS)}")
    return store


def cmd_fit(args: argparse.Namespace) -> int:
    store = _store(args.store)
    data, spec, sampler, spec_path = fit_inputs(args)
    mechanism = isinstance(data, SeriesData)
    if mechanism:
        if store:
            raise CLIError("--store is for the main model; a mechanism fit stores its draws")
        if sampler.pop("sampler", "nutpie") != "nutpie":
            raise CLIError("the mechanism models sample with nutpie only")
    # Inside atomic_dir for the whole run: OUT is locked against a second run from the start,
    # and an interrupted fit leaves nothing behind.
    with atomic_dir(args.out, force=args.force) as tmp:
        with _convergence_printed_last():
            result: AnyResult
            if isinstance(data, SeriesData):
                assert isinstance(spec, MechanismSpec)
                from bayes_alliance.mechanisms.fit import fit_mechanisms  # imports PyMC

                result = fit_mechanisms(data, spec, progressbar=not args.quiet, **sampler)
            else:
                assert isinstance(spec, ModelSpec)
                # The pointwise log-likelihood is computed when `compare` asks for it.
                result = fitting.fit(
                    data, spec, progressbar=not args.quiet, log_likelihood=False, **sampler
                )
        INTERRUPTS.check()
        result.provenance["ci_prob"] = args.ci  # `report DIR` uses the same level
        # The mechanism models' output has always held their report, with the path diagram.
        tables = write_fit_folder(result, tmp, args.ci, store=store, report=mechanism)
        if spec_path is not None:  # the spec travels with its result
            shutil.copy(spec_path, tmp / "spec.toml")
    out = Path(args.out)
    if isinstance(data, SeriesData):
        assert isinstance(spec, MechanismSpec)
        print(cli_mechanisms.effects_text(tables.effects, args.ci, spec.design(data)))
        print(f"wrote {out / 'effects.csv'}, {out / 'fit.nc'} and the report")
    else:
        print(_effects_text(tables.summary, args.ci))
        fitted = result.spec  # resolved: it holds the effects interval
        if isinstance(fitted, ModelSpec) and fitted.time_model == "continuous":
            print(f"continuous time: the lag effects are {interval_words(fitted)}")
        print(f"wrote {out / 'summary.csv'} and {out / 'fit.nc'}")
        # Offered, not written: the report's post-hoc checks and figures take longer than
        # the tables, and its options (patients, --format, --better) are the report's own.
        print(f"report: bayes-alliance report {shlex.quote(str(out))} (add --format docx or pdf)")
    return _convergence_status(result)


@contextlib.contextmanager
def _convergence_printed_last() -> Iterator[None]:
    """Silence the sampler's convergence warning: :func:`_convergence_status` prints the same
    message as the last line, where it is seen, without the warning's source line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _convergence_status(result: AnyResult) -> int:
    """Print the convergence check last, where it is seen; a failed check exits with 3."""
    if result.convergence.ok:
        print(result.convergence.message())
        return 0
    print(result.convergence.message(), file=sys.stderr)
    return EXIT_NOT_CONVERGED


def example_data(df: pd.DataFrame) -> SessionData:
    """The shipped example table as session data, with its moderator as a covariate."""
    return SessionData.from_roles(
        df, make_roles({**datasets.EXAMPLE_ROLES, "covariates": ("moderator",)})
    )


def cmd_demo(args: argparse.Namespace) -> int:
    settings = SAMPLER.build(SAMPLER.from_args(args, DEMO_SAMPLER))
    df = datasets.load_example()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = example_data(df)
    truth = datasets.example_record()["params"]
    two = classic.two_step_regression(data)
    with atomic_dir(args.out, force=args.force) as tmp:
        print(
            f"Example data: {data.n_patients} patients of {data.n_therapists} therapists, "
            f"{int(data.present.sum())} sessions."
        )
        print(
            f"Classic two-step state effect {two['estimate'].iloc[2]:.3f} "
            f"(truth {truth['state_effect']})."
        )
        with _convergence_printed_last():
            result = fitting.fit(
                data,
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                random_seed=settings.seed,
                progressbar=not args.quiet,
                log_likelihood=False,
            )
        INTERRUPTS.check()
        tables = write_fit_folder(
            result,
            tmp,
            args.ci,
            report=True,
            title="bayes_alliance demo: alliance and symptoms (example data)",
        )
        two.to_csv(tmp / "classic.csv")
    print(
        "Trait and state effects of the joint model (posterior mean, "
        f"{interval_name(args.ci, CI_KIND)}; truth):"
    )
    text = _effects_text(tables.summary, args.ci).splitlines()
    print(text[0])
    for line in text[1:]:
        print(f"{line}  {truth.get(line.split()[0], '')}")
    print(f"HTML report: {Path(args.out) / 'report' / 'report.html'}")
    return _convergence_status(result)


def cmd_reshape(args: argparse.Namespace) -> int:
    patterns: dict[str, str] = {}
    for item in args.pattern:
        name, sep, pattern = item.partition("=")
        if not sep or not name or not pattern:
            raise CLIError(
                f"--pattern expects NAME=PATTERN (e.g. alliance=wai_{{session}}), got {item!r}"
            )
        patterns[name] = pattern
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        long = wide_to_long(
            read_data(args, args.data), id_columns=args.id, patterns=patterns, session=args.session
        )
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    with atomic_path(args.out, force=args.force) as tmp:
        long.to_csv(tmp, index=False)
    n_pat = long[args.id[0]].nunique()
    print(f"wrote {args.out}: {len(long)} rows (patient x session) of {n_pat} patients")
    return 0


def cmd_spec(args: argparse.Namespace) -> int:
    from bayes_alliance.spec.specfile import shipped_specs, spec_path

    if not args.name:
        for name in shipped_specs():
            description = load_spec(name).description.split(".")[0].replace("\n", " ")
            print(f"{name:<18}{description}")
        return 0
    text = spec_path(args.name).read_text()
    if not args.out:
        print(text, end="")
        return 0
    with atomic_path(args.out, force=args.force) as tmp:
        Path(tmp).write_text(text)
    print(
        f"wrote {args.out}: edit its [data] columns (and anything else), then fit --spec {args.out}"
    )
    return 0


def cmd_patterns(args: argparse.Namespace) -> int:
    from bayes_alliance.cli.patterns import cmd_patterns as run

    return run(args)


def cmd_study(args: argparse.Namespace) -> int:
    from bayes_alliance.cli.study import cmd_study as run

    return run(args)
