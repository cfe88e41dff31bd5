"""Reports: one self-contained HTML file plus Markdown and CSV tables for a fitted result.

The report holds the data description, convergence diagnostics, the named effects, derived
effects, R-squared per component (bar chart), a forest plot of trait and state effects,
per-patient trait/state decompositions, a posterior predictive check, the classic two-step
comparison, and plain-language sentences with the numbers.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_alliance import classic, dynamics, plots, vocab
from bayes_alliance.io import atomic_dir
from bayes_alliance.spec import ModelSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayes_alliance.fit import FitResult

FOREST = [
    vocab.STATE_EFFECT,
    vocab.REVERSE_STATE_EFFECT,
    vocab.SAME_SESSION_EFFECT,
    vocab.OUTCOME_AUTOREGRESSION,
    vocab.PREDICTOR_AUTOREGRESSION,
    vocab.TRAIT_EFFECT_PATIENT,
    vocab.TRAIT_EFFECT_THERAPIST,
]


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[pd.DataFrame] = field(default_factory=list)
    figures: list[tuple[str, Figure]] = field(default_factory=list)  # (file stem, figure)


def _interval(summary: pd.DataFrame, name: str) -> str:
    r = summary.loc[name]
    return f"{r['mean']:.3f} ({r['ci_low']:.3f} to {r['ci_high']:.3f})"


def _direction(value: float) -> str:
    return "a rise" if value > 0 else "a fall"


def sentences(
    result: FitResult, summary: pd.DataFrame, r2_table: pd.DataFrame, ci_prob: float
) -> list[str]:
    """Plain-language statements of the main effects with their numbers."""
    x, y = result.data.roles.predictor, result.data.roles.outcome
    pct = f"{round(ci_prob * 100)}% interval"
    means = {str(k): float(val) for k, val in summary["mean"].items()}
    out = []
    if vocab.STATE_EFFECT in summary.index:
        m = means[vocab.STATE_EFFECT]
        out.append(
            f"State-like effect: a session in which a patient's {x} is one point above their own usual "
            f"(trait) level is followed at the next session by {_direction(m)} of {abs(m):.3f} points in "
            f"{y}, given the previous {y}; estimate {_interval(summary, vocab.STATE_EFFECT)}, {pct}."
        )
    if vocab.REVERSE_STATE_EFFECT in summary.index:
        m = means[vocab.REVERSE_STATE_EFFECT]
        out.append(
            f"Reverse path: a one-point rise in {y} above the patient's usual level is followed by "
            f"{_direction(m)} of {abs(m):.3f} points in the next session's {x}; "
            f"{_interval(summary, vocab.REVERSE_STATE_EFFECT)}."
        )
    if vocab.TRAIT_EFFECT_PATIENT in summary.index:
        m = means[vocab.TRAIT_EFFECT_PATIENT]
        out.append(
            f"Trait-like effect between patients: a patient whose usual {x} is one point higher than "
            f"another's (same therapist) has a usual {y} level {abs(m):.3f} points "
            f"{'higher' if m > 0 else 'lower'}; {_interval(summary, vocab.TRAIT_EFFECT_PATIENT)}."
        )
    if vocab.TRAIT_EFFECT_THERAPIST in summary.index:
        m = means[vocab.TRAIT_EFFECT_THERAPIST]
        out.append(
            f"Between therapists: patients of a therapist whose patients' average {x} is one point "
            f"higher have a usual {y} {abs(m):.3f} points {'higher' if m > 0 else 'lower'}; "
            f"{_interval(summary, vocab.TRAIT_EFFECT_THERAPIST)}. With few therapists this interval is wide."
        )
    sel = r2_table[(r2_table.equation == "outcome") & (r2_table.denominator == "total")]
    share = {str(c): float(val) for c, val in zip(sel["component"], sel["mean"], strict=True)}
    if "f1" in share:
        parts = [f"state effects and autoregression (f1) {share['f1']:.1%}"]
        if "f2" in share:
            parts.append(f"the patient trait effect (f2) {share['f2']:.1%}")
        if "f3" in share:
            parts.append(f"the therapist trait effect (f3) {share['f3']:.1%}")
        m_key = "m2" if "m2" in share else "m"
        parts.append(
            f"stable patient differences not explained by {x} ({m_key}) {share[m_key]:.1%}"
        )
        out.append(f"Of the total variance of {y}: " + "; ".join(parts) + ".")
    return out


def _fig_png(fig: Figure) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def stationarity_note(spec: ModelSpec) -> str:
    """One sentence on how the model treats stationarity (for the report and the CLI)."""
    if spec.dynamics != "var1":
        return "The model has no lagged dynamics, so stationarity does not arise."
    if spec.first_session == "stationary":
        return (
            "Stationarity is imposed, not estimated: each patient's first session is drawn from "
            "the stationary distribution of their own dynamics, so the prior is truncated to "
            "stationary dynamics (with random slopes, each patient's or therapist's slope to its "
            "stationary interval, with the truncated normal's normalising constant). No posterior "
            "probability of stationarity is reported."
        )
    return (
        "Stationarity is not imposed (free first-session covariance); 'stationary' is the "
        "posterior probability that the average dynamics are stationary."
    )


def predictive_replicates(
    result: FitResult, n_rep: int = 30, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Observed outcomes with a previous session, and replicates from the outcome equation's
    one-step-ahead predictive given the latent mean and states:
    ``y_rep = M_y + outcome_mean(...) + e``, e ~ N(0, innovation variance of the outcome), with
    each patient's structural slope (:func:`bayes_alliance.dynamics.outcome_mean`). Cells whose
    previous session (or, with a same-session path, own predictor) is missing are left out:
    their states are not drawn unless the fit imputed them."""
    post = result.idata.posterior
    spec = result.spec
    y = result.data.y
    x = result.data.x
    ok = (
        ~np.isnan(y[:, 1:])
        & ~np.isnan(y[:, :-1])
        & ~np.isnan(x[:, :-1])
        & result.data.in_series[:, :-1]
    )
    if spec.same_session != "none":
        ok &= ~np.isnan(x[:, 1:])
    rng = np.random.default_rng(seed)
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    picks = rng.choice(n_chain * n_draw, size=min(n_rep, n_chain * n_draw), replace=False)
    reps = []
    for k in picks:
        c, d = divmod(int(k), n_draw)
        one = post.isel(chain=c, draw=d)
        wx = one["state_predictor"].values
        wy = one["state_outcome"].values
        slope = (
            one["state_effect_by_patient"].values[:, None]
            if "state_effect_by_patient" in one
            else float(one[vocab.STATE_EFFECT])
        )
        b0 = float(one[vocab.SAME_SESSION_EFFECT]) if vocab.SAME_SESSION_EFFECT in one else 0.0
        mean = (y - wy)[:, 1:] + dynamics.outcome_mean(
            slope,
            float(one[vocab.OUTCOME_AUTOREGRESSION]),
            wx[:, :-1],
            wy[:, :-1],
            b0,
            spec.same_session,
            wx[:, 1:],
        )
        s_y = np.asarray(one[vocab.INNOVATION_SD_OUTCOME].values, dtype=float)
        sd = s_y[None, :] if s_y.ndim == 1 else s_y
        reps.append((mean + sd * rng.standard_normal(mean.shape))[ok])
    return y[:, 1:][ok], np.array(reps)


def build_sections(
    result: FitResult, patients: Sequence[object] | None = None, ci_prob: float = 0.94
) -> tuple[list[Section], dict[str, pd.DataFrame]]:
    """All report sections and the CSV tables, without writing anything."""
    data = result.data
    summary = result.summary(ci_prob=ci_prob)
    r2_table = result.r2(ci_prob)
    eff = result.effects(ci_prob)
    conv = result.convergence
    desc = data.describe()
    pct = f"{round(ci_prob * 100)}% HDI"
    x, y = data.roles.predictor, data.roles.outcome

    sections = [
        Section("Summary in words", sentences(result, summary, r2_table, ci_prob)),
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
                f"{desc['missing_outcome_share']:.1%} of cells (imputed by the model).",
                *(f"Warning: {w}" for w in data.warnings),
            ],
        ),
        Section(
            "Convergence",
            [
                conv.message() + ".",
                f"Largest R-hat {conv.max_r_hat:.3f}; smallest bulk / tail ESS {conv.min_ess_bulk:.0f} / "
                f"{conv.min_ess_tail:.0f}; divergences {conv.divergences}; smallest E-BFMI {conv.min_bfmi:.2f}; "
                f"{conv.n_draws} draws (seed {result.provenance.get('random_seed')}).",
            ],
        ),
    ]
    sections.append(Section(f"Named effects (posterior mean, {pct})", tables=[_rounded(summary)]))
    forest_fig = plots.forest(summary, FOREST, pct)
    sections.append(Section("Trait and state effects", figures=[("forest", forest_fig)]))
    sections.append(
        Section(
            "Derived effects: standardised, long-run, ICCs",
            [stationarity_note(result.spec)],
            tables=[_rounded(eff)],
        )
    )
    r2_fig = plots.r2_bars(r2_table, "outcome")
    sections.append(
        Section(
            f"Variance of {y} explained, by component (Rights & Sterba)",
            [
                "Shares per denominator; f1 state effects and autoregression, f2 patient trait, f3 "
                "therapist trait, v random slopes (v12 patient, v13 therapist), m intercept "
                "variance; within parts are averaged over the distribution of the state slopes. "
                + (
                    "time: session means and trends, in the total only (level-specific shares "
                    "and ICCs exclude it). "
                    if result.spec.session_means or result.spec.trend
                    else ""
                )
                + "The full table is r2.csv."
            ],
            tables=[
                r2_table[r2_table.equation == "outcome"]
                .set_index(["denominator", "component"])
                .drop(columns="equation")
                .round(4)
            ],
            figures=[("r2", r2_fig)],
        )
    )
    if result.spec.store_states and "state_predictor" in result.idata.posterior:
        chosen = list(patients) if patients else _default_patients(result)
        unknown = [p for p in chosen if p not in list(data.patients)]
        if unknown:
            raise ValueError(f"unknown patient id(s) {unknown}; e.g. {list(data.patients[:5])}")
        figs = []
        for pid in chosen:
            i = list(data.patients).index(pid)
            cols = np.arange(data.first[i], data.last[i] + 1)
            trait = result.idata.posterior["trait_predictor"].values[..., i].ravel()
            state = (
                result.idata.posterior["state_predictor"]
                .values[..., i, cols]
                .reshape(-1, len(cols))
                .mean(0)
            )
            figs.append(
                (
                    f"patient_{i}",
                    plots.decomposition(
                        data.sessions[cols], data.x[i, cols], trait, state, str(pid), x, ci_prob
                    ),
                )
            )
        sections.append(
            Section(
                f"Trait and state of {x} for chosen patients",
                [
                    "Dots: observed scores. Line and band: the latent trait (the patient's usual level) with "
                    "its interval. Bars: the state part, the session's deviation from the trait (posterior mean; "
                    "green above, red below)."
                ],
                figures=figs,
            )
        )
        obs, reps = predictive_replicates(result)
        sections.append(
            Section(
                "Posterior predictive check",
                [
                    f"Observed {y} against {len(reps)} data sets replicated one session ahead from the posterior; "
                    "the observed histogram should look like one of the replicates."
                ],
                figures=[("ppc", plots.predictive_check(obs, reps, y))],
            )
        )
    if result.spec.dynamics == "var1":
        two = classic.two_step_regression(data)
        sections.append(
            Section(
                "Classic two-step analysis, for comparison",
                [
                    "Person-mean centring and OLS with patient-clustered SEs. Observed means are unreliable with "
                    "short series, which biases lagged effects downward (Nickell 1981) and blends trait with "
                    "state effects (Luedtke et al. 2008)."
                ],
                tables=[two.round(4)],
            )
        )
        from bayes_alliance.conflation import conflation_table

        sections.append(
            Section(
                "Why decompose: one raw slope mixes within and between effects",
                [
                    f"REML random-intercept fits of {y} at t on {x} at t-1: one raw slope (conflated) against "
                    "separate within and between slopes (observed centring), with R-squared of the fixed part "
                    "(Rights 2023). The raw slope is a blend of the two and describes neither."
                ],
                tables=[conflation_table(data).round(4)],
            )
        )
    tables = {"summary": summary, "r2": r2_table, "effects": eff}
    return sections, tables


def _rounded(t: pd.DataFrame) -> pd.DataFrame:
    out = t.round(4)
    for c in ("ess_bulk", "ess_tail"):
        if c in out:
            out[c] = out[c].round(0).astype("Int64")
    return out


def _default_patients(result: FitResult, k: int = 4) -> list[object]:
    """The patients with the most observed sessions (ties in id order)."""
    n = (~np.isnan(result.data.x)).sum(axis=1)
    order = np.argsort(-n, kind="stable")[:k]
    return [result.data.patients[i] for i in order]


CSS = """body{font-family:DejaVu Sans,Arial,sans-serif;max-width:60em;margin:2em auto;color:#222;line-height:1.45}
h1{color:#08306b}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.8em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f0f4f8}td:first-child,th:first-child{text-align:left}img{max-width:100%}.meta{color:#666;font-size:.85em}"""


def render_html(title: str, sections: list[Section], pngs: dict[str, bytes], meta: str) -> str:
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><p class='meta'>{html.escape(meta)}</p>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        parts += [t.to_html(na_rep="", border=0) for t in s.tables]
        for stem, _ in s.figures:
            b64 = base64.b64encode(pngs[stem]).decode()
            parts.append(f"<p><img alt='{stem}' src='data:image/png;base64,{b64}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(title: str, sections: list[Section], meta: str) -> str:
    lines = [f"# {title}", "", meta, ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for p in s.paragraphs:
            lines += [p, ""]
        for t in s.tables:
            lines += [t.to_markdown() if _has_tabulate() else t.to_string(), ""]
        for stem, _ in s.figures:
            lines += [f"![{stem}]({stem}.png)", ""]
    return "\n".join(lines)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def write_report(
    result: FitResult,
    out: str | Path,
    *,
    patients: Sequence[object] | None = None,
    ci_prob: float = 0.94,
    title: str = "bayes_alliance report",
    force: bool = False,
) -> Path:
    """Write ``report.html`` (self-contained), ``report.md`` with its PNGs, and CSV tables into
    ``out`` atomically. Returns the path of the HTML file."""
    sections, tables = build_sections(result, patients, ci_prob)
    pngs = {stem: _fig_png(fig) for s in sections for stem, fig in s.figures}
    v = result.provenance.get("versions", {})
    meta = (
        f"Data hash {result.provenance.get('data_hash', '')[:12]}; bayes_alliance {v.get('bayes_alliance')}, "
        f"pymc {v.get('pymc')}, nutpie {v.get('nutpie')}; spec {result.spec.to_dict()}"
    )
    with atomic_dir(out, force=force) as tmp:
        (tmp / "report.html").write_text(render_html(title, sections, pngs, meta))
        (tmp / "report.md").write_text(render_markdown(title, sections, meta))
        for stem, png in pngs.items():
            (tmp / f"{stem}.png").write_bytes(png)
        for name, t in tables.items():
            t.to_csv(tmp / f"{name}.csv", index=name != "r2")
    return Path(out) / "report.html"
