"""``bayes-alliance describe``: the descriptives of a methods section
(:meth:`bayes_alliance.data.session_data.SessionData.describe`)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from bayes_alliance.cli.common import CLIError, read_data
from bayes_alliance.core.files import atomic_write_text
from bayes_alliance.data.reshape import sessions_from_dates
from bayes_alliance.data.session_data import DataWarning, SessionData
from bayes_alliance.spec.options import ROLES, make_roles


def cmd_describe(args: argparse.Namespace) -> int:
    """Read and check the data (as ``validate``), print the descriptives, optionally write
    them (``--out``: ``.md`` both tables, ``.csv`` the variables table then the design's)."""
    if args.outcome is None:
        raise CLIError("describe needs --outcome as well as --predictor")
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".md", ".csv"):
        raise CLIError(f"--out {args.out}: write .md (Markdown) or .csv")
    roles = make_roles(ROLES.from_args(args))
    ids = (roles.patient, roles.session, roles.therapist, roles.time)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        df = read_data(args, args.data, ids)
        if args.dates:  # sessions numbered per patient in date order
            df = sessions_from_dates(
                df,
                patient=roles.patient,
                date=roles.session,
                session=roles.session,
                date_format=args.date_format,
            )
        data = SessionData.from_roles(df, roles)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    d = data.describe()
    text = d.to_markdown()
    print(text)
    if out is not None:
        if out.suffix.lower() == ".md":
            atomic_write_text(out, text + "\n", force=args.force)
        else:
            design = d.design.reset_index()
            body = d.to_frame().reset_index().to_csv(index=False)
            body += "\n" + design.to_csv(index=False)
            atomic_write_text(out, body, force=args.force)
        print(f"wrote {out}", file=sys.stderr)
    return 0
