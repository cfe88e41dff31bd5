"""Report sections over sessions: per-patient trait/state panels and the posterior
predictive check (figures whose x-axis is the session)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND
from bayes_alliance.inference.state_group import states_dataset
from bayes_alliance.report import checks as report_checks
from bayes_alliance.report import plots, tables
from bayes_alliance.report.direction import direction_words, higher_is_better
from bayes_alliance.report.render import Plot, ReportSection

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult


def safe_stem(value: object, taken: set[str]) -> str:
    """A file stem that carries a patient id: characters other than letters, digits, ``-``,
    ``.`` and ``_`` become ``_`` (ids can hold slashes or spaces), unique within ``taken``."""
    base = "patient_" + (re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)).strip("._") or "id")
    stem, k = base, 2
    while stem in taken:
        stem, k = f"{base}_{k}", k + 1
    taken.add(stem)
    return stem


def _patient_states(result: FitResult, pid: object) -> tuple[np.ndarray, np.ndarray] | None:
    """One patient's state draws (chain, draw, session) of both variables: from the result's
    states group when it holds every draw's states, else from ``FitResult.states`` where the
    result can compute them (large fits keep no states); None when neither is possible."""
    w = states_dataset(result.idata)
    i = list(result.data.patients).index(pid)
    if w is not None:
        return w["state_predictor"].values[..., i, :], w["state_outcome"].values[..., i, :]
    getter = getattr(result, "states", None)
    if not (result.spec.store_states and callable(getter)):
        return None
    try:
        ds = getter([pid])
    except ValueError:
        return None
    return ds["state_predictor"].values[..., 0, :], ds["state_outcome"].values[..., 0, :]


def patient_section(
    result: FitResult,
    chosen: Sequence[object],
    ci_prob: float,
    better: Mapping[str, str] | None = None,
) -> ReportSection | None:
    """Trait/state panels of the ``chosen`` patients; the state bars are green where a session
    was better than the patient's own level and red where worse, each variable in its own
    direction (:func:`bayes_alliance.report.direction.higher_is_better` of ``better``)."""
    data = result.data
    x, y = data.roles.predictor, data.roles.outcome
    ways = higher_is_better(x, y, better)
    pct = tables.interval_name(ci_prob, BAND_KIND)
    figs = []
    taken: set[str] = set()
    for pid in chosen:
        i = list(data.patients).index(pid)
        cols = np.arange(data.first[i], data.last[i] + 1)
        drawn = _patient_states(result, pid)
        if drawn is None:
            return None
        observed, levels, states = [], [], []
        for grid, draws in zip((data.x, data.y), drawn, strict=True):
            state = draws[..., cols].reshape(-1, len(cols))
            obs = grid[i, cols]
            # The latent level where the variable was observed: score minus state, per draw.
            observed.append(obs)
            levels.append(obs[None, :] - state)
            # Missing cells have no state (NaN in every draw) unless the fit imputed them.
            known = np.isfinite(state).all(axis=0)
            mean = np.full(len(cols), np.nan)
            mean[known] = state[:, known].mean(axis=0)
            states.append(mean)
        figs.append(
            Plot(
                safe_stem(pid, taken),
                plots.patient_panels(
                    data.sessions[cols],
                    observed,
                    levels,
                    states,
                    str(pid),
                    (x, y),
                    ci_prob,
                    ways,
                ),
                f"Patient {pid}: {x} (left) and {y} (right). Dots: observed scores. Line and "
                f"band: the latent level (trait-like part) with its {pct}. Bars: the "
                "state-like part, the session's deviation from that level (posterior mean; "
                "green where the session was better than the patient's own level, red where "
                f"worse: {direction_words(x, ways[0])}, {direction_words(y, ways[1])}).",
            )
        )
    return ReportSection(f"Trait and state of {x} and {y} for chosen patients", figures=figs)


def predictive_section(result: FitResult, ci_prob: float) -> ReportSection:
    data = result.data
    x, y = data.roles.predictor, data.roles.outcome
    eti = tables.interval_name(ci_prob, BAND_KIND)
    if states_dataset(result.idata) is None:
        return ReportSection(
            "Posterior predictive check",
            [
                "Not drawn: the check replicates every cell from each draw's states, and this "
                "fit did not keep them (store_states off, or a fit too large to hold every "
                "draw's states; fit with the states kept to see it)."
            ],
        )
    post = result.idata.posterior
    n_rep = min(report_checks.N_REP, post.sizes["chain"] * post.sizes["draw"])
    check = report_checks.session_predictive(result, ci_prob, n_rep)
    lagged = result.spec.dynamics == "var1"
    how = (
        "one session ahead from the posterior (given the patient's latent mean and the "
        "previous session's states), from the second session of a series on"
        if lagged
        else "from the posterior given the patient's latent mean"
    )
    return ReportSection(
        "Posterior predictive check",
        [
            f"Each observed cell is replicated {how}, for {x} and {y} together; the check "
            "compares the observed mean of each session with the spread of the replicated "
            "means. Observed means outside the band at many sessions point to a missing trend "
            "or misfitting dynamics."
        ],
        figures=[
            Plot(
                "ppc",
                plots.session_check(
                    check,
                    {vocab.PREDICTOR: x, vocab.OUTCOME: y},
                    eti,
                    "Posterior predictive check over sessions"
                    + (" (one session ahead)" if lagged else ""),
                ),
                f"Posterior predictive check over sessions: observed means of {x} and {y} per "
                f"session (dots) against the {eti} of the means of {n_rep} replicated data "
                "sets (band).",
            )
        ],
    )
