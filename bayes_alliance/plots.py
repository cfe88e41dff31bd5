"""Figures for reports (matplotlib, Agg backend): each function returns a Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: reports are written to files, never shown

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

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
        sub = t[t.denominator == d].set_index("component")["mean"]
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
    ax.set_xlabel("share of variance (posterior mean)")
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


def forest(summary: pd.DataFrame, names: list[str], ci_label: str) -> Figure:
    """Posterior means with intervals for the named effects."""
    rows = [n for n in names if n in summary.index]
    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.42 * len(rows)))
    y = np.arange(len(rows))
    s = summary.loc[rows]
    ax.hlines(y, s["ci_low"], s["ci_high"], color="#1f4e79", lw=2)
    ax.plot(s["mean"], y, "o", color="#1f4e79")
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, rows)
    ax.invert_yaxis()
    ax.set_xlabel(f"posterior mean and {ci_label}")
    ax.set_title("Trait and state effects")
    fig.tight_layout()
    return fig


def decomposition(
    sessions: np.ndarray,
    observed: np.ndarray,
    trait_draws: np.ndarray,
    state_mean: np.ndarray,
    patient: str,
    variable: str,
    ci_prob: float,
) -> Figure:
    """One patient: observed scores, the latent trait with its interval, and state deviations."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 4.2), sharex=True, height_ratios=[2, 1])
    lo, hi = np.quantile(trait_draws, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
    ok = ~np.isnan(observed)
    top.fill_between(
        [sessions[0], sessions[-1]],
        lo,
        hi,
        color="#9ecae1",
        alpha=0.6,
        label=f"latent trait, {int(ci_prob * 100)}% interval",
    )
    top.axhline(trait_draws.mean(), color="#08519c", lw=2, label="latent trait (posterior mean)")
    top.plot(sessions[ok], observed[ok], "o-", color="#333333", ms=4, lw=1, label="observed")
    top.set_ylabel(variable)
    top.legend(fontsize=8, loc="best")
    top.set_title(f"Patient {patient}: trait-like and state-like parts of {variable}")
    colours = np.where(state_mean >= 0, "#2ca25f", "#de2d26")
    bottom.bar(sessions, state_mean, color=colours)
    bottom.axhline(0, color="grey", lw=0.8)
    bottom.set_ylabel("state")
    bottom.set_xlabel("session")
    fig.tight_layout()
    return fig


def predictive_check(observed: np.ndarray, replicated: np.ndarray, variable: str) -> Figure:
    """Histogram of observed values against replicated data sets (one-step-ahead predictive)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    bins = np.histogram_bin_edges(np.concatenate([observed, replicated.ravel()]), bins=40).tolist()
    for k, rep in enumerate(replicated):
        ax.hist(
            rep,
            bins=bins,
            histtype="step",
            color="#9ecae1",
            alpha=0.5,
            density=True,
            label="replicated" if k == 0 else None,
        )
    ax.hist(
        observed, bins=bins, histtype="step", color="#08306b", lw=2, density=True, label="observed"
    )
    ax.set_xlabel(variable)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title("Posterior predictive check (one session ahead)")
    fig.tight_layout()
    return fig
