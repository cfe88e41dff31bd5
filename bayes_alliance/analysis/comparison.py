"""Model comparison: PSIS-LOO by session or by patient, Pareto-k diagnostics, ELPD differences,
stacking weights and Delta-R-squared (METHODS.md section 9).

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
from bayes_alliance.model.grid import GridIndex
from bayes_alliance.model.variability import BY_PATIENT, INSTABILITY_RAW

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult

UNITS = ("patient", "session")
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
        post = result.idata.posterior
        names = [*vocab.NAMED_PARAMETERS, *_DENSITY_EXTRA]
        arrays = {n: np.asarray(post[n].values) for n in names if n in post}
        return xr.DataArray(
            patient_loglik(arrays, result.data, result.spec),
            dims=("chain", "draw", "patient"),
            coords={"patient": result.data.coords["patient"]},
        )
    ll = result.ensure_log_likelihood().log_likelihood
    idx = GridIndex.of(result.data)
    n_pat, n_ses = result.data.x.shape
    lx = np.asarray(ll["predictor"].values)
    ly = np.asarray(ll["outcome"].values)
    grid = np.zeros((*lx.shape[:2], n_pat * n_ses))
    # Each observed cell appears once per variable, so plain fancy-index addition is exact.
    grid[..., np.ravel_multi_index(idx.obs_x, (n_pat, n_ses))] += lx
    grid[..., np.ravel_multi_index(idx.obs_y, (n_pat, n_ses))] += ly
    grid = grid.reshape((*lx.shape[:2], n_pat, n_ses))
    observed = result.data.observed_x | result.data.observed_y
    pi, si = np.nonzero(observed)
    return xr.DataArray(grid[..., pi, si], dims=("chain", "draw", "session_cell"))


@dataclass
class LOOResult:
    """PSIS-LOO estimate with its diagnostics."""

    unit: str
    elpd: Any  # arviz_stats ELPDData
    n_high_k: int
    max_k: float
    advice: str

    @property
    def elpd_loo(self) -> float:
        return float(self.elpd.elpd)

    @property
    def se(self) -> float:
        return float(self.elpd.se)


def loo(result: FitResult, unit: str = "patient") -> LOOResult:
    """PSIS-LOO with Pareto-k diagnostics and a plain explanation when k is high."""
    ll = pointwise_loglik(result, unit)
    post = result.idata.posterior.to_dataset()
    tree = xr.DataTree(
        children={
            "posterior": xr.DataTree(post[[next(iter(post.data_vars))]]),
            "log_likelihood": xr.DataTree(xr.Dataset({"loglik": ll})),
        }
    )
    elpd = azs.loo(tree, var_name="loglik")
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
    return LOOResult(unit, elpd, n_high, float(k.max()), advice)


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
