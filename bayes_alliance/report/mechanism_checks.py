"""The posterior predictive check of a mechanism fit's report: each series' observed mean per
session against the means of data sets replicated from the posterior
(:mod:`bayes_alliance.mechanisms.predictive`: whole series given each draw's latent parts), and
the end-of-treatment outcome's mean and SD (a binary outcome: its proportion) against the same
statistics of the replicates.

The figure over sessions is the joint model's (:func:`bayes_alliance.report.plots.session_check`);
its intervals are equal-tailed (``BAND_KIND``), as for every predictive band.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND, interval_bounds, interval_name
from bayes_alliance.mechanisms.predictive import END_CELL, N_DRAWS, cell_dim
from bayes_alliance.report import plots
from bayes_alliance.report.render import Plot, ReportSection

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from bayes_alliance.mechanisms.fit import MechanismResult

COLUMNS = ["variable", "session", "n", "observed", "replicated", "rep_low", "rep_high"]


def session_table(checks: xr.DataTree, roles: tuple[str, ...], ci_prob: float) -> pd.DataFrame:
    """One row per series and session with observed cells: ``n`` cells, their ``observed``
    mean, the median of the replicated data sets' means (``replicated``) and their
    equal-tailed interval (``rep_low``, ``rep_high``); the columns
    :func:`~bayes_alliance.report.plots.session_check` reads."""
    pp, obs = checks["posterior_predictive"], checks["observed_data"]
    rows = []
    for role in roles:
        dim = cell_dim(role)
        rep = np.asarray(pp[role].values, dtype=float).reshape(-1, pp.sizes[dim])
        seen = np.asarray(obs[role].values, dtype=float)
        sessions = np.asarray(obs[role].coords[f"{dim}_session"].values)
        for session in np.unique(sessions):
            at = sessions == session
            means = rep[:, at].mean(axis=1)
            low, high = interval_bounds(means, ci_prob, BAND_KIND)
            rows.append(
                [role, int(session), int(at.sum()), float(seen[at].mean()),
                 float(np.median(means)), float(low), float(high)]
            )  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def end_statistics(checks: xr.DataTree, binary: bool) -> dict[str, tuple[float, np.ndarray]]:
    """The end outcome's observed statistics and their replicated draws: ``proportion`` for a
    binary outcome, else ``mean`` and ``SD``."""
    rep = np.asarray(checks["posterior_predictive"][vocab.END_OUTCOME].values, dtype=float)
    rep = rep.reshape(-1, rep.shape[-1])
    seen = np.asarray(checks["observed_data"][vocab.END_OUTCOME].values, dtype=float)
    if binary:
        return {"proportion": (float(seen.mean()), rep.mean(axis=1))}
    return {
        "mean": (float(seen.mean()), rep.mean(axis=1)),
        "SD": (float(seen.std(ddof=1)), rep.std(axis=1, ddof=1)),
    }


def end_check(stats: dict[str, tuple[float, np.ndarray]], column: str, ci_prob: float) -> Figure:
    """One panel per statistic: the replicated values (histogram) with their equal-tailed
    interval (shaded) and the observed value (line)."""
    label = interval_name(ci_prob, BAND_KIND)
    fig, axes = plt.subplots(1, len(stats), figsize=(3.6 * len(stats) + 0.6, 3.0), squeeze=False)
    for ax, (name, (seen, rep)) in zip(axes[0], stats.items(), strict=True):
        low, high = interval_bounds(rep, ci_prob, BAND_KIND)
        ax.axvspan(float(low), float(high), color="#deebf7", label=f"replicated, {label}")
        ax.hist(rep, bins=min(30, max(5, len(rep) // 8)), color="#9ecae1", edgecolor="white")
        ax.axvline(seen, color="#08306b", lw=2, label="observed")
        ax.set_xlabel(f"{name} of {column}")
        ax.set_ylabel("replicated data sets")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"Posterior predictive check of {column}", fontsize=11)
    fig.tight_layout()
    return fig


def _end_part(
    result: MechanismResult, checks: xr.DataTree, ci_prob: float
) -> tuple[list[str], list[Plot]]:
    """The end outcome's sentence and figure (nothing without an end outcome; a sentence why
    when it is not replicated)."""
    column = result.data.end_column
    if column is None or result.data.end_outcome is None:
        return [], []
    if vocab.END_OUTCOME not in checks["posterior_predictive"]:
        return [
            f"{column} is not replicated: this saved fit with sampled traits does not hold "
            "what its linear predictor needs (the therapists' parts of a three-level fit, or "
            "the trait's effect by level in a file written before it was split); refit to "
            "check it."
        ], []
    eti = interval_name(ci_prob, BAND_KIND)
    stats = end_statistics(checks, result.data.end_is_binary())
    said = []
    for name, (seen, rep) in stats.items():
        low, high = interval_bounds(rep, ci_prob, BAND_KIND)
        said.append(f"{name} {seen:.3g} (replicated {eti} {float(low):.3g} to {float(high):.3g})")
    n = checks["observed_data"].sizes[END_CELL]
    sentence = (
        f"{column} ({n} patients): observed " + "; ".join(said) + ". The replicates draw each "
        "patient's outcome from its regression on the drawn latent parts."
    )
    caption = (
        f"Posterior predictive check of {column}: the observed {' and '.join(stats)} (line) "
        f"against those of the replicated data sets (histogram; shaded: {eti})."
    )
    return [sentence], [Plot("ppc_end_outcome", end_check(stats, column, ci_prob), caption)]


def _latent_words(result: MechanismResult) -> str:
    """How the check obtained the latent parts, in words."""
    spec = result.spec
    parts = "the patients' latent means" + (" and changes" if spec.trend else "")
    if spec.therapist_level:
        parts += " and the therapists' parts"
    if spec.traits == "integrated":
        return f"{parts} are drawn from their distribution given the data and the draw"
    return f"{parts} are taken from the draw"


def predictive_section(
    result: MechanismResult, ci_prob: float, n_draws: int = N_DRAWS
) -> ReportSection:
    """The report's "Posterior predictive check" of a mechanism fit (any design): the series
    over sessions and, with one, the end-of-treatment outcome."""
    checks = result.posterior_predictive(n_draws=n_draws)
    data = result.data
    eti = interval_name(ci_prob, BAND_KIND)
    table = session_table(checks, data.roles, ci_prob)
    names = dict(zip(data.roles, data.columns, strict=True))
    n_rep = checks["posterior_predictive"].sizes["draw"]
    listed = ", ".join(data.columns)
    figure = Plot(
        "ppc",
        plots.session_check(table, names, eti, "Posterior predictive check over sessions"),
        f"Posterior predictive check over sessions: observed means of {listed} per session "
        f"(dots) against the {eti} of the means of {n_rep} replicated data sets (band).",
    )
    end_said, end_figures = _end_part(result, checks, ci_prob)
    return ReportSection(
        "Posterior predictive check",
        [
            f"For {n_rep} posterior draws {_latent_words(result)}, then every patient's whole "
            "series is replicated on its sessions. Read it as: observed means outside the "
            "band at many sessions point to a missing trend or to dynamics that do not fit; an "
            "observed "
            "statistic in the tail of its replicates, to a part of the model the data "
            "contradict.",
            *end_said,
        ],
        figures=[figure, *end_figures],
    )


__all__ = ["end_check", "end_statistics", "predictive_section", "session_table"]
