r"""The within-person part of the model: lags, random state slopes, innovations, first session.

For patient i of therapist j, in structural form (:mod:`bayes_alliance.kernels.dynamics`)::

    B0 w_t = Phi_i w_(t-1) + e_t,    e_t ~ N(0, Sigma_t)
    Phi_i = [[phi_xx, phi_xy], [phi_yx[i], phi_yy]]
    phi_yx[i] = phi_yx + lambda' z_i + c_j + d_i

with the moderators z centred, therapist slope deviations ``c_j ~ N(0, sd_state_effect_therapist^2)``
and patient deviations ``d_i ~ N(0, sd_state_effect_patient^2)`` (non-centred). ``Sigma_t`` is
one covariance for all transitions, or one per session (``innovations="session"``, as in the
RI-CLPM of Hamaker, Kuiper & Grasman 2015).

Stationarity is imposed only where the likelihood needs it: a stationary first session
(``first_session="stationary"``) is a draw from the stationary distribution of the patient's own
dynamics, which exists only when the patient's reduced-form lag matrix has both eigenvalues
inside the unit circle. The stationary slopes of a patient form an interval (lo, hi)
(:func:`bayes_alliance.kernels.dynamics.slope_interval`), so the prior is truncated to it:

* the fixed part (phi_xx, phi_xy, phi_yy, phi_yx, lambda, the lag-0 path) to the region where
  every patient's dynamics at zero slope deviation are stationary: a truncated prior whose
  normalising constant does not depend on any parameter;
* with therapist slopes, each ``c_j`` to the interval where all of the therapist's patients are
  stationary at zero patient deviation, with its normalising constant;
* with patient slopes, each ``d_i`` to a normal truncated to ``(lo, hi) - phi_yx - lambda' z_i
  - c_j`` (an interval that holds 0), with its normalising constant ``Phi(U_i) - Phi(L_i)``,
  so that the truncation does not shrink ``sd_state_effect_patient`` (the SD of the normal
  before truncation).

With a free first session nothing is truncated, and the posterior probability that the
dynamics are stationary is a meaningful summary.

The arithmetic from the named parameters to the dynamics is
:func:`bayes_alliance.model.structure.dynamics_from`, shared with every post-hoc path; this
module adds the random variables (through the builder's accessor) and the truncation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_alliance.core import vocab
from bayes_alliance.kernels import dynamics
from bayes_alliance.kernels.truncation import inside, log_normal_mass
from bayes_alliance.model.structure import Dynamics, Get, Structural, dynamics_from
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab


def within_part(spec: ModelSpec, get: Get, n_pat: Any, tj: Any, z: Any, caseload: Any) -> Dynamics:
    """Add the within-person random variables to the current model; return the dynamics.

    The dynamics are :func:`bayes_alliance.model.structure.dynamics_from`'s (the arithmetic every
    post-hoc computation shares); with a stationary first session the stationarity truncation
    of their prior is added here as the potential ``stationarity`` (module docstring).

    Parameters
    ----------
    spec
        Model options.
    get
        ``get(name, default, **dims)``: the named parameter (a random variable when the spec
        estimates it, else its fixed default).
    n_pat
        Number of patients (symbolic in a compiled model).
    tj
        Therapist code of each patient (None for two levels).
    z
        Centred moderator values (patients x moderators), or None.
    caseload
        Therapists x patients mask (1 where the patient is the therapist's); used only with
        therapist slopes, moderators and no patient slopes.
    """
    dyn = dynamics_from(get, spec, z=z, tj=tj, n_pat=n_pat, xp=pt)
    if spec.first_session == "stationary" and spec.dynamics == "var1":
        pm.Potential("stationarity", _stationarity_logp(dyn, spec, tj, z, caseload))
    return dyn


def _stationarity_logp(dyn: Dynamics, spec: ModelSpec, tj: Any, z: Any, caseload: Any) -> Any:
    """Log density of the truncation: -inf outside the stationary region, minus the log
    normalising constants of the truncated slope deviations inside it."""
    parts = dyn.parts
    assert parts is not None
    phi_xx, phi_xy, phi_yy = parts.lags
    lo, hi, feasible = dynamics.slope_interval(
        phi_xx, phi_xy, phi_yy, parts.b0, spec.same_session, xp=pt
    )
    return truncation_logp(parts, dyn.slope, (lo, hi, feasible), tj, z, caseload)


def truncation_logp(
    parts: Structural, slope: Any, interval: tuple[Any, Any, Any], tj: Any, z: Any, caseload: Any
) -> Any:
    """The truncation of the slope's prior to its stationary interval (module docstring),
    given the interval ``(lo, hi, feasible)`` of the patients' slopes: of the structural
    state effect here, of the drift's cross effect in continuous time
    (:func:`bayes_alliance.model.continuous.stationarity_logp`). ``slope``: each patient's
    whole slope (with random slopes)."""
    lo, hi, feasible = interval
    fixed_slope, dev_t, sd_t, sd_p = (
        parts.fixed_slope,
        parts.dev_therapist,
        parts.sd_therapist,
        parts.sd_patient,
    )
    ok = pt.and_(feasible, pt.all(inside(fixed_slope, lo, hi)))
    logp: Any = pt.switch(ok, 0.0, -np.inf)
    if dev_t is not None:
        # The therapist's deviation keeps every one of the therapist's patients stationary
        # at zero patient deviation (so a patient deviation's interval always holds 0).
        if z is not None:
            big = dynamics.UNBOUNDED
            low_m = pt.min(pt.switch(caseload, fixed_slope[None, :], big), axis=1)
            high_m = pt.max(pt.switch(caseload, fixed_slope[None, :], -big), axis=1)
            lo_t, hi_t = lo - low_m, hi - high_m
        else:
            lo_t, hi_t = lo - fixed_slope, hi - fixed_slope
        trunc = log_normal_mass(lo_t / sd_t, hi_t / sd_t)
        logp = logp + pt.switch(inside(dev_t, lo_t, hi_t), -trunc, -np.inf).sum()
    if parts.dev_patient is not None:
        centre = fixed_slope + (dev_t[tj] if dev_t is not None else 0.0)
        trunc = log_normal_mass((lo - centre) / sd_p, (hi - centre) / sd_p)
        logp = logp + pt.switch(inside(slope, lo, hi), -trunc, -np.inf).sum()
    return logp
