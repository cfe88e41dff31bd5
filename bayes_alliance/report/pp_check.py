"""Posterior predictive checks on demand (``FitResult.pp_check``), each a matplotlib Figure.

The replicates are whole new series given each draw's parameters and the patient's drawn
latent mean (:mod:`bayes_alliance.inference.predictive`; the fit's ``posterior_predictive``
group, or computed here for ``n_draws`` draws when the fit holds none), at the observed cells:

* ``"density"``: the observed scores' histogram density against those of ``n_draws``
  replicated data sets (brms's ``pp_check(type = "dens_overlay")``);
* ``"series"``: chosen patients' observed series over sessions inside the replicates'
  equal-tailed band (per-patient trajectories);
* ``"stat"``: a statistic of each replicated data set (``"mean"``, ``"sd"``, ``"min"``,
  ``"max"`` or a function) against the observed value, with the posterior predictive p-value
  ``Pr(T(y_rep) >= T(y))`` (Gelman, Meng & Stern 1996).

Replicates of whole series are wider than the one-step-ahead predictive, so a check that the
observed data lie within them is a check of the model's whole-series claims.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND, DEFAULT_CI_PROB, interval_bounds
from bayes_alliance.inference.predictive import CELL_DIMS, observed_data, posterior_predictive
from bayes_alliance.inference.unit_group import posterior_of

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult

KINDS = ("density", "series", "stat")
STATS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda a: np.mean(a, axis=-1),
    "sd": lambda a: np.std(a, axis=-1, ddof=1),
    "min": lambda a: np.min(a, axis=-1),
    "max": lambda a: np.max(a, axis=-1),
}
N_DRAWS = 50
OBSERVED, REPLICATED = "#111111", "#6baed6"


def replicates(result: FitResult, n_draws: int = N_DRAWS) -> xr.Dataset:
    """Replicated ``predictor`` and ``outcome`` at the observed cells for ``n_draws`` draws
    (evenly spaced over the chains' draws), dims (sample, cell)."""
    if "posterior_predictive" in result.idata.children:
        pp = result.idata.posterior_predictive.to_dataset()
    else:
        post = posterior_of(result.idata)
        if "trait_predictor" not in post and "patient_dev_predictor" not in post:
            raise ValueError(
                "this fit holds no drawn latent means to replicate from (sampled traits "
                "without them); refit with states=True"
            )
        per_chain = max(1, -(-n_draws // post.sizes["chain"]))
        picks = np.unique(np.linspace(0, post.sizes["draw"] - 1, per_chain).astype(int))
        pp = posterior_predictive(
            post.isel(draw=picks), result.data, result.spec, int(result.provenance["random_seed"])
        )
    stacked = pp.stack(sample=("chain", "draw")).transpose("sample", ...)
    total = stacked.sizes["sample"]
    keep = np.unique(np.linspace(0, total - 1, min(n_draws, total)).astype(int))
    return stacked.isel(sample=keep)


def pp_check(
    result: FitResult,
    kind: str = "density",
    variable: str = vocab.OUTCOME,
    n_draws: int = N_DRAWS,
    stat: str | Callable[[np.ndarray], np.ndarray] = "mean",
    patients: Sequence[object] | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
) -> Figure:
    """A posterior predictive check (see the module docstring).

    Parameters
    ----------
    result
        A fitted joint model.
    kind
        ``"density"``, ``"series"`` or ``"stat"``.
    variable
        ``"outcome"`` (default) or ``"predictor"``.
    n_draws
        Replicated data sets drawn on (evenly spaced over the posterior).
    stat
        For ``kind="stat"``: ``"mean"``, ``"sd"``, ``"min"``, ``"max"`` or a function of an
        array (..., cells) returning one value per leading entry.
    patients
        For ``kind="series"``: patient ids (default the first four).
    ci_prob
        Level of the equal-tailed band of ``kind="series"``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if variable not in vocab.VARIABLES:
        raise ValueError(f"variable must be one of {vocab.VARIABLES}, got {variable!r}")
    obs = observed_data(result.data)[variable]
    rep = replicates(result, n_draws)[variable]
    column = getattr(result.data.roles, variable)
    if kind == "density":
        return _density(np.asarray(obs.values), np.asarray(rep.values), column)
    if kind == "stat":
        return _stat(np.asarray(obs.values), np.asarray(rep.values), stat, column)
    return _series(result, obs, rep, patients, ci_prob, column)


def _density(obs: np.ndarray, rep: np.ndarray, column: str) -> Figure:
    edges = np.histogram_bin_edges(np.concatenate([obs, rep.ravel()]), bins=30)
    mids = (edges[:-1] + edges[1:]) / 2
    fig = Figure(figsize=(5.5, 3.5), layout="constrained")
    ax = fig.subplots()
    for r in rep:
        ax.plot(mids, np.histogram(r, edges, density=True)[0], color=REPLICATED, lw=0.6, alpha=0.5)
    ax.plot(mids, np.histogram(obs, edges, density=True)[0], color=OBSERVED, lw=2, label="observed")
    ax.plot([], [], color=REPLICATED, label=f"replicated ({len(rep)} draws)")
    ax.set_xlabel(column)
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    return fig


def _stat(
    obs: np.ndarray,
    rep: np.ndarray,
    stat: str | Callable[[np.ndarray], np.ndarray],
    column: str,
) -> Figure:
    if isinstance(stat, str):
        if stat not in STATS:
            raise ValueError(f"stat must be one of {tuple(STATS)} or a function, got {stat!r}")
        fn, label = STATS[stat], stat
    else:
        fn, label = stat, getattr(stat, "__name__", "statistic")
    t_rep = np.asarray(fn(rep), dtype=float).ravel()
    t_obs = float(np.asarray(fn(obs[None, :]), dtype=float).ravel()[0])
    p_value = float(np.mean(t_rep >= t_obs))
    fig = Figure(figsize=(5.5, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.hist(t_rep, bins=20, color=REPLICATED, label=f"replicated ({t_rep.size} draws)")
    ax.axvline(t_obs, color=OBSERVED, lw=2, label="observed")
    ax.set_xlabel(f"{label} of {column}")
    ax.set_title(f"posterior predictive p = {p_value:.2f}", fontsize=10)
    ax.legend(frameon=False)
    return fig


def _series(
    result: FitResult,
    obs: xr.DataArray,
    rep: xr.DataArray,
    patients: Sequence[object] | None,
    ci_prob: float,
    column: str,
) -> Figure:
    dim = CELL_DIMS[str(obs.name)]
    ids = list(result.data.patients[:4]) if patients is None else list(patients)
    cell_patient = np.asarray(obs[f"{dim}_patient"].values).astype(str)
    unknown = [p for p in ids if str(p) not in set(cell_patient)]
    if unknown:
        raise ValueError(
            f"unknown patient id(s) {unknown} (or no observed {column}); "
            f"e.g. {list(result.data.patients[:5])}"
        )
    sessions = np.asarray(obs[f"{dim}_session"].values)
    lo, hi = interval_bounds(np.asarray(rep.values), ci_prob, BAND_KIND, axis=0)
    fig = Figure(figsize=(3.2 * min(len(ids), 4), 2.8 * -(-len(ids) // 4)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(-(-len(ids) // 4), min(len(ids), 4), squeeze=False)).ravel()
    for ax, pid in zip(axes, ids, strict=False):
        m = cell_patient == str(pid)
        ax.fill_between(sessions[m], lo[m], hi[m], color=REPLICATED, alpha=0.5, lw=0)
        ax.plot(sessions[m], np.asarray(obs.values)[m], color=OBSERVED, marker="o", ms=3)
        ax.set_title(f"patient {pid}", fontsize=10)
        ax.set_xlabel("session")
    axes[0].set_ylabel(f"{column} ({ci_prob:.0%} replicated band)")
    return fig


__all__ = ["KINDS", "STATS", "pp_check", "replicates"]
