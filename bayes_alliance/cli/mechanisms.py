"""``bayes-alliance fit`` for the mechanism models: a data file with a ``--mediator``, a
``--second-predictor`` or an ``--end-outcome`` column goes to
:func:`bayes_alliance.mechanisms.fit.fit_mechanisms`; the output folder holds ``fit.nc``,
``effects.csv``, ``summary.csv``, ``convergence.json`` and the report with its path diagram."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_alliance.cli.common import EXIT_NOT_CONVERGED, INTERRUPTS, CLIError
from bayes_alliance.core.diagnostics import ConvergenceWarning
from bayes_alliance.core.files import atomic_dir
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.data.validate import Roles
from bayes_alliance.mechanisms.fit import MechanismResult, fit_mechanisms
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.report.labels import interval_name
from bayes_alliance.spec.model_spec import ModelSpec

# Rows printed after a fit, by design (those present).
PRINTED = (
    "indirect_effect_within",
    "direct_effect_within",
    "total_effect_within",
    "proportion_mediated_within",
    "state_effect",
    "state_effect_second",
    "state_effect_difference",
    "trait_effect_patient",
    "trait_effect_patient_second",
    "trait_effect_patient_difference",
    "end_trait_effect",
    "end_change_effect",
)


def mechanism_spec(spec: ModelSpec) -> MechanismSpec:
    """The mechanism model's options from the main model's: only the therapist level carries
    over; any other option set is an error naming it."""
    plain = ModelSpec(therapist_level=spec.therapist_level).to_dict()
    given = spec.to_dict()
    changed = sorted(k for k in given if k != "priors" and given[k] != plain[k])
    if changed or spec.priors:
        raise CLIError(
            f"model option(s) {changed or ['priors']} are not available with --mediator, "
            "--second-predictor or --end-outcome (the mechanism models have their own fixed "
            "structure: see docs/methods.md); drop them, or fit the main model without those "
            "columns"
        )
    return MechanismSpec(therapist_level=spec.therapist_level)


def series_data(df: pd.DataFrame, roles: Roles) -> SeriesData:
    """The mechanism model's data from the table and the column roles."""
    if roles.crossed:
        raise CLIError("crossed data are not supported by the mechanism models")
    return SeriesData.from_frame(
        df,
        patient=roles.patient,
        session=roles.session,
        predictor=roles.predictor,
        outcome=roles.outcome,
        therapist=roles.therapist,
        mediator=roles.mediator,
        second_predictor=roles.second_predictor,
        end_outcome=roles.end_outcome,
    )


def effects_text(table: pd.DataFrame, ci_prob: float) -> str:
    rows = table.set_index("parameter")
    lines = [f"{'effect':<34}{'mean':>9}  {interval_name(ci_prob, 'eti')}"]
    for name in PRINTED:
        if name in rows.index:
            r = rows.loc[name]
            lines.append(f"{name:<34}{r['mean']:>9.3f}  [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
    return "\n".join(lines)


def write_files(result: MechanismResult, folder: Path, ci_prob: float) -> pd.DataFrame:
    """fit.nc, summary.csv, convergence.json and the report (with effects.csv) in ``folder``;
    effects.csv is copied beside fit.nc as for the main model. Returns the effects table."""
    from bayes_alliance.report.mechanisms import effects_table, write_mechanism_report

    result.save(folder / "fit.nc")
    summary = result.summary(ci_prob).reset_index()
    summary.insert(5, "interval", interval_name(ci_prob, "eti"))
    summary.to_csv(folder / "summary.csv", index=False)
    table = effects_table(result, ci_prob)
    table.to_csv(folder / "effects.csv", index=False)
    (folder / "convergence.json").write_text(
        json.dumps(result.convergence.to_dict(), indent=2) + "\n"
    )
    write_mechanism_report(result, folder / "report", ci_prob=ci_prob)
    return table


def run_fit(
    args: argparse.Namespace,
    data: SeriesData,
    spec: MechanismSpec,
    sampler: dict[str, Any],
    spec_path: Path | None,
) -> int:
    """Fit, write the output folder atomically, print the key effects and the convergence
    check (exit 3 when it failed)."""
    if sampler.get("sampler", "nutpie") != "nutpie":
        raise CLIError("the mechanism models sample with nutpie only")
    with atomic_dir(args.out, force=args.force) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = fit_mechanisms(
                data,
                spec,
                draws=sampler["draws"],
                tune=sampler["tune"],
                chains=sampler["chains"],
                random_seed=sampler["random_seed"],
                progressbar=not args.quiet,
            )
        INTERRUPTS.check()
        result.provenance["ci_prob"] = args.ci
        table = write_files(result, tmp, args.ci)
        if spec_path is not None:
            shutil.copy(spec_path, tmp / "spec.toml")
    print(effects_text(table, args.ci))
    print(f"wrote {Path(args.out) / 'effects.csv'}, {Path(args.out) / 'fit.nc'} and the report")
    if result.convergence.ok:
        print(result.convergence.message())
        return 0
    print(result.convergence.message(), file=sys.stderr)
    return EXIT_NOT_CONVERGED


__all__ = ["effects_text", "mechanism_spec", "run_fit", "series_data", "write_files"]
