"""State patterns as patient-level predictors of outcome, with classification uncertainty.

A pattern's posterior probability (:mod:`bayes_alliance.analysis.patterns`) is not a label.
:func:`pattern_outcome_difference` takes the per-draw indicators (draws x patients) and a
patient-level outcome and returns the posterior of the outcome difference between patients with
and without the pattern (:class:`OutcomeDifference`), with the uncertainty of who has the pattern
carried through: a Gibbs sampler in which the pattern probabilities are the labels' priors
(``"joint"``), or a composition of per-draw regressions (``"compose"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayes_alliance.core.intervals import DEFAULT_CI_PROB, interval_bounds


@dataclass(frozen=True)
class OutcomeDifference:
    """Posterior of the outcome difference between patients with and without a pattern.

    Attributes
    ----------
    draws
        The difference per draw (NaN where a draw left one group empty).
    method
        ``"joint"`` or ``"compose"`` (see :func:`pattern_outcome_difference`).
    share_with_pattern
        Per draw, the share of patients with the pattern.
    """

    draws: np.ndarray
    method: str
    share_with_pattern: np.ndarray = field(repr=False)

    def summary(self, ci_prob: float = DEFAULT_CI_PROB) -> dict[str, float]:
        """Mean, SD, interval (the package's convention for an effect: HDI) and the probability
        that the difference is positive over the draws that have both groups."""
        d = self.draws[np.isfinite(self.draws)]
        low, high = interval_bounds(d, ci_prob)
        return {
            "mean": float(d.mean()),
            "sd": float(d.std(ddof=1)),
            "low": float(low),
            "high": float(high),
            "p_positive": float((d > 0).mean()),
            "valid_draws": int(d.size),
        }


def _regression_draws(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per draw (leading axis of x (D, n, p), y (D, n)), one draw of the coefficients and the
    residual variance from the regression's posterior under the flat prior on (beta, log sigma)
    (Gelman et al., Bayesian Data Analysis, 3rd ed., section 14.2), and the OLS estimate."""
    n, p = x.shape[-2:]
    xtx = np.einsum("dni,dnj->dij", x, x)
    xty = np.einsum("dni,dn->di", x, y)
    ok = np.linalg.matrix_rank(xtx) == p
    xtx = np.where(ok[:, None, None], xtx, np.eye(p))
    beta = np.linalg.solve(xtx, xty[..., None])[..., 0]
    resid = y - np.einsum("dni,di->dn", x, beta)
    s2 = np.sum(resid**2, -1) / (n - p)
    sigma2 = s2 * (n - p) / rng.chisquare(n - p, size=len(y))
    chol = np.linalg.cholesky(np.linalg.inv(xtx))
    draw = beta + np.sqrt(sigma2)[:, None] * np.einsum(
        "dij,dj->di", chol, rng.standard_normal((len(y), p))
    )
    draw[~ok] = np.nan
    beta[~ok] = np.nan
    return draw, sigma2, beta


def pattern_outcome_difference(
    indicators: Any,
    outcome: Any,
    covariates: Any = None,
    *,
    method: str = "joint",
    seed: int,
    burn: int = 200,
) -> OutcomeDifference:
    """Outcome difference between patients with and without a pattern, with the uncertainty of
    who has the pattern carried through (not a hard label).

    The model: ``outcome_i = a + delta * L_i + gamma' z_i + e_i``, ``e_i ~ N(0, sigma^2)``, where
    ``L_i`` is whether patient i has the pattern and ``delta`` the difference of interest.

    Parameters
    ----------
    indicators
        Per-draw pattern indicators, ``(draws, patients)`` booleans (e.g.
        ``pattern_indicators(...)["rupture_repair"].T`` for states of shape
        ``(patients, draws, sessions)``).
    outcome
        Patient-level outcome, ``(patients,)``.
    covariates
        Optional ``(patients, k)`` adjustment covariates ``z``.
    method
        ``"joint"`` (default): a Gibbs sampler of the model above in which each patient's
        pattern probability from the states (the share of draws, ``p_i``) is the prior
        probability of ``L_i``; the labels are drawn given the outcome and the regression, the
        regression given the labels. This is the posterior of a model in which the states and
        the outcome both inform who has the pattern, so ``delta`` is not attenuated by
        misclassification (when the ``p_i`` are calibrated). ``"compose"``: per draw, the
        regression on that draw's labels, with one draw from that regression's posterior (flat
        prior): a composition of per-draw estimates that carries both the classification and the
        sampling uncertainty, but, as any regression on a noisy classification, estimates the
        difference between patients *classified* with and without the pattern, which is
        attenuated towards 0 when the classification is uncertain.
    seed
        Seed of the random generator.
    burn
        Gibbs iterations discarded before the kept ones (``"joint"`` only); one is kept per draw
        of ``indicators``.

    Returns
    -------
    OutcomeDifference
    """
    ind = np.asarray(indicators, dtype=bool)
    y = np.asarray(outcome, dtype=float)
    if ind.ndim != 2 or y.shape != (ind.shape[1],):
        raise ValueError(
            f"indicators must be (draws, patients) and outcome (patients,), got {ind.shape}, {y.shape}"
        )
    n_d, n = ind.shape
    z = np.zeros((n, 0)) if covariates is None else np.asarray(covariates, dtype=float)
    if z.ndim == 1:
        z = z[:, None]
    if z.shape[0] != n:
        raise ValueError(f"covariates must have {n} rows, got {z.shape[0]}")
    if n <= 2 + z.shape[1]:
        raise ValueError("too few patients for the regression")
    rng = np.random.default_rng(seed)
    if method == "compose":
        x = np.concatenate(
            [
                np.ones((n_d, n, 1)),
                ind[..., None].astype(float),
                np.broadcast_to(z, (n_d, *z.shape)),
            ],
            -1,
        )
        coef, _, _ = _regression_draws(x, np.broadcast_to(y, (n_d, n)), rng)
        return OutcomeDifference(coef[:, 1], "compose", ind.mean(1))
    if method != "joint":
        raise ValueError(f"method must be 'joint' or 'compose', got {method!r}")
    prior = ind.mean(0).clip(1e-6, 1 - 1e-6)
    labels = ind[0].copy()
    out = np.full(n_d, np.nan)
    share = np.zeros(n_d)
    for it in range(burn + n_d):
        x = np.column_stack([np.ones(n), labels.astype(float), z])[None]
        coef, sigma2, _ = _regression_draws(x, y[None], rng)
        if not np.isfinite(coef).all():  # one group empty: draw labels from the prior only
            labels = rng.random(n) < prior
            if it >= burn:
                share[it - burn] = labels.mean()
            continue
        c, s2 = coef[0], sigma2[0]
        base = c[0] + z @ c[2:]
        log1 = np.log(prior) - (y - base - c[1]) ** 2 / (2 * s2)
        log0 = np.log1p(-prior) - (y - base) ** 2 / (2 * s2)
        p1 = 1 / (1 + np.exp(np.clip(log0 - log1, -700, 700)))
        if it >= burn:
            out[it - burn] = c[1]
            share[it - burn] = labels.mean()
        labels = rng.random(n) < p1
    return OutcomeDifference(out, "joint", share)
