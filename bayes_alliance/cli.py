"""Command line: ``bayes-alliance <command> ...``.

Errors in the user's input or flags print one clear message (and, for data, every problem) and
exit with status 2; they never show a traceback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_alliance import classic, datasets, simulation, vocab
from bayes_alliance import fit as fitting
from bayes_alliance.data import DataValidationError, DataWarning, SessionData
from bayes_alliance.io import OutputExistsError, atomic_dir, atomic_path
from bayes_alliance.spec import ModelSpec
from bayes_alliance.specfile import load_spec
from bayes_alliance.validate import Roles, check_frame

EXIT_USAGE = 2
# The results are written, but the convergence check failed: scripts must not use them unseen.
EXIT_NOT_CONVERGED = 3


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _read_csv(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"data file {path!r} does not exist")
    try:
        return pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise CLIError(f"cannot read {path!r} as CSV: {exc}") from None


def _add_roles(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("column roles" + ("" if required else " (not needed with --spec)"))
    g.add_argument("--patient", required=required, help="column with patient ids")
    g.add_argument(
        "--session", required=required, help="column with session numbers (whole numbers >= 0)"
    )
    g.add_argument("--predictor", required=required, help="time-varying predictor x, e.g. alliance")
    g.add_argument("--outcome", required=required, help="time-varying outcome y, e.g. symptoms")
    g.add_argument("--therapist", help="column with therapist ids (omit for two-level data)")
    g.add_argument("--covariates", default="", help="comma-separated patient-level columns")
    g.add_argument("--crossed", action="store_true", help="patients may see several therapists")


def _roles(args: argparse.Namespace) -> Roles:
    return Roles(
        patient=args.patient,
        session=args.session,
        predictor=args.predictor,
        outcome=args.outcome,
        therapist=args.therapist,
        covariates=tuple(c for c in args.covariates.split(",") if c),
        crossed=args.crossed,
    )


def cmd_validate(args: argparse.Namespace) -> int:
    df = _read_csv(args.data)
    res = check_frame(df, _roles(args))
    for w in res.warnings:
        print(f"warning: {w}")
    if res.problems:
        print(str(DataValidationError(res.problems)), file=sys.stderr)
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
    print(
        f"wrote {len(df)} rows to {Path(args.out) / 'data.csv'} and the truth to {Path(args.out) / 'truth.json'}"
    )
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


KEY_EFFECTS = (
    vocab.STATE_EFFECT,
    vocab.REVERSE_STATE_EFFECT,
    vocab.TRAIT_EFFECT_PATIENT,
    vocab.TRAIT_EFFECT_THERAPIST,
    vocab.OUTCOME_AUTOREGRESSION,
    vocab.PREDICTOR_AUTOREGRESSION,
)


def _effects_text(summary: pd.DataFrame, ci_prob: float = 0.94) -> str:
    lines = [f"{'parameter':<26}{'mean':>9}  {int(ci_prob * 100)}% interval"]
    for name in KEY_EFFECTS:
        if name in summary.index:
            r = summary.loc[name]
            lines.append(f"{name:<26}{r['mean']:>9.3f}  [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
    return "\n".join(lines)


def _write_fit(
    result: fitting.FitResult,
    out: str,
    force: bool,
    spec_path: Path | None = None,
    store: tuple[str, ...] = (),
) -> pd.DataFrame:
    summary = result.summary()
    with atomic_dir(out, force=force) as tmp:
        _write_fit_files(result, summary, tmp, store)
        if spec_path is not None:  # the spec travels with its result
            shutil.copy(spec_path, tmp / "spec.toml")
    return summary


def _write_fit_files(
    result: fitting.FitResult, summary: pd.DataFrame, folder: Path, store: tuple[str, ...] = ()
) -> None:
    summary.reset_index()[["parameter", *fitting.SUMMARY_COLUMNS]].to_csv(
        folder / "summary.csv", index=False
    )
    result.r2().to_csv(folder / "r2.csv", index=False)
    result.effects().reset_index().to_csv(folder / "effects.csv", index=False)
    result.save(folder / "fit.nc", store=store)
    (folder / "convergence.json").write_text(
        json.dumps(result.convergence.to_dict(), indent=2) + "\n"
    )


def _spec_from_flags(args: argparse.Namespace, data: SessionData) -> ModelSpec:
    slopes = tuple(s for s in (args.random_slopes or "").split(",") if s)
    moderators = tuple(s for s in (args.moderators or "").split(",") if s)
    undeclared = [m for m in moderators if m not in data.roles.covariates]
    if undeclared:
        raise CLIError(f"moderator(s) {undeclared} must also be listed in --covariates")
    return ModelSpec(
        therapist_level=data.therapists is not None and not args.no_therapist,
        random_slopes=slopes,
        moderators=moderators,
        equations=args.equations,
        same_session=args.same_session,
        reverse_lag=not args.no_reverse_lag,
        session_means=args.session_means,
        trend=args.trend,
        first_session=args.first_session,
        innovations=args.innovations,
    )


def _fit_inputs(args: argparse.Namespace) -> tuple[SessionData, ModelSpec, dict[str, Any]]:
    """Data, model and sampler settings from either --spec or the flags."""
    path = args.data or args.data_flag
    if not path:
        raise CLIError("give the data file (positional DATA or --data)")
    df = _read_csv(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        if args.spec:
            spec_file = load_spec(args.spec)
            data = spec_file.load_data(df)
            spec = spec_file.model
            s = spec_file.sampler
            sampler = {
                "draws": s.draws,
                "tune": s.tune,
                "chains": s.chains,
                "random_seed": s.seed,
                "sampler": s.sampler,
            }
        else:
            missing = [
                f"--{k}"
                for k in ("patient", "session", "predictor", "outcome")
                if getattr(args, k) is None
            ]
            if missing:
                raise CLIError(f"without --spec these flags are required: {', '.join(missing)}")
            roles = _roles(args)
            if args.no_therapist:
                roles = Roles(**{**roles.__dict__, "therapist": None})
            data = SessionData.from_roles(df, roles)
            spec = _spec_from_flags(args, data)
            sampler = {
                "draws": args.draws,
                "tune": args.tune,
                "chains": args.chains,
                "random_seed": args.seed,
                "sampler": "nutpie",
            }
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return data, spec, sampler


def cmd_fit(args: argparse.Namespace) -> int:
    if Path(args.out).exists() and not args.force:
        raise OutputExistsError(f"{args.out} exists; pass --force to replace it")
    store = tuple(s for s in args.store.split(",") if s)
    bad = sorted(set(store) - set(fitting.STORE_EXTRAS))
    if bad:
        raise CLIError(f"--store: unknown group(s) {bad}; choose from {list(fitting.STORE_EXTRAS)}")
    data, spec, sampler = _fit_inputs(args)
    spec_path = load_spec(args.spec).path if args.spec else None
    for name in ("draws", "chains"):
        if sampler[name] < 1:
            raise CLIError(f"--{name} must be at least 1, got {sampler[name]}")
    # The pointwise log-likelihood is computed when `compare` asks for it, not held here.
    result = fitting.fit(data, spec, progressbar=not args.quiet, log_likelihood=False, **sampler)
    summary = _write_fit(result, args.out, args.force, spec_path, store)
    print(_effects_text(summary))
    print(f"wrote {Path(args.out) / 'summary.csv'} and {Path(args.out) / 'fit.nc'}")
    return _convergence_status(result)


def _convergence_status(result: fitting.FitResult) -> int:
    """Print the convergence check last, where it is seen; a failed check exits with 3."""
    if result.convergence.ok:
        print(result.convergence.message())
        return 0
    print(result.convergence.message(), file=sys.stderr)
    return EXIT_NOT_CONVERGED


def cmd_compare(args: argparse.Namespace) -> int:
    from bayes_alliance import comparison

    if len(args.dirs) < 2:
        raise CLIError("compare needs at least two result folders")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise OutputExistsError(f"{out} exists; pass --force to replace it")
    results = {}
    for i, d in enumerate(args.dirs, start=1):
        path = Path(d) / "fit.nc"
        if not path.is_file():
            raise CLIError(f"{d} has no fit.nc (write one with 'bayes-alliance fit')")
        print(f"[{i}/{len(args.dirs)}] loading {path}", file=sys.stderr)
        results[Path(d).name or d] = fitting.FitResult.load(path)
    loos = {name: comparison.loo(r, args.unit) for name, r in results.items()}
    table = comparison.compare(results, unit=args.unit, loos=loos)
    print(f"ELPD unit: {comparison.UNIT_LABELS[args.unit]}")
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    for name, lr in loos.items():
        if lr.advice:
            print(f"{name}: {lr.advice}")
    with atomic_path(out, force=args.force) as tmp:
        table.reset_index().to_csv(tmp, index=False)
    print(f"wrote {out}")
    return 0


def _classic_report(data: SessionData, truth: dict[str, object] | None) -> tuple[str, pd.DataFrame]:
    d = data.describe()
    table = classic.two_step_regression(data)
    ar = classic.within_autoregression(data, vocab.OUTCOME)
    lines = [
        "# bayes_alliance demo: classic two-step trait/state analysis",
        "",
        "## Data",
        "",
        f"- {d['n_patients']} patients, {d['n_therapists']} therapists, {d['n_rows']} sessions "
        f"(per patient {d['sessions_per_patient_min']}-{d['sessions_per_patient_max']}, "
        f"median {d['sessions_per_patient_median']:g})",
        f"- skipped sessions inside series: {d['skipped_sessions']}; missing predictor "
        f"{d['missing_predictor_share']:.1%}, missing outcome {d['missing_outcome_share']:.1%}",
        *(f"- warning: {w}" for w in data.warnings),
        "",
        "## Two-step regression (person-mean centring, OLS, SEs clustered by patient)",
        "",
        "y_t = b0 + b_trait * mean(x) + b_state * (x_(t-1) - mean(x)) + b_ar * y_(t-1)",
        "",
        "| term | estimate | SE |",
        "| --- | ---: | ---: |",
        *(f"| {k} | {r.estimate:.3f} | {r.se:.3f} |" for k, r in table.iterrows()),
        "",
        f"Person-mean-centred autoregression of the outcome: {ar:.3f}.",
    ]
    if truth is not None:
        params: dict[str, float] = dict(truth["params"])  # type: ignore[call-overload]
        lines += [
            "",
            "## Against the truth the example data were drawn with",
            "",
            f"- state effect: true {params['state_effect']}, two-step {table['estimate'].to_numpy()[2]:.3f}",
            f"- outcome autoregression: true {params['outcome_autoregression']}, person-mean-centred "
            f"estimate {ar:.3f}. Observed centring biases lagged effects downward (Nickell 1981) and "
            "pulls trait effects toward state effects (Luedtke et al. 2008); the latent model removes both.",
        ]
    return "\n".join(lines) + "\n", table


def example_data(df: pd.DataFrame) -> SessionData:
    r = datasets.EXAMPLE_ROLES
    roles = Roles(
        r["patient"], r["session"], r["predictor"], r["outcome"], r["therapist"], ("moderator",)
    )
    return SessionData.from_roles(df, roles)


def cmd_demo(args: argparse.Namespace) -> int:
    from bayes_alliance.report import write_report

    if Path(args.out).exists() and not args.force:
        raise OutputExistsError(f"{args.out} exists; pass --force to replace it")
    df = datasets.load_example()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = example_data(df)
    truth = datasets.example_record()["params"]
    two = classic.two_step_regression(data)
    print(
        f"Example data: {data.n_patients} patients of {data.n_therapists} therapists, {int(data.present.sum())} sessions."
    )
    print(
        f"Classic two-step state effect {two['estimate'].iloc[2]:.3f} (truth {truth['state_effect']})."
    )
    result = fitting.fit(
        data,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        random_seed=args.seed,
        progressbar=not args.quiet,
        log_likelihood=False,
    )
    summary = result.summary()
    with atomic_dir(args.out, force=args.force) as tmp:
        _write_fit_files(result, summary, tmp)
        two.to_csv(tmp / "classic.csv")
        write_report(
            result,
            tmp / "report",
            title="bayes_alliance demo: alliance and symptoms (example data)",
        )
    print("Trait and state effects of the joint model (posterior mean, 94% HDI; truth):")
    text = _effects_text(summary).splitlines()
    print(text[0])
    for line in text[1:]:
        print(f"{line}  {truth.get(line.split()[0], '')}")
    print(f"HTML report: {Path(args.out) / 'report' / 'report.html'}")
    return _convergence_status(result)


def cmd_report(args: argparse.Namespace) -> int:
    from bayes_alliance.report import write_report

    path = Path(args.dir) / "fit.nc"
    if not path.is_file():
        raise CLIError(f"{args.dir} has no fit.nc (write one with 'bayes-alliance fit')")
    out = Path(args.out) if args.out else Path(args.dir) / "report"
    if out.exists() and not args.force:
        raise OutputExistsError(f"{out} exists; pass --force to replace it")
    result = fitting.FitResult.load(path)
    patients: list[object] | None = None
    if args.patients:
        ids = [p for p in args.patients.split(",") if p]
        known = {str(p): p for p in result.data.patients}
        missing = [p for p in ids if p not in known]
        if missing:
            raise CLIError(f"unknown patient id(s) {missing}; e.g. {list(known)[:5]}")
        patients = [known[p] for p in ids]
    html_path = write_report(result, out, patients=patients, ci_prob=args.ci, force=args.force)
    print(f"HTML report: {html_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayes-alliance",
        epilog="Run 'bayes-alliance COMMAND --help' for a command's manual. Data are long CSV files "
        "with one row per patient and session.",
        description="Bayesian trait/state models for session-by-session psychotherapy data.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "validate",
        help="check a data file and list every problem",
        description="Check a long CSV (one row per patient and session) against every data rule "
        "and list all problems at once, each with its column and rows or ids. Exit 0 when the "
        "data pass, 1 when they do not, 2 on bad flags.",
        epilog="example:\n  bayes-alliance validate sessions.csv --patient pid --therapist tid --session session \\\n      --predictor wai --outcome ors",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", help="CSV file")
    _add_roles(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "simulate",
        help="draw data with known truth",
        description="Draw three-level session data from the model of METHODS.md section 1 and "
        "write OUT/data.csv, OUT/truth.json and OUT/truth_patients.csv. Settings are the names "
        "of bayes_alliance.simulation.TrueParameters and Design, e.g. --set state_effect=-0.3 "
        "--set sessions=8,20.",
        epilog="example:\n  bayes-alliance simulate --out sim --seed 1 --set n_therapists=30 --set sessions=8,20 \\\n      --set state_effect=-0.25 --set p_missing_session=0.1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder (must not exist unless --force)")
    p.add_argument("--seed", type=int, required=True, help="random seed")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="a simulation setting")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "fit",
        help="fit the joint trait/state model to a CSV",
        description="Fit the latent-centred trait/state model (therapist and patient random "
        "intercepts, within-person cross-lagged VAR(1)) to a long CSV with one row per patient "
        "and session. Writes OUT/summary.csv (parameter, mean, sd, ci_low, ci_high [94% HDI], "
        "ess_bulk, ess_tail, r_hat), OUT/r2.csv (equation, denominator, component, mean, ci_low, "
        "ci_high), OUT/effects.csv (standardised and long-run effects, ICCs), OUT/fit.nc "
        "(posterior, data and provenance) and OUT/convergence.json, and prints the key effects.",
        epilog="examples:\n  bayes-alliance fit sessions.csv --patient pid --therapist tid --session session \\\n      --predictor wai --outcome ors --out results/var --seed 7\n  bayes-alliance fit --spec models/random_slopes --data sessions.csv --out results/slopes\n\nexit status: 0 on success, 2 on bad input or flags (one message, no traceback), 3 when the results are written but the convergence check failed (the message says what to change).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", nargs="?", help="CSV file (or --data)")
    p.add_argument("--data", dest="data_flag", metavar="DATA", help="CSV file")
    p.add_argument(
        "--spec", help="analysis spec (models/NAME[.toml]): columns, model, priors, sampler, seed"
    )
    _add_roles(p, required=False)
    p.add_argument("--out", required=True, help="output folder (must not exist unless --force)")
    p.add_argument(
        "--draws", type=int, default=1000, help="posterior draws per chain (default 1000)"
    )
    p.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=int, default=2, help="chains (default 2)")
    p.add_argument(
        "--seed", type=int, default=1, help="random seed (default 1; recorded in fit.nc)"
    )
    p.add_argument(
        "--random-slopes", default="", help="levels with random state effects: patient,therapist"
    )
    p.add_argument(
        "--no-therapist", action="store_true", help="two-level model (ignore --therapist)"
    )
    m = p.add_argument_group("model options (see bayes_alliance.spec.ModelSpec)")
    m.add_argument(
        "--moderators", default="", help="patient covariates moderating the state effect"
    )
    m.add_argument(
        "--equations", default="bivariate", help="bivariate (default) or outcome (single equation)"
    )
    m.add_argument(
        "--same-session",
        default="none",
        help="lag-0 path: none, predictor_to_outcome or outcome_to_predictor",
    )
    m.add_argument(
        "--no-reverse-lag", action="store_true", help="drop the outcome -> next predictor path"
    )
    m.add_argument(
        "--session-means", action="store_true", help="one grand mean per session (RI-CLPM)"
    )
    m.add_argument("--trend", action="store_true", help="per-patient linear trend (detrending)")
    m.add_argument("--first-session", default="stationary", help="stationary (default) or free")
    m.add_argument(
        "--innovations",
        default="constant",
        help="constant (default) or session: one innovation covariance per session (RI-CLPM; "
        "needs --first-session free)",
    )
    p.add_argument(
        "--store",
        default="",
        help="extra groups to write into fit.nc, comma-separated, for readers outside this "
        "package (float32): traits, states, log_likelihood. By default fit.nc holds the sampled "
        "draws only; the rest is recomputed exactly when the result is loaded",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "compare",
        help="compare fitted models (LOO, stacking weights, Delta-R-squared)",
        description="Compare results written by 'bayes-alliance fit' on the same data: PSIS-LOO "
        "ELPD by patient (default; leave-one-patient-out, each patient's marginal density of "
        "their observed cells with the latent mean and missing cells integrated out) or by "
        "session (a one-step-ahead conditional score given each patient's latent mean and past "
        "states, not a leave-one-session-out predictive), ELPD differences with their SE, "
        "stacking weights, Pareto-k counts, and Delta-R-squared of the outcome equation against "
        "the first folder. Prints the table and writes it to --out.",
        epilog="example:\n  bayes-alliance compare results/var results/single --unit patient --out comparison.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dirs", nargs="+", help="result folders, each with fit.nc")
    p.add_argument(
        "--unit",
        default="patient",
        choices=["patient", "session"],
        help="patient (leave-one-patient-out, default) or session (one-step-ahead conditional score)",
    )
    p.add_argument("--out", default="comparison.csv", help="CSV to write (default comparison.csv)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "report",
        help="write an HTML / Markdown / CSV report for a fitted result",
        description="Read DIR/fit.nc (written by 'bayes-alliance fit') and write DIR/report/: a "
        "self-contained report.html, report.md with its PNG figures, and CSV tables. The report "
        "describes the data, convergence, the named and derived effects, R-squared by component "
        "(bar chart), a forest plot, per-patient trait/state decompositions, a posterior "
        "predictive check, the classic two-step comparison, and plain-language sentences.",
        epilog="example:\n  bayes-alliance report results/var --patients P0001,P0002",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", help="result folder with fit.nc")
    p.add_argument(
        "--patients",
        default="",
        help="comma-separated patient ids to plot (default: 4 with most sessions)",
    )
    p.add_argument("--ci", type=float, default=0.94, help="interval probability (default 0.94)")
    p.add_argument("--out", help="output folder (default DIR/report)")
    p.add_argument("--force", action="store_true", help="replace an existing report folder")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "demo",
        help="analyse the shipped example data and write a report",
        description="Analyse the shipped example data (317 patients of 40 therapists) with the joint "
        "latent-centred model; write OUT/summary.csv, r2.csv, effects.csv, classic.csv, fit.nc and "
        "the report OUT/report/report.html, and print the trait and state effects.",
        epilog="example:\n  bayes-alliance demo --out demo_output --force",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument(
        "--draws", type=int, default=2000, help="posterior draws per chain (default 2000)"
    )
    p.add_argument("--tune", type=int, default=2000, help="tuning steps per chain (default 2000)")
    p.add_argument("--chains", type=int, default=2, help="chains (default 2)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except DataValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CLIError, OutputExistsError, ValueError) as exc:
        # ValueError: our own checks of settings and options, worded for users.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as exc:
        # The sampler's own failures (nutpie raises RuntimeError): one line, no traceback.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(
            f"error: sampling failed ({first}); nothing was written. Check the data for extreme "
            "values, or try another --seed; please report it with the data's description.",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
