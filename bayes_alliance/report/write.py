"""Reports: one self-contained HTML page plus Markdown, CSV, LaTeX and PNG files for a fit.

The report states the model (methods paragraph with references, equations that follow the
spec's options, the priors actually used, sampler settings, library versions), checks it
(convergence, trace and rank plots, a posterior predictive check over sessions), and gives
the results: named and derived effects, a mediation path diagram when the model has a
baseline characteristic, R-squared per component, a forest plot, per-patient
trait/state panels, the classic two-step comparison and plain-language sentences. Intervals
have the level the caller chose, named in every table header and plot. A failed convergence
check is a banner at the top and marks the sentences provisional.

Sections are built as data first (:func:`build_sections`), then rendered
(:mod:`bayes_alliance.report.render`); the model's text is in
:mod:`bayes_alliance.report.model_text`, the methods paragraph and references in
:mod:`bayes_alliance.report.methods`, the sentences in :mod:`bayes_alliance.report.words`, the
patient panels and the predictive check in :mod:`bayes_alliance.report.sessions` (computed in
:mod:`bayes_alliance.report.checks`), the mediation section in
:mod:`bayes_alliance.report.mediation` and the tables in :mod:`bayes_alliance.report.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_alliance.analysis import classic
from bayes_alliance.core import vocab
from bayes_alliance.core.files import atomic_dir
from bayes_alliance.report import checks as report_checks
from bayes_alliance.report import methods as report_methods
from bayes_alliance.report import model_text as report_text
from bayes_alliance.report import plots, tables
from bayes_alliance.report.mediation import between_mediation_section
from bayes_alliance.report.render import (
    Plot,
    Section,
    Table,
    fig_png,
    render_html,
    render_markdown,
)
from bayes_alliance.report.sessions import patient_section, predictive_section, safe_stem
from bayes_alliance.report.words import PROVISIONAL, sentences, stationarity_note

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult

__all__ = [
    "Plot",
    "Section",
    "Table",
    "build_sections",
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


# Columns of the parameter and effect tables shown in the report (the CSVs have all).
SHOWN = ("label", "mean", "sd", "ci_low", "ci_high", "ess_bulk", "ess_tail", "r_hat")


def _display(t: pd.DataFrame, interval: str, keep: Sequence[str]) -> pd.DataFrame:
    """A report view of a labelled table: chosen columns, interval bounds named by level."""
    out = t[[c for c in keep if c in t.columns]].copy()
    out = out.rename(
        columns={
            "ci_low": f"{interval}: low",
            "ci_high": f"{interval}: high",
            "ess_bulk": "ESS bulk",
            "ess_tail": "ESS tail",
            "r_hat": "R-hat",
        }
    )
    for c in ("ESS bulk", "ESS tail"):
        if c in out:
            out[c] = out[c].round(0).astype("Int64")
    return out


def _sentence(text: str) -> str:
    """Capitalised, one full stop (messages come with and without one)."""
    return text[:1].upper() + text[1:].rstrip(".") + "."


def _model_section(result: FitResult, ci_prob: float) -> Section:
    data, spec = result.data, result.spec
    x, y = data.roles.predictor, data.roles.outcome
    priors = report_text.priors_table(spec, data)
    return Section(
        "Model",
        [
            report_methods.methods_paragraph(
                spec, data, result.provenance, result.convergence, ci_prob
            ),
            report_text.data_scale_sentence(data),
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
        ],
        blocks=[report_text.equations(spec, x, y)],
    )


def _convergence_section(result: FitResult) -> Section:
    conv = result.convergence
    draws = report_checks.key_draws(result)
    roles = result.data.roles
    labels = {
        n: tables.parameter_label(
            n, roles.predictor, roles.outcome, result.spec.same_session, result.spec.baseline_level
        )
        for n in draws
    }
    return Section(
        "Convergence and sampler",
        [
            _sentence(conv.message()),
            f"Largest R-hat {conv.max_r_hat:.3f}; smallest bulk / tail ESS {conv.min_ess_bulk:.0f} / "
            f"{conv.min_ess_tail:.0f}; divergences {conv.divergences}; smallest E-BFMI "
            f"{conv.min_bfmi:.2f}; {conv.n_draws} draws (seed {result.provenance.get('random_seed')}).",
        ],
        tables=[
            Table(report_methods.sampler_table(result.provenance, result.spec), "Sampler settings")
        ],
        figures=[
            Plot(
                "trace_rank",
                plots.trace_rank(draws, {n: n for n in draws}),
                "Trace (left) and rank histograms per chain (right) of the key parameters "
                "and of the parameters with the worst R-hat and ESS. Chains that mix well "
                "overlap in the trace and give flat rank histograms. Rows: "
                + "; ".join(f"{n} = {lab}" for n, lab in labels.items())
                + ".",
            )
        ],
    )


def build_sections(
    result: FitResult, patients: Sequence[object] | None = None, ci_prob: float = 0.94
) -> tuple[list[Section], dict[str, pd.DataFrame]]:
    """All report sections and the labelled tables, without writing anything.

    Parameters
    ----------
    result
        A fitted model.
    patients
        Patient ids for the per-patient panels (default: the four with the most sessions).
    ci_prob
        Probability of every interval in the report.

    Returns
    -------
    sections, tables
        The sections in order, and ``{"summary", "r2", "effects"}``: the labelled tables of
        :mod:`bayes_alliance.report.tables` that become the CSV files.
    """
    data, spec, conv = result.data, result.spec, result.convergence
    # Checked first: a typo in an id should not cost the other sections' work.
    chosen = list(patients) if patients else _default_patients(result)
    unknown = [p for p in chosen if p not in list(data.patients)]
    if unknown:
        raise ValueError(f"unknown patient id(s) {unknown}; e.g. {list(data.patients[:5])}")
    summary = tables.summary_table(result, ci_prob)
    eff = tables.effects_table(result, ci_prob)
    r2 = tables.r2_table(result, ci_prob)
    desc = data.describe()
    hdi, eti = tables.interval_name(ci_prob, "hdi"), tables.interval_name(ci_prob, "eti")
    x, y = data.roles.predictor, data.roles.outcome
    said = sentences(result, summary, r2, ci_prob)
    if not conv.ok:
        said = [PROVISIONAL + s for s in said]
    sections = [
        Section("Summary in words", said, provisional=not conv.ok),
        Section(
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
        ),
        _model_section(result, ci_prob),
        _convergence_section(result),
        Section(
            f"Named effects (posterior mean, {hdi})",
            tables=[
                Table(
                    _display(
                        summary,
                        hdi,
                        SHOWN,
                    ),
                    f"Posterior summary of every named parameter ({hdi}); summary.csv",
                )
            ],
        ),
    ]
    groups = {title: [n for n in names if n in summary.index] for title, names in FOREST.items()}
    labels = {str(n): str(lab) for n, lab in summary["label"].items()}
    sections.append(
        Section(
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
    if spec.baseline:
        sections.append(
            between_mediation_section(
                eff, spec.baseline, hdi, predictor=x, outcome=y, provisional=not conv.ok
            )
        )
    derived = eff[~eff["group"].isin([tables.WITHIN, tables.BETWEEN])].set_index("parameter")
    sections.append(
        Section(
            "Derived effects: standardised, long-run, ICCs",
            [stationarity_note(spec)],
            tables=[
                Table(
                    _display(
                        derived,
                        hdi,
                        SHOWN,
                    ),
                    f"Standardised and long-run effects and ICCs ({hdi}); effects.csv",
                    [
                        str(eff.attrs.get("note", "")),
                        *(
                            f"{lab}: {note}."
                            for lab, note in zip(derived["label"], derived["note"], strict=True)
                            if note
                        ),
                    ],
                )
            ],
        )
    )
    sections.append(
        Section(
            f"Variance of {y} explained, by component (Rights & Sterba)",
            [
                "Shares per denominator, both equations; within parts are averaged over the "
                "distribution of the state slopes. Components the model does not have are "
                "left out. The full table is r2.csv (Markdown and LaTeX versions: r2.md, r2.tex)."
            ],
            tables=[
                Table(
                    _display(
                        r2,
                        eti,
                        ["equation", "share_of", "label", "mean", "ci_low", "ci_high"],
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
    )
    panels = patient_section(result, chosen, ci_prob)
    if panels is not None:
        sections.append(panels)
    sections.append(predictive_section(result, ci_prob))
    if spec.dynamics == "var1":
        sections += _classic_sections(result)
    sections.append(
        Section(
            "Software and references",
            ["References:", *report_methods.references(spec)],
            tables=[
                Table(
                    report_methods.versions_table(result.provenance),
                    "Library versions of the fit and of this report",
                )
            ],
        )
    )
    return sections, {"summary": summary, "r2": r2, "effects": eff}


def _classic_sections(result: FitResult) -> list[Section]:
    from bayes_alliance.analysis.conflation import conflation_table

    data = result.data
    x, y = data.roles.predictor, data.roles.outcome
    return [
        Section(
            "Classic two-step analysis, for comparison",
            [
                "Person-mean centring and OLS with patient-clustered SEs. Observed means are unreliable with "
                "short series, which biases lagged effects downward (Nickell 1981) and blends trait with "
                "state effects (Luedtke et al. 2008)."
            ],
            tables=[
                Table(
                    classic.two_step_regression(data).round(4),
                    "Two-step estimates (observed person-mean centring)",
                )
            ],
        ),
        Section(
            "Why decompose: one raw slope mixes within and between effects",
            [
                f"REML random-intercept fits of {y} at t on {x} at t-1: one raw slope (conflated) against "
                "separate within and between slopes (observed centring), with R-squared of the fixed part "
                "(Rights 2023). The raw slope is a blend of the two and describes neither."
            ],
            tables=[Table(conflation_table(data).round(4), "Raw against decomposed slopes")],
        ),
    ]


def _default_patients(result: FitResult, k: int = 4) -> list[object]:
    """The patients with the most observed sessions (ties in id order)."""
    n = (~np.isnan(result.data.x)).sum(axis=1)
    order = np.argsort(-n, kind="stable")[:k]
    return [result.data.patients[i] for i in order]


def write_report(
    result: FitResult,
    out: str | Path,
    *,
    patients: Sequence[object] | None = None,
    ci_prob: float = 0.94,
    title: str = "bayes_alliance report",
    force: bool = False,
) -> Path:
    """Write a report of a fit into the folder ``out`` (atomically).

    Parameters
    ----------
    result
        A fitted model.
    out
        The folder; refused when it exists unless ``force``.
    patients
        Patient ids for the per-patient panels (default: the four with the most sessions).
    ci_prob
        Probability of every interval (0.95 is what psychology journals print).
    title
        The page title.
    force
        Replace an existing folder.

    Returns
    -------
    pathlib.Path
        The HTML file. Beside it: ``report.md`` with its PNG figures (patient panels are
        ``patient_<id>.png``; with a baseline the mediation diagram ``mediation.png``, or
        ``mediation_<column>.png`` per column), the labelled ``summary.csv``, ``effects.csv`` and ``r2.csv``,
        and manuscript tables ``effects.md`` / ``effects.tex`` and ``r2.md`` / ``r2.tex``.
    """
    # Inside the folder guard: an existing folder is refused before any work is done.
    with atomic_dir(out, force=force) as tmp:
        sections, frames = build_sections(result, patients, ci_prob)
        pngs = {f.stem: fig_png(f.figure) for s in sections for f in s.figures}
        v = result.provenance.get("versions", {})
        spec_text = {k: val for k, val in result.spec.to_dict().items() if k != "priors"}
        meta = (
            f"Data hash {str(result.provenance.get('data_hash', ''))[:12]}; fitted with "
            f"bayes_alliance {v.get('bayes_alliance')}, pymc {v.get('pymc')}, nutpie "
            f"{v.get('nutpie')}; model options {spec_text}"
        )
        banner = "" if result.convergence.ok else result.convergence.message()
        x, y = result.data.roles.predictor, result.data.roles.outcome
        captions = {
            "effects": (f"Trait-like and state-like effects of {x} on {y}", "tab:effects"),
            "r2": (f"Variance of {x} and {y} explained by component (R-squared)", "tab:r2"),
        }
        (tmp / "report.html").write_text(render_html(title, sections, pngs, meta, banner))
        (tmp / "report.md").write_text(render_markdown(title, sections, meta, banner))
        for stem, png in pngs.items():
            (tmp / f"{stem}.png").write_bytes(png)
        frames["summary"].to_csv(tmp / "summary.csv")
        for name in ("effects", "r2"):
            frames[name].to_csv(tmp / f"{name}.csv", index=False)
            caption, label = captions[name]
            (tmp / f"{name}.md").write_text(tables.to_markdown(frames[name], caption))
            (tmp / f"{name}.tex").write_text(tables.to_latex(frames[name], caption, label))
    return Path(out) / "report.html"
