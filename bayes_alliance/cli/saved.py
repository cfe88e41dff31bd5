"""Commands on saved results: ``compare`` (leave-one-out across fits), ``report`` (the HTML
report of a fit folder) and ``feedback`` (a patient's page from a fit, with new sessions
conditioned on without refitting). Each reads a results file of either model family where the
command applies to it; none refits or overwrites anything without ``--force``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bayes_alliance.cli.common import CLIError, read_data, results_path
from bayes_alliance.core.files import atomic_path
from bayes_alliance.core.intervals import DEFAULT_CI_PROB
from bayes_alliance.inference import fit as fitting


def load_result(path: Path) -> Any:
    """:func:`bayes_alliance.mechanisms.load.load_result`, imported when a command reads a
    result (the mechanism models import PyMC; ``fit`` from the cache need not)."""
    from bayes_alliance.mechanisms.load import load_result as load

    return load(path)


def cmd_compare(args: argparse.Namespace) -> int:
    from bayes_alliance.analysis import comparison

    if len(args.dirs) < 2:
        raise CLIError("compare needs at least two result folders")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CLIError(f"{out} exists; pass --force to replace it")
    names = [Path(d).name or d for d in args.dirs]
    if len(set(names)) < len(names):  # e.g. a/fit and b/fit: name the models by their paths
        names = list(args.dirs)
    if len(set(names)) < len(names):
        raise CLIError("compare: a result folder is given twice")
    paths = [results_path(d) for d in args.dirs]
    results: dict[str, Any] = {}  # either family (compare refuses a mix)
    for i, (name, path) in enumerate(zip(names, paths, strict=True), start=1):
        print(f"[{i}/{len(paths)}] loading {path}", file=sys.stderr)
        results[name] = load_result(path)
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


def cmd_report(args: argparse.Namespace) -> int:
    from bayes_alliance.report.direction import higher_is_better, parse_better
    from bayes_alliance.report.export import check_formats, find_chromium
    from bayes_alliance.report.write import write_report

    out = Path(args.out) if args.out else Path(args.dir) / "report"
    path = results_path(args.dir)
    if out.exists() and not args.force:
        raise CLIError(f"{out} exists; pass --force to replace it")
    result = load_result(path)
    patients: list[object] | None = None
    if args.patients and not isinstance(result, fitting.FitResult):
        raise CLIError(
            "--patients: a mechanism fit's report has no patient pages (use the feedback "
            "command for one patient's states and patterns)"
        )
    if args.patients and isinstance(result, fitting.FitResult):
        ids = [p for p in args.patients.split(",") if p]
        known = {str(p): p for p in result.data.patients}
        missing = [p for p in ids if p not in known]
        if missing:
            raise CLIError(f"unknown patient id(s) {missing}; e.g. {list(known)[:5]}")
        patients = [known[p] for p in ids]
    # Without --ci the report uses the level the fit's tables were written with.
    saved = result.provenance.get("ci_prob", DEFAULT_CI_PROB)
    ci = args.ci if args.ci is not None else float(saved)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    try:
        better = parse_better(args.better)
        check_formats(formats)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if "pdf" in formats and find_chromium() is None:
        raise CLIError(
            "--format pdf prints the HTML report with a headless Chromium, which is not "
            "installed (Debian/Ubuntu: apt-get install chromium); --format docx writes a "
            "Word document without it"
        )
    if better and not isinstance(result, fitting.FitResult):
        raise CLIError(
            "--better colours the patient panels, which a mechanism fit's report has not"
        )
    if isinstance(result, fitting.FitResult):
        try:
            higher_is_better(result.data.roles.predictor, result.data.roles.outcome, better)
        except ValueError as exc:
            raise CLIError(f"--better: {exc}") from None
    html_path = write_report(
        result,
        out,
        patients=patients,
        ci_prob=ci,
        force=args.force,
        better=better,
        formats=formats,
    )
    print(f"HTML report: {html_path}")
    for fmt in ("docx", "pdf"):
        if fmt in formats:
            print(f"{fmt.upper()} report: {html_path.with_suffix('.' + fmt)}")
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    import time

    from bayes_alliance.feedback import output as feedback_output
    from bayes_alliance.feedback import patient_feedback as feedback

    t0 = time.perf_counter()
    if not args.patient and not args.profiles:
        raise CLIError("name a patient (--patient ID) or ask for --profiles")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CLIError(f"{out} exists; pass --force to replace it")
    options = feedback.FeedbackOptions(
        variable=args.alliance,
        ci_prob=args.ci,
        last=args.last,
        low_trait=args.low_trait,
        high_trait=args.high_trait,
        min_trend=args.min_trend,
        flag_probability=args.flag_probability,
        calibration=args.calibration,
        alpha=args.alpha,
    )
    # Either family: a mechanism fit's page reads its predictor series as the alliance.
    result = load_result(results_path(args.dir))
    # the id and session columns, which --missing-code leaves alone (a mechanism fit's
    # SeriesData keeps them on its two-series base)
    roles = getattr(result.data, "base", result.data).roles
    ids = (roles.patient, roles.session, roles.therapist)
    new = read_data(args, args.new_sessions, ids) if args.new_sessions else None
    html_path = feedback_output.write_feedback(
        result,
        out,
        patient=args.patient or None,
        new_sessions=new,
        options=options,
        profiles=args.profiles,
        force=args.force,
        random_seed=args.seed,
        allow_unconverged=args.allow_unconverged,
    )
    if args.patient:
        summary = json.loads((out / "feedback.json").read_text())
        for line in summary["sentences"]:
            print(line)
    print(f"wrote {html_path} and {out / 'feedback.json'} in {time.perf_counter() - t0:.1f} s")
    return 0
