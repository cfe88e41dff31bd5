r"""Measurement error per posterior draw: the error variances and the within-person
reliabilities of the observed scores (docs/methods.md, section 'Measurement error').

With ``ModelSpec(measurement_error=True)`` each observed score is its latent mean plus its
state plus white noise,

.. math::

    x_{ti} = M^x_i + w^x_{ti} + \varepsilon^x_{ti}, \qquad
    \varepsilon^x_{ti} \sim N(0, \omega_x^2)

(likewise y), with the states ``w`` following the within-person VAR(1) and the errors
independent of each other, over sessions and of the states. The within-person variance of an
observed score is then the state variance plus the error variance, and its within-person
reliability is the state's share of it (Schuurman & Hamaker 2019):

.. math::

    \rho_x = \frac{\mathrm{Var}_w(x^w)}{\mathrm{Var}_w(x^w) + \omega_x^2}.

``Var_w`` is the population within moment of
:func:`bayes_alliance.effects.variance.within_moments` (``var_x``, ``var_y``): the state
variance over the data's cells, averaged over the slope distribution (with random slopes each
patient's own stationary variance, then the average), the same moment the ICCs and the
standardised effects use. The reliability is therefore the ratio of the averages, the share of
the population within variance that is state variance, not the average of the
person-specific reliabilities of Schuurman & Hamaker (2019). With a stationary first session it
is also the state's share of the R-squared level-1 denominator (the moments at the transitions
equal those over the cells); with a free first session the two moments differ slightly.

Pure numpy on dicts of posterior arrays (chain, draw); no PyMC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayes_alliance.core import vocab
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab

# The effects this module adds to a fit's derived effects (effects.csv), by variable.
RELIABILITY = {v.PREDICTOR: "reliability_predictor", v.OUTCOME: "reliability_outcome"}
ERROR_SD = {
    v.PREDICTOR: v.MEASUREMENT_ERROR_SD_PREDICTOR,
    v.OUTCOME: v.MEASUREMENT_ERROR_SD_OUTCOME,
}


def error_variances(
    post: Mapping[str, Any], spec: ModelSpec, like: np.ndarray
) -> dict[str, np.ndarray] | None:
    """The measurement-error variances ``omega^2`` per draw by variable (``predictor``,
    ``outcome``), shaped like ``like``; None for a model without measurement error (so that
    callers add nothing and their results stay as they were)."""
    if not spec.measurement_error:
        return None
    return {
        var: np.broadcast_to(np.asarray(post[name], dtype=float) ** 2, np.shape(like))
        for var, name in ERROR_SD.items()
    }


def reliability(state_var: Any, error_var: Any) -> np.ndarray:
    r"""Within-person reliability ``state_var / (state_var + error_var)`` (elementwise).

    Parameters
    ----------
    state_var
        Variance of the error-free state (within person).
    error_var
        Measurement-error variance :math:`\omega^2`.
    """
    s = np.asarray(state_var, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / (s + np.asarray(error_var, dtype=float))


def reliabilities(
    post: Mapping[str, Any], spec: ModelSpec, within: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """``reliability_predictor`` and ``reliability_outcome`` per draw from the population within
    moments ``within`` (:func:`~bayes_alliance.effects.variance.within_moments`); empty without
    measurement error."""
    err = error_variances(post, spec, within["var_y"])
    if err is None:
        return {}
    return {
        RELIABILITY[v.PREDICTOR]: reliability(within["var_x"], err[v.PREDICTOR]),
        RELIABILITY[v.OUTCOME]: reliability(within["var_y"], err[v.OUTCOME]),
    }


def observed_within(
    within: Mapping[str, np.ndarray], errors: Mapping[str, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The within-person variances of the observed scores ``(x, y)``: the state variances plus
    the error variances (the state variances alone without measurement error)."""
    if errors is None:
        return within["var_x"], within["var_y"]
    return within["var_x"] + errors[v.PREDICTOR], within["var_y"] + errors[v.OUTCOME]
