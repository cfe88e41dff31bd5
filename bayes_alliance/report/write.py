"""Reports: one self-contained HTML page plus Markdown, CSV, LaTeX and PNG files for a fit of
either model family (:func:`write_report`; a mechanism model's sections are built in
:mod:`bayes_alliance.report.mechanisms`, rendered the same way).

The report states the model (methods paragraph with references, equations that follow the
spec's options, the priors actually used, sampler settings, library versions), checks it
(convergence, trace and rank plots, the key estimates' prior sensitivity by power-scaling,
a posterior predictive check over sessions), and gives
the results: named and derived effects, a mediation path diagram when the model has a
baseline characteristic, R-squared per component, a forest plot, per-patient
trait/state panels, the classic two-step comparison and plain-language sentences. Intervals
have the level the caller chose, named in every table header and plot. A failed convergence
check is a banner at the top and marks the sentences provisional.

Sections are built as data first (:func:`build_sections`), then rendered
(:mod:`bayes_alliance.report.render`); the sections both families share are in
:mod:`bayes_alliance.report.sections`; the model's text is in
:mod:`bayes_alliance.report.model_text`, the methods paragraph and references in
:mod:`bayes_alliance.report.methods`, the sentences in :mod:`bayes_alliance.report.words`, the
patient panels and the predictive check in :mod:`bayes_alliance.report.sessions` (computed in
:mod:`bayes_alliance.report.checks`), the mediation section in
:mod:`bayes_alliance.report.mediation` and the tables in :mod:`bayes_alliance.report.tables`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND, CI_KIND, DEFAULT_CI_PROB
from bayes_alliance.inference.results import MECHANISM
from bayes_alliance.report import checks as report_checks
from bayes_alliance.report import continuous as ct_report
from bayes_alliance.report import methods as report_methods
from bayes_alliance.report import model_text as report_text
from bayes_alliance.report import plots, priors_text, tables
from bayes_alliance.report.classic_text import classic_sections
from bayes_alliance.report.direction import higher_is_better
from bayes_alliance.report.mediation import between_mediation_section
from bayes_alliance.report.outputs import ResultTables
from bayes_alliance.report.patterns import patterns_section
from bayes_alliance.report.render import Plot, ReportSection, Table
from bayes_alliance.report.sections import (
    SHOWN,
    convergence_banner,
    convergence_section,
    display_table,
    meta_line,
    options_table,
    software_section,
    write_report_folder,
)
from bayes_alliance.report.sensitivity import sensitivity_section
from bayes_alliance.report.sessions import patient_section, predictive_section, safe_stem
from bayes_alliance.report.words import PROVISIONAL, sentences, stationarity_note

if TYPE_CHECKING:
    from typing_extensions import TypeIs

    from bayes_alliance.inference.fit import FitResult
    from bayes_alliance.mechanisms.fit import MechanismResult
    from bayes_alliance.mechanisms.load import AnyResult

__all__ = [
    "Plot",
    "ReportSection",
    "Table",
    "build_sections",
    "report_sections",
    "result_tables",
    "safe_stem",
    "sentences",
    "stationarity_note",
    "write_report",
]

# Forest plot panels: state-like paths apart from trait-like effects (their scales differ).
FOREST = {
    "State-like (within-person) paths": [
        vocab.STATE_EFFECT,
        vocab.REVERSE_STATE_EFFECT,
        vocab.SAME_SESSION_EFFECT,
        vocab.OUTCOME_AUTOREGRESSION,
        vocab.PREDICTOR_AUTOREGRESSION,
    ],
    "Trait-like (between) effects": [vocab.TRAIT_EFFECT_PATIENT, vocab.TRAIT_EFFECT_THERAPIST],
}


def _model_section(result: FitResult, ci_prob: float) -> ReportSection:
    data, spec = result.data, result.spec
    x, y = data.roles.predictor, data.roles.outcome
    priors = priors_text.priors_table(spec, data)
    return ReportSection(
        "Model",
        [
            report_methods.methods_paragraph(
                spec, data, result.provenance, result.convergence, ci_prob
            ),
            priors_text.data_scale_sentence(data),
            stationarity_note(spec),
        ],
        tables=[
            Table(
                report_text.symbols_table(spec, x, y),
                "Symbols of the equations and the parameter names used in every table",
            ),
            Table(
                priors,
                "Priors actually used (after scaling to the data)",
                [
                    "source: how the default was scaled to the data's means and SDs, or "
                    "'set in the spec' for an override. Normal(mu, sigma); HalfNormal(sigma) "
                    "for SDs."
                ],
            ),
            options_table(spec.to_dict()),
        ],
        blocks=[report_text.equations(spec, x, y)],
    )


def _convergence_section(result: FitResult) -> ReportSection:
    draws = report_checks.key_draws(result)
    roles = result.data.roles
    labels = {
        n: tables.parameter_label(
            n, roles.predictor, roles.outcome, result.spec.same_session, result.spec.baseline_level
        )
        for n in draws
    }
    sampler = report_methods.sampler_table(result.provenance, result.spec)
    return convergence_section(
        result.convergence,
        result.provenance,
        sampler,
        draws,
        labels,
        report_checks.identification_messages(result),
    )


def _data_section(result: FitResult) -> ReportSection:
    data = result.data
    desc = data.describe()
    x, y = data.roles.predictor, data.roles.outcome
    return ReportSection(
        "Data",
        [
            f"{desc['n_patients']} patients"
            + (f" of {desc['n_therapists']} therapists" if desc["n_therapists"] else "")
            + f"; {desc['n_rows']} sessions (per patient {desc['sessions_per_patient_min']} to "
            f"{desc['sessions_per_patient_max']}, median {desc['sessions_per_patient_median']:g}); "
            f"sessions {desc['first_session']} to {desc['last_session']}.",
            f"Missing inside the series: {desc['skipped_sessions']} skipped sessions; "
            f"{x} missing in {desc['missing_predictor_share']:.1%} and {y} in "
            f"{desc['missing_outcome_share']:.1%} of cells (integrated out by the model, not "
            "filled in).",
            *(f"Warning: {w}" for w in data.warnings),
        ],
    )


def _effects_sections(
    result: FitResult, summary: pd.DataFrame, eff: pd.DataFrame, hdi: str
) -> list[ReportSection]:
    """The named parameters' table, the forest plot, the mediation section (with a baseline)
    and the derived effects' table."""
    spec, conv = result.spec, result.convergence
    x, y = result.data.roles.predictor, result.data.roles.outcome
    out = [
        ReportSection(
            f"Named effects (posterior mean, {hdi})",
            tables=[
                Table(
                    display_table(summary, hdi, SHOWN),
                    f"Posterior summary of every named parameter ({hdi}); summary.csv",
                )
            ],
        )
    ]
    groups = {title: [n for n in names if n in summary.index] for title, names in FOREST.items()}
    labels = {str(n): str(lab) for n, lab in summary["label"].items()}
    out.append(
        ReportSection(
            "Trait and state effects",
            figures=[
                Plot(
                    "forest",
                    plots.forest(summary, groups, hdi, labels),
                    f"State-like and trait-like effects: posterior means with {hdi}s. Each panel "
                    "has its own axis; effects with much wider intervals (often the therapist "
                    "level, informed by few therapists) get a panel of their own.",
                )
            ],
        )
    )
    if spec.time_model == "continuous":  # the lag effects by the interval
        out.append(
            ReportSection(
                "Lagged effects by the time between sessions",
                figures=[
                    Plot(
                        "phi_by_interval",
                        ct_report.phi_figure(
                            {n: result.draws(n) for n in vocab.DRIFT_PARAMETERS}, spec, x, y
                        ),
                        ct_report.phi_caption(spec),
                    )
                ],
            )
        )
    if spec.baseline:
        out.append(
            between_mediation_section(
                eff,
                spec.baseline,
                hdi,
                predictor=x,
                outcome=y,
                provisional=not conv.ok,
                split=spec.splits_baseline(),
            )
        )
    derived = eff[~eff["group"].isin([tables.WITHIN, tables.BETWEEN])].set_index("parameter")
    legend = [
        str(eff.attrs.get("note", "")),
        *(
            f"{lab}: {note}."
            for lab, note in zip(derived["label"], derived["note"], strict=True)
            if note
        ),
    ]
    reliability = ", reliabilities" if spec.measurement_error else ""
    out.append(
        ReportSection(
            # The stationarity paragraph is the model section's (said once).
            f"Derived effects: standardised, long-run, ICCs{reliability}",
            tables=[
                Table(
                    display_table(derived, hdi, SHOWN),
                    (
                        "Standardised and long-run effects, ICCs and reliabilities"
                        if spec.measurement_error
                        else "Standardised and long-run effects and ICCs"
                    )
                    + f" ({hdi}); effects.csv",
                    legend,
                )
            ],
        )
    )
    return out


def _r2_section(r2: pd.DataFrame, y: str, eti: str) -> ReportSection:
    return ReportSection(
        f"Variance of {y} explained, by component (Rights & Sterba)",
        [
            "Shares per denominator, both equations; within parts are averaged over the "
            "distribution of the state slopes (the table's note says which components the "
            "model has). The full table is r2.csv, with Markdown and LaTeX versions beside it."
        ],
        tables=[
            Table(
                display_table(
                    r2, eti, ["equation", "share_of", "label", "mean", "ci_low", "ci_high"]
                ).rename(columns={"share_of": "share of", "label": "component"}),
                f"R-squared by component (posterior mean, {eti}, equal-tailed)",
                [str(r2.attrs.get("note", ""))],
            )
        ],
        figures=[
            Plot(
                "r2",
                plots.r2_bars(r2, "outcome"),
                f"Shares of the variance of {y} by component and denominator (posterior "
                "means; their intervals are in the R-squared table).",
            )
        ],
    )


def build_sections(
    result: FitResult,
    patients: Sequence[object] | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    better: Mapping[str, str] | None = None,
) -> tuple[list[ReportSection], dict[str, pd.DataFrame]]:
    """All report sections of a joint-model fit and the labelled tables, without writing
    anything.

    Parameters
    ----------
    result
        A fitted model.
    patients
        Patient ids for the per-patient panels (default: the four with the most sessions).
    ci_prob
        Probability of every interval in the report.
    better
        ``{column: "higher" | "lower"}``: which scores are better, for the colours of the
        patient panels (default: a higher predictor, a lower outcome;
        :mod:`bayes_alliance.report.direction`).

    Returns
    -------
    sections, tables
        The sections in order, and ``{"summary", "r2", "effects"}``: the labelled tables of
        :mod:`bayes_alliance.report.tables` that become the CSV files.
    """
    data, spec, conv = result.data, result.spec, result.convergence
    # Checked first: a typo in an id or a column should not cost the other sections' work.
    higher_is_better(data.roles.predictor, data.roles.outcome, better)
    chosen = list(patients) if patients else _default_patients(result)
    unknown = [p for p in chosen if p not in list(data.patients)]
    if unknown:
        raise ValueError(f"unknown patient id(s) {unknown}; e.g. {list(data.patients[:5])}")
    summary = tables.summary_table(result, ci_prob)
    eff = tables.effects_table(result, ci_prob)
    r2 = tables.r2_table(result, ci_prob)
    hdi, eti = tables.interval_name(ci_prob, CI_KIND), tables.interval_name(ci_prob, BAND_KIND)
    said = sentences(result, summary, r2, ci_prob)
    if not conv.ok:
        said = [PROVISIONAL + s for s in said]
    sections = [
        ReportSection("Summary in words", said, provisional=not conv.ok),
        _data_section(result),
        _model_section(result, ci_prob),
        _convergence_section(result),
        sensitivity_section(result),
        *_effects_sections(result, summary, eff, hdi),
        _r2_section(r2, data.roles.outcome, eti),
    ]
    panels = patient_section(result, chosen, ci_prob, better)
    if panels is not None:
        sections.append(panels)
    sections.append(predictive_section(result, ci_prob))
    patterns = patterns_section(result)
    if patterns is not None:
        sections.append(patterns)
    if spec.dynamics == "var1":
        sections += classic_sections(result)
    sections.append(software_section(result.provenance, sections))
    return sections, {"summary": summary, "r2": r2, "effects": eff}


def _default_patients(result: FitResult, k: int = 4) -> list[object]:
    """The patients with the most observed sessions (ties in id order)."""
    n = (~np.isnan(result.data.x)).sum(axis=1)
    order = np.argsort(-n, kind="stable")[:k]
    return [result.data.patients[i] for i in order]


def _is_mechanism(result: AnyResult) -> TypeIs[MechanismResult]:
    """Whether a result is a mechanism model's, without importing that family (it imports
    PyMC; a joint fit from the compile cache does not)."""
    return result.kind == MECHANISM


def _report_mechanisms() -> Any:
    from bayes_alliance.report import mechanisms

    return mechanisms


def result_tables(result: AnyResult, ci_prob: float = DEFAULT_CI_PROB) -> ResultTables:
    """The labelled tables of a fit of either family, with their captions and the fit's
    convergence check (written with them)."""
    if _is_mechanism(result):
        made = _report_mechanisms().mechanism_tables(result, ci_prob)
    else:
        made = tables.joint_tables(result, ci_prob)
    made.convergence = result.convergence
    return made


def report_sections(
    result: AnyResult,
    *,
    patients: Sequence[object] | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    better: Mapping[str, str] | None = None,
) -> tuple[list[ReportSection], ResultTables]:
    """The report of a fit of either family as data: its sections in order and its labelled
    tables (:func:`build_sections` for the joint model,
    :func:`~bayes_alliance.report.mechanisms.mechanism_sections` for a mechanism model)."""
    if _is_mechanism(result):
        if patients or better:
            raise ValueError("patients= and better= are for the main model's per-patient panels")
        sections, made = _report_mechanisms().mechanism_sections(result, ci_prob)
    else:
        sections, frames = build_sections(result, patients, ci_prob, better)
        made = ResultTables(
            frames["summary"], frames["effects"], frames["r2"], tables.joint_captions(result)
        )
    made.convergence = result.convergence
    return sections, made


def write_report(
    result: AnyResult,
    out: str | Path,
    *,
    patients: Sequence[object] | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    title: str | None = None,
    force: bool = False,
    better: Mapping[str, str] | None = None,
    formats: Sequence[str] = (),
) -> Path:
    """Write a report of a fit of either family into the folder ``out`` (atomically).

    Parameters
    ----------
    result
        A fitted model: the joint model's :class:`~bayes_alliance.inference.fit.FitResult` or a
        :class:`~bayes_alliance.mechanisms.fit.MechanismResult`.
    out
        The folder; refused when it exists unless ``force``.
    patients
        Patient ids for the per-patient panels (default: the four with the most sessions;
        joint model only).
    ci_prob
        Probability of every interval (0.95 is what psychology journals print).
    title
        The page title (default "bayes_alliance report", or "Mechanism model: <design>").
    force
        Replace an existing folder.
    better
        ``{column: "higher" | "lower"}``: which scores are better, for the colours of the
        patient panels (default: higher predictor, lower outcome; joint model only).
    formats
        Further formats beside the HTML page and the Markdown: "docx" (``report.docx``, a Word
        document) and "pdf" (``report.pdf``, printed by a headless Chromium).

    Returns
    -------
    pathlib.Path
        The HTML file. Beside it: ``report.md`` with its PNG figures (patient panels are
        ``patient_<id>.png``; with a baseline the mediation diagram ``mediation.png``, or
        ``mediation_<column>.png`` per column; a mechanism model's ``path_diagram.png``), the
        labelled ``summary.csv`` and ``effects.csv`` and the manuscript tables ``effects.md`` /
        ``effects.tex``; for the joint model also ``r2.csv``, ``r2.md`` and ``r2.tex``.
    """
    if _is_mechanism(result):
        design = _report_mechanisms().DESIGN_WORDS.get(result.design, result.design)
        default = f"Mechanism model: {design}"
    else:
        default = "bayes_alliance report"
    banner = "" if result.convergence.ok else convergence_banner(result.convergence)
    return write_report_folder(
        out,
        title or default,
        lambda: report_sections(result, patients=patients, ci_prob=ci_prob, better=better),
        meta_line(result.provenance),
        banner,
        force=force,
        formats=formats,
    )
