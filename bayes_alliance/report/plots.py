"""Figures for reports (matplotlib, Agg backend): each function returns a Figure.

Every figure that shows intervals names their level in a label or legend ("95% HDI"), and every
axis over sessions has integer ticks (sessions are counted, not measured).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: reports are written to files, never shown

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND, interval_bounds

COLOURS = {
    "f1": "#1b9e77",
    "f2": "#d95f02",
    "f3": "#e6ab02",
    "v": "#7570b3",
    "v12": "#7570b3",
    "v13": "#a6a1d6",
    "v23": "#c9c6e8",
    "m": "#66a61e",
    "m2": "#66a61e",
    "m3": "#a6d854",
    "sigma2": "#bdbdbd",
    "omega2": "#8c6d31",
    "time": "#e7298a",
}
LABELS = {
    "f1": "f1: state effects",
    "f2": "f2: patient trait",
    "f3": "f3: therapist trait",
    "v": "v: random slopes",
    "v12": "v12: patient slopes",
    "v13": "v13: therapist slopes",
    "v23": "v23",
    "m": "m: intercepts",
    "m2": "m2: patient intercepts",
    "m3": "m3: therapist intercepts",
    "sigma2": "residual",
    "omega2": "omega2: measurement error",
    "time": "time: session means and trends",
}


def r2_bars(r2_table: pd.DataFrame, equation: str = "outcome") -> Figure:
    """Stacked bars of variance shares per denominator (as r2mlm draws them)."""
    t = r2_table[r2_table.equation == equation]
    denoms = [
        d
        for d in ("total", "within", "between", "level1", "level2", "level3")
        if d in set(t.denominator)
    ]
    parts = [c for c in COLOURS if c in set(t.component)]
    fig, ax = plt.subplots(figsize=(7.5, 0.7 + 0.55 * len(denoms)))
    seen: set[str] = set()
    for i, d in enumerate(denoms):
        sub = t[t.denominator == d].set_index(vocab.COMPONENT)["mean"]
        left = 0.0
        for c in parts:
            if c in sub.index and sub[c] > 0:
                ax.barh(
                    i,
                    sub[c],
                    left=left,
                    color=COLOURS[c],
                    edgecolor="white",
                    label=None if c in seen else LABELS[c],
                )
                seen.add(c)
                if sub[c] > 0.06:
                    ax.text(
                        left + sub[c] / 2, i, f"{sub[c]:.2f}", ha="center", va="center", fontsize=8
                    )
                left += sub[c]
    ax.set_yticks(range(len(denoms)), denoms)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of variance (posterior mean; intervals in the R-squared table)")
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.25 - 0.05 * len(denoms)),
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    ax.set_title(f"R-squared by component, {equation} equation")
    fig.tight_layout()
    return fig


def scale_groups(widths: Sequence[float] | np.ndarray, ratio: float = 5.0) -> list[list[int]]:
    """Split rows into groups whose interval widths lie within a factor ``ratio`` of each
    other, so that one wide interval cannot squash the others to dots on a shared axis.

    Returns the row indices of each group in their original order, narrowest group first.
    """
    order = np.argsort(np.asarray(widths, dtype=float), kind="stable")
    groups: list[list[int]] = []
    smallest = np.inf
    for i in order:
        w = float(widths[i])
        if not groups or w > ratio * max(smallest, 1e-12):
            groups.append([])
            smallest = w
        groups[-1].append(int(i))
    return [sorted(g) for g in groups]


def forest(
    summary: pd.DataFrame,
    groups: Mapping[str, Sequence[str]] | Sequence[str],
    ci_label: str,
    labels: Mapping[str, str] | None = None,
    ratio: float = 5.0,
) -> Figure:
    """Posterior means with intervals, one panel per group of effects and interval scale.

    Parameters
    ----------
    summary
        Indexed by parameter, with mean, ci_low, ci_high.
    groups
        Panel title -> parameter names (a plain list: one group). Names missing from
        ``summary`` are skipped. Within a group, rows whose intervals are more than ``ratio``
        times wider than the narrowest go to a panel of their own with its own axis.
    ci_label
        The interval's name, e.g. ``"95% HDI"``.
    labels
        Row labels by parameter name (default: the names).
    """
    named = dict(groups) if isinstance(groups, Mapping) else {"Effects": list(groups)}
    panels: list[tuple[str, list[str]]] = []
    for title, names in named.items():
        rows = [n for n in names if n in summary.index]
        if not rows:
            continue
        widths = (summary.loc[rows, "ci_high"] - summary.loc[rows, "ci_low"]).to_numpy()
        parts = scale_groups(widths, ratio)
        for k, part in enumerate(parts):
            suffix = " (wider intervals, own scale)" if k else ""
            panels.append((title + suffix, [rows[i] for i in part]))
    if not panels:
        raise ValueError("none of the named effects is in the summary")
    heights = [len(r) + 1.2 for _, r in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(8.5, 0.45 * sum(heights) + 0.4),
        height_ratios=heights,
        squeeze=False,
    )
    for ax, (title, rows) in zip(axes[:, 0], panels, strict=True):
        s = summary.loc[rows]
        y = np.arange(len(rows))
        ax.hlines(y, s["ci_low"], s["ci_high"], color="#1f4e79", lw=2)
        ax.plot(s["mean"], y, "o", color="#1f4e79")
        lo, hi = float(s["ci_low"].min()), float(s["ci_high"].max())
        if lo <= 0 <= hi or abs(min(abs(lo), abs(hi))) < 0.25 * (hi - lo):
            ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.set_yticks(y, [(labels or {}).get(n, n) for n in rows], fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        for k, (_, r) in enumerate(s.iterrows()):
            ax.annotate(
                f"{r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]",
                xy=(1.01, k),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=8,
            )
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel(f"posterior mean and {ci_label}", fontsize=8)
    fig.tight_layout()
    return fig


# Sessions better and worse than the patient's own level.
BETTER, WORSE = "#2ca25f", "#de2d26"


def state_colours(state: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Whether each state deviation is better than usual (True: drawn in :data:`BETTER`): a
    positive state when higher is better, a negative one when higher is worse; a state of
    exactly 0 counts as better (no worse than usual)."""
    state = np.asarray(state, dtype=float)
    return state >= 0 if higher_is_better else state <= 0


def _integer_sessions(ax: Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _level_and_state(
    top: Axes,
    bottom: Axes,
    sessions: np.ndarray,
    observed: np.ndarray,
    level_draws: np.ndarray,
    state_mean: np.ndarray,
    variable: str,
    ci_prob: float,
    higher_is_better: bool = True,
) -> None:
    """One variable of one patient: observed scores, the latent level with its interval, and
    the state deviations as bars, green where the session was better than the patient's own
    level and red where worse (``higher_is_better`` False: a state above the level is worse,
    as with symptoms)."""
    pct = f"{ci_prob * 100:.4g}%"
    level_draws = np.atleast_2d(level_draws)
    ok = np.isfinite(level_draws).all(axis=0)
    if ok.any():
        lo, hi = interval_bounds(level_draws[:, ok], ci_prob, BAND_KIND, axis=0)
        top.fill_between(
            sessions[ok], lo, hi, color="#9ecae1", alpha=0.6, label=f"latent level, {pct} interval"
        )
        top.plot(
            sessions[ok],
            level_draws[:, ok].mean(axis=0),
            color="#08519c",
            lw=2,
            label="latent level (trait-like)",
        )
    seen = np.isfinite(observed)
    top.plot(sessions[seen], observed[seen], "o-", color="#333333", ms=4, lw=1, label="observed")
    top.set_ylabel(variable)
    top.legend(fontsize=7, loc="best")
    has_state = np.isfinite(state_mean)
    better = state_colours(state_mean[has_state], higher_is_better)
    colours = np.where(better, BETTER, WORSE)
    bottom.bar(sessions[has_state], state_mean[has_state], color=colours)
    bottom.axhline(0, color="grey", lw=0.8)
    bottom.legend(
        handles=[Patch(color=BETTER, label="better than usual"), Patch(color=WORSE, label="worse")],
        fontsize=6,
        loc="best",
        title=f"higher is {'better' if higher_is_better else 'worse'}",
        title_fontsize=6,
    )
    bottom.set_ylabel("state")
    bottom.set_xlabel("session")
    _integer_sessions(bottom)


def decomposition(
    sessions: np.ndarray,
    observed: np.ndarray,
    trait_draws: np.ndarray,
    state_mean: np.ndarray,
    patient: str,
    variable: str,
    ci_prob: float,
    higher_is_better: bool = True,
) -> Figure:
    """One patient and one variable: observed scores, the latent trait with its interval, and
    state deviations (``trait_draws`` is one value per draw: a constant level), coloured by
    whether higher is better (:func:`state_colours`)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 4.2), sharex=True, height_ratios=[2, 1])
    draws = np.repeat(np.ravel(trait_draws)[:, None], len(sessions), axis=1)
    _level_and_state(
        top, bottom, sessions, observed, draws, state_mean, variable, ci_prob, higher_is_better
    )
    top.set_title(f"Patient {patient}: trait-like and state-like parts of {variable}")
    fig.tight_layout()
    return fig


def patient_panels(
    sessions: np.ndarray,
    observed: Sequence[np.ndarray],
    level_draws: Sequence[np.ndarray],
    state_mean: Sequence[np.ndarray],
    patient: str,
    variables: Sequence[str],
    ci_prob: float,
    higher_is_better: Sequence[bool] = (True, False),
) -> Figure:
    """One patient, both variables side by side: observed scores, the latent level (the
    trait-like part, per session when the model has trends or session means) with its
    interval, and the state deviations.

    Parameters
    ----------
    sessions
        Session numbers of the patient's series.
    observed, level_draws, state_mean
        Per variable (predictor first): observed scores (NaN where missing), draws x sessions
        of the latent level, and the posterior mean of the state per session.
    patient
        The patient's id, for the title.
    variables
        The two variables' names.
    ci_prob
        Probability of the level's equal-tailed interval.
    higher_is_better
        Per variable, whether a higher score is better (default: the predictor, the alliance,
        yes; the outcome, symptoms, no); the state bars are green when better than the
        patient's own level, red when worse.
    """
    fig, axes = plt.subplots(
        2, 2, figsize=(10, 4.4), sharex=True, height_ratios=[2, 1], squeeze=False
    )
    for k in range(2):
        _level_and_state(
            axes[0, k],
            axes[1, k],
            sessions,
            observed[k],
            level_draws[k],
            state_mean[k],
            variables[k],
            ci_prob,
            higher_is_better[k],
        )
        axes[0, k].set_title(variables[k], fontsize=10)
    fig.suptitle(f"Patient {patient}: trait-like level and state-like deviations", fontsize=11)
    fig.tight_layout()
    return fig


def trace_rank(draws: Mapping[str, np.ndarray], labels: Mapping[str, str] | None = None) -> Figure:
    """Trace (left) and rank plot (right) of each parameter's draws, shape (chain, draw).

    In the rank plot every draw is ranked among all chains' draws; each chain's histogram of
    ranks should be flat (the dashed line) when the chains sample the same distribution
    (Vehtari et al. 2021). A chain that sits high or low shows as a tilted histogram.
    """
    names = list(draws)
    if not names:
        raise ValueError("no parameters to plot")
    fig, axes = plt.subplots(
        len(names), 2, figsize=(9, 1.5 * len(names) + 0.6), squeeze=False, width_ratios=[2.2, 1]
    )
    colours = plt.get_cmap("tab10")
    for row, name in enumerate(names):
        arr = np.asarray(draws[name], dtype=float)
        n_chain, n_draw = arr.shape
        ranks = np.argsort(np.argsort(arr.ravel(), kind="stable"), kind="stable").reshape(arr.shape)
        bins = np.linspace(0, arr.size, min(20, max(n_draw // 10, 2)) + 1)
        trace_ax, rank_ax = axes[row]
        for c in range(n_chain):
            trace_ax.plot(arr[c], lw=0.5, color=colours(c % 10), alpha=0.8)
            counts, _ = np.histogram(ranks[c], bins=bins)
            rank_ax.stairs(
                counts, bins, color=colours(c % 10), baseline=None, label=f"chain {c + 1}"
            )
        rank_ax.axhline(n_draw / (len(bins) - 1), color="grey", ls="--", lw=0.8)
        trace_ax.set_ylabel((labels or {}).get(name, name), fontsize=7, rotation=0, ha="right")
        trace_ax.tick_params(labelsize=7)
        rank_ax.tick_params(labelsize=7)
        rank_ax.set_yticks([])
        rank_ax.set_ylim(bottom=0)
    axes[0, 0].set_title("trace (draw after tuning)", fontsize=9)
    axes[0, 1].set_title("rank histogram per chain", fontsize=9)
    axes[0, 1].legend(fontsize=6, loc="lower right")
    axes[-1, 0].set_xlabel("draw")
    axes[-1, 1].set_xlabel("rank among all draws")
    fig.tight_layout()
    return fig


def session_check(
    table: pd.DataFrame,
    names: Mapping[str, str],
    ci_label: str,
    title: str = "Posterior predictive check over sessions",
) -> Figure:
    """Posterior predictive check over sessions: each variable's observed mean per session
    against the interval of its replicated means (one panel per variable).

    Parameters
    ----------
    table
        From :func:`bayes_alliance.report.checks.session_predictive`.
    names
        Display name per variable (``predictor``, ``outcome``).
    ci_label
        The interval's name, e.g. ``"95% interval"``.
    title
        The figure's title.
    """
    variables = [var for var in names if var in set(table[vocab.VARIABLE])]
    fig, axes = plt.subplots(1, max(len(variables), 1), figsize=(10, 3.4), squeeze=False)
    for ax, var in zip(axes[0], variables, strict=False):
        t = table[table[vocab.VARIABLE] == var].sort_values("session")
        s = t["session"].to_numpy()
        ax.fill_between(
            s,
            t["rep_low"],
            t["rep_high"],
            color="#9ecae1",
            alpha=0.7,
            label=f"replicated means, {ci_label}",
        )
        ax.plot(s, t["replicated"], color="#4292c6", lw=1, label="replicated (median)")
        ax.plot(s, t["observed"], "o-", color="#08306b", ms=4, lw=1.2, label="observed mean")
        ax.set_title(names[var], fontsize=10)
        ax.set_xlabel("session")
        ax.set_ylabel(f"mean of {names[var]}")
        _integer_sessions(ax)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
