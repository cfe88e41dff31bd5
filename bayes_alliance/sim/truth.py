r"""The simulator's truth: what :func:`bayes_alliance.sim.sessions.simulate` drew and the
analytic population quantities of its parameters (ICCs, R-squared components, between-level
mediation effects, reliabilities), computed as a fitted model's are.

With measurement error (omega_x, omega_y > 0) the quantities split into two kinds:

* of the **error-free** scores (trait + trend + state): ``states``, ``stationary_within_cov``,
  ``icc_error_free`` and ``r2_components`` (the structural equations of the states: their
  ``sigma2`` is the innovation variance, their sum the error-free variance);
* of the **observed** scores: ``icc``, whose session share adds the error variance to the
  within variance, ``icc_session = (Var_w + omega^2) / (V_T + V_P + Var_w + omega^2)``, with
  ``Var_w`` the state variance over the drawn slopes; and ``reliability``, the within-person
  reliability ``rho = Var_w / (Var_w + omega^2)`` at the average dynamics (Schuurman & Hamaker
  2019).

Without error both kinds coincide (``icc == icc_error_free``, reliabilities 1).

References
----------
Schuurman, N. K., & Hamaker, E. L. (2019). Measurement error and person-specific reliability in
multilevel autoregressive modeling. *Psychological Methods, 24*\(1), 70-91.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.kernels import r2
from bayes_alliance.sim.settings import SimulationDesign, TrueParameters

__all__ = ["Truth", "fill_analytic", "observed_shares"]

ERROR_SDS = (vocab.MEASUREMENT_ERROR_SD_PREDICTOR, vocab.MEASUREMENT_ERROR_SD_OUTCOME)


@dataclass
class Truth:
    """Everything the simulator drew and the analytic population quantities.

    Attributes
    ----------
    params, design, seed
        The inputs.
    patients
        One row per patient: therapist, latent traits (``trait_predictor``, ``trait_outcome``:
        the latent means), deviations, the patient's state effect and its therapist and patient
        deviations, moderator, trends.
    states
        One row per planned session (observed or not): the within components ``state_predictor``
        and ``state_outcome``, and whether the row was kept.
    stationary_within_cov
        2x2 stationary covariance of the error-free states (xw, yw) at the average dynamics
        (without slope variation).
    icc
        Per variable, the therapist, patient and session shares of the variance of the
        observed scores (measurement error in the session share).
    r2_components
        Per equation (``outcome``, ``predictor``), the three-level components of docs/methods.md,
        section 'R-squared per variance component' (f1, f2, f3, v12, v13, v23, m2, m3,
        sigma2): population values of the
        error-free scores, with the within moments averaged over the slope distribution (trends
        are not included).
    icc_error_free
        As ``icc``, for the error-free scores (trait + state); equal to it without error.
    reliability
        Per variable, the within-person reliability ``Var(w) / (Var(w) + omega^2)`` at the
        average dynamics (:attr:`TrueParameters.reliability`); 1 without error.
    """

    params: TrueParameters
    design: SimulationDesign
    seed: int
    patients: pd.DataFrame
    states: pd.DataFrame
    stationary_within_cov: np.ndarray = field(repr=False)
    icc: dict[str, dict[str, float]] = field(default_factory=dict)
    r2_components: dict[str, dict[str, float]] = field(default_factory=dict)
    icc_error_free: dict[str, dict[str, float]] = field(default_factory=dict)
    reliability: dict[str, float] = field(default_factory=dict)

    @property
    def mediation(self) -> dict[str, float]:
        """True between-level mediation effects of the baseline: a, b, c', ab, c' + ab and the
        proportion ab / (ab + c') (NaN when the total is 0)."""
        p = self.params
        a, b, c = p.baseline_effect_predictor, p.trait_effect_patient, p.baseline_effect_outcome
        total = c + a * b
        return {
            "a": a,
            "b": b,
            "c_prime": c,
            "indirect_effect_between": a * b,
            "direct_effect_between": c,
            "total_effect_between": total,
            "proportion_mediated_between": a * b / total if total else float("nan"),
        }

    @property
    def mediation_therapist(self) -> dict[str, float]:
        """True therapist-level mediation effects of the therapist baseline: a_T, b_T =
        ``trait_effect_therapist``, c'_T and the effects as the model's rows name them
        (``indirect_effect_between_therapist`` = a_T b_T, ...; proportion NaN at total 0)."""
        p = self.params
        a, c = p.therapist_baseline_effect_predictor, p.therapist_baseline_effect_outcome
        return _therapist_mediation(a, p.trait_effect_therapist, c)

    @property
    def mediation_split(self) -> dict[str, float]:
        """True mediation of the between-therapist part of a split patient baseline
        (``baseline_effect_*_between``, None: the within path; b_T = ``trait_effect_therapist``),
        named as the model's rows (``indirect_effect_between_therapist`` = a_B b_T, ...). The
        within part's are :attr:`mediation`."""
        p = self.params
        a = p.baseline_effect_predictor_between
        c = p.baseline_effect_outcome_between
        a = p.baseline_effect_predictor if a is None else a
        c = p.baseline_effect_outcome if c is None else c
        return _therapist_mediation(a, p.trait_effect_therapist, c)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (parameters, design, seed and analytic quantities)."""
        return {
            "params": asdict(self.params),
            "design": asdict(self.design),
            "seed": self.seed,
            "stationary_within_cov": self.stationary_within_cov.tolist(),
            "icc": self.icc,
            "r2_components": self.r2_components,
            "icc_error_free": self.icc_error_free,
            "reliability": self.reliability,
            "mediation": self.mediation,
            "mediation_therapist": self.mediation_therapist,
            "r2": {
                eq: {f"{d}/{m}": float(v) for (d, m), v in r2.three_level_r2(c).items()}
                for eq, c in self.r2_components.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_jsonable)


def _therapist_mediation(a: float, b: float, c: float) -> dict[str, float]:
    """Between-therapist mediation by paths a, b (b_T) and c', named as the model's rows
    (proportion NaN at total 0)."""
    total = c + a * b
    return {
        "a": a,
        "b": b,
        "c_prime": c,
        "indirect_effect_between_therapist": a * b,
        "direct_effect_between_therapist": c,
        "total_effect_between_therapist": total,
        "proportion_mediated_between_therapist": a * b / total if total else float("nan"),
    }


def _jsonable(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o))


def fill_analytic(
    truth: Truth,
    moderators: np.ndarray | None,
    ther: np.ndarray,
    dev_therapist: np.ndarray,
    dev_patient: np.ndarray,
    baseline: np.ndarray | None = None,
    therapist_baseline: np.ndarray | None = None,
) -> None:
    """ICCs and R-squared components: within moments averaged over the drawn patients with
    their own slopes and moderator values (:mod:`bayes_alliance.effects.variance`), and the baseline's
    share of the latent means over the drawn baseline values (per patient, or per therapist for
    ``therapist_baseline``), as a fitted model's are."""
    from bayes_alliance.effects.derived import derived_effects, r2_components
    from bayes_alliance.effects.variance import Design, within_moments
    from bayes_alliance.spec.model_spec import ModelSpec

    p = truth.params
    slopes = tuple(
        lvl
        for lvl, sd in (
            (vocab.PATIENT, p.sd_state_effect_patient),
            (vocab.THERAPIST, p.sd_state_effect_therapist),
        )
        if sd > 0
    )
    slopes_on = bool(slopes)
    spec = ModelSpec(
        random_slopes=slopes,
        moderators=("moderator",) if moderators is not None else (),
        baseline=("baseline",) if baseline is not None else (),
        same_session=p.same_session,
    )
    level = vocab.PATIENT
    if therapist_baseline is not None:  # one level at a time (checked by _check_design)
        spec = replace(spec, baseline=("therapist_baseline",), baseline_level=vocab.THERAPIST)
        baseline, level = therapist_baseline, vocab.THERAPIST
    # The error SDs stay out: the moments below are the error-free ones, and the error enters
    # the observed shares once, in observed_shares.
    skip = {vocab.MODERATOR_EFFECT, *ERROR_SDS}
    post = {
        k: np.asarray(val, dtype=float)
        for k, val in asdict(p).items()
        if isinstance(val, float) and k not in skip
    }
    if moderators is not None:
        post[vocab.MODERATOR_EFFECT] = np.array([p.moderator_effect])
    for name in (vocab.BASELINE_EFFECT_PREDICTOR, vocab.BASELINE_EFFECT_OUTCOME):
        # The model's one pair of path names holds the paths of the baseline's level.
        source = f"therapist_{name}" if level == vocab.THERAPIST else name
        post[name] = np.array([getattr(p, source)])
    between = None
    if baseline is not None and (
        p.baseline_effect_predictor_between is not None
        or p.baseline_effect_outcome_between is not None
    ):
        # The baseline split at the therapists as the simulator applies it: the within rows'
        # share joins the patients, the therapist means' (own paths, b_T) the therapists.
        n_t = int(ther.max()) + 1
        counts = np.bincount(ther, minlength=n_t)
        means = np.bincount(ther, weights=baseline, minlength=n_t) / np.maximum(counts, 1)
        between = (means - means[counts > 0].mean())[counts > 0]
        baseline = baseline - means[ther]
        for name in (vocab.BASELINE_EFFECT_PREDICTOR, vocab.BASELINE_EFFECT_OUTCOME):
            own = getattr(p, f"{name}_between")
            post[f"{name}_between"] = np.array([getattr(p, name) if own is None else own])
    one = np.ones((1, 1))
    design = Design(
        moderators=moderators[:, None] if moderators is not None else None,
        patient_therapist=ther,
        starts=np.array([0]),
        transitions=one,
        cells=one,
        offsets=np.zeros(1),
        baseline=baseline[:, None] if baseline is not None else None,
        baseline_level=level,
        baseline_between=between[:, None] if between is not None else None,
    )
    devs = {vocab.THERAPIST: dev_therapist, vocab.PATIENT: dev_patient} if slopes_on else None
    wm = within_moments(post, spec, design, devs)
    # Zero therapist variances (a two-level design drawn with one therapist) give 0/0 shares.
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = derived_effects(post, spec, design, wm)
    truth.icc_error_free = {
        var: {lvl: float(eff[f"icc_{var}_{lvl}"]) for lvl in ("therapist", "patient", "session")}
        for var in (vocab.PREDICTOR, vocab.OUTCOME)
    }
    truth.icc = {
        var: observed_shares(truth.icc_error_free[var], float(np.mean(wm[key])), omega**2)
        for var, key, omega in zip(
            (vocab.PREDICTOR, vocab.OUTCOME), ("var_x", "var_y"), p.error_sd, strict=True
        )
    }
    truth.reliability = dict(zip((vocab.PREDICTOR, vocab.OUTCOME), p.reliability, strict=True))
    comps = r2_components(post, spec, design, wm)
    truth.r2_components = {eq: {k: float(val) for k, val in c.items()} for eq, c in comps.items()}


def observed_shares(shares: dict[str, float], within: float, error_var: float) -> dict[str, float]:
    """Variance shares of the observed scores from those of the error-free scores.

    The error adds ``error_var`` (omega^2) to the within variance ``within`` and so to the
    total ``V = within / shares["session"]``; with ``r = omega^2 / V`` the between shares
    become ``s / (1 + r)`` and the session share ``(s + r) / (1 + r)`` (exactly the error-free
    shares at ``omega = 0``).
    """
    ratio = error_var * shares["session"] / within
    return {
        lvl: (s + ratio if lvl == "session" else s) / (1.0 + ratio) for lvl, s in shares.items()
    }
