"""``bayes-alliance patterns FITDIR --out DIR``: each patient's posterior probability of each
state pattern, from a saved joint-model fit, as ``DIR/patterns.csv``.

The rules and their thresholds are :mod:`bayes_alliance.analysis.patterns`; the table is
:func:`bayes_alliance.analysis.pattern_table.patterns_table`, whose ``p_NAME`` columns are
written under the pattern's own name (:data:`~bayes_alliance.analysis.patterns.PATTERNS`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bayes_alliance.analysis.pattern_table import patterns_table
from bayes_alliance.analysis.patterns import PATTERNS
from bayes_alliance.cli.common import CLIError, results_path
from bayes_alliance.core.files import atomic_dir
from bayes_alliance.inference.fit import FitResult
from bayes_alliance.inference.state_group import has_states as has_stored_states
from bayes_alliance.mechanisms.load import AnyResult, load_result

FILE = "patterns.csv"
COLUMNS = ("patient", *PATTERNS)
"""The columns of ``patterns.csv``, in order."""


def pattern_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``patterns.csv`` from a :func:`patterns_table`: ``patient`` and one
    probability per pattern, named without the table's ``p_`` prefix.

    Parameters
    ----------
    table
        The output of :func:`~bayes_alliance.analysis.pattern_table.patterns_table`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, one row per patient in the table's order. The session
        columns (``rupture_sessions``, ``sudden_gain_session``, ...) are left out: one
        probability per patient and pattern is what the file promises.
    """
    renamed = table.rename(columns={f"p_{name}": name for name in PATTERNS})
    return renamed.loc[:, list(COLUMNS)]


def _joint_fit(result: AnyResult, path: Path) -> FitResult:
    """The joint model's result, or a clear error: the patterns need its per-session states."""
    if not isinstance(result, FitResult):
        raise CLIError(
            f"{path} is a mechanism-model fit (fitted with --mediator, --second-predictor or "
            "--end-outcome); state patterns are for the joint trait/state model: fit it without "
            "those columns and run patterns on that folder"
        )
    # The same condition under which FitResult.states can give states (stored or recomputed).
    has_states = has_stored_states(result.idata) or (
        result.spec.traits == "integrated" and result.spec.store_states
    )
    if not has_states:
        raise CLIError(
            f"{path} holds no states: the fit was made with store_states = false. Refit with "
            "store_states = true (the default; in a spec file's [model] table) to compute patterns"
        )
    return result


def cmd_patterns(args: argparse.Namespace) -> int:
    """Write ``OUT/patterns.csv`` for every patient of the fit in ``args.dir``."""
    out = Path(args.out)
    path = results_path(args.dir)
    # Refused before the load (which takes a while); atomic_dir checks again under its lock.
    if out.exists() and not args.force:
        raise CLIError(f"{out} exists; pass --force to replace it")
    result = _joint_fit(load_result(path), path)
    table = patterns_table(
        result,
        variable=args.variable,
        higher_is_better=not args.lower_is_better,
        scale=args.scale,
        calibration=args.calibration,
        alpha=args.alpha,
    )
    with atomic_dir(out, force=args.force) as tmp:
        pattern_columns(table).to_csv(tmp / FILE, index=False)
    column = getattr(result.data.roles, args.variable)  # the data's column name, e.g. wai
    print(f"wrote {out / FILE}: {len(table)} patients, patterns of the states of {column!r}")
    return 0


__all__ = ["COLUMNS", "FILE", "cmd_patterns", "pattern_columns"]
