r"""Between-level (baseline) mediation as a block of the mechanism models, integrated or sampled.

**Patient level.** A patient-level baseline z_i (one or more columns, centred over patients:
:mod:`bayes_alliance.mechanisms.baseline_data`) shifts every series' latent mean, and an
end-of-treatment outcome directly (a Gaussian one in either form, a binary one through its
logit in the sampled form, below)::

    mean_r(i) = mu_r + gamma_r' z_i + u_jr + v_ir                  (r = 1..k, outcome last)
    O_i = g_0 + c_O' z_i + g_P (gamma_1' z_i + v_i1) + g_S delta_i + g_T u_j1 + u^O_j + eta_i

``gamma`` (``baseline_effect[series, baseline]``) is each latent mean's whole shift per unit
of z; ``v_i ~ N(0, Sigma_P)`` is what the baseline leaves of the patient part. The end outcome
regresses on the patient part of the predictor's latent mean as a whole (``gamma_1' z_i +
v_i1``), so ``c_O`` (``baseline_effect_end``) is the baseline's direct effect on it.

**Therapist level** (``baseline_level="therapist"``, three levels). A therapist characteristic
w_j (constant within each therapist, centred over therapists) shifts the therapist parts::

    mean_r(i) = mu_r + gamma_r' w_j + u_jr + v_ir
    O_i = g_0 + c_O' w_j + g_T (gamma_1' w_j + u_j1) + u^O_j + g_P v_i1 + g_S delta_i + eta_i

with ``u_j ~ N(0, Sigma_T)`` what the characteristic leaves of the therapist part, and the
same parameter names (``baseline_effect``, ``baseline_effect_end``), as the joint model keeps
``baseline_effect_predictor`` for both levels.

Given the parameters both shifts are known numbers per patient (at the therapist level the
same for all of a therapist's patients), so the Kalman filter runs on the series minus
``gamma' z`` and the end outcome's residual loses ``(c_O + g gamma_1)' z`` with g = g_P or
g_T (:func:`shifts`): the kernel and the integration of the latents are unchanged.

**Sampled form** (the latent means as parameters: a binary end outcome,
:mod:`bayes_alliance.mechanisms.model`). The shift moves the prior mean of the sampled latent
means, and the end outcome's linear predictor (its logit, for a binary outcome) regresses on
the predictor's level parts as a whole, exactly as above::

    m_i ~ MVN(mu + gamma z_i + u_j, Sigma_P)             (m_i: the patient's latent means)
    v_i = m_i - mu - gamma z_i - u_j                      (what the baseline leaves)
    patient level:    eta_i = g_0 + c_O' z_i + g_P (gamma_1' z_i + v_i1) + g_T u_j1 + ...
    therapist level:  eta_i = g_0 + c_O' w_j + g_T (gamma_1' w_j + u_j1) + g_P v_i1 + ...

(``...``: ``u^O_j + g_S delta_i``; ``logit P(O_i = 1) = eta_i`` or ``O_i = eta_i + e_i``).
Multiplied out, both levels are ``g_0 + g_P v_i1 + g_T u_j1 + ... + z_i' (c_O + g
gamma_1)``: the residual parts' regression plus the integrated form's end shift
(:func:`shifts`, g = g_P or g_T), which is how the builder writes it; the same random
variables (:func:`baseline_variables`) carry the same names in both forms. With a trend the
change's prior given the means is that of ``delta_i`` given the residual ``v_i`` (both in
``Sigma_P``), as in the integrated form.

On a binary outcome every path onto it is a log-odds: ``c_O``, ``a g``, ``c_O + a g`` per
unit of z, conditional on the patient's and therapist's parts (the logit's coefficients, not
population-averaged ones). The trait is a continuous latent mediator entering the logit
linearly, so the product of coefficients is the indirect effect and direct plus indirect is
the total on the logit scale exactly (MacKinnon 2008, ch. 11); their exponentials are odds
ratios per unit of z (``*_between_end_odds_ratio``, with ``OR_total = OR_direct OR_indirect``),
and the proportion mediated is that of the log-odds.

Between-level mediation z -> mean of x -> mean of y per draw (docs/methods.md, section
'Between-level mediation'; the joint
model's names, :mod:`bayes_alliance.effects.baseline`): with ``beta`` the regression of the
outcome's part on the other series' parts from the residual covariance at the baseline's level
(``Sigma_P`` or ``Sigma_T``; :func:`bayes_alliance.mechanisms.effects.trait_regression`, the
partial ``trait_effect_patient`` or ``trait_effect_therapist`` of the fit)::

    a  = gamma_x                               baseline_effect_predictor
    b  = beta_x                                trait_effect_<level>
    total = gamma_y                            total_effect_between
    c' = gamma_y - sum_(r != y) beta_r gamma_r direct_effect_between = baseline_effect_outcome
    indirect = a b                             indirect_effect_between
    proportion = a b / total                   proportion_mediated_between

With a third series r (a mediator, or a second informant's rating) its mean carries its own
part ``gamma_r beta_r`` (``indirect_effect_between_<role>``, shift ``baseline_effect_<role>``),
so that ``total = c' + a b + gamma_r beta_r``. Onto the end outcome: indirect ``a g``
(``indirect_effect_between_end``), direct ``c_O`` and total ``c_O + a g``, with g the end
outcome's effect of the predictor's part at the baseline's level (``end_trait_effect_patient``
g_P or ``end_trait_effect_therapist`` g_T). A therapist-level baseline's effects are named as
the joint model names them, ``_between`` becoming ``_between_therapist``
(``indirect_effect_between_therapist``, ``..._therapist_mediator``, ``..._therapist_end``;
:func:`level_name`). The within-level indirect effect of a mediator series
(:func:`bayes_alliance.mechanisms.effects.within_mediation`) is reported beside them,
separately (Zhang, Zyphur & Preacher 2009).

A patient-level baseline of three-level data acts on the patient part only: b is the
patient-level trait effect and gamma the shift of a patient's latent mean among patients. The
joint model's split of such a baseline into its within- and between-therapist parts is not
done here; a column of the therapist means of z given as a therapist-level baseline fits the
between part on its own. The baseline does not move the patients' changes.

References: MacKinnon (2008), *Introduction to Statistical Mediation Analysis*, ch. 3;
Preacher, Zyphur & Zhang (2010), Psych Methods 15:209 (latent between-level paths).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from bayes_alliance.core.vocab import PATIENT, SERIES, THERAPIST
from bayes_alliance.data.series_data import OUTCOME, PREDICTOR, SeriesData
from bayes_alliance.mechanisms.baseline_data import BASELINE_DIM, baseline_values
from bayes_alliance.mechanisms.effects import trait_regression
from bayes_alliance.mechanisms.priors import BaselinePriors

BASELINE_EFFECT = "baseline_effect"  # (series, baseline): each latent mean's shift per unit of z
BASELINE_EFFECT_END = "baseline_effect_end"  # (baseline,): the direct path onto the end outcome
# The end outcome's effect of the predictor's part at each level of the baseline (its b path
# onto the end outcome).
END_TRAIT = {PATIENT: "end_trait_effect_patient", THERAPIST: "end_trait_effect_therapist"}


def level_name(name: str, level: str) -> str:
    """An effect's row name at the baseline's level: the joint model's ``_between_therapist``
    for a therapist-level baseline's mediation rows (``indirect_effect_between_mediator`` ->
    ``indirect_effect_between_therapist_mediator``); paths and patient rows as they are."""
    if level != THERAPIST or "_between" not in name:
        return name
    return name.replace("_between", f"_between_{THERAPIST}", 1)


def shifts(z: Any, gamma: Any, end_direct: Any = None, end_trait: Any = None) -> tuple[Any, Any]:
    """The known mean shifts of the integrated density, for numpy arrays or tensors alike:
    each patient's latent means ``z gamma'`` (patients, k) and, with an end outcome
    (``end_direct`` c_O and ``end_trait`` g, the end outcome's effect of the predictor's part
    at the baseline's level, given), its end outcome's ``z (c_O + g gamma_1)`` (patients,),
    else None. ``z``: each patient's row of the baseline (its own, or its therapist's)."""
    mean = z @ gamma.T
    if end_direct is None:
        return mean, None
    return mean, z @ (end_direct + end_trait * gamma[0])


def end_trait_of(end: Any, level: str) -> Any:
    """The end outcome's effect of the predictor's part at the baseline's level (g_P or g_T)
    from the model's end parameters (``EndParams``), or None without an end outcome."""
    if end is None:
        return None
    return end.trait_therapist if level == THERAPIST else end.trait_patient


def baseline_variables(
    columns: tuple[str, ...], prior: BaselinePriors, end: bool
) -> tuple[Any, Any]:
    """The baseline's random variables inside the model's context, the same in either form:
    ``baseline_effect`` (series x columns) and, with ``end`` (an end outcome of either
    family), ``baseline_effect_end`` (columns), else None."""
    import pymc as pm  # here: the effects of this module run on draws, without PyMC

    model = pm.modelcontext(None)
    model.add_coords({BASELINE_DIM: list(columns)})
    gamma = pm.Normal(BASELINE_EFFECT, 0.0, prior.series, dims=(SERIES, BASELINE_DIM))
    end_direct = None
    if end:
        assert prior.end is not None
        end_direct = pm.Normal(BASELINE_EFFECT_END, 0.0, prior.end, dims=BASELINE_DIM)
    return gamma, end_direct


def baseline_parameters(
    data: SeriesData,
    columns: tuple[str, ...],
    prior: BaselinePriors,
    end_trait: Any,
    values: Any = None,
    level: str = PATIENT,
) -> tuple[Any, Any]:
    """The baseline's random variables (:func:`baseline_variables`) and the shifts they make
    (:func:`shifts`); ``end_trait`` is the end outcome's effect at the baseline's ``level``
    (:func:`end_trait_of`), or None without a Gaussian end outcome. ``values``: the centred
    baseline rows (a container), by default from ``data``."""
    z = baseline_values(data, columns, level) if values is None else values
    gamma, end_direct = baseline_variables(columns, prior, end_trait is not None)
    return shifts(z, gamma, end_direct, end_trait)


def draw_shifts(
    draw: Mapping[str, Any],
    data: SeriesData,
    columns: tuple[str, ...],
    level: str = PATIENT,
    z: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The shifts of one posterior draw (arrays without chain or draw axes), by the
    posterior's names; (None, None) without a baseline. ``z``: the patients' centred rows when
    the caller has them on another centring (a fit's, for patients added to its data), by
    default :func:`~bayes_alliance.mechanisms.baseline_data.baseline_values` of ``data``."""
    if not columns:
        return None, None
    if z is None:
        z = baseline_values(data, columns, level)
    gamma = np.asarray(draw[BASELINE_EFFECT], dtype=float)
    if BASELINE_EFFECT_END not in draw:
        return shifts(z, gamma)
    end = np.asarray(draw[BASELINE_EFFECT_END], dtype=float)
    return shifts(z, gamma, end, float(draw[END_TRAIT[level]]))


def between_mediation(
    gamma: np.ndarray,
    cov: np.ndarray,
    roles: tuple[str, ...],
    end_direct: np.ndarray | None = None,
    end_trait: np.ndarray | None = None,
    level: str = PATIENT,
    binary: bool = False,
) -> dict[str, np.ndarray]:
    """Between-level mediation effects per draw (module docstring).

    Parameters
    ----------
    gamma
        ``baseline_effect`` (..., k, q): each series' latent-mean shift per unit of z.
    cov
        The residual covariance of the k latent means' parts at the baseline's level (..., k,
        k): ``Sigma_P`` (patient level) or ``Sigma_T`` (therapist level).
    roles
        The series' roles, outcome last.
    end_direct, end_trait
        ``baseline_effect_end`` (..., q) and the end outcome's effect of the predictor's part
        at the baseline's level (...), or None.
    level
        ``"patient"`` or ``"therapist"``: the rows' names (:func:`level_name`).
    binary
        A binary end outcome: the paths onto it are log-odds, and their odds ratios per unit
        of z are added (``*_between_end_odds_ratio``).

    Returns
    -------
    dict
        Arrays (..., q) by name.
    """
    k = len(roles)
    x = roles.index(PREDICTOR)
    out: dict[str, np.ndarray]
    if OUTCOME not in roles:  # one series alone: its shift and, with an end outcome, onto it
        out = {"baseline_effect_predictor": gamma[..., x, :]}
        out.update(_onto_end(gamma[..., x, :], end_direct, end_trait, binary))
        return {level_name(n, level): val for n, val in out.items()}
    y = roles.index(OUTCOME)
    beta = trait_regression(cov)  # (..., k - 1): the outcome on every other series
    a, total = gamma[..., x, :], gamma[..., y, :]
    carried = {r: gamma[..., r, :] * beta[..., r, None] for r in range(k) if r != y}
    direct = total - sum(carried.values())
    indirect = carried[x]
    with np.errstate(divide="ignore", invalid="ignore"):
        proportion = indirect / total
    out = {
        "baseline_effect_predictor": a,
        "baseline_effect_outcome": direct,
        "indirect_effect_between": indirect,
        "direct_effect_between": direct,
        "total_effect_between": total,
        "proportion_mediated_between": proportion,
    }
    for r in range(k):
        if r not in (x, y):
            role = roles[r]
            out[f"baseline_effect_{role}"] = gamma[..., r, :]
            out[f"indirect_effect_between_{role}"] = carried[r]
    out.update(_onto_end(a, end_direct, end_trait, binary))
    return {level_name(n, level): val for n, val in out.items()}


def _onto_end(
    a: np.ndarray, end_direct: Any, end_trait: Any, binary: bool = False
) -> dict[str, np.ndarray]:
    """The mediation z -> trait of x -> end outcome (none without an end outcome); with a
    binary outcome (log-odds paths) the odds ratios of the direct, indirect and total
    effects per unit of z as well."""
    if end_direct is None or end_trait is None:
        return {}
    via = a * end_trait[..., None]
    end_total = end_direct + via
    with np.errstate(divide="ignore", invalid="ignore"):
        end_share = via / end_total
    out = {
        "baseline_effect_end": end_direct,
        "indirect_effect_between_end": via,
        "direct_effect_between_end": end_direct,
        "total_effect_between_end": end_total,
        "proportion_mediated_between_end": end_share,
    }
    if binary:
        for name in ("indirect", "direct", "total"):
            key = f"{name}_effect_between_end"
            out[f"{key}_odds_ratio"] = np.exp(out[key])
    return out


def baseline_effect_draws(
    post: Any,
    data: SeriesData,
    columns: tuple[str, ...],
    patient_cov: np.ndarray,
    therapist_cov: np.ndarray | None = None,
    level: str = PATIENT,
    binary: bool = False,
) -> dict[str, Any]:
    """The between-level mediation rows of a fit (:func:`between_mediation`) from its posterior
    (a Dataset of (chain, draw, ...) arrays), at the baseline's ``level`` (the residual
    covariance ``patient_cov`` or ``therapist_cov`` of the traits; ``binary``: a binary end
    outcome, whose paths are log-odds and get odds ratios): (chain, draw) arrays for
    one baseline column; for several, DataArrays with the baseline dimension (rows
    ``name[column]``)."""
    if not columns or BASELINE_EFFECT not in post:
        return {}
    cov = patient_cov
    if level == THERAPIST:
        assert therapist_cov is not None, "a therapist-level baseline needs Sigma_T"
        cov = therapist_cov
    end_direct = end_trait = None
    if BASELINE_EFFECT_END in post:
        end_direct = np.asarray(post[BASELINE_EFFECT_END].values, dtype=float)
        end_trait = np.asarray(post[END_TRAIT[level]].values, dtype=float)
    out = between_mediation(
        np.asarray(post[BASELINE_EFFECT].values, dtype=float),
        cov,
        data.roles,
        end_direct,
        end_trait,
        level,
        binary,
    )
    if len(columns) == 1:
        return {name: val[..., 0] for name, val in out.items()}
    return {
        name: xr.DataArray(
            val, dims=("chain", "draw", BASELINE_DIM), coords={BASELINE_DIM: list(columns)}
        )
        for name, val in out.items()
    }


__all__ = [
    "BASELINE_EFFECT",
    "BASELINE_EFFECT_END",
    "END_TRAIT",
    "baseline_effect_draws",
    "baseline_parameters",
    "baseline_variables",
    "between_mediation",
    "draw_shifts",
    "end_trait_of",
    "level_name",
    "shifts",
]
