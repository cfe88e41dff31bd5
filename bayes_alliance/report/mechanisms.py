"""Tables and the report sections of a mechanism fit: labelled effects (the words of
:data:`bayes_alliance.report.labels.LABELS`, shared with the joint model), the path diagram
with the numbers on it, the model as fitted with the priors actually used, methods and
references, convergence with trace and rank plots. :func:`bayes_alliance.report.write.write_report`
writes them as it writes the joint model's, rendered by :mod:`bayes_alliance.report.render`
(numbered tables and figures, the convergence banner), atomically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_alliance.core.intervals import CI_KIND, DEFAULT_CI_PROB, interval_name
from bayes_alliance.core.vocab import THERAPIST
from bayes_alliance.data.series_data import MEDIATOR, OUTCOME, PREDICTOR, SECOND_PREDICTOR
from bayes_alliance.mechanisms.fit import (
    MechanismResult,
    identification_messages,
    key_effects,
    summary_tree,
)
from bayes_alliance.mechanisms.spec import MEDIATION_INFORMANTS
from bayes_alliance.report import mechanism_text as text
from bayes_alliance.report import methods as report_methods
from bayes_alliance.report.checks import entry_draws
from bayes_alliance.report.labels import mechanism_label
from bayes_alliance.report.mechanism_checks import predictive_section
from bayes_alliance.report.mediation import informant_mediation_table
from bayes_alliance.report.outputs import ResultTables
from bayes_alliance.report.render import Plot, ReportSection, Table
from bayes_alliance.report.sections import (
    convergence_section,
    display_table,
    options_table,
    software_section,
)
from bayes_alliance.report.words import PROVISIONAL

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Lagged paths whose chains the report plots, [to, from] by role.
KEY_PATHS = {
    "mediation": ((MEDIATOR, PREDICTOR), (OUTCOME, MEDIATOR), (OUTCOME, PREDICTOR)),
    "informants": ((OUTCOME, PREDICTOR), (OUTCOME, SECOND_PREDICTOR)),
    "two_series": ((OUTCOME, PREDICTOR), (PREDICTOR, OUTCOME)),
    "single": ((PREDICTOR, PREDICTOR),),
    MEDIATION_INFORMANTS: (
        (MEDIATOR, PREDICTOR),
        (MEDIATOR, SECOND_PREDICTOR),
        (OUTCOME, MEDIATOR),
        (OUTCOME, PREDICTOR),
        (OUTCOME, SECOND_PREDICTOR),
    ),
}
# The designs in the report's words (captions, title).
DESIGN_WORDS = {
    "mediation": "mediation",
    "informants": "informants",
    "two_series": "two series",
    "single": "one series",
    MEDIATION_INFORMANTS: "mediation, two informants",
}

# The combined design's diagram roles (path_layouts.INFORMANT_MEDIATION_ROLES) and their rows.
COMBINED_DIAGRAM = {
    "a": "effect_on_mediator",
    "a_second": "effect_on_mediator_second",
    "b": "mediator_effect",
    "cprime": "direct_path_within",
    "cprime_second": "direct_path_within_second",
    "indirect": "indirect_effect_within",
    "indirect_second": "indirect_effect_within_second",
    "indirect_difference": "indirect_effect_within_difference",
    "proportion": "proportion_mediated_within",
    "proportion_second": "proportion_mediated_within_second",
    "state_corr": "state_corr_informants",
}


def _words(result: MechanismResult) -> dict[str, str]:
    """The label placeholders' values: the series' columns."""
    cols = text.columns(result)
    words = {"x": cols[PREDICTOR]}
    if OUTCOME in cols:  # not for the predictor alone
        words["y"] = cols[OUTCOME]
    if MEDIATOR in cols:
        words["m"] = cols[MEDIATOR]
    if SECOND_PREDICTOR in cols:
        words["x2"] = cols[SECOND_PREDICTOR]
    if result.data.end_column:
        words["o"] = result.data.end_column
        if result.spec.end_family == "binary":  # a baseline's paths onto it are log-odds
            words["o_scale"] = " (log-odds)"
    if result.spec.baseline:  # a row of several columns names its own (mechanism_label)
        words["z"] = ", ".join(result.spec.baseline)
        at_therapist = result.spec.baseline_level == THERAPIST
        words["at"] = "therapist mean of" if at_therapist else "trait of"
    return words


def trace_label(name: str, result: MechanismResult) -> str:
    """The words of a key parameter in the trace/rank figure: a lag entry ``lag[to, from]`` as
    the path between the series' columns, an effect by the shared label table."""
    cols = text.columns(result)
    if name.startswith("lag[") and name.endswith("]"):
        to, source = (cols.get(r.strip(), r.strip()) for r in name[4:-1].split(","))
        if to == source:
            return f"autoregression of {to}"
        return f"{source} state t-1 -> {to} state t"
    return mechanism_label(name, _words(result), result.design)


def mechanism_effects_table(
    result: MechanismResult, ci_prob: float = DEFAULT_CI_PROB
) -> pd.DataFrame:
    """Every derived effect with its label and the interval's name (the ``effects.csv``
    columns ``parameter, label, mean, sd, ci_low, ci_high, interval, ess_bulk, ess_tail,
    r_hat``); path SDs are labelled by their path."""
    s = result.effects(ci_prob).reset_index()
    words = _words(result)
    labels = [mechanism_label(str(n), words, result.design) for n in s["parameter"]]
    s.insert(1, "label", labels)
    s.insert(6, "interval", interval_name(ci_prob, CI_KIND))
    return s


def mechanism_summary_table(
    result: MechanismResult, ci_prob: float = DEFAULT_CI_PROB
) -> pd.DataFrame:
    """The model's parameters (the ``summary.csv`` columns ``mean, sd, ci_low, ci_high,
    interval, ess_bulk, ess_tail, r_hat``), indexed by parameter."""
    s = result.summary(ci_prob).copy()
    s.insert(4, "interval", interval_name(ci_prob, CI_KIND))
    return s


def mechanism_tables(result: MechanismResult, ci_prob: float = DEFAULT_CI_PROB) -> ResultTables:
    """A mechanism fit's labelled summary and effects tables, with the effects' caption."""
    design = DESIGN_WORDS.get(result.design, result.design)
    return ResultTables(
        mechanism_summary_table(result, ci_prob),
        mechanism_effects_table(result, ci_prob),
        None,
        {"effects": (f"Effects of the mechanism model ({design})", "tab:effects")},
    )


def diagram(result: MechanismResult, table: pd.DataFrame, ci_prob: float) -> Figure | None:
    """The design's path diagram with the table's numbers, or None for a design without one
    (two series, one series)."""
    from bayes_alliance.report import path_layouts

    rows = table.set_index("parameter")

    def triple(name: str) -> tuple[float, float, float]:
        est, low, high = rows.loc[name, ["mean", "ci_low", "ci_high"]].to_numpy(dtype=float)
        return (float(est), float(low), float(high))

    words = _words(result)
    label = interval_name(ci_prob, CI_KIND)
    if result.design == "mediation":
        roles = {
            "a": "effect_on_mediator",
            "b": "mediator_effect",
            "cprime": "direct_path_within",
            "indirect": "indirect_effect_within",
            "cov_ab": "cov_random_paths",
            "proportion": "proportion_mediated_within",
        }
        values = {k: triple(v) for k, v in roles.items() if v in rows.index}
        return path_layouts.within_mediation_diagram(
            values, label, predictor=words["x"], mediator=words["m"], outcome=words["y"]
        )
    if result.design == MEDIATION_INFORMANTS:
        values = {k: triple(v) for k, v in COMBINED_DIAGRAM.items() if v in rows.index}
        return path_layouts.informant_mediation_diagram(
            values,
            label,
            predictor=words["x"],
            second=words["x2"],
            mediator=words["m"],
            outcome=words["y"],
        )
    if result.design == "informants":
        roles = {
            "trait_patient_rater": "trait_effect_patient",
            "trait_therapist_rater": "trait_effect_patient_second",
            "state_patient_rater": "state_effect",
            "state_therapist_rater": "state_effect_second",
            "trait_corr": "trait_corr_informants_patient",
            "state_corr": "state_corr_informants",
            "trait_difference": "trait_effect_patient_difference",
            "state_difference": "state_effect_difference",
        }
        values = {k: triple(v) for k, v in roles.items() if v in rows.index}
        return path_layouts.two_informant_diagram(values, label, outcome=words["y"])
    return None


# Below this the change effect is weakly identified (docs/calibration.md: at about .3, 12
# sessions, the per-unit effect's posterior was skewed away from zero).
LOW_CHANGE_RELIABILITY = 0.5


def cautions(table: pd.DataFrame) -> list[str]:
    """Sentences a reader needs before the numbers (empty when none applies)."""
    rows = table.set_index("parameter")
    out = []
    if "change_reliability" in rows.index and "end_change_effect" in rows.index:
        rel = float(rows.at["change_reliability", "mean"])  # type: ignore[arg-type]
        if rel < LOW_CHANGE_RELIABILITY:
            out.append(
                f"The patients' series resolve their changes with a reliability of {rel:.2f} "
                f"(below {LOW_CHANGE_RELIABILITY}): the change effect per unit of slope is "
                "weakly identified (wide and skewed away from zero); read the effect per SD "
                "of the changes, which is better determined, and prefer longer series."
            )
    return out


def mechanism_key_draws(result: MechanismResult, max_rows: int = 10) -> dict[str, np.ndarray]:
    """Draws (chain, draw) of the design's key lagged paths and end-of-treatment effects, plus
    the parameters with the worst R-hat and the smallest bulk ESS when they are others; named
    as in the summary (``lag[outcome, predictor]``)."""
    post = summary_tree(result.idata).posterior.to_dataset()
    entries = entry_draws(post, list(result.parameters), sep=", ")
    names = [f"lag[{to}, {source}]" for to, source in KEY_PATHS[result.design]]
    ends = ("end_trait_effect_patient", "end_trait_effect_therapist", "end_change_per_sd")
    names += [n for n in (*ends, "end_trait_effect") if n in entries]
    s = result.summary()
    r_hat, ess = s["r_hat"].dropna(), s["ess_bulk"].dropna()  # no R-hat with one chain
    for worst in [*r_hat.nlargest(1).index, *ess.nsmallest(1).index]:
        if str(worst) in entries and str(worst) not in names:
            names.append(str(worst))
    return {n: entries[n] for n in names[:max_rows] if n in entries}


# The joint model's sampler table's rows on its latent parts (a mechanism fit says its own).
_JOINT_LATENT_ROWS = ("latent means (traits)", "missing cells inside a series")


def mechanism_sampler_table(result: MechanismResult) -> pd.DataFrame:
    """The sampler's settings (:func:`bayes_alliance.report.methods.sampler_table`) with what
    the fit did with each latent part: integrated out in closed form or sampled
    (:func:`bayes_alliance.report.mechanism_text.inference_rows`), after the random seed."""
    table = report_methods.sampler_table(result.provenance)
    table = table.drop(index=[r for r in _JOINT_LATENT_ROWS if r in table.index])
    rows = pd.DataFrame(text.inference_rows(result), columns=["setting", "value"])
    at = list(table.index).index("random seed") + 1
    return pd.concat([table.iloc[:at], rows.set_index("setting"), table.iloc[at:]])


def _summary_sentences(result: MechanismResult, table: pd.DataFrame, hdi: str) -> list[str]:
    """The data, the cautions and the key effects with their intervals, in words."""
    d, prov = result.data, result.provenance
    rows = table.set_index("parameter")
    said = [
        f"{d.n_patients} patients, {d.n_sessions} session numbers; seed "
        f"{prov['random_seed']}, {prov['chains']} chains x {prov['draws']} draws."
    ]
    said += [f"Note: {n}" for n in cautions(table)]
    for name in key_effects(result.design):
        if name in rows.index:
            label = str(rows.at[name, "label"])
            mean, low, high = rows.loc[name, ["mean", "ci_low", "ci_high"]].to_numpy(dtype=float)
            said.append(
                f"{label[:1].upper()}{label[1:]}: {mean:.3f} ({hdi} {low:.3f} to {high:.3f})."
            )
    if not result.convergence.ok:
        said = [PROVISIONAL + s for s in said]
    return said


def _model_section(result: MechanismResult, ci_prob: float) -> ReportSection:
    """The methods paragraph, the model in words and equations, the priors actually used."""
    return ReportSection(
        "Model",
        [
            text.methods_paragraph(result, ci_prob),
            *text.model_lines(result),
            text.data_scale_sentence(result),
        ],
        tables=[
            Table(
                text.priors_table(result),
                "Priors actually used (after scaling to the data)",
                [
                    "source: how the default was scaled to the series' means and SDs (the "
                    "joint model's rules). Normal(mu, sigma); HalfNormal(sigma) for SDs; "
                    "LKJ(eta) for correlation matrices."
                ],
            ),
            options_table(result.spec.to_dict()),
        ],
        # Indented: every line an equation (typeset as MathML in the page).
        blocks=["\n".join("  " + ln for ln in text.equations(result).splitlines())],
    )


def _diagram_section(
    result: MechanismResult, tables: ResultTables, ci_prob: float
) -> list[ReportSection]:
    """The design's path diagram as a numbered figure (none for two series or one)."""
    figure = diagram(result, tables.effects, ci_prob)
    if figure is None:
        return []
    hdi = interval_name(ci_prob, CI_KIND)
    caption = (
        f"Path diagram of the {result.design} design with posterior means and {hdi}s; solid "
        "arrows where the interval excludes 0."
    )
    return [ReportSection("Path diagram", figures=[Plot("path_diagram", figure, caption)])]


def _informant_mediation_section(
    result: MechanismResult, tables: ResultTables, hdi: str
) -> list[ReportSection]:
    """The combined design's mediation per rating, side by side (none for another design)."""
    if result.design != MEDIATION_INFORMANTS:
        return []
    words = _words(result)
    frame = informant_mediation_table(tables.effects, words["x"], words["x2"], hdi)
    legend = (
        f"Each rating's lagged 1-1-1 mediation through {words['m']} in one model: a path "
        f"at t -> t+1, the shared b path, the indirect effect E[a_i b_i] = a b + cov(a_i, "
        "b_i), direct and total effects over the same two sessions (the direct effect holds "
        "the route through the other rating's next score), each computed per draw; the "
        "difference column is first minus second rating per draw, in each rating's own units."
    )
    return [
        ReportSection(
            "Mediation per informant",
            tables=[Table(frame, f"Within-level mediation per informant ({hdi})", [legend])],
        )
    ]


def _table_sections(tables: ResultTables, hdi: str) -> list[ReportSection]:
    """The effects and the parameters, each a numbered table."""
    effects = tables.effects.set_index("parameter")
    columns = ("mean", "sd", "ci_low", "ci_high", "ess_bulk", "ess_tail", "r_hat")
    return [
        ReportSection(
            f"Effects (posterior mean, {hdi})",
            tables=[Table(display_table(effects, hdi), f"Derived effects ({hdi}); effects.csv")],
        ),
        ReportSection(
            f"Parameters (posterior mean, {hdi})",
            tables=[
                Table(
                    display_table(tables.summary, hdi, columns),
                    f"Posterior summary of the model's parameters ({hdi}); summary.csv",
                    [
                        "Matrix entries as lag[to, from]; correlation matrices by their "
                        "entries below the diagonal."
                    ],
                )
            ],
        ),
    ]


def mechanism_sections(
    result: MechanismResult, ci_prob: float = DEFAULT_CI_PROB
) -> tuple[list[ReportSection], ResultTables]:
    """All sections of a mechanism fit's report and its labelled tables, without writing
    anything."""
    tables = mechanism_tables(result, ci_prob)
    hdi = interval_name(ci_prob, CI_KIND)
    conv, prov = result.convergence, result.provenance
    draws = mechanism_key_draws(result)
    said = _summary_sentences(result, tables.effects, hdi)
    sections = [
        ReportSection("Summary in words", said, provisional=not conv.ok),
        _model_section(result, ci_prob),
        convergence_section(
            conv,
            prov,
            mechanism_sampler_table(result),
            draws,
            {n: trace_label(n, result) for n in draws},
            identification_messages(result),
        ),
        *_diagram_section(result, tables, ci_prob),
        *_informant_mediation_section(result, tables, hdi),
        *_table_sections(tables, hdi),
        predictive_section(result, ci_prob),
    ]
    sections.append(software_section(prov, sections))
    return sections, tables


__all__ = [
    "DESIGN_WORDS",
    "cautions",
    "diagram",
    "mechanism_effects_table",
    "mechanism_key_draws",
    "mechanism_sampler_table",
    "mechanism_sections",
    "mechanism_summary_table",
    "mechanism_tables",
    "trace_label",
]
