"""Short text and HTML views of the package's objects for the console and notebooks.

``repr`` of a fitted result used to print every array it holds (21,000 characters for a small
fit); these views show what a reader looks for first: the data's shape, the model's options,
the sampler settings and seed, the convergence check and the key effects with intervals.
Nothing here samples or recomputes anything expensive.
"""

from __future__ import annotations

import textwrap
from html import escape
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import xarray as xr

from bayes_alliance.core import diagnostics, vocab
from bayes_alliance.core.html_table import html_table
from bayes_alliance.core.intervals import CI_KIND, DEFAULT_CI_PROB, interval_name
from bayes_alliance.data.session_data import SessionData, data_line
from bayes_alliance.spec.model_spec import ModelSpec

if TYPE_CHECKING:
    import pymc as pm


# What the views read, as protocols: the fit and compiled-model modules import this one for
# their repr, so it names neither (no import cycle, type-only imports included).
class FitLike(Protocol):
    """A fitted joint model as the views read it (:class:`~bayes_alliance.inference.fit.FitResult`)."""

    idata: xr.DataTree
    spec: ModelSpec
    data: SessionData
    provenance: dict[str, Any]
    convergence: diagnostics.Convergence


class CompiledLike(Protocol):
    """A compiled model as its view reads it
    (:class:`~bayes_alliance.inference.compiled.CompiledModel`)."""

    model: pm.Model
    spec: ModelSpec
    compile_s: float


KEY_EFFECTS = vocab.KEY_EFFECTS
# The interval of the key effects: the tables' convention (HDI at the default level).
INTERVAL = interval_name(DEFAULT_CI_PROB, CI_KIND)


def model_line(spec: ModelSpec) -> str:
    """One line naming the model's options that differ from the plain model."""
    parts = ["three-level" if spec.therapist_level else "two-level"]
    parts.append("cross-lagged VAR(1)" if spec.dynamics == "var1" else str(spec.dynamics))
    if spec.random_slopes:
        parts.append("random state slopes at " + " and ".join(spec.random_slopes))
    if spec.moderators:
        parts.append("moderators " + ", ".join(spec.moderators))
    if spec.baseline:
        level = " (therapist level)" if spec.baseline_level == "therapist" else ""
        parts.append("between-level mediation of " + ", ".join(spec.baseline) + level)
    if spec.same_session != "none":
        parts.append(f"same-session path {spec.same_session}")
    if spec.trend:
        parts.append("patient trends")
    if spec.session_means:
        parts.append("session means")
    return ", ".join(parts)


def _key_rows(result: FitLike) -> list[tuple[str, float, float, float]]:
    """Mean and highest-density interval of the key effects, as ``summary()`` gives them
    (without its diagnostics)."""
    post = result.idata.posterior
    names = [n for n in KEY_EFFECTS if n in post and post[n].ndim == 2]
    if not names:
        return []
    s = diagnostics.intervals(result.idata, names, DEFAULT_CI_PROB, CI_KIND)
    values = s.loc[names, ["mean", "ci_low", "ci_high"]].to_numpy(dtype=float)
    return [
        (n, float(m), float(lo), float(hi)) for n, (m, lo, hi) in zip(names, values, strict=True)
    ]


def _convergence_line(result: FitLike) -> str:
    c = result.convergence
    state = "passed" if c.ok else "FAILED"
    return (
        f"convergence check {state} (max R-hat {c.max_r_hat:.3f}, min bulk ESS "
        f"{c.min_ess_bulk:.0f} of {c.n_draws} draws, {c.divergences} divergences)"
    )


def _sampler_line(prov: dict[str, Any]) -> str:
    seed = prov.get("random_seed")
    drawn = " (drawn)" if prov.get("seed_drawn") else ""
    return (
        f"{prov.get('chains')} chains x {prov.get('draws')} draws after {prov.get('tune')} "
        f"tuning steps, {prov.get('sampler')}, seed {seed}{drawn}"
    )


def fit_text(result: FitLike) -> str:
    """A few lines: model, data, sampler, convergence and the key effects."""
    lines = [
        f"FitResult: {model_line(result.spec)}",
        f"  data: {data_line(result.data)}",
        f"  sampler: {_sampler_line(result.provenance)}",
        f"  {_convergence_line(result)}",
    ]
    rows = _key_rows(result)
    if rows:
        lines.append(f"  key effects (mean [{INTERVAL}]):")
        lines += [f"    {n:<26}{m:>8.3f} [{a:.3f}, {b:.3f}]" for n, m, a, b in rows]
    lines.append("  print(result) for the summary block; .summary(), .effects(), .r2() for tables")
    return "\n".join(lines)


def summary_block(result: FitLike, table: pd.DataFrame, ci_prob: float = DEFAULT_CI_PROB) -> str:
    """The summary as brms prints it: model, data, sampler, then every parameter's estimate,
    error, interval, R-hat and ESS in fixed-width columns (about 90 characters: a terminal shows
    every column, where a printed DataFrame of this width hides the intervals), then the
    convergence line."""
    name = interval_name(ci_prob, CI_KIND)
    width = max([len("parameter"), *(len(str(i)) for i in table.index)])
    head = (
        f"{'parameter':<{width}} {'Estimate':>9} {'Est.Error':>9} {'lower':>9} {'upper':>9} "
        f"{'Rhat':>6} {'Bulk_ESS':>8} {'Tail_ESS':>8}"
    )
    head_lines = (
        f" Model: {model_line(result.spec)}",
        f"  Data: {data_line(result.data)}",
        f" Draws: {_sampler_line(result.provenance)}",
    )
    lines = [
        *(w for line in head_lines for w in textwrap.wrap(line, 90, subsequent_indent=" " * 8)),
        "",
        f"Parameters (lower, upper: {name}):",
        head,
    ]
    for idx, row in table.iterrows():
        lines.append(
            f"{idx!s:<{width}} {row['mean']:>9.3f} {row['sd']:>9.3f} {row['ci_low']:>9.3f} "
            f"{row['ci_high']:>9.3f} {row['r_hat']:>6.3f} {row['ess_bulk']:>8.0f} "
            f"{row['ess_tail']:>8.0f}"
        )
    lines += ["", _convergence_line(result)]
    if not result.convergence.ok:
        lines += textwrap.wrap(result.convergence.message(), 90)
    return "\n".join(lines)


def fit_html(result: FitLike) -> str:
    """The text view as a small HTML block, with a coloured convergence line."""
    ok = result.convergence.ok
    colour = "#1a7f37" if ok else "#b42318"
    conv = escape(_convergence_line(result))
    if not ok:
        conv += "<br>" + escape(result.convergence.message())
    rows = [[n, f"{m:.3f}", f"[{a:.3f}, {b:.3f}]"] for n, m, a, b in _key_rows(result)]
    head = ["key effect", "mean", INTERVAL]
    table = html_table(head, rows) if rows else ""
    return (
        '<div style="font-family:system-ui,sans-serif;font-size:13px">'
        f"<b>FitResult</b>: {escape(model_line(result.spec))}<br>"
        f"data: {escape(data_line(result.data))}<br>"
        f"sampler: {escape(_sampler_line(result.provenance))}<br>"
        f'<span style="color:{colour}">{conv}</span>{table}'
        "<small>.summary(), .effects(), .r2() for tables; .idata for ArviZ</small></div>"
    )


def compiled_text(cm: CompiledLike) -> str:
    n_free = len(cm.model.free_RVs)
    return (
        f"CompiledModel: {model_line(cm.spec)}; {n_free} sampled variables; "
        f"compiled in {cm.compile_s:.1f} s; refit with .fit(data, random_seed=...)"
    )


def compiled_html(cm: CompiledLike) -> str:
    return (
        '<div style="font-family:system-ui,sans-serif;font-size:13px">'
        f"{escape(compiled_text(cm))}</div>"
    )
