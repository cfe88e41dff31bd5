"""Simulated data with known truth for the mechanism models: lagged 1-1-1 mediation with
random a and b paths, two informants, both in one design (a mediator with two informants), one
series alone, an end-of-treatment outcome and a patient-level baseline (between-level
mediation).

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

DESIGNS = ("mediation", "informants", "two_series", "mediation_informants", "single")
_COLUMNS = {
    "mediation": ("alliance", "mediator", "symptoms"),
    "informants": ("alliance", "alliance_therapist", "symptoms"),
    "two_series": ("alliance", "symptoms"),
    "mediation_informants": ("alliance", "alliance_therapist", "mediator", "symptoms"),
    "single": ("alliance",),
}
# The lagged paths (to, from) that vary between patients, by design (``single``: its
# autoregression, when given a path SD).
_RANDOM_PATHS: dict[str, tuple[tuple[int, int], ...]] = {
    "mediation": ((1, 0), (2, 1)),
    "mediation_informants": ((2, 0), (2, 1), (3, 2)),
    "single": ((0, 0),),
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
    therapist_parts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (therapists, k)
    # The baseline's generating effects (``simulate_mechanisms(baseline_effects=...)``): per
    # series "series" (non-outcome: shift of its trait; outcome: its direct shift beyond what
    # the other traits carry) and "end" (direct effect on the end outcome); empty without one.
    baseline: dict[str, Any] = field(default_factory=dict)
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
    if design == "mediation_informants":
        # Both informants' a paths (.3 and .15) to the mediator, b = .35, c' = .1 and 0.
        return np.array(
            [
                [0.3, 0.1, 0.0, 0.0],
                [0.1, 0.3, 0.0, 0.0],
                [0.3, 0.15, 0.3, 0.0],
                [0.1, 0.0, 0.35, 0.3],
            ]
        )
    if design == "single":
        return np.array([[0.4]])
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
    path_sd: tuple[float, ...] | None = None,
    path_corr: float = 0.5,
    change_sd: float = 0.0,
    end_effects: tuple[float, float] | None = None,
    end_binary: bool = False,
    end_sd: float = 0.5,
    end_therapist_effect: float | None = None,
    end_therapist_sd: float = 0.0,
    missing: float = 0.0,
    baseline_effects: tuple[float, ...] | None = None,
    baseline_end: float = 0.0,
) -> tuple[pd.DataFrame, MechanismTruth]:
    """Draw a long table of two or three series and the truth behind it.

    Parameters
    ----------
    seed
        Seed of the generator; the same seed and settings give the same table.
    design
        ``"mediation"`` (alliance, mediator, symptoms), ``"informants"`` (patient- and
        therapist-rated alliance, symptoms), ``"two_series"``, ``"mediation_informants"``
        (alliance, alliance_therapist, mediator, symptoms) or ``"single"`` (alliance alone;
        its trait SD is ``trait_sd``).
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
        SDs of the random paths between patients (with a mediator the a path(s) then the b
        path, default 0.1 each; one series: its autoregression, default none) and their
        correlation (every pair alike).
    change_sd
        SD of the patients' linear alliance slopes (state-like change) per session.
    end_effects
        (trait, change) effects on an end-of-treatment outcome (column ``post_symptoms`` or,
        with ``end_binary``, ``dropout``); None for no such outcome. The trait effect is that
        of the patient part of the predictor's trait (the patient's deviation from its
        therapist's mean).
    end_therapist_effect
        With therapists: the effect of the therapist part of the predictor's trait on the end
        outcome; None gives it the patient part's effect (one effect of the whole trait).
    end_therapist_sd
        With therapists: SD of a therapist intercept of the end outcome (its therapist part
        that the predictor does not explain).
    missing
        Share of cells missing at random (each entry on its own).
    baseline_effects, baseline_end
        A patient-level baseline z ~ N(0, 1) (column ``baseline``): per series, the shift of
        a non-outcome series' trait per unit of z, and for the outcome its direct shift (the
        outcome's trait stays the regression on the other, shifted, traits plus this);
        ``baseline_end`` is z's direct effect on the end outcome (on a binary one's logit),
        which also moves through the predictor's trait. Drawn after everything else (with a
        binary end outcome: before its draw), so the other values of a seed do not change.
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
    if trait_effects is None:
        trait_effects = {
            "informants": (-0.4, 0.0),
            "mediation_informants": (-0.4, 0.0, -0.2),
        }.get(design, (-0.4,) * (k - 1))
    beta = np.asarray(trait_effects, dtype=float)
    if len(beta) != (k - 1 if k > 1 else 0):
        raise ValueError(f"trait_effects needs {k - 1} values for design {design!r}")
    if baseline_effects is not None and len(baseline_effects) != k:
        raise ValueError(f"baseline_effects needs {k} values (one per series) for {design!r}")
    if k == 1:  # one series alone: its trait, no regression
        traits, cp = 3.0 + trait_sd * rng.standard_normal((n, 1)), np.zeros((0, 0))
    else:
        traits, cp = _draw_traits(rng, beta, trait_sd, trait_corr, trait_residual_sd, n)
    ther_sd = np.full(k, therapist_sd if n_therapists else 0.0)
    ther_parts = rng.standard_normal((n_ther, k)) * ther_sd
    patient_traits = traits.copy()
    traits += ther_parts[therapist]
    paths, pcov, dev = _draw_paths(rng, design, n, path_sd, path_corr)
    phi_i = np.broadcast_to(phi, (n, k, k)).copy()
    for r, (to, source) in enumerate(paths):
        phi_i[:, to, source] += dev[:, r]
    if np.any(np.max(np.abs(np.linalg.eigvals(phi_i)), axis=-1) >= 1):
        raise ValueError("some patients' dynamics are not stationary: lower the path SDs")
    cov_e = np.full((k, k), innovation_corr)
    np.fill_diagonal(cov_e, 1.0)
    cov_e = cov_e * np.outer(np.full(k, innovation_sd), np.full(k, innovation_sd))
    states = _draw_states(rng, phi_i, cov_e, n_sessions)
    slope = change_sd * rng.standard_normal(n)
    time = np.arange(n_sessions) - 0.5 * (n_sessions - 1)
    z = traits[:, None, :] + states
    z[:, :, 0] += slope[:, None] * time[None, :]
    if missing > 0:
        z[rng.random(z.shape) < missing] = np.nan

    rows = _long_table(z, cols, therapist if n_therapists else None)
    # A binary end outcome's logit needs the baseline before its draw; a Gaussian one takes
    # its shift afterwards (the seed's other values as without a baseline).
    zb = rng.standard_normal(n) if baseline_effects is not None and end_binary else None
    end: dict[str, float] = {}
    g_p = 0.0
    if end_effects is not None:
        g_p, g_s = end_effects
        g_t = g_p if end_therapist_effect is None else end_therapist_effect
        # O_i = g_P v_i1 + g_T u_j1 + g_S delta_i + u^O_j (+ noise or a logit link).
        lin = g_p * (patient_traits[:, 0] - 3.0) + g_t * ther_parts[therapist, 0]
        ther_sd_end = end_therapist_sd if n_therapists else 0.0
        if ther_sd_end > 0:
            lin = lin + (ther_sd_end * rng.standard_normal(n_ther))[therapist]
        if zb is not None:  # c_O z + g_P times z's shift of the predictor's trait
            assert baseline_effects is not None
            lin = lin + zb * (baseline_end + g_p * baseline_effects[0])
        name, value = _end_outcome(rng, (1.0, g_s), lin, slope, end_binary, end_sd)
        rows[name] = np.repeat(value, n_sessions)
        end = {
            "trait_effect": g_p,
            "therapist_trait_effect": g_t if n_therapists else 0.0,
            "change_effect": g_s,
            "therapist_sd": ther_sd_end,
            "binary": float(end_binary),
        }
    base: dict[str, Any] = {}
    if baseline_effects is not None:
        # After every other draw: the rest of the seed's values stay as without a baseline.
        zb = rng.standard_normal(n) if zb is None else zb
        gamma = np.asarray(baseline_effects, dtype=float)
        shift = gamma.copy()
        if k > 1:  # the outcome's trait regresses on the shifted traits of the others
            shift[-1] = gamma[-1] + beta @ gamma[:-1]
        for c, col in enumerate(cols):
            rows[col] = rows[col] + np.repeat(zb * shift[c], n_sessions)
        traits = traits + zb[:, None] * shift[None, :]
        if end and not end_binary:
            post = "post_symptoms"
            rows[post] = rows[post] + np.repeat(zb * (baseline_end + g_p * gamma[0]), n_sessions)
        rows["baseline"] = np.repeat(zb, n_sessions)
        base = {"series": gamma, "end": baseline_end if end else 0.0}
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
        settings={
            "seed": seed,
            "design": design,
            "n_sessions": n_sessions,
            "n": n,
            "trait_sd": trait_sd,
        },
        traits=traits,
        changes=slope,
        states=states,
        therapist_parts=ther_parts,
        baseline=base,
    )
    return pd.DataFrame(rows), truth


def _long_table(
    z: np.ndarray, columns: tuple[str, ...], therapist: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The grid (patients, sessions, series) as long-table columns: patient, session,
    therapist (when the data have therapists) and one column per series."""
    n, n_sessions = z.shape[:2]
    rows = {
        "patient": np.repeat([f"p{i:04d}" for i in range(n)], n_sessions),
        "session": np.tile(np.arange(1, n_sessions + 1), n),
    }
    if therapist is not None:
        rows["therapist"] = np.repeat([f"t{j:03d}" for j in therapist], n_sessions)
    for c, col in enumerate(columns):
        rows[col] = z[:, :, c].reshape(-1)
    return rows


def _draw_traits(
    rng: np.random.Generator,
    beta: np.ndarray,
    trait_sd: float,
    trait_corr: float,
    residual_sd: float,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The predictors' traits (equicorrelated normals), then the outcome's by regression on
    them; every series centred at 3. Returns the traits (n, k) and the predictors' covariance."""
    kp = len(beta)
    cp = np.full((kp, kp), trait_corr * trait_sd**2)
    np.fill_diagonal(cp, trait_sd**2)
    tx = rng.multivariate_normal(np.zeros(kp), cp, size=n)
    ty = tx @ beta + residual_sd * rng.standard_normal(n)
    return np.column_stack([tx, ty]) + 3.0, cp


def _draw_paths(
    rng: np.random.Generator,
    design: str,
    n: int,
    path_sd: tuple[float, ...] | None,
    path_corr: float,
) -> tuple[tuple[tuple[int, int], ...], np.ndarray, np.ndarray]:
    """The random lagged paths of a design (with a mediator the a path(s), mediator <-
    predictor, then the b path, outcome <- mediator; one series its autoregression when given
    an SD): their (to, from) positions, covariance (every correlation ``path_corr``) and
    per-patient deviations."""
    paths = _RANDOM_PATHS.get(design, ())
    if path_sd is None:
        path_sd = (0.1,) * len(paths) if design != "single" else ()
    if not paths or not len(path_sd):
        return (), np.zeros((0, 0)), np.zeros((n, 0))
    if len(path_sd) != len(paths):
        raise ValueError(f"path_sd needs {len(paths)} values for design {design!r}")
    sd = np.asarray(path_sd, dtype=float)
    corr = np.full((len(sd), len(sd)), path_corr)
    np.fill_diagonal(corr, 1.0)
    pcov = np.outer(sd, sd) * corr
    return paths, pcov, rng.multivariate_normal(np.zeros(len(sd)), pcov, size=n)


def _draw_states(
    rng: np.random.Generator, phi_i: np.ndarray, cov_e: np.ndarray, n_sessions: int
) -> np.ndarray:
    """Each patient's VAR(1) states (n, sessions, k) after a burn-in of :data:`BURN_IN`
    sessions of the patient's own dynamics from zero (so the first state is, to close
    approximation, a draw from the stationary distribution of ``Phi_i``)."""
    n, k = phi_i.shape[:2]
    chol_e = np.linalg.cholesky(cov_e)
    w = np.zeros((n, k))
    states = np.empty((n, n_sessions, k))
    for t in range(-BURN_IN, n_sessions):
        w = np.einsum("nij,nj->ni", phi_i, w) + rng.standard_normal((n, k)) @ chol_e.T
        if t >= 0:
            states[:, t] = w
    return states


def _end_outcome(
    rng: np.random.Generator,
    effects: tuple[float, float],
    trait_dev: np.ndarray,
    slope: np.ndarray,
    binary: bool,
    sd: float,
) -> tuple[str, np.ndarray]:
    """The end-of-treatment outcome from the trait part (``trait_dev``, times the first
    effect) and the change: a 0/1 dropout by a logit link, or post-treatment symptoms with
    Gaussian noise; returns its column name and values."""
    lin = effects[0] * trait_dev + effects[1] * slope
    if binary:
        prob = 1.0 / (1.0 + np.exp(-(lin - 0.5)))
        return "dropout", (rng.random(len(lin)) < prob).astype(float)
    return "post_symptoms", 10.0 + lin + sd * rng.standard_normal(len(lin))


__all__ = ["DESIGNS", "MechanismTruth", "simulate_mechanisms"]
