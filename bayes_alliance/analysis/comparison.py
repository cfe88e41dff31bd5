"""Model comparison: PSIS-LOO by session or by patient, Pareto-k diagnostics, ELPD differences,
stacking weights and Delta-R-squared (docs/methods.md, section 'Model comparison').

Sessions of one patient are dependent, so two units are offered:

* ``"patient"`` (leave-one-patient-out): each patient's marginal log density of their observed
  cells, with the latent mean, trend deviations and missing cells integrated out
  (:mod:`bayes_alliance.analysis.patient_density`), computed from the posterior when asked for.
* ``"session"``: a one-step-ahead conditional score, the log density of a session's observed
  predictor and outcome given the patient's latent mean, slope and previous states (imputed
  where missing), as stored in the fit's ``log_likelihood`` group. It scores how well the
  model predicts a session from the patient's own past, not a leave-one-session-out
  predictive, because the conditioning quantities are themselves informed by that session.

References: Vehtari, Gelman & Gabry (2017), Stat Comput 27:1413 (PSIS-LOO); Yao et al. (2018),
Bayesian Analysis 13:917 (stacking); Rights & Sterba (2020), Multivariate Behav Res 55:568
(Delta-R-squared).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.analysis.patient_density import patient_loglik
from bayes_alliance.core import vocab
from bayes_alliance.data.differences import data_differences
from bayes_alliance.inference.results import MAIN, MECHANISM
from bayes_alliance.inference.unit_group import posterior_of
from bayes_alliance.model.grid import GridIndex
from bayes_alliance.model.variability import BY_PATIENT, INSTABILITY_RAW

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult

UNITS = ("patient", "session")
# Memory of one PSIS call's input (draws x units, float64); arviz-stats works on a few copies.
CHUNK_BYTES = 64 * 2**20
K_GOOD = 0.7  # Vehtari et al. (2024): above 0.7 the PSIS estimate is unreliable


UNIT_LABELS = {
    "patient": "leave-one-patient-out (marginal density of each patient's observed cells)",
    "session": "one-step-ahead conditional score per session (given latent mean and past states)",
}
_DENSITY_EXTRA = (
    "therapist_dev_predictor_raw",
    "therapist_dev_outcome_raw",
    "state_effect_therapist_raw",  # the therapist parts' shift by the slope deviation
    "state_effect_by_patient",
    *BY_PATIENT.values(),
    *INSTABILITY_RAW[vocab.PATIENT],
    "session_mean_predictor",
    "session_mean_outcome",
    "first_sd_predictor",
    "first_sd_outcome",
    "first_corr",
)


def pointwise_loglik(result: FitResult, unit: str = "patient") -> xr.DataArray:
    """Log-likelihood per draw and unit, dims (chain, draw, unit); see the module docstring for
    what each unit's value is."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if getattr(result, "kind", MAIN) == MECHANISM:  # the k-series model computes its own
        return result.pointwise_loglik(unit)  # type: ignore[attr-defined]
    if unit == "patient":
        held = result.idata.get("log_likelihood")
        if held is not None and vocab.BY_PATIENT in held.data_vars:  # fit / ensure_log_likelihood
            return held[vocab.BY_PATIENT].transpose("chain", "draw", vocab.PATIENT)
        return patient_pointwise(result)
    ll = result.ensure_log_likelihood(patient=False).log_likelihood
    idx = GridIndex.of(result.data)
    n_pat, n_ses = result.data.x.shape
    observed = result.data.observed_x | result.data.observed_y
    # A session cell's score is its predictor's plus its outcome's density, placed straight
    # into the observed session cells (in row-major order) by position: no draws x patients x
    # sessions grid (10 GB at 20,000 patients x 20 sessions and 2,000 draws).
    cells = np.flatnonzero(observed.ravel())
    pos_x = np.searchsorted(cells, np.ravel_multi_index(idx.obs_x, (n_pat, n_ses)))
    pos_y = np.searchsorted(cells, np.ravel_multi_index(idx.obs_y, (n_pat, n_ses)))
    lx = np.asarray(ll["predictor"].values)
    out = np.zeros((*lx.shape[:2], cells.size))
    out[..., pos_x] += lx
    del lx
    out[..., pos_y] += np.asarray(ll["outcome"].values)
    return xr.DataArray(out, dims=("chain", "draw", "session_cell"))


def patient_pointwise(result: FitResult) -> xr.DataArray:
    """Each patient's marginal log density of their observed cells per draw, dims (chain,
    draw, patient) (:func:`bayes_alliance.analysis.patient_density.patient_loglik`): the
    values of leave-one-patient-out, and the ``patient`` variable that
    :meth:`~bayes_alliance.inference.fit.FitResult.ensure_log_likelihood` writes."""
    post = posterior_of(result.idata)
    names = [*vocab.NAMED_PARAMETERS, *_DENSITY_EXTRA]
    arrays = {n: np.asarray(post[n].values) for n in names if n in post}
    return xr.DataArray(
        patient_loglik(arrays, result.data, result.spec),
        dims=("chain", "draw", "patient"),
        coords={"patient": result.data.coords["patient"]},
    )


@dataclass
class LOOResult:
    """PSIS-LOO estimate with its diagnostics."""

    unit: str
    elpd: Any  # arviz_stats ELPDData
    n_high_k: int
    max_k: float
    advice: str
    chunk: int = 0  # units per PSIS call (:func:`psis_loo`)

    @property
    def elpd_loo(self) -> float:
        return float(self.elpd.elpd)

    @property
    def se(self) -> float:
        return float(self.elpd.se)


def loo(result: FitResult, unit: str = "patient", chunk: int | None = None) -> LOOResult:
    """PSIS-LOO with Pareto-k diagnostics and a plain explanation when k is high (``chunk``:
    units per PSIS call, default from :data:`CHUNK_BYTES`; :func:`psis_loo`)."""
    ll = pointwise_loglik(result, unit)
    reff = relative_ess(result.idata.posterior.to_dataset(), result.parameters)
    elpd, chunk = psis_loo(ll, reff, chunk=chunk)
    del ll
    k = np.asarray(elpd.pareto_k)
    n_high = int((k > K_GOOD).sum())
    advice = ""
    if n_high:
        advice = (
            f"{n_high} of {k.size} {unit}s have Pareto k > {K_GOOD}: leaving one out changes the "
            "posterior too much for importance sampling to approximate, so the ELPD is unreliable. "
        )
        if unit == "patient":
            advice += (
                "These are usually patients whose series pull the shared parameters (long or "
                "outlying series, or patients whose own slope is far from the rest); use grouped "
                "K-fold cross-validation (refits) for this comparison."
            )
        else:
            advice += (
                "These are usually sessions with outlying scores; inspect them or refit without "
                "them. The session score is conditional on each patient's latent mean and past "
                "states; compare by unit='patient' for a leave-one-patient-out predictive."
            )
    return LOOResult(unit, elpd, n_high, float(k.max()), advice, chunk)


def relative_ess(posterior: xr.Dataset, names: Sequence[str] | None = None) -> float:
    """The relative efficiency PSIS-LOO gives the importance weights: the mean-ESS averaged
    over every element of the variables ``names`` (default: every posterior variable), over
    the number of draws (1 with one chain).

    ArviZ (``arviz_stats.loo`` without ``reff``) averages over every element of every variable
    in the ``posterior`` group: with the states and latent means there (draws x patients x
    sessions x 2 numbers) that is most of a fit's LOO time at registry size, and the number is
    dominated by the states. :func:`loo` passes the named parameters
    (``result.parameters``), the quantities the importance ratios are about; ArviZ's own call
    gives the same ELPD with ``reff=result.relative_ess()``. The value matters through the
    Pareto tail length ``min(S / 5, 3 sqrt(S / r_eff))`` (S draws): with 2,000 draws a
    different ``r_eff`` changes the ELPD in the third decimal, with a few hundred not at all.
    """
    n_chains = int(posterior.sizes["chain"])
    if n_chains == 1:
        return 1.0
    if names is not None:
        posterior = posterior[[n for n in names if n in posterior]]
    ess = azs.ess(posterior, method="mean")
    values = np.hstack([np.asarray(ess[k].values).ravel() for k in ess.data_vars])
    return float(values.mean() / (n_chains * int(posterior.sizes["draw"])))


def psis_loo(ll: xr.DataArray, reff: float, chunk: int | None = None) -> tuple[Any, int]:
    r"""PSIS-LOO (Vehtari, Gelman & Gabry 2017) of a pointwise log-likelihood (chain, draw,
    unit), computed ``chunk`` units at a time with the relative efficiency ``reff``
    (:func:`relative_ess`).

    Pareto smoothing is per unit, ``elpd_i = log sum_s w_is p(y_i | theta_s) / sum_s w_is``
    with unit i's own smoothed weights, so the units split into chunks exactly; the totals
    are ``elpd = sum_i elpd_i``, ``p = sum_i (lppd_i - elpd_i)`` (a sum of the chunks'
    ``p``) and ``se = sqrt(n var(elpd_i))`` (sample variance). Each call's working memory is a few copies of its
    chunk (draws x chunk), not of every unit's draws.

    Returns
    -------
    elpd, chunk
        The arviz-stats ``ELPDData`` of all units, and the chunk size used (default: units
        whose draws fill :data:`CHUNK_BYTES`).
    """
    n_units = int(ll.shape[-1])
    n_draws = int(ll.shape[0] * ll.shape[1])
    if chunk is None:
        chunk = max(1, CHUNK_BYTES // (8 * n_draws))
    chunk = max(1, min(int(chunk), n_units))
    dims = ll.dims
    parts = []
    for lo in range(0, n_units, chunk):
        part = ll.isel({dims[-1]: slice(lo, lo + chunk)})
        tree = xr.DataTree(
            children={
                "posterior": xr.DataTree(xr.Dataset({"draws": part.isel({dims[-1]: 0})})),
                "log_likelihood": xr.DataTree(xr.Dataset({"loglik": part})),
            }
        )
        elpd = azs.loo(tree, var_name="loglik", reff=reff)
        # its smoothed log weights are draws x chunk: kept for every chunk they would be one
        # more copy of all units' draws, and nothing downstream reads them
        elpd.log_weights = None
        parts.append(elpd)
    if len(parts) == 1:
        return parts[0], chunk
    first = parts[0]
    elpd_i = xr.concat([e.elpd_i for e in parts], dim=dims[-1])
    pareto_k = xr.concat([e.pareto_k for e in parts], dim=dims[-1])
    values = np.asarray(elpd_i.values, dtype=float)
    combined = dataclasses.replace(
        first,
        elpd=float(values.sum()),
        se=float(np.sqrt(n_units * np.var(values, ddof=1))),
        p=float(sum(e.p for e in parts)),
        n_data_points=n_units,
        warning=any(e.warning for e in parts),
        elpd_i=elpd_i,
        pareto_k=pareto_k,
    )
    return combined, chunk


def _same_data(results: dict[str, FitResult]) -> None:
    """Raise, naming the differences in words, unless every result was fitted to the data of
    the first (:func:`bayes_alliance.data.differences.data_differences`)."""
    ref = next(iter(results))
    for name, r in results.items():
        if r.data.data_hash == results[ref].data.data_hash:
            continue
        words = data_differences(results[ref].data, r.data, (repr(ref), repr(name)))
        raise ValueError(
            f"the results {ref!r} and {name!r} were fitted to different data: "
            + ("; ".join(words) if words else "their data hashes differ")
            + ". Compare fits of the same data set."
        )


def compare(
    results: dict[str, FitResult], unit: str = "patient", loos: dict[str, LOOResult] | None = None
) -> pd.DataFrame:
    """Compare fitted models on the same data.

    Returns
    -------
    pandas.DataFrame
        Indexed by model name, best first: ``elpd``, ``se``, ``elpd_diff``, ``dse`` (SE of the
        difference), ``weight`` (stacking), ``p_loo``, ``n_high_k``, and ``r2_fvm`` (outcome
        equation, total denominator: variance explained by fixed effects, slopes and intercepts)
        with ``delta_r2_fvm`` and ``delta_r2_f`` against the first model given (main-model
        fits; mechanism fits are compared by LOO alone). ``loos``
        takes LOO results already computed with :func:`loo` for the same ``unit``.
    """
    if len(results) < 2:
        raise ValueError("compare needs at least two fitted results")
    kinds = {name: getattr(r, "kind", MAIN) for name, r in results.items()}
    if len(set(kinds.values())) > 1:
        raise ValueError(
            f"compare needs fits of one model family: {kinds} (a mechanism model's likelihood "
            "covers other series than the main model's, so their LOO values are not comparable)"
        )
    _same_data(results)
    if loos is None:
        loos = {name: loo(r, unit) for name, r in results.items()}
    table = azs.compare(
        {name: lr.elpd for name, lr in loos.items()}, method="stacking", round_to="none"
    )
    table = table.rename(columns={"elpd_loo": "elpd", "elpd_kfold": "elpd"})
    keep = [c for c in ("elpd", "se", "elpd_diff", "dse", "weight", "p_loo") if c in table.columns]
    out = table[keep].copy()
    out["n_high_k"] = [loos[n].n_high_k for n in out.index]
    out.index.name = "model"
    if MECHANISM in kinds.values():  # R-squared by variance component is the main model's
        return out
    r2 = {}
    for name, r in results.items():
        # Posterior means of the outcome's total-denominator shares; no intervals are needed.
        r2[name] = r.r2_draws()["outcome_total"].mean(("chain", "draw")).to_series()
    ref = next(iter(results))
    out["r2_fvm"] = [r2[n]["fvm"] for n in out.index]
    out["delta_r2_fvm"] = [r2[n]["fvm"] - r2[ref]["fvm"] for n in out.index]
    out["delta_r2_f"] = [r2[n]["f"] - r2[ref]["f"] for n in out.index]
    out.index.name = "model"
    return out
