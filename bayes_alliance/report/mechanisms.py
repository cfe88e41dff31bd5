"""Tables and the report of a mechanism fit: labelled effects, the path diagram with the
numbers on it, the model as fitted, convergence; HTML and Markdown, written atomically."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_alliance.core.files import atomic_dir
from bayes_alliance.data.series_data import MEDIATOR, OUTCOME, PREDICTOR, SECOND_PREDICTOR
from bayes_alliance.mechanisms.fit import MechanismResult
from bayes_alliance.report.format import to_markdown
from bayes_alliance.report.labels import interval_name

INTERVAL = "eti"

# Words for every effect row; {x}, {m}, {x2}, {y}, {o} are the columns of the series.
LABELS = {
    "predictor_autoregression": "{x}: autoregression (state t-1 -> t)",
    "outcome_autoregression": "{y}: autoregression (state t-1 -> t)",
    "mediator_autoregression": "{m}: autoregression (state t-1 -> t)",
    "second_autoregression": "{x2}: autoregression (state t-1 -> t)",
    "reverse_state_effect": "{y} state t-1 -> {x} state t",
    "state_effect": "{x} state t-1 -> {y} state t",
    "effect_on_mediator": "a: {x} state t-1 -> {m} state t (average over patients)",
    "mediator_effect": "b: {m} state t-1 -> {y} state t (average over patients)",
    "cov_random_paths": "cov(a_i, b_i) between patients",
    "indirect_effect_within_fixed": "a b (product of the average paths, without the covariance)",
    "indirect_effect_within": "indirect effect E[a_i b_i] = a b + cov(a_i, b_i)",
    "direct_path_within": "c': {x} state t-1 -> {y} state t (the lag-1 path)",
    "direct_effect_within": "direct effect of {x} at t on {y} at t+2 (not through {m})",
    "total_effect_within": "total effect of {x} at t on {y} at t+2 (all routes)",
    "proportion_mediated_within": "proportion mediated: indirect / total (t -> t+2)",
    "trait_effect_patient": "trait-like {x} -> trait-like {y} (patient level)",
    "trait_effect_therapist": "trait-like {x} -> trait-like {y} (therapist level)",
    "trait_effect_patient_mediator": "trait-like {m} -> trait-like {y} (patient level)",
    "trait_effect_therapist_mediator": "trait-like {m} -> trait-like {y} (therapist level)",
    "state_effect_second": "{x2} state t-1 -> {y} state t",
    "state_effect_difference": "state effect: {x} minus {x2}",
    "state_effect_std": "{x} state effect, standardised (within SDs)",
    "state_effect_second_std": "{x2} state effect, standardised (within SDs)",
    "state_effect_difference_std": "standardised state effect: {x} minus {x2}",
    "state_corr_informants": "correlation of the two ratings' innovations (state coupling)",
    "cross_lag_second_from_first": "{x} state t-1 -> {x2} state t",
    "cross_lag_first_from_second": "{x2} state t-1 -> {x} state t",
    "corr_trait_change": "correlation of trait-like {x} and its change over sessions (patients)",
    "change_reliability": "reliability of the patients' {x} changes from their series",
    "end_trait_effect": "trait-like {x} -> {o} (per unit)",
    "end_trait_effect_per_sd": "trait-like {x} -> {o} (per SD of the trait)",
    "end_change_effect": "{x} change per session -> {o} (per unit of slope)",
    "end_change_effect_per_sd": "{x} change -> {o} (per SD of the patients' slopes)",
    "end_trait_effect_odds_ratio_per_sd": "odds ratio of {o} per SD of trait-like {x}",
    "end_change_effect_odds_ratio_per_sd": "odds ratio of {o} per SD of {x} change",
}
for _level in ("patient", "therapist"):
    for _suffix, _words in (
        ("_second", "trait-like {x2} -> trait-like {y} (%s level)"),
        ("_difference", "trait effect: {x} minus {x2} (%s level)"),
        ("_std", "trait-like {x} -> trait-like {y}, standardised (%s level)"),
        ("_second_std", "trait-like {x2} -> trait-like {y}, standardised (%s level)"),
        ("_difference_std", "standardised trait effect: {x} minus {x2} (%s level)"),
    ):
        LABELS[f"trait_effect_{_level}{_suffix}"] = _words % _level
    LABELS[f"trait_corr_informants_{_level}"] = (
        f"correlation of the two ratings' trait-like parts ({_level} level)"
    )


def _names(result: MechanismResult) -> dict[str, str]:
    cols = dict(zip(result.data.roles, result.data.columns, strict=True))
    return {
        "x": cols[PREDICTOR],
        "y": cols[OUTCOME],
        "m": cols.get(MEDIATOR, "mediator"),
        "x2": cols.get(SECOND_PREDICTOR, "second rating"),
        "o": result.data.end_column or "end-of-treatment outcome",
    }


def effects_table(result: MechanismResult, ci_prob: float = 0.94) -> pd.DataFrame:
    """Every derived effect with its label and the interval's name (the ``effects.csv``
    columns ``parameter, label, mean, sd, ci_low, ci_high, interval, ess_bulk, ess_tail,
    r_hat``); path SDs are labelled by their path."""
    s = result.effects(ci_prob).reset_index()
    words = _names(result)
    labels = []
    for name in s["parameter"]:
        text = LABELS.get(str(name))
        if text is None and str(name).startswith("sd_path_"):
            text = f"SD between patients of the path {str(name)[8:]}"
        labels.append((text or str(name)).format(**words))
    s.insert(1, "label", labels)
    s.insert(6, "interval", interval_name(ci_prob, INTERVAL))
    return s


def diagram(result: MechanismResult, table: pd.DataFrame, ci_prob: float) -> Any:
    """The design's path diagram (a matplotlib Figure) with the table's numbers, or None for a
    design without one (two series)."""
    from bayes_alliance.report import path_layouts

    rows = table.set_index("parameter")

    def triple(name: str) -> tuple[float, float, float]:
        est, low, high = rows.loc[name, ["mean", "ci_low", "ci_high"]].to_numpy(dtype=float)
        return (float(est), float(low), float(high))

    words = _names(result)
    label = interval_name(ci_prob, INTERVAL)
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


def _model_lines(result: MechanismResult) -> list[str]:
    d, spec = result.data, result.spec
    series = ", ".join(
        f"{c} ({r.replace('_', ' ')})" for r, c in zip(d.roles, d.columns, strict=True)
    )
    lines = [
        f"Series (in the model's order, outcome last): {series}.",
        "z_ti = mu + u_j + v_i + w_ti: trait-like part mu + u_j + v_i (latent means, "
        "unstructured covariance at the patient level"
        + (" and the therapist level" if spec.therapist_level else "")
        + "), state-like part w_ti.",
        "w_ti = Phi_i w_(t-1)i + e_ti, e ~ MVN(0, Sigma_e); a patient's first state has its own "
        "covariance Sigma_1; missing cells inside a series are imputed from the model.",
    ]
    if spec.random_paths:
        paths = ", ".join(f"{a} <- {b}" for a, b in spec.random_paths)
        lines.append(
            f"Lagged paths varying between patients (unstructured covariance): {paths}; the "
            "average indirect effect is E[a_i b_i] = a b + cov(a_i, b_i) (Kenny, Korchmaros & "
            "Bolger, 2003; Bauer, Preacher & Gil, 2006)."
        )
    if d.end_outcome is not None:
        link = "logit P(O_i = 1)" if spec.end_family == "binary" else "O_i"
        lines.append(
            f"End-of-treatment outcome {d.end_column}: {link} = g_0 + g_T (trait-like "
            f"{d.columns[0]} deviation) + g_S (patient's {d.columns[0]} slope deviation)."
        )
    return lines


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


def write_mechanism_report(
    result: MechanismResult, out: str | Path, *, ci_prob: float = 0.94, force: bool = False
) -> Path:
    """Write ``report.html``, ``report.md``, ``effects.csv`` and the path diagram
    (``path_diagram.png``) into the folder ``out`` (atomically; an existing folder is replaced
    only with ``force``). Returns the HTML file's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = effects_table(result, ci_prob)
    show = table[["parameter", "label", "mean", "ci_low", "ci_high", "r_hat", "ess_bulk"]]
    level = interval_name(ci_prob, INTERVAL)
    conv = result.convergence.message()
    notes = cautions(table)
    with atomic_dir(out, force=force) as tmp:
        table.to_csv(tmp / "effects.csv", index=False)
        fig = diagram(result, table, ci_prob)
        figure_html = figure_md = ""
        if fig is not None:
            fig.savefig(tmp / "path_diagram.png", dpi=150, bbox_inches="tight")
            plt.close(fig)
            caption = f"Figure 1. Path diagram with posterior means and {level} intervals."
            figure_html = (
                f'<figure><img src="path_diagram.png" alt="path diagram" style="max-width:100%">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
            figure_md = f"![path diagram](path_diagram.png)\n\n{caption}\n"
        banner = (
            ""
            if result.convergence.ok
            else (
                '<p style="background:#fdd;padding:8px"><b>Convergence check failed: every number '
                "below is provisional.</b></p>"
            )
        )
        title = f"Mechanism model: {result.design.replace('_', ' ')}"
        model = "".join(f"<li>{html.escape(line)}</li>" for line in _model_lines(result))
        prov = result.provenance
        body = (
            f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1>{banner}"
            f"<p>{result.data.n_patients} patients, {result.data.n_sessions} session numbers; "
            f"seed {prov['random_seed']}, {prov['chains']} chains x {prov['draws']} draws.</p>"
            + "".join(f"<p><b>Note:</b> {html.escape(n)}</p>" for n in notes)
            + f"<h2>Model</h2><ul>{model}</ul>"
            f"<h2>Path diagram</h2>{figure_html or '<p>No diagram for this design.</p>'}"
            f"<h2>Effects ({html.escape(level)} intervals)</h2>"
            + show.to_html(index=False, float_format=lambda v: f"{v:.3f}")
            + f"<h2>Convergence</h2><pre>{html.escape(conv)}</pre></body></html>"
        )
        (tmp / "report.html").write_text(body, encoding="utf-8")
        md = [f"# {title}", "", *(f"Note: {n}\n" for n in notes)]
        md += [*(f"- {line}" for line in _model_lines(result)), ""]
        md += [figure_md, f"## Effects ({level} intervals)", "", to_markdown(show, decimals=3), ""]
        md += ["## Convergence", "", "```", conv, "```", ""]
        (tmp / "report.md").write_text("\n".join(md), encoding="utf-8")
    return Path(out) / "report.html"


__all__ = ["LABELS", "cautions", "diagram", "effects_table", "write_mechanism_report"]
