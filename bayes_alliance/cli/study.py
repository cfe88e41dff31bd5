"""``bayes-alliance study``: run or resume a simulation / method-comparison study on Dask and
write its summary and report."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from bayes_alliance.cli.common import INTERRUPTS, CLIError


def cmd_study(args: argparse.Namespace) -> int:
    from bayes_alliance.study.runner import all_tasks, pending_tasks, run_study
    from bayes_alliance.study.spec import load_study

    study = load_study(args.study)
    if args.replications is not None:
        if args.replications < 1:
            raise CLIError("--replications must be at least 1")
        study = study.with_replications(args.replications)
    if args.workers is not None and args.workers < 1:
        raise CLIError("--workers must be at least 1")
    if args.scheduler and args.workers:
        raise CLIError("--workers is for the local cluster; an existing cluster has its own")
    out = Path(args.out)
    total = len(all_tasks(study))
    if not args.summary_only:
        before = total - (len(pending_tasks(study, out)) if out.exists() else total)
        if before:
            print(f"resuming {study.name}: {before} of {total} tasks already done", file=sys.stderr)
        try:
            run_study(
                study,
                out,
                scheduler=args.scheduler,
                workers=args.workers,
                progress=not args.quiet,
            )
        except KeyboardInterrupt:
            left = len(pending_tasks(study, out))
            signum = INTERRUPTS.signum or signal.SIGINT
            print(
                f"\ninterrupted: {total - left} of {total} tasks are done and kept in {out}; "
                "run the same command again to resume",
                file=sys.stderr,
            )
            return 128 + signum
    return _summarise(out)


def _summarise(out: Path) -> int:
    from bayes_alliance.study.report import write_study_report
    from bayes_alliance.study.summary import write_summary

    if not (out / "manifest.json").is_file():
        raise CLIError(f"{out} is not a study folder (no manifest.json)")
    summary = write_summary(out)
    report = write_study_report(out)
    print(f"wrote {out / 'summary.csv'} ({len(summary)} rows) and {report}")
    return 0


__all__ = ["cmd_study"]
