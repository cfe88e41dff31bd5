"""Simulated data with known truth for the mechanism models: lagged 1-1-1 mediation with
random a and b paths, two informants, an end-of-treatment outcome.

The truth is stated in the data-generating form (trait-level regressions, per-patient paths),
not in the model's parameterisation, so recovery tests compare the model's derived quantities
with numbers produced by another route. The first state of every patient is drawn after a
burn-in of the patient's own dynamics (the stationary distribution of ``Phi_i``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

DESIGNS = ("mediation", "informants", "two_series")
_COLUMNS = {
    "mediation": ("alliance", "mediator", "symptoms"),
    "informants": ("alliance", "alliance_therapist", "symptoms"),
    "two_series": ("alliance", "symptoms"),
}
BURN_IN = 60


@dataclass
class MechanismTruth:
    """Generating values and, per patient, the drawn traits, paths and changes."""

    design: str
    columns: tuple[str, ...]
    lag: np.ndarray
    innovation_cov: np.ndarray
    trait_effects: np.ndarray  # outcome trait on the other series' traits (patient level)
    trait_cov_predictors: np.ndarray  # patient-level covariance of the other series' traits
    trait_residual_sd: float
    therapist_sd: np.ndarray
    random_paths: tuple[tuple[int, int], ...]
    path_cov: np.ndarray
    path_deviation: np.ndarray  # (patients, paths)
    change_sd: float
    end: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    traits: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (patients, k)
    changes: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (patients,) slopes
    states: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # (n, T, k)

    def expected_indirect(self) -> float:
        """E[a_i b_i] over the drawn patients (Monte Carlo over the simulated paths), for the
        mediation design."""
        phi = self.patient_lags()
        return float(np.mean(phi[:, 1, 0] * phi[:, 2, 1]))

    def patient_lags(self) -> np.ndarray:
        phi = np.broadcast_to(self.lag, (self.path_deviation.shape[0], *self.lag.shape)).copy()
        for r, (to, source) in enumerate(self.random_paths):
            phi[:, to, source] += self.path_deviation[:, r]
        return phi

    def state_lag_ols(self) -> tuple[np.ndarray, np.ndarray]:
        """The lag matrix (rows: to, columns: from) and its SEs by least squares on the drawn
        states themselves, all patients pooled (the states have mean 0): the estimate of an
        oracle that knows every latent mean and change. A check of a model's posterior that
        needs no model: with fixed paths the posterior mean should scatter around this
        estimate by ``sqrt(posterior variance - oracle variance)``, and the posterior SD should
        exceed the oracle's SE (data cannot say more than the states). With random paths the
        estimate is of the average paths and its SEs assume equal paths."""
        k = self.states.shape[-1]
        x = self.states[:, :-1].reshape(-1, k)
        y = self.states[:, 1:].reshape(-1, k)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        resid = y - x @ coef
        s2 = np.sum(resid**2, axis=0) / (y.shape[0] - k)
        se = np.sqrt(np.outer(s2, np.diag(np.linalg.inv(x.T @ x))))
        return coef.T, se


def _default_lag(design: str) -> np.ndarray:
    if design == "mediation":
        # x = alliance, m = mediator, y = symptoms: a = .3, b = -.3, c' = -.1.
        return np.array([[0.4, 0.0, 0.0], [0.3, 0.3, 0.0], [-0.1, -0.3, 0.3]])
    if design == "informants":
        # Patient-rated and therapist-rated alliance -> symptoms: state effects -.25 and -.1.
        return np.array([[0.3, 0.1, 0.0], [0.1, 0.3, 0.0], [-0.25, -0.1, 0.3]])
    return np.array([[0.4, 0.0], [-0.2, 0.3]])


def simulate_mechanisms(
    *,
    seed: int,
    design: str = "mediation",
    n_therapists: int = 0,
    patients_per_therapist: int = 100,
    n_sessions: int = 15,
    lag: np.ndarray | None = None,
    innovation_sd: float = 1.0,
    innovation_corr: float = 0.2,
    trait_sd: float = 1.0,
    trait_corr: float = 0.5,
    trait_effects: tuple[float, ...] | None = None,
    trait_residual_sd: float = 0.6,
    therapist_sd: float = 0.3,
    path_sd: tuple[float, ...] = (0.1, 0.1),
    path_corr: float = 0.5,
    change_sd: float = 0.0,
    end_effects: tuple[float, float] | None = None,
    end_binary: bool = False,
    end_sd: float = 0.5,
    missing: float = 0.0,
) -> tuple[pd.DataFrame, MechanismTruth]:
    """Draw a long table of two or three series and the truth behind it.

    Parameters
    ----------
    seed
        Seed of the generator; the same seed and settings give the same table.
    design
        ``"mediation"`` (alliance, mediator, symptoms), ``"informants"`` (patient- and
        therapist-rated alliance, symptoms) or ``"two_series"``.
    n_therapists, patients_per_therapist
        ``n_therapists=0`` gives two-level data with ``patients_per_therapist`` patients.
    lag
        Fixed lag matrix (rows: to, columns: from; outcome last).
    trait_sd, trait_corr
        Patient-level SD of every non-outcome trait and their correlation.
    trait_effects
        Patient-level regression of the outcome trait on the other traits (default -0.4 for
        each; for informants -0.4 and 0.0, the pattern the review reports).
    path_sd, path_corr
        With a mediator: SDs of the a and b paths between patients and their correlation.
    change_sd
        SD of the patients' linear alliance slopes (state-like change) per session.
    end_effects
        (trait, change) effects on an end-of-treatment outcome (column ``post_symptoms`` or,
        with ``end_binary``, ``dropout``); None for no such outcome.
    missing
        Share of cells missing at random (each entry on its own).
    """
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
    rng = np.random.default_rng(seed)
    cols = _COLUMNS[design]
    k = len(cols)
    phi = np.array(lag if lag is not None else _default_lag(design), dtype=float)
    if phi.shape != (k, k):
        raise ValueError(f"lag must be {k} x {k} for design {design!r}")
    n_ther = max(n_therapists, 1)
    n = n_ther * patients_per_therapist
    therapist = np.repeat(np.arange(n_ther), patients_per_therapist)

    # Traits: the predictors' traits, then the outcome's by regression.
    kp = k - 1
    if trait_effects is None:
        trait_effects = (-0.4,) * kp if design != "informants" else (-0.4, 0.0)
    beta = np.asarray(trait_effects, dtype=float)
    cp = np.full((kp, kp), trait_corr * trait_sd**2)
    np.fill_diagonal(cp, trait_sd**2)
    tx = rng.multivariate_normal(np.zeros(kp), cp, size=n)
    ty = tx @ beta + trait_residual_sd * rng.standard_normal(n)
    traits = np.column_stack([tx, ty]) + 3.0  # every series centred at 3
    ther_sd = np.full(k, therapist_sd if n_therapists else 0.0)
    traits += (rng.standard_normal((n_ther, k)) * ther_sd)[therapist]

    paths: tuple[tuple[int, int], ...] = ()
    pcov = np.zeros((0, 0))
    dev = np.zeros((n, 0))
    if design == "mediation":
        paths = ((1, 0), (2, 1))
        sd = np.asarray(path_sd, dtype=float)
        pcov = np.outer(sd, sd) * np.array([[1.0, path_corr], [path_corr, 1.0]])
        dev = rng.multivariate_normal(np.zeros(2), pcov, size=n)
    phi_i = np.broadcast_to(phi, (n, k, k)).copy()
    for r, (to, source) in enumerate(paths):
        phi_i[:, to, source] += dev[:, r]
    if np.any(np.max(np.abs(np.linalg.eigvals(phi_i)), axis=-1) >= 1):
        raise ValueError("some patients' dynamics are not stationary: lower the path SDs")

    sd_e = np.full(k, innovation_sd)
    ce = np.full((k, k), innovation_corr)
    np.fill_diagonal(ce, 1.0)
    cov_e = ce * np.outer(sd_e, sd_e)
    chol_e = np.linalg.cholesky(cov_e)
    w = np.zeros((n, k))
    states = np.empty((n, n_sessions, k))
    for t in range(-BURN_IN, n_sessions):
        w = np.einsum("nij,nj->ni", phi_i, w) + rng.standard_normal((n, k)) @ chol_e.T
        if t >= 0:
            states[:, t] = w
    slope = change_sd * rng.standard_normal(n)
    time = np.arange(n_sessions) - 0.5 * (n_sessions - 1)
    z = traits[:, None, :] + states
    z[:, :, 0] += slope[:, None] * time[None, :]
    if missing > 0:
        z[rng.random(z.shape) < missing] = np.nan

    rows = {
        "patient": np.repeat([f"p{i:04d}" for i in range(n)], n_sessions),
        "session": np.tile(np.arange(1, n_sessions + 1), n),
    }
    if n_therapists:
        rows["therapist"] = np.repeat([f"t{j:03d}" for j in therapist], n_sessions)
    for c, col in enumerate(cols):
        rows[col] = z[:, :, c].reshape(-1)
    end: dict[str, float] = {}
    if end_effects is not None:
        g_t, g_s = end_effects
        trait_dev = traits[:, 0] - 3.0
        lin = g_t * trait_dev + g_s * slope
        if end_binary:
            p = 1.0 / (1.0 + np.exp(-(lin - 0.5)))
            value = (rng.random(n) < p).astype(float)
            name = "dropout"
        else:
            value = 10.0 + lin + end_sd * rng.standard_normal(n)
            name = "post_symptoms"
        rows[name] = np.repeat(value, n_sessions)
        end = {"trait_effect": g_t, "change_effect": g_s, "binary": float(end_binary)}
    df = pd.DataFrame(rows)
    truth = MechanismTruth(
        design=design,
        columns=cols,
        lag=phi,
        innovation_cov=cov_e,
        trait_effects=beta,
        trait_cov_predictors=cp,
        trait_residual_sd=trait_residual_sd,
        therapist_sd=ther_sd,
        random_paths=paths,
        path_cov=pcov,
        path_deviation=dev,
        change_sd=change_sd,
        end=end,
        settings={"seed": seed, "design": design, "n_sessions": n_sessions, "n": n},
        traits=traits,
        changes=slope,
        states=states,
    )
    return df, truth


__all__ = ["DESIGNS", "MechanismTruth", "simulate_mechanisms"]
