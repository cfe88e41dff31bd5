r"""True values of the mechanism models' effects, from the simulator's generating values.

A mechanism study (:mod:`bayes_alliance.study.spec`, ``simulator = "mechanisms"``) draws its
data sets from :func:`bayes_alliance.sim.mechanisms.simulate_mechanisms`; the rows it writes
compare a fit's effect with the number here. These numbers are read off the generating form
(lag matrix ``Phi``, covariance ``C`` of the random paths' deviations ``d_i``, trait regression
``beta``, end-outcome and baseline effects), never computed by the fitting code
(:mod:`bayes_alliance.mechanisms.effects`), so a study checks those formulas too.

Within level (paths of x at t on y at t+2, the interval of the indirect route)::

    a = Phi[m, x], b = Phi[y, m], c' = Phi[y, x]
    indirect = E[a_i b_i] = a b + C[a, b]                 (Kenny, Korchmaros & Bolger 2003)
    total    = E[(Phi + D_i)^2][y, x],  D_i = sum_r d_ir U_r
             = (Phi^2)[y, x] + sum_(r, s) C[r, s] (U_r U_s)[y, x]
    direct   = total - indirect,  proportion = indirect / total

with ``U_r`` the unit matrix of random path r (one at its (to, from) entry): the expectation of
the square of a Gaussian random matrix, taken here by its unit matrices rather than by the
fitting code's entry-wise sum. Between level (a baseline z): the simulator shifts the trait of
each non-outcome series r by ``gamma_r z`` and the outcome's by ``c z`` beyond the regression
``beta' traits``, so ``a = gamma_x``, indirect ``gamma_x beta_x``, direct ``c``, total
``c + sum_r beta_r gamma_r``; onto the end outcome indirect ``gamma_x g_P``, direct ``c_O``.

Effects without a closed generating value here (standardised effects, ICCs, the observed
reliability, correlations of the innovations) have no truth: a study that asks for one is
refused by name.
"""

from __future__ import annotations

import numpy as np

from bayes_alliance.data.series_data import MEDIATOR, OUTCOME, PREDICTOR, SECOND_PREDICTOR
from bayes_alliance.mechanisms.spec import path_name, random_lag_row
from bayes_alliance.sim.mechanisms import MechanismTruth

# The series' roles of each simulated design, in the simulator's column order (outcome last).
DESIGN_ROLES: dict[str, tuple[str, ...]] = {
    "mediation": (PREDICTOR, MEDIATOR, OUTCOME),
    "informants": (PREDICTOR, SECOND_PREDICTOR, OUTCOME),
    "two_series": (PREDICTOR, OUTCOME),
    "mediation_informants": (PREDICTOR, SECOND_PREDICTOR, MEDIATOR, OUTCOME),
    "single": (PREDICTOR,),
}


def expected_square(
    lag: np.ndarray, paths: tuple[tuple[int, int], ...], cov: np.ndarray
) -> np.ndarray:
    """``E[(Phi + D)^2]`` for ``D = sum_r d_r U_r``, ``d ~ N(0, cov)``: ``Phi^2 + sum_(r,s)
    cov[r, s] U_r U_s`` (the cross terms ``Phi D`` have mean zero)."""
    k = lag.shape[0]
    units = []
    for to, source in paths:
        u = np.zeros((k, k))
        u[to, source] = 1.0
        units.append(u)
    out = lag @ lag
    for r, ur in enumerate(units):
        for s, us in enumerate(units):
            out = out + cov[r, s] * (ur @ us)
    return out


def _within(truth: MechanismTruth, x: int, m: int, y: int) -> dict[str, float]:
    """A mediation's within-level rows for predictor ``x`` (first informant's names)."""
    lag, paths, cov = truth.lag, truth.random_paths, truth.path_cov
    where = {p: r for r, p in enumerate(paths)}
    ra, rb = where.get((m, x)), where.get((y, m))
    cov_ab = float(cov[ra, rb]) if ra is not None and rb is not None else 0.0
    indirect = lag[m, x] * lag[y, m] + cov_ab
    total = expected_square(lag, paths, cov)[y, x]
    return {
        "effect_on_mediator": lag[m, x],
        "mediator_effect": lag[y, m],
        "direct_path_within": lag[y, x],
        "cov_random_paths": cov_ab,
        "indirect_effect_within": indirect,
        "total_effect_within": total,
        "direct_effect_within": total - indirect,
        "proportion_mediated_within": indirect / total,
    }


def true_effects(truth: MechanismTruth, therapists: bool) -> dict[str, float]:
    """Every effect this simulation has a generating value of, by the mechanism models'
    names (:data:`bayes_alliance.core.vocab.MECHANISM_EFFECTS` and the random lags' SD rows
    ``sd_<lag>_patient``).

    Parameters
    ----------
    truth
        The simulator's record of one data set.
    therapists
        Whether the data have a therapist level (``n_therapists > 0``).
    """
    roles = DESIGN_ROLES[truth.design]
    at = {r: i for i, r in enumerate(roles)}
    lag, beta = truth.lag, truth.trait_effects
    x = at[PREDICTOR]
    out: dict[str, float] = {"predictor_autoregression": lag[x, x]}
    for role, name in ((MEDIATOR, "mediator"), (SECOND_PREDICTOR, "second"), (OUTCOME, "outcome")):
        if role in at:
            out[f"{name}_autoregression"] = lag[at[role], at[role]]
    for r, (to, source) in enumerate(truth.random_paths):
        out[random_lag_row(path_name(roles[to], roles[source]))] = np.sqrt(truth.path_cov[r, r])
    if OUTCOME in at:
        y = at[OUTCOME]
        out["reverse_state_effect"] = lag[x, y]
        out["state_effect"] = lag[y, x]
        # Patient level: the outcome's trait on the others' (beta, in column order); the
        # therapist parts are independent across series, so every regression there is 0.
        levels = {"patient": beta, "therapist": np.zeros_like(beta)}
        if not therapists or not np.all(truth.therapist_sd > 0):
            del levels["therapist"]
        for level, coef in levels.items():
            out[f"trait_effect_{level}"] = coef[x]
            if MEDIATOR in at:
                out[f"trait_effect_{level}_mediator"] = coef[at[MEDIATOR]]
            if SECOND_PREDICTOR in at:
                second = coef[at[SECOND_PREDICTOR]]
                out[f"trait_effect_{level}_second"] = second
                out[f"trait_effect_{level}_difference"] = coef[x] - second
        if SECOND_PREDICTOR in at:
            x2 = at[SECOND_PREDICTOR]
            cp = truth.trait_cov_predictors
            out["trait_corr_informants_patient"] = cp[x, x2] / np.sqrt(cp[x, x] * cp[x2, x2])
            out["state_effect_second"] = lag[y, x2]
            out["state_effect_difference"] = lag[y, x] - lag[y, x2]
            out["cross_lag_second_from_first"] = lag[x2, x]
            out["cross_lag_first_from_second"] = lag[x, x2]
        if MEDIATOR in at:
            m = at[MEDIATOR]
            first = _within(truth, x, m, y)
            out.update(first)
            if SECOND_PREDICTOR in at:
                second = _within(truth, at[SECOND_PREDICTOR], m, y)
                for name, value in second.items():
                    if name != "mediator_effect":
                        out[f"{name}_second"] = value
                for name in (
                    "effect_on_mediator",
                    "indirect_effect_within",
                    "direct_effect_within",
                    "total_effect_within",
                ):
                    out[f"{name}_difference"] = first[name] - second[name]
    else:
        out["innovation_sd_predictor"] = np.sqrt(truth.innovation_cov[0, 0])
        out["sd_patient_predictor"] = float(truth.settings.get("trait_sd", np.nan))
        if therapists:
            out["sd_therapist_predictor"] = truth.therapist_sd[0]
    out.update(_end(truth, therapists))
    out.update(_between(truth, roles))
    return {k: float(v) for k, v in out.items() if np.isfinite(v)}


def _end(truth: MechanismTruth, therapists: bool) -> dict[str, float]:
    """The end-of-treatment outcome's effects: of the patient part of the predictor's trait,
    of its therapist part (three levels), and of the patients' changes (when they vary)."""
    end = truth.end
    if not end:
        return {}
    out = {"end_trait_effect_patient": end["trait_effect"]}
    if therapists:
        out["end_trait_effect_therapist"] = end["therapist_trait_effect"]
    if truth.change_sd > 0:
        out["end_change_effect"] = end["change_effect"]
        out["end_change_effect_per_sd"] = end["change_effect"] * truth.change_sd
    return out


def _between(truth: MechanismTruth, roles: tuple[str, ...]) -> dict[str, float]:
    """Between-level (baseline) mediation from the baseline's generating shifts."""
    if not truth.baseline:
        return {}
    gamma = np.asarray(truth.baseline["series"], dtype=float)
    x = roles.index(PREDICTOR)
    out = {"baseline_effect_predictor": gamma[x]}
    if OUTCOME in roles:
        y = roles.index(OUTCOME)
        beta = truth.trait_effects  # over the non-outcome series, in column order
        carried = {r: beta[r] * gamma[r] for r in range(len(roles)) if r != y}
        total = gamma[y] + sum(carried.values())
        out.update(
            {
                "baseline_effect_outcome": gamma[y],
                "direct_effect_between": gamma[y],
                "indirect_effect_between": carried[x],
                "total_effect_between": total,
                "proportion_mediated_between": carried[x] / total if total else np.nan,
            }
        )
        for r, role in enumerate(roles):
            if r not in (x, y):
                out[f"baseline_effect_{role}"] = gamma[r]
                out[f"indirect_effect_between_{role}"] = carried[r]
    if truth.end:
        via = gamma[x] * truth.end["trait_effect"]
        direct = float(truth.baseline["end"])
        out.update(
            {
                "baseline_effect_end": direct,
                "indirect_effect_between_end": via,
                "direct_effect_between_end": direct,
                "total_effect_between_end": direct + via,
                "proportion_mediated_between_end": via / (direct + via) if direct + via else np.nan,
            }
        )
    return out


__all__ = ["DESIGN_ROLES", "expected_square", "true_effects"]
