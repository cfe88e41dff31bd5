r"""Ground-truth simulator for three-level session data (METHODS.md section 1).

The data-generating model, for session t of patient i treated by therapist j::

    x_ti = mu_x + a_x[j] + b_x[i] + s_x[i] (t - 1) + xw_ti
    y_ti = mu_y + a_y[j] + b_y[i] + beta_T a_x[j] + beta_P b_x[i] + s_y[i] (t - 1) + yw_ti

    xw_ti = phi_xx xw_(t-1)i + phi_xy yw_(t-1)i + e_x,ti
    yw_ti = phi_yx[i] xw_(t-1)i + phi_yy yw_(t-1)i + e_y,ti,       (e_x, e_y) ~ MVN(0, Sigma_w)
    phi_yx[i] = phi_yx + c[j] + d[i] + lambda z_i

Therapist and patient deviations are independent normals (the y deviations are residuals after
the trait effects; METHODS.md section 10 on identification). The within process starts from its
stationary distribution, so session 1 is a draw from the same process as every later session.
An optional second informant rates x: ``x2_ti = mu_2 + l_T (a_x + b_x) + l_S xw_ti + e_2``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance import moments, r2, vocab


@dataclass(frozen=True)
class TrueParameters:
    """Population values. Names follow :mod:`bayes_alliance.vocab`; defaults mimic alliance
    (1-5 scale) and symptoms (0-4 scale) data: higher alliance is followed by fewer symptoms."""

    intercept_predictor: float = 3.8
    intercept_outcome: float = 1.8
    sd_therapist_predictor: float = 0.2
    sd_therapist_outcome: float = 0.15
    sd_patient_predictor: float = 0.5
    sd_patient_outcome: float = 0.5
    trait_effect_patient: float = -0.3
    trait_effect_therapist: float = -0.5
    predictor_autoregression: float = 0.3
    outcome_autoregression: float = 0.4
    state_effect: float = -0.2
    reverse_state_effect: float = -0.1
    innovation_sd_predictor: float = 0.4
    innovation_sd_outcome: float = 0.35
    innovation_corr: float = -0.2
    sd_state_effect_patient: float = 0.0
    sd_state_effect_therapist: float = 0.0
    moderator_effect: float = 0.0
    trend_predictor: float = 0.0
    trend_outcome: float = 0.0
    sd_trend_predictor: float = 0.0
    sd_trend_outcome: float = 0.0
    informant_intercept: float = 4.0
    informant_loading_trait: float = 0.6
    informant_loading_state: float = 0.5
    informant_sd: float = 0.3

    @property
    def phi(self) -> np.ndarray:
        """Lag matrix at the average dynamics."""
        return moments.lag_matrix(
            self.predictor_autoregression,
            self.reverse_state_effect,
            self.state_effect,
            self.outcome_autoregression,
        )

    @property
    def sigma_within(self) -> np.ndarray:
        return moments.innovation_cov(
            self.innovation_sd_predictor, self.innovation_sd_outcome, self.innovation_corr
        )


@dataclass(frozen=True)
class Design:
    """Sizes and missingness. Ranges ``(lo, hi)`` are inclusive and drawn uniformly per unit."""

    n_therapists: int = 40
    patients_per_therapist: int | tuple[int, int] = (6, 10)
    sessions: int | tuple[int, int] = (8, 20)
    p_missing_session: float = 0.0  # a planned session is skipped (no row), MCAR
    p_missing_value: float = 0.0  # a value in a present row is missing, MCAR, x and y independently
    dropout: float = 0.0  # share of patients who stop before their planned last session
    moderator: bool = False  # add a standardised patient covariate ``moderator``
    informant: bool = False  # add a therapist-rated ``<predictor>_therapist`` column
    predictor_name: str = "alliance"
    outcome_name: str = "symptoms"


@dataclass
class Truth:
    """Everything the simulator drew and the analytic population quantities.

    Attributes
    ----------
    params, design, seed
        The inputs.
    patients
        One row per patient: therapist, latent traits (``trait_predictor``, ``trait_outcome``:
        the latent means), deviations, the patient's state effect, moderator, trends.
    states
        One row per planned session (observed or not): the within components ``state_predictor``
        and ``state_outcome``, and whether the row was kept.
    stationary_within_cov
        2x2 stationary covariance of (xw, yw) at the average dynamics.
    icc
        Per variable, the therapist, patient and session shares of variance.
    r2_components
        Per equation (``outcome``, ``predictor``), the three-level components of METHODS.md
        section 5 (f1, f2, f3, v12, v13, v23, m2, m3, sigma2), at the average dynamics.
    """

    params: TrueParameters
    design: Design
    seed: int
    patients: pd.DataFrame
    states: pd.DataFrame
    stationary_within_cov: np.ndarray = field(repr=False)
    icc: dict[str, dict[str, float]] = field(default_factory=dict)
    r2_components: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (parameters, design, seed and analytic quantities)."""
        return {
            "params": asdict(self.params),
            "design": asdict(self.design),
            "seed": self.seed,
            "stationary_within_cov": self.stationary_within_cov.tolist(),
            "icc": self.icc,
            "r2_components": self.r2_components,
            "r2": {
                eq: {f"{d}/{m}": float(v) for (d, m), v in r2.three_level_r2(c).items()}
                for eq, c in self.r2_components.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_jsonable)


def _jsonable(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o))


def _split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    pnames = [f.name for f in fields(TrueParameters)]
    dnames = [f.name for f in fields(Design)]
    vocab.check_names(kwargs, pnames + dnames, "simulation setting")
    return (
        {k: v for k, v in kwargs.items() if k in pnames},
        {k: v for k, v in kwargs.items() if k in dnames},
    )


def _draw_sizes(rng: np.random.Generator, spec: int | tuple[int, int], n: int) -> np.ndarray:
    if isinstance(spec, int):
        return np.full(n, spec, dtype=np.int64)
    lo, hi = spec
    return rng.integers(lo, hi + 1, size=n)


def _check_design(d: Design, p: TrueParameters) -> None:
    errs = []
    if d.n_therapists < 1:
        errs.append("n_therapists must be at least 1")
    for name in ("p_missing_session", "p_missing_value", "dropout"):
        v = getattr(d, name)
        if not 0.0 <= v < 1.0:
            errs.append(f"{name} must be in [0, 1), got {v}")
    lo = d.sessions if isinstance(d.sessions, int) else d.sessions[0]
    if lo < 2:
        errs.append("sessions must be at least 2")
    if not -1 < p.innovation_corr < 1:
        errs.append("innovation_corr must lie in (-1, 1)")
    if not moments.is_stationary(p.phi):
        errs.append("the average lag matrix is not stationary (an eigenvalue has modulus >= 1)")
    if errs:
        raise ValueError("; ".join(errs))


def simulate(*, seed: int, **settings: Any) -> tuple[pd.DataFrame, Truth]:
    """Draw a three-level session data set with known truth.

    Parameters
    ----------
    seed
        Seed of the random generator; the same seed and settings give the same data.
    **settings
        Any field of :class:`TrueParameters` or :class:`Design`, e.g. ``state_effect=-0.3,
        n_therapists=20, p_missing_session=0.1``. An unknown name is an error with a suggestion.

    Returns
    -------
    data : pandas.DataFrame
        Long table: ``therapist, patient, session, <predictor_name>, <outcome_name>`` and, when
        asked for, ``moderator`` and ``<predictor_name>_therapist``.
    truth : Truth
        Parameters, latent draws and analytic population quantities.
    """
    pkw, dkw = _split_kwargs(settings)
    p = TrueParameters(**pkw)
    d = Design(**dkw)
    _check_design(d, p)
    rng = np.random.default_rng(seed)

    n_per = _draw_sizes(rng, d.patients_per_therapist, d.n_therapists)
    ther = np.repeat(np.arange(d.n_therapists), n_per)
    n_pat = len(ther)
    planned = _draw_sizes(rng, d.sessions, n_pat)
    t_max = int(planned.max())

    a_x = rng.normal(0, p.sd_therapist_predictor, d.n_therapists)
    a_y = rng.normal(0, p.sd_therapist_outcome, d.n_therapists)
    c_slope = rng.normal(0, p.sd_state_effect_therapist, d.n_therapists)
    b_x = rng.normal(0, p.sd_patient_predictor, n_pat)
    b_y = rng.normal(0, p.sd_patient_outcome, n_pat)
    d_slope = rng.normal(0, p.sd_state_effect_patient, n_pat)
    z = rng.normal(0, 1, n_pat) if d.moderator else np.zeros(n_pat)
    s_x = rng.normal(p.trend_predictor, p.sd_trend_predictor, n_pat)
    s_y = rng.normal(p.trend_outcome, p.sd_trend_outcome, n_pat)

    phi_yx_i = p.state_effect + c_slope[ther] + d_slope + p.moderator_effect * z
    phi_i = moments.lag_matrix(
        p.predictor_autoregression, p.reverse_state_effect, phi_yx_i, p.outcome_autoregression
    )
    bad = ~moments.is_stationary(phi_i)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} of {n_pat} drawn patients have non-stationary dynamics; lower "
            "sd_state_effect_patient / sd_state_effect_therapist / moderator_effect"
        )
    s0 = moments.stationary_cov(phi_i, p.sigma_within)
    chol_w = np.linalg.cholesky(p.sigma_within)
    z_state = np.empty((n_pat, t_max, 2))
    z_state[:, 0] = np.einsum("pij,pj->pi", np.linalg.cholesky(s0), rng.normal(size=(n_pat, 2)))
    for t in range(1, t_max):
        e = rng.normal(size=(n_pat, 2)) @ chol_w.T
        z_state[:, t] = np.einsum("pij,pj->pi", phi_i, z_state[:, t - 1]) + e

    mean_x = p.intercept_predictor + a_x[ther] + b_x
    mean_y = (
        p.intercept_outcome
        + a_y[ther]
        + b_y
        + p.trait_effect_therapist * a_x[ther]
        + p.trait_effect_patient * b_x
    )
    tt = np.arange(t_max)[None, :]
    x = mean_x[:, None] + s_x[:, None] * tt + z_state[..., 0]
    y = mean_y[:, None] + s_y[:, None] * tt + z_state[..., 1]
    x2 = (
        p.informant_intercept
        + p.informant_loading_trait * (a_x[ther] + b_x)[:, None]
        + p.informant_loading_state * z_state[..., 0]
        + rng.normal(0, p.informant_sd, (n_pat, t_max))
    )

    # Which planned sessions become rows: series length, dropout, then skipped sessions.
    last = planned.copy()
    drops = rng.random(n_pat) < d.dropout
    for i in np.flatnonzero(drops):
        last[i] = rng.integers(2, planned[i]) if planned[i] > 2 else planned[i]
    in_plan = tt < planned[:, None]
    kept = tt < last[:, None]
    skip = rng.random((n_pat, t_max)) < d.p_missing_session
    skip[:, 0] = False  # the first session defines the start of treatment
    kept &= ~skip
    miss_x = rng.random((n_pat, t_max)) < d.p_missing_value
    miss_y = rng.random((n_pat, t_max)) < d.p_missing_value

    pid = np.array([f"P{i + 1:04d}" for i in range(n_pat)], dtype=object)
    tid = np.array([f"T{j + 1:03d}" for j in range(d.n_therapists)], dtype=object)
    ii, tk = np.nonzero(kept)
    out = pd.DataFrame(
        {
            "therapist": tid[ther[ii]],
            "patient": pid[ii],
            "session": tk + 1,
            d.predictor_name: np.where(miss_x[ii, tk], np.nan, x[ii, tk]),
            d.outcome_name: np.where(miss_y[ii, tk], np.nan, y[ii, tk]),
        }
    )
    if d.moderator:
        out["moderator"] = z[ii]
    if d.informant:
        out[f"{d.predictor_name}_therapist"] = x2[ii, tk]

    pi, pk = np.nonzero(in_plan)
    states = pd.DataFrame(
        {
            "patient": pid[pi],
            "session": pk + 1,
            "state_predictor": z_state[pi, pk, 0],
            "state_outcome": z_state[pi, pk, 1],
            "kept": kept[pi, pk],
        }
    )
    patients = pd.DataFrame(
        {
            "patient": pid,
            "therapist": tid[ther],
            "trait_predictor": mean_x,
            "trait_outcome": mean_y,
            "therapist_dev_predictor": a_x[ther],
            "therapist_dev_outcome": a_y[ther],
            "patient_dev_predictor": b_x,
            "patient_dev_outcome": b_y,
            "state_effect": phi_yx_i,
            "moderator": z,
            "trend_predictor": s_x,
            "trend_outcome": s_y,
            "planned_sessions": planned,
            "dropped_out": drops & (last < planned),
        }
    )
    truth = Truth(
        params=p,
        design=d,
        seed=seed,
        patients=patients,
        states=states,
        stationary_within_cov=moments.stationary_cov(p.phi, p.sigma_within),
    )
    _fill_analytic(truth)
    return out, truth


def _fill_analytic(truth: Truth) -> None:
    """ICCs and R-squared components at the average dynamics (trends not included)."""
    p = truth.params
    s = truth.stationary_within_cov
    v_tx, v_px = p.sd_therapist_predictor**2, p.sd_patient_predictor**2
    v_ty = p.sd_therapist_outcome**2 + p.trait_effect_therapist**2 * v_tx
    v_py = p.sd_patient_outcome**2 + p.trait_effect_patient**2 * v_px
    truth.icc = {
        vocab.PREDICTOR: {
            k: float(v)
            for k, v in moments.icc({"therapist": v_tx, "patient": v_px}, s[0, 0]).items()
        },
        vocab.OUTCOME: {
            k: float(v)
            for k, v in moments.icc({"therapist": v_ty, "patient": v_py}, s[1, 1]).items()
        },
    }
    # Outcome equation: y_t on xw_(t-1), yw_(t-1) [and z * xw_(t-1)], patient trait b_x, therapist
    # trait a_x. The moderator z is standardised and independent of the states, so the interaction
    # has variance S_xx and no covariance with the other level-1 predictors.
    g1 = [p.state_effect, p.outcome_autoregression]
    phi1 = s
    if truth.design.moderator:
        g1.append(p.moderator_effect)
        phi1 = np.zeros((3, 3))
        phi1[:2, :2] = s
        phi1[2, 2] = s[0, 0]
    sxx = np.array([[s[0, 0]]])
    outcome = r2.three_level_components(
        gamma1=np.array(g1),
        phi1=phi1,
        gamma2=np.array([p.trait_effect_patient]),
        phi2=np.array([[v_px]]),
        gamma3=np.array([p.trait_effect_therapist]),
        phi3=np.array([[v_tx]]),
        tau2_slopes=np.array([[p.sd_state_effect_patient**2]]),
        sigma1_slopes=sxx,
        tau3_slopes1=np.array([[p.sd_state_effect_therapist**2]]),
        tau3_slopes2=None,
        sigma2_slopes=None,
        m2=p.sd_patient_outcome**2,
        m3=p.sd_therapist_outcome**2,
        sigma2=p.innovation_sd_outcome**2,
    )
    predictor = r2.three_level_components(
        gamma1=np.array([p.predictor_autoregression, p.reverse_state_effect]),
        phi1=s,
        gamma2=None,
        phi2=None,
        gamma3=None,
        phi3=None,
        tau2_slopes=None,
        sigma1_slopes=None,
        tau3_slopes1=None,
        tau3_slopes2=None,
        sigma2_slopes=None,
        m2=v_px,
        m3=v_tx,
        sigma2=p.innovation_sd_predictor**2,
    )
    truth.r2_components = {
        vocab.OUTCOME: {k: float(v) for k, v in outcome.items()},
        vocab.PREDICTOR: {k: float(v) for k, v in predictor.items()},
    }
