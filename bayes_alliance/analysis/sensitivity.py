r"""Prior and likelihood sensitivity of the key effects by power-scaling (Kallioinen et al. 2024).

The posterior is perturbed by raising the prior (or the likelihood) to a power
:math:`\alpha` near 1,

.. math:: p_\alpha(\theta \mid y) \propto p(\theta)^\alpha\, p(y \mid \theta),

with the perturbed posterior reached by Pareto-smoothed importance weights on the draws we
have (no refit). A parameter's sensitivity is the derivative, at :math:`\alpha = 1`, of the
cumulative Jensen-Shannon distance between its perturbed and its actual posterior
(:func:`arviz_stats.psense`). Reading, with psense's own threshold of 0.05:

* prior sensitivity >= 0.05 and likelihood sensitivity < 0.05: the prior dominates the data
  ("prior-sensitive, likelihood weak");
* both >= 0.05: prior and data pull apart ("prior-sensitive, prior-data conflict");
* prior < 0.05, likelihood < 0.05: the data say little about the parameter through the
  likelihood and the prior is not what holds it either (it is determined by other
  parameters; "likelihood weak");
* otherwise "fine": the data, not the prior, determine it.

What is scaled. The prior: the named top-level parameters' priors evaluated by the fitted
model (:func:`bayes_alliance.inference.log_prior.log_prior`). The likelihood: each patient's
marginal log density of their observed cells with the latent means integrated out
(:func:`bayes_alliance.analysis.comparison.pointwise_loglik`, unit ``"patient"``; the
density leave-one-patient-out uses), summed over patients. It is computed when asked for (the
report asks), never during the fit.

Reference: Kallioinen, Paananen, Buerkner & Vehtari (2024), "Detecting and diagnosing prior
and likelihood sensitivity with power-scaling", Statistics and Computing 34:57.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import arviz_stats as azs
import pandas as pd
import xarray as xr

from bayes_alliance.analysis.comparison import pointwise_loglik
from bayes_alliance.core import vocab
from bayes_alliance.inference.log_prior import log_prior
from bayes_alliance.inference.unit_group import posterior_of

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult

v = vocab

THRESHOLD = 0.05
"""psense's own threshold (``arviz_stats.psense_summary``; Kallioinen et al. 2024)."""
KEY_EFFECTS = (
    v.STATE_EFFECT,
    v.REVERSE_STATE_EFFECT,
    v.SAME_SESSION_EFFECT,
    v.OUTCOME_AUTOREGRESSION,
    v.PREDICTOR_AUTOREGRESSION,
    v.TRAIT_EFFECT_PATIENT,
    v.TRAIT_EFFECT_THERAPIST,
    v.SD_THERAPIST_PREDICTOR,
    v.SD_THERAPIST_OUTCOME,
)
PRIOR_SENSITIVE = "prior-sensitive"
LIKELIHOOD_WEAK = "likelihood weak"
FINE = "fine"


@dataclass(frozen=True)
class Sensitivity:
    """Power-scaling sensitivity of the key effects.

    Attributes
    ----------
    table
        Indexed by parameter: ``prior`` and ``likelihood`` sensitivity, ``diagnosis`` (plain
        words, module docstring) and ``psense`` (arviz-stats' own diagnosis).
    seconds
        Time taken (the log prior, the patients' densities and psense).
    """

    table: pd.DataFrame
    seconds: float


def diagnosis(prior: float, likelihood: float, threshold: float = THRESHOLD) -> str:
    """Plain words for a pair of sensitivities (module docstring)."""
    if prior >= threshold:
        if likelihood >= threshold:
            return f"{PRIOR_SENSITIVE}: prior-data conflict"
        return f"{PRIOR_SENSITIVE}, {LIKELIHOOD_WEAK}"
    if likelihood < threshold:
        return LIKELIHOOD_WEAK
    return FINE


def sensitivity_tree(result: FitResult, names: list[str]) -> xr.DataTree:
    """The DataTree psense reads: the named parameters' posterior, the log prior per draw and
    the patients' log densities."""
    post = posterior_of(result.idata)
    lp = log_prior(post, result.data, result.spec)
    ll = pointwise_loglik(result, "patient")
    return xr.DataTree(
        children={
            "posterior": xr.DataTree(post[names]),
            "log_prior": xr.DataTree(lp),
            "log_likelihood": xr.DataTree(xr.Dataset({"patients": ll})),
        }
    )


def prior_sensitivity(
    result: FitResult, names: list[str] | None = None, threshold: float = THRESHOLD
) -> Sensitivity:
    """Power-scaling prior and likelihood sensitivity of ``names`` (default: the key effects
    the fit has, :data:`KEY_EFFECTS`).

    Parameters
    ----------
    result
        A fitted joint model.
    names
        Parameters to diagnose.
    threshold
        Sensitivity above which the posterior is said to change (psense's 0.05).
    """
    start = time.perf_counter()
    post = result.idata.posterior
    chosen = [n for n in (names or KEY_EFFECTS) if n in post]
    unknown = [n for n in (names or []) if n not in post]
    if unknown:
        raise ValueError(f"not parameters of this fit: {unknown}")
    tree = sensitivity_tree(result, chosen)
    # psense_summary logs a pointer to its documentation when it flags something: the
    # diagnosis column says it here.
    log = logging.getLogger("arviz_stats.psense")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        s = azs.psense_summary(tree, var_names=chosen, threshold=threshold, round_to=6)
    finally:
        log.setLevel(level)
    table = pd.DataFrame(
        {
            "prior": s["prior"].astype(float),
            "likelihood": s["likelihood"].astype(float),
        }
    )
    table["diagnosis"] = [
        diagnosis(p, q, threshold) for p, q in zip(table["prior"], table["likelihood"], strict=True)
    ]
    table["psense"] = s["diagnosis"]
    table.index.name = "parameter"
    return Sensitivity(table, time.perf_counter() - start)


__all__ = [
    "FINE",
    "KEY_EFFECTS",
    "LIKELIHOOD_WEAK",
    "PRIOR_SENSITIVE",
    "THRESHOLD",
    "Sensitivity",
    "diagnosis",
    "prior_sensitivity",
    "sensitivity_tree",
]
